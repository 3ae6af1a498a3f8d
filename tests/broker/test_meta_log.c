/*
 * test_meta_log.c — the committed-offsets log format (broker/meta_log.c):
 * round trip of hostile strings, and crash safety: no prefix of a record
 * (a torn append) and no record with a damaged byte is accepted; the same
 * for delete records (OffsetDelete, DeleteGroups).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/meta_log.h"
#include "tests/tt.h"

static kw encode(const char *g, const char *t, int32_t p, int64_t o, const char *md)
{
    kw w;
    kw_init(&w, 1 << 20);
    meta_log_encode(&w, g, t, p, o, md);
    return w;
}

TT_TEST(round_trip_of_hostile_strings)
{
    const char *g = "victim\n7669\tt8\t0\t999\t";
    const char *t = "zz\n76696374696d\tt8 0 999 ";
    const char *md = "line\nbreak o 00000000 x";
    kw w = encode(g, t, 7, -1, md);
    TT_ASSERT(!w.err);
    /* one record = one line: the newline is its last byte only */
    TT_ASSERT(memchr(w.d, '\n', w.len) == w.d + w.len - 1);
    meta_log_rec r;
    TT_ASSERT_EQ_INT(meta_log_decode((const char *)w.d, w.len - 1, &r), 0);
    TT_ASSERT_STR(r.group, g);
    TT_ASSERT_STR(r.topic, t);
    TT_ASSERT_STR(r.metadata, md);
    TT_ASSERT_EQ_INT(r.partition, 7);
    TT_ASSERT_EQ_INT(r.offset, -1);
    meta_log_rec_free(&r);
    kw_free(&w);
    w = encode("g", "t", 2147483647, INT64_MAX, NULL);
    TT_ASSERT_EQ_INT(meta_log_decode((const char *)w.d, w.len - 1, &r), 0);
    TT_ASSERT_EQ_INT(r.partition, 2147483647);
    TT_ASSERT(r.offset == INT64_MAX);
    TT_ASSERT_STR(r.metadata, "");
    meta_log_rec_free(&r);
    kw_free(&w);
}

static kw encode_delete(const char *g, const char *t, int32_t p)
{
    kw w;
    kw_init(&w, 1 << 20);
    meta_log_encode_delete(&w, g, t, p);
    return w;
}

TT_TEST(delete_round_trip)
{
    const char *g = "victim\n7669 d 00000000";
    kw w = encode_delete(g, "t.x", 3);
    TT_ASSERT(!w.err);
    TT_ASSERT(memchr(w.d, '\n', w.len) == w.d + w.len - 1);
    TT_ASSERT(w.d[0] == 'd');
    meta_log_rec r;
    TT_ASSERT_EQ_INT(meta_log_decode((const char *)w.d, w.len - 1, &r), 0);
    TT_ASSERT(r.deleted);
    TT_ASSERT_STR(r.group, g);
    TT_ASSERT_STR(r.topic, "t.x");
    TT_ASSERT_EQ_INT(r.partition, 3);
    TT_ASSERT_EQ_INT(r.offset, -1);
    TT_ASSERT_STR(r.metadata, "");
    meta_log_rec_free(&r);
    kw_free(&w);
    w = encode("g", "t", 1, 5, "m");
    TT_ASSERT_EQ_INT(meta_log_decode((const char *)w.d, w.len - 1, &r), 0);
    TT_ASSERT(!r.deleted);
    meta_log_rec_free(&r);
    kw_free(&w);
}

/* A commit record's fields under a delete's type letter (and the reverse)
 * never parse: the field counts differ. */
TT_TEST(types_do_not_mix)
{
    kw w = encode("g", "t", 1, 5, "m");
    w.d[0] = 'd';
    meta_log_rec r;
    TT_ASSERT(meta_log_decode((const char *)w.d, w.len - 1, &r) != 0);
    kw_free(&w);
    w = encode_delete("g", "t", 1);
    w.d[0] = 'o';
    TT_ASSERT(meta_log_decode((const char *)w.d, w.len - 1, &r) != 0);
    kw_free(&w);
}

static void check_no_prefix(kw w)
{
    /* a loader sees a line only up to a newline: any prefix without the
     * record's own newline is all that a torn append leaves */
    for (size_t n = 0; n < w.len - 1; n++) {
        meta_log_rec r;
        TT_ASSERT_MSG(meta_log_decode((const char *)w.d, n, &r) != 0,
                      "prefix of %zu bytes accepted", n);
    }
    kw_free(&w);
}

TT_TEST(no_torn_prefix_is_a_record)
{
    check_no_prefix(encode("group-1", "topic.a", 12, 123456789, "meta"));
    check_no_prefix(encode_delete("group-1", "topic.a", 12));
}

static void check_damage_refused(kw w)
{
    size_t len = w.len - 1;
    char *copy = malloc(len);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(copy, w.d, len);
            copy[i] = (char)(copy[i] ^ (1 << bit));
            if (copy[i] == '\n') continue; /* would end the line: seen as a prefix */
            meta_log_rec r;
            TT_ASSERT_MSG(meta_log_decode(copy, len, &r) != 0,
                          "byte %zu bit %d flipped and accepted", i, bit);
        }
    }
    free(copy);
    kw_free(&w);
}

TT_TEST(damaged_bytes_are_refused)
{
    check_damage_refused(encode("group-1", "topic.a", 12, 123456789, "meta"));
    check_damage_refused(encode_delete("group-1", "topic.a", 12));
}

TT_TEST(cap_hit_is_an_error)
{
    kw w;
    kw_init(&w, 40);
    meta_log_encode(&w, "group", "topic", 1, 2, "metadata that does not fit in forty bytes");
    TT_ASSERT(w.err); /* the broker then keeps the old file and fails the commit */
    kw_free(&w);
}

TT_TEST(unhex_is_strict)
{
    char *s = meta_unhex("6869", 4);
    TT_ASSERT_STR(s, "hi");
    free(s);
    TT_ASSERT(meta_unhex("686", 3) == NULL);
    TT_ASSERT(meta_unhex("6g", 2) == NULL);
    TT_ASSERT(meta_unhex("6800", 4) == NULL); /* an encoded NUL would cut the string */
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    TT_RUN(round_trip_of_hostile_strings);
    TT_RUN(delete_round_trip);
    TT_RUN(types_do_not_mix);
    TT_RUN(no_torn_prefix_is_a_record);
    TT_RUN(damaged_bytes_are_refused);
    TT_RUN(cap_hit_is_an_error);
    TT_RUN(unhex_is_strict);
    return tt_summary();
}
