/*
 * properties.c — the .properties line syntax shared by the engine's config
 * and tierbroker (see properties.h for the rules and why it is its own
 * library).
 */
#include "properties.h"

#include <ctype.h>
#include <string.h>

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

int ts_props_parse(char *text, ts_props_fn fn, void *opaque, int *bad_lineno,
                   const char **bad_line)
{
    int lineno = 0;
    /* Line by line by hand: strtok_r would drop empty lines from the count. */
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        lineno++;
        char *l = trim(line);
        if (*l && *l != '#' && *l != '!') {
            char *sep = strpbrk(l, "=:");
            if (!sep) {
                if (bad_lineno) *bad_lineno = lineno;
                if (bad_line) *bad_line = l;
                return TS_PROPS_SYNTAX;
            }
            *sep = '\0';
            int rc = fn(opaque, lineno, trim(l), trim(sep + 1));
            if (rc) return rc;
        }
        line = nl ? nl + 1 : NULL;
    }
    return 0;
}
