/*
 * tt.h — the tiny test harness every unit test uses.
 *
 *   TT_TEST(name) { TT_ASSERT(x == 1); TT_ASSERT_EQ_INT(a, b); TT_OK(st); }
 *   TT_TEST(name) { ...open...; TT_CHECK(x == 1); done: ...close...; }
 *   int main(int argc, char **argv) { TT_RUN(name); ...; return tt_summary(); }
 *
 * `test_foo name1 name2` runs only those tests (runnable by name).
 * A failed TT_ASSERT* ends the current test; a failed TT_CHECK* jumps to its
 * `done:` label first, so the test's cleanup runs. The summary line reads
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

/* Reports a failure of the current test; `leave` is what ends it. */
#define TT_FAIL_AND_(leave, ...)                                                                 \
    do {                                                                                         \
        fprintf(stderr, "    FAIL %s:%d: ", __FILE__, __LINE__);                                 \
        fprintf(stderr, __VA_ARGS__);                                                            \
        fprintf(stderr, "\n");                                                                   \
        tt_cur_failed = 1;                                                                       \
        leave;                                                                                   \
    } while (0)
#define TT_FAIL_(...) TT_FAIL_AND_(return, __VA_ARGS__)

/* Ends the current test as skipped (never counted as passed). */
#define TT_SKIP(...)                                                                             \
    do {                                                                                         \
        fprintf(stderr, "    SKIP: ");                                                           \
        fprintf(stderr, __VA_ARGS__);                                                            \
        fprintf(stderr, "\n");                                                                   \
        tt_cur_skipped = 1;                                                                      \
        return;                                                                                  \
    } while (0)

/* The checks, each written once with what ends the test on failure. */
#define TT_COND_(leave, cond, ...)                                                               \
    do {                                                                                         \
        if (!(cond)) TT_FAIL_AND_(leave, __VA_ARGS__);                                           \
    } while (0)

#define TT_EQ_INT_(leave, a, b)                                                                  \
    do {                                                                                         \
        long long tt_a = (long long)(a), tt_b = (long long)(b);                                  \
        if (tt_a != tt_b) TT_FAIL_AND_(leave, "%s == %s: %lld != %lld", #a, #b, tt_a, tt_b);     \
    } while (0)

#define TT_STR_(leave, a, b)                                                                     \
    do {                                                                                         \
        const char *tt_sa = (a), *tt_sb = (b);                                                   \
        if (!tt_sa || !tt_sb || strcmp(tt_sa, tt_sb))                                            \
            TT_FAIL_AND_(leave, "%s == %s: '%s' != '%s'", #a, #b, tt_sa ? tt_sa : "(null)",      \
                         tt_sb ? tt_sb : "(null)");                                              \
    } while (0)

#define TT_OK_(leave, expr)                                                                      \
    do {                                                                                         \
        ts_status tt_st = (expr);                                                                \
        if (tt_st != TS_OK) TT_FAIL_AND_(leave, "%s -> %s", #expr, ts_status_name(tt_st));       \
    } while (0)

#define TT_OKE_(leave, expr, errbuf)                                                             \
    do {                                                                                         \
        ts_status tt_st = (expr);                                                                \
        if (tt_st != TS_OK)                                                                      \
            TT_FAIL_AND_(leave, "%s -> %s: %s", #expr, ts_status_name(tt_st), (errbuf));         \
    } while (0)

/* TT_ASSERT*: a failure returns from the test at once. For tests that own
 * nothing that outlives them. */
#define TT_ASSERT(cond) TT_COND_(return, cond, "assertion failed: %s", #cond)
#define TT_ASSERT_MSG(cond, ...) TT_COND_(return, cond, __VA_ARGS__)
#define TT_ASSERT_EQ_INT(a, b) TT_EQ_INT_(return, a, b)
#define TT_ASSERT_STR(a, b) TT_STR_(return, a, b)
/* Asserts a ts_status is TS_OK; TT_OKE also prints the error buffer. */
#define TT_OK(expr) TT_OK_(return, expr)
#define TT_OKE(expr, errbuf) TT_OKE_(return, expr, errbuf)

/* TT_CHECK*: the same checks, but a failure jumps to the test's `done:`
 * label, where the test releases what it opened (engines, partitions,
 * stores, threads) whether it passed or not. A test that opens an engine
 * uses these, so a failed check does not leave threads running or files
 * open into the next test (test_tt.c shows it):
 *
 *   TT_TEST(t) {
 *       ts_engine *eng = NULL;
 *       TT_CHECK_OK(ts_engine_open(cfg, &eng, err, sizeof err));
 *       TT_CHECK(...);
 *   done:
 *       ts_engine_close(eng);
 *   }
 */
#define TT_CHECK(cond) TT_COND_(goto done, cond, "assertion failed: %s", #cond)
#define TT_CHECK_MSG(cond, ...) TT_COND_(goto done, cond, __VA_ARGS__)
#define TT_CHECK_EQ_INT(a, b) TT_EQ_INT_(goto done, a, b)
#define TT_CHECK_STR(a, b) TT_STR_(goto done, a, b)
#define TT_CHECK_OK(expr) TT_OK_(goto done, expr)
#define TT_CHECK_OKE(expr, errbuf) TT_OKE_(goto done, expr, errbuf)

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
