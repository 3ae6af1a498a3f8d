/*
 * test_s3_multipart.c — the S3 suite's multipart uploads: parallel parts with bounded
 * part buffers, exact part multiples, and (group big, run only when asked:
 * ctest -L s3-big) a 1 GiB upload whose memory stays bounded.
 *
 *   test_s3_multipart [--group multipart|big] [test...]
 */
#include "s3_suite.h"

/* ------------------------------------------------------------------ multipart */

TT_TEST(multipart_parallel_bounded)
{
    fixture fx;
    ts_objstore *os = fixture_open(&fx, open_store, "s3.multipart.part.bytes=5242880",
                                   "s3.multipart.parallelism=3", NULL);
    TT_CHECK(os);
    uint64_t total = 23 * MiB + 12345;
    ts_objstore_writer *w;
    TT_CHECK_OKE(ts_objstore_writer_open(os, "mp/23m", &w, err, sizeof(err)), err);
    TT_OKE(write_gen(w, 3, total, 1000003), err);
    TT_CHECK_OKE(ts_objstore_writer_commit(w, err, sizeof(err)), err);
    ts_s3_stats s = stats(os);
    TT_CHECK_MSG(s.part_buf_peak <= 3ull * 5 * MiB, "part buffers peaked at %llu",
                 (unsigned long long)s.part_buf_peak);
    TT_CHECK_EQ_INT(s.part_buf_bytes, 0);
    uint64_t size;
    TT_CHECK_OKE(ts_objstore_head(os, "mp/23m", &size, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(size, total);
    uint64_t offs[] = {0, 5 * MiB - 100, 10 * MiB - 1, 20 * MiB + 7, total - 50};
    TT_CHECK_MSG(verify_ranges(os, "mp/23m", 3, total, offs, 5, 4096), "range mismatch %s", err);
    uint8_t *out;
    size_t n;
    TT_CHECK_OKE(ts_objstore_get(os, "mp/23m", 0, TS_OBJSTORE_TO_END, &out, &n, err, sizeof(err)),
                 err);
    TT_CHECK(n == total && check_gen(3, 0, out, n));
    free(out);
done:
    fixture_close(&fx);
}
TT_TEST(multipart_exact_multiple_and_exact_part)
{
    fixture fx;
    ts_objstore *os = fixture_open(&fx, open_store, "s3.multipart.part.bytes=5242880",
                                   "s3.multipart.parallelism=2", NULL);
    TT_CHECK(os);
    ts_objstore_writer *w;
    /* Exactly one part: a single PUT. */
    uint64_t before = stats(os).requests;
    TT_CHECK_OKE(ts_objstore_writer_open(os, "mp/5m", &w, err, sizeof(err)), err);
    TT_OKE(write_gen(w, 4, 5 * MiB, 65536), err);
    TT_CHECK_OKE(ts_objstore_writer_commit(w, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(stats(os).requests - before, 1);
    /* Exactly two parts: create, 2 parts, complete, HEAD check; no empty part. */
    before = stats(os).requests;
    TT_CHECK_OKE(ts_objstore_writer_open(os, "mp/10m", &w, err, sizeof(err)), err);
    TT_OKE(write_gen(w, 5, 10 * MiB, 5 * MiB), err);
    TT_CHECK_OKE(ts_objstore_writer_commit(w, err, sizeof(err)), err);
    TT_CHECK_EQ_INT(stats(os).requests - before, 5);
    uint64_t offs[] = {0, 5 * MiB - 1, 10 * MiB - 4096};
    TT_CHECK(verify_ranges(os, "mp/10m", 5, 10 * MiB, offs, 3, 4096));
    /* Abort after parts went up: nothing visible. */
    TT_CHECK_OKE(ts_objstore_writer_open(os, "mp/aborted", &w, err, sizeof(err)), err);
    TT_OKE(write_gen(w, 6, 12 * MiB, MiB), err);
    ts_objstore_writer_abort(w);
    TT_CHECK_EQ_INT(ts_objstore_head(os, "mp/aborted", &hsize, err, sizeof(err)), TS_E_NOT_FOUND);
done:
    fixture_close(&fx);
}
/* ------------------------------------------------------------------ big */

static long vm_hwm_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}

static long vm_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}

TT_TEST(multipart_1gib_bounded_memory)
{
    fixture fx;
    ts_objstore *os = fixture_open(&fx, open_store, "s3.multipart.part.bytes=8388608",
                                   "s3.multipart.parallelism=4", NULL);
    TT_CHECK(os);
    const uint64_t total = 1024ull * MiB;
    const uint64_t bound = 8ull * MiB * 4;
    /* Reset the peak-RSS counter, so VmHWM measures this upload only. */
    FILE *cr = fopen("/proc/self/clear_refs", "w");
    if (cr) {
        fputs("5", cr);
        fclose(cr);
    }
    long rss0 = vm_rss_kb();
    int64_t t0 = ts_mono_ms();
    ts_objstore_writer *w;
    TT_CHECK_OKE(ts_objstore_writer_open(os, "big/1g", &w, err, sizeof(err)), err);
    TT_OKE(write_gen(w, 21, total, MiB), err);
    TT_CHECK_OKE(ts_objstore_writer_commit(w, err, sizeof(err)), err);
    int64_t ms = ts_mono_ms() - t0;
    long hwm = vm_hwm_kb();
    ts_s3_stats s = stats(os);
    fprintf(stderr,
            "    1 GiB in %lld ms (%.1f MiB/s); part buffers peak %llu MiB (bound %llu MiB); "
            "RSS %ld -> peak %ld MiB\n",
            (long long)ms, 1024.0 * 1000 / (double)(ms ? ms : 1),
            (unsigned long long)(s.part_buf_peak / MiB), (unsigned long long)(bound / MiB),
            rss0 / 1024, hwm / 1024);
    TT_CHECK(s.part_buf_peak <= bound);
    TT_CHECK(s.part_buf_peak >= 2 * 8ull * MiB); /* it did run parts in parallel */
    /* Peak RSS grew by at most the part budget plus 48 MiB for libcurl,
     * OpenSSL, threads and the 1 MiB write chunk. */
    TT_CHECK_MSG(hwm - rss0 <= (long)(bound / 1024) + 48 * 1024, "peak RSS grew by %ld MiB",
                 (hwm - rss0) / 1024);
    uint64_t size;
    TT_CHECK_OKE(ts_objstore_head(os, "big/1g", &size, err, sizeof(err)), err);
    TT_CHECK(size == total);
    uint64_t offs[8];
    for (int i = 0; i < 8; i++)
        offs[i] = (uint64_t)i * (total / 8) + (uint64_t)i * 4097 + 8 * MiB - 2000;
    TT_CHECK(verify_ranges(os, "big/1g", 21, total, offs, 8, 1 << 20));
    TT_CHECK_OKE(ts_objstore_delete(os, "big/1g", err, sizeof(err)), err);
done:
    fixture_close(&fx);
}

/* ------------------------------------------------------------------ main */

int main(int argc, char **argv)
{
    int rc = s3_suite_start(argc, argv);
    if (rc) return rc;
    if (GROUP("multipart")) {
        TT_RUN(multipart_parallel_bounded);
        TT_RUN(multipart_exact_multiple_and_exact_part);
    }
    if (g_group && !strcmp(g_group, "big")) TT_RUN(multipart_1gib_bounded_memory);
    wipe_prefix();
    return tt_summary();
}
