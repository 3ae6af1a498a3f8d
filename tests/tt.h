/*
 * tt.h — the tiny test harness every unit test uses.
 *
 *   TT_TEST(name) { TT_ASSERT(x == 1); TT_ASSERT_EQ_INT(a, b); TT_OK(st); }
 *   int main(int argc, char **argv) { TT_RUN(name); ...; return tt_summary(); }
 *
 * `test_foo name1 name2` runs only those tests (runnable by name).
 * A failed assertion ends the current test; the summary line reads
 * "N passed, N failed" (", N skipped" when TT_SKIP ended some) and the exit
 * code is non-zero on any failure.
 */
#ifndef TS_TT_H
#define TS_TT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tierstore.h"

static int tt_passed, tt_failed, tt_skipped, tt_cur_failed, tt_cur_skipped;
static int tt_argc;
static char **tt_argv;

#define TT_TEST(name) static void name(void)

#define TT_FAIL_(...)                                                                            \
    do {                                                                                         \
        fprintf(stderr, "    FAIL %s:%d: ", __FILE__, __LINE__);                                 \
        fprintf(stderr, __VA_ARGS__);                                                            \
        fprintf(stderr, "\n");                                                                   \
        tt_cur_failed = 1;                                                                       \
        return;                                                                                  \
    } while (0)

/* Ends the current test as skipped (never counted as passed). */
#define TT_SKIP(...)                                                                             \
    do {                                                                                         \
        fprintf(stderr, "    SKIP: ");                                                           \
        fprintf(stderr, __VA_ARGS__);                                                            \
        fprintf(stderr, "\n");                                                                   \
        tt_cur_skipped = 1;                                                                      \
        return;                                                                                  \
    } while (0)

#define TT_ASSERT(cond)                                                                          \
    do {                                                                                         \
        if (!(cond)) TT_FAIL_("assertion failed: %s", #cond);                                    \
    } while (0)

#define TT_ASSERT_MSG(cond, ...)                                                                 \
    do {                                                                                         \
        if (!(cond)) TT_FAIL_(__VA_ARGS__);                                                      \
    } while (0)

#define TT_ASSERT_EQ_INT(a, b)                                                                   \
    do {                                                                                         \
        long long tt_a = (long long)(a), tt_b = (long long)(b);                                  \
        if (tt_a != tt_b) TT_FAIL_("%s == %s: %lld != %lld", #a, #b, tt_a, tt_b);                \
    } while (0)

#define TT_ASSERT_STR(a, b)                                                                      \
    do {                                                                                         \
        const char *tt_sa = (a), *tt_sb = (b);                                                   \
        if (!tt_sa || !tt_sb || strcmp(tt_sa, tt_sb))                                            \
            TT_FAIL_("%s == %s: '%s' != '%s'", #a, #b, tt_sa ? tt_sa : "(null)",                 \
                     tt_sb ? tt_sb : "(null)");                                                  \
    } while (0)

/* Asserts a ts_status is TS_OK; prints the error buffer `err` if in scope. */
#define TT_OK(expr)                                                                              \
    do {                                                                                         \
        ts_status tt_st = (expr);                                                                \
        if (tt_st != TS_OK) TT_FAIL_("%s -> %s", #expr, ts_status_name(tt_st));                  \
    } while (0)

#define TT_OKE(expr, errbuf)                                                                     \
    do {                                                                                         \
        ts_status tt_st = (expr);                                                                \
        if (tt_st != TS_OK) TT_FAIL_("%s -> %s: %s", #expr, ts_status_name(tt_st), (errbuf));    \
    } while (0)

static int tt_selected(const char *name)
{
    if (tt_argc <= 1) return 1;
    for (int i = 1; i < tt_argc; i++)
        if (!strcmp(tt_argv[i], name)) return 1;
    return 0;
}

#define TT_INIT(argc, argv) (tt_argc = (argc), tt_argv = (argv))

#define TT_RUN(name)                                                                             \
    do {                                                                                         \
        if (!tt_selected(#name)) break;                                                          \
        tt_cur_failed = 0;                                                                       \
        tt_cur_skipped = 0;                                                                      \
        fprintf(stderr, "  RUN  %s\n", #name);                                                   \
        name();                                                                                  \
        if (tt_cur_skipped && !tt_cur_failed) {                                                  \
            tt_skipped++;                                                                        \
            fprintf(stderr, "  SKIP %s\n", #name);                                               \
        } else if (tt_cur_failed) {                                                                     \
            tt_failed++;                                                                         \
            fprintf(stderr, "  FAIL %s\n", #name);                                               \
        } else {                                                                                 \
            tt_passed++;                                                                         \
            fprintf(stderr, "  PASS %s\n", #name);                                               \
        }                                                                                        \
    } while (0)

static inline int tt_summary(void)
{
    if (tt_skipped) printf("%d passed, %d failed, %d skipped\n", tt_passed, tt_failed, tt_skipped);
    else printf("%d passed, %d failed\n", tt_passed, tt_failed);
    return tt_failed ? 1 : (tt_passed ? 0 : 1);
}

/* A fresh temporary directory under $TMPDIR (or /tmp); caller may rm it. */
static inline void tt_tmpdir(char *out, size_t len, const char *tag)
{
    const char *base = getenv("TMPDIR");
    snprintf(out, len, "%s/ts-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    if (!mkdtemp(out)) {
        perror("mkdtemp");
        exit(2);
    }
}

#endif
