/*
 * test_properties.c — common/properties.c, the .properties syntax the
 * engine's config and tierbroker share: comments, separators, trimming,
 * line numbers (empty lines count), syntax errors and a callback that stops.
 */
#include <stdio.h>
#include <string.h>

#include "common/properties.h"
#include "tt.h"

typedef struct seen {
    int n, stop_at;
    char keys[8][64], values[8][64];
    int lines[8];
} seen;

static int collect(void *opaque, int lineno, char *key, char *value)
{
    seen *s = opaque;
    if (s->n == s->stop_at) return 7;
    snprintf(s->keys[s->n], sizeof s->keys[0], "%s", key);
    snprintf(s->values[s->n], sizeof s->values[0], "%s", value);
    s->lines[s->n++] = lineno;
    return 0;
}

TT_TEST(properties_syntax)
{
    char text[] = "# comment\n! also a comment\n\n  a.b = 1 \r\n"
                  "c: x=y\nd=e:f\n\te\t=\t\nurl = http://h:9/p\n";
    seen s = {.stop_at = -1};
    int bad_line = 0;
    const char *bad = NULL;
    TT_ASSERT_EQ_INT(ts_props_parse(text, collect, &s, &bad_line, &bad), 0);
    TT_ASSERT_EQ_INT(s.n, 5);
    TT_ASSERT_STR(s.keys[0], "a.b");
    TT_ASSERT_STR(s.values[0], "1"); /* trailing space and \r trimmed */
    TT_ASSERT_EQ_INT(s.lines[0], 4);  /* comments and the empty line count */
    TT_ASSERT_STR(s.keys[1], "c");    /* the first of '=' and ':' splits */
    TT_ASSERT_STR(s.values[1], "x=y");
    TT_ASSERT_STR(s.keys[2], "d");
    TT_ASSERT_STR(s.values[2], "e:f");
    TT_ASSERT_STR(s.keys[3], "e");
    TT_ASSERT_STR(s.values[3], "");
    TT_ASSERT_STR(s.keys[4], "url");
    TT_ASSERT_STR(s.values[4], "http://h:9/p");
    TT_ASSERT_EQ_INT(s.lines[4], 8);
}

TT_TEST(properties_errors_and_stop)
{
    char text[] = "a=1\n\n  no separator here  \nb=2\n";
    seen s = {.stop_at = -1};
    int bad_line = 0;
    const char *bad = NULL;
    TT_ASSERT_EQ_INT(ts_props_parse(text, collect, &s, &bad_line, &bad), TS_PROPS_SYNTAX);
    TT_ASSERT_EQ_INT(bad_line, 3);
    TT_ASSERT_STR(bad, "no separator here");
    TT_ASSERT_EQ_INT(s.n, 1); /* entries before the bad line were handed out */

    char text2[] = "a=1\nb=2\nc=3";
    seen s2 = {.stop_at = 1};
    TT_ASSERT_EQ_INT(ts_props_parse(text2, collect, &s2, NULL, NULL), 7);
    TT_ASSERT_EQ_INT(s2.n, 1);

    char text3[] = "a=1\0b=2\n"; /* the text ends at its first NUL */
    seen s3 = {.stop_at = -1};
    TT_ASSERT_EQ_INT(ts_props_parse(text3, collect, &s3, NULL, NULL), 0);
    TT_ASSERT_EQ_INT(s3.n, 1);

    char empty[] = "";
    seen s4 = {.stop_at = -1};
    TT_ASSERT_EQ_INT(ts_props_parse(empty, collect, &s4, NULL, NULL), 0);
    TT_ASSERT_EQ_INT(s4.n, 0);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    TT_RUN(properties_syntax);
    TT_RUN(properties_errors_and_stop);
    return tt_summary();
}
