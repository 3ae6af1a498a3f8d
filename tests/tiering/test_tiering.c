/*
 * test_tiering.c — unit tests of the engine's local log (tiering/): append
 * validation, reads and rolls, recovery of torn tails, the recovery point,
 * flushes off the appending thread, disk full, deleted and recreated
 * partitions, segment listing. Uploads and cold reads are in
 * test_tiering_remote.c, retention in test_tiering_retention.c.
 * Object store: a file:// bucket in a temp dir.
 */
#include "tiering_test.h"

TT_TEST(append_rejects_bad_batches_atomically)
{
    env e;
    env_init(&e, (const char *[]){"remote.storage.enable", "false", NULL});
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "t", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    size_t l1, l2;
    uint8_t *b1 = mk_batch(3, 10, 1, 1000, &l1), *b2 = mk_batch(2, 10, 2, 1001, &l2);
    uint8_t *two = malloc(l1 + l2);
    memcpy(two, b1, l1);
    memcpy(two + l1, b2, l2);
    two[l1 + l2 - 1] ^= 0x40; /* bad CRC in the second batch */
    TT_CHECK_EQ_INT(ts_partition_append(p, two, l1 + l2, NULL, NULL, e.err, sizeof(e.err)), TS_E_CORRUPT);
    TT_CHECK(strstr(e.err, "CRC") && strstr(e.err, "nothing appended"));
    ts_offsets o;
    ts_partition_offsets(p, &o);
    TT_CHECK_EQ_INT(o.log_end_offset, 0);
    ts_wr32(two + 8, 1 << 30); /* bad length in the first batch */
    TT_CHECK(ts_partition_append(p, two, l1 + l2, NULL, NULL, e.err, sizeof(e.err)) != TS_OK);
    TT_CHECK_EQ_INT(ts_partition_append(p, two, 20, NULL, NULL, e.err, sizeof(e.err)), TS_E_CORRUPT);
    ts_partition_offsets(p, &o);
    TT_CHECK_EQ_INT(o.log_end_offset, 0);
    char path[800];
    snprintf(path, sizeof(path), "%s/t-0/%020d.log", e.data, 0);
    struct stat sb;
    TT_CHECK(stat(path, &sb) == 0 && sb.st_size == 0);
    int64_t first, last;
    TT_CHECK_OKE(ts_partition_append(p, b1, l1, &first, &last, e.err, sizeof(e.err)), e.err);
    TT_CHECK_EQ_INT(first, 0);
    TT_CHECK_EQ_INT(last, 2);
    TT_CHECK_OKE(ts_partition_append(p, b2, l2, &first, &last, e.err, sizeof(e.err)), e.err);
    TT_CHECK_EQ_INT(first, 3);
    TT_CHECK_EQ_INT(last, 4);
    TT_CHECK_EQ_INT(ts_partition_open(e.eng, "bad/topic", 0, 1, &p, e.err, sizeof(e.err)), TS_E_INVAL);
    free(b1);
    free(b2);
    free(two);
done:
    env_done(&e);
}

/* Issue 7 #2: the frame of a batch was checked, its records were not. A
 * batch claiming 2^31-1 records with none moved the log end by 2^31; one
 * whose record runs past the batch stalled every consumer. Both are refused
 * and nothing moves. */
TT_TEST(append_refuses_batches_whose_records_do_not_parse)
{
    env e;
    env_init(&e, (const char *[]){"remote.storage.enable", "false", NULL});
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "t", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    uint8_t b[TS_BATCH_HEADER_SIZE + 4];
    memset(b, 0, sizeof(b));
    size_t n = TS_BATCH_HEADER_SIZE;
    ts_wr32(b + 8, (uint32_t)(n - TS_BATCH_LOG_OVERHEAD));
    b[16] = 2;
    ts_wr32(b + 23, INT32_MAX - 1);
    ts_wr64(b + 43, (uint64_t)-1);
    ts_wr32(b + 53, (uint32_t)-1);
    ts_wr32(b + 57, INT32_MAX);
    ts_wr32(b + 17, ts_crc32c(0, b + 21, n - 21));
    TT_CHECK_EQ_INT(ts_partition_append(p, b, n, NULL, NULL, e.err, sizeof(e.err)),
                     TS_E_INVALID_RECORD);
    TT_CHECK_MSG(strstr(e.err, "nothing appended") && strstr(e.err, "2147483647"), "%s", e.err);
    /* One record whose length (10000) runs past the 3 bytes present. */
    n = TS_BATCH_HEADER_SIZE + 4;
    ts_wr32(b + 8, (uint32_t)(n - TS_BATCH_LOG_OVERHEAD));
    ts_wr32(b + 23, 0);
    ts_wr32(b + 57, 1);
    b[61] = 0xa0, b[62] = 0x9c, b[63] = 0x01; /* varint 10000 */
    ts_wr32(b + 17, ts_crc32c(0, b + 21, n - 21));
    TT_CHECK_EQ_INT(ts_partition_append(p, b, n, NULL, NULL, e.err, sizeof(e.err)),
                     TS_E_INVALID_RECORD);
    TT_CHECK_MSG(strstr(e.err, "record 0:"), "%s", e.err);
    ts_offsets o;
    ts_partition_offsets(p, &o);
    TT_CHECK_EQ_INT(o.log_end_offset, 0);
    size_t l1;
    uint8_t *b1 = mk_batch(3, 10, 1, 1000, &l1);
    int64_t first, last;
    TT_CHECK_OKE(ts_partition_append(p, b1, l1, &first, &last, e.err, sizeof(e.err)), e.err);
    TT_CHECK_EQ_INT(last, 2);
    free(b1);
done:
    env_done(&e);
}

TT_TEST(reads_roll_and_ranges)
{
    env e;
    env_init(&e, (const char *[]){"remote.storage.enable", "false", "log.segment.bytes", "4096",
                                   "log.index.interval.bytes", "512", NULL});
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "t", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(append_n(p, 200, 4, 50, 5000, e.err, sizeof(e.err)), e.err); /* 800 records */
    char dir[700];
    snprintf(dir, sizeof(dir), "%s/t-0", e.data);
    TT_CHECK(count_files(dir, ".log") > 5);
    /* Each read starts with the batch holding the offset, whole batches. */
    for (int64_t off = 0; off < 800; off += 37) {
        uint8_t *d;
        size_t len;
        TT_CHECK_OKE(ts_partition_read(p, off, 1, &d, &len, e.err, sizeof(e.err)), e.err);
        ts_batch_hdr h;
        TT_CHECK_OK(ts_batch_validate(d, len, 1 << 20, &h, e.err, sizeof(e.err)));
        TT_CHECK(h.base_offset <= off && ts_batch_last_offset(&h) >= off);
        TT_CHECK_EQ_INT(len, ts_batch_total_size(&h)); /* max_bytes 1 still yields one batch */
        free(d);
    }
    TT_CHECK_EQ_INT(read_all(p, 0, e.err, sizeof(e.err)), 800);
    TT_CHECK_EQ_INT(read_all(p, 401, e.err, sizeof(e.err)), 399);
    uint8_t *d;
    size_t len;
    TT_CHECK_OK(ts_partition_read(p, 800, 1000, &d, &len, e.err, sizeof(e.err)));
    TT_CHECK(d == NULL && len == 0);
    TT_CHECK_EQ_INT(ts_partition_read(p, 801, 1000, &d, &len, e.err, sizeof(e.err)), TS_E_OFFSET_OUT_OF_RANGE);
    TT_CHECK(strstr(e.err, "801") != NULL);
    int64_t o;
    TT_CHECK_OK(ts_partition_offset_for_time(p, 5000 + 120, &o, e.err, sizeof(e.err)));
    /* Batch i holds records with timestamps 5000+i .. 5003+i at offsets
     * 4i .. 4i+3: the first record with ts >= 5120 is the last one of
     * batch 117 (offset 471), as Kafka's ListOffsets answers. */
    TT_CHECK_EQ_INT(o, 471);
    TT_CHECK_OK(ts_partition_offset_for_time(p, 0, &o, e.err, sizeof(e.err)));
    TT_CHECK_EQ_INT(o, 0);
    TT_CHECK_EQ_INT(ts_partition_offset_for_time(p, 99999, &o, e.err, sizeof(e.err)), TS_E_NOT_FOUND);
done:
    env_done(&e);
}

static void append_raw(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_APPEND);
    if (write(fd, data, len) != (ssize_t)len) abort();
    close(fd);
}

TT_TEST(recovery_truncates_torn_tail_and_rebuilds_indexes)
{
    env e;
    env_init(&e, (const char *[]){"remote.storage.enable", "false", "log.segment.bytes", "8192",
                                   "log.index.interval.bytes", "256", NULL});
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "t", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(append_n(p, 100, 3, 40, 100, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OK(ts_partition_flush(p, e.err, sizeof(e.err)));
    ts_offsets o1;
    ts_partition_offsets(p, &o1);
    env_close(&e);
    e.eng = NULL;
    /* A torn write: half a batch at the end of the active segment. */
    char dir[700], path[800];
    snprintf(dir, sizeof(dir), "%s/t-0", e.data);
    DIR *d = opendir(dir);
    struct dirent *de;
    char last[64] = "", first[64] = "~";
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".log")) {
            if (strcmp(de->d_name, last) > 0) snprintf(last, sizeof(last), "%s", de->d_name);
            if (strcmp(de->d_name, first) < 0) snprintf(first, sizeof(first), "%s", de->d_name);
        }
    closedir(d);
    size_t bl;
    uint8_t *b = mk_batch(3, 40, 7, 1, &bl);
    snprintf(path, sizeof(path), "%s/%s", dir, last);
    struct stat sb;
    stat(path, &sb);
    off_t before = sb.st_size;
    append_raw(path, b, bl / 2);
    free(b);
    /* Damaged and missing indexes of a closed segment. */
    snprintf(path, sizeof(path), "%s/%.20s.index", dir, first);
    unlink(path);
    snprintf(path, sizeof(path), "%s/%.20s.timeindex", dir, first);
    append_raw(path, "xyz", 3);

    TT_CHECK_OKE(env_open(&e), e.err);
    TT_CHECK_OKE(ts_partition_open(e.eng, "t", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    ts_offsets o2;
    ts_partition_offsets(p, &o2);
    TT_CHECK_EQ_INT(o2.log_end_offset, o1.log_end_offset);
    snprintf(path, sizeof(path), "%s/%s", dir, last);
    stat(path, &sb);
    TT_CHECK_EQ_INT(sb.st_size, before); /* the torn tail was cut off */
    snprintf(path, sizeof(path), "%s/%.20s.index", dir, first);
    TT_CHECK(access(path, F_OK) == 0); /* rebuilt */
    TT_CHECK_EQ_INT(read_all(p, 0, e.err, sizeof(e.err)), 300);
    int64_t ts_off;
    TT_CHECK_OK(ts_partition_offset_for_time(p, 150, &ts_off, e.err, sizeof(e.err)));
    TT_CHECK_EQ_INT(ts_off, 146); /* batch 48: ts 148..150 at offsets 144..146 */
    TT_CHECK_OKE(append_n(p, 1, 3, 40, 9999, e.err, sizeof(e.err)), e.err);
    ts_partition_offsets(p, &o2);
    TT_CHECK_EQ_INT(o2.log_end_offset, o1.log_end_offset + 3);
done:
    env_done(&e);
}

/* In a child with its own mount namespace: the data dir on a 1 MiB tmpfs.
 * Exit 0 pass, 1 fail (message on stderr), 77 cannot set up. */
static int disk_full_child(const char *mnt)
{
    if (unshare(CLONE_NEWNS) != 0 || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", mnt, "tmpfs", 0, "size=1m") != 0)
        return 77;
    char data[600], filler[700], err[1024];
    snprintf(data, sizeof(data), "%s/data", mnt);
    snprintf(filler, sizeof(filler), "%s/filler", mnt);
    static uint8_t junk[256 * 1024];
    if (ts_fs_write_atomic(filler, junk, sizeof(junk), err, sizeof(err))) return 1;
    ts_config *c = ts_config_create();
    ts_config_set(c, "log.dirs", data, NULL, 0);
    ts_config_set(c, "remote.storage.enable", "false", NULL, 0);
    ts_config_set(c, "log.segment.bytes", "200000", NULL, 0);
    ts_engine *eng;
    ts_partition *p;
    if (ts_engine_open(c, &eng, err, sizeof(err)) ||
        ts_partition_open(eng, "full", 0, 1, &p, err, sizeof(err))) {
        fprintf(stderr, "    %s\n", err);
        return 1;
    }
    ts_status st = TS_OK;
    long ok = 0;
    for (int i = 0; i < 10000 && st == TS_OK; i++) {
        size_t len;
        uint8_t *b = mk_batch(5, 200, i, i, &len);
        st = ts_partition_append(p, b, len, NULL, NULL, err, sizeof(err));
        free(b);
        if (st == TS_OK) ok += 5;
    }
    if (st != TS_E_NOSPACE || !strstr(err, "No space")) {
        fprintf(stderr, "    expected TS_E_NOSPACE, got %s: %s\n", ts_status_name(st), err);
        return 1;
    }
    /* Nothing half-written: every acknowledged record reads back, and after
     * a restart too; once space is freed, appends resume where they were. */
    if (read_all(p, 0, err, sizeof(err)) != ok) return 1;
    ts_engine_close(eng);
    unlink(filler);
    if (ts_engine_open(c, &eng, err, sizeof(err)) ||
        ts_partition_open(eng, "full", 0, 0, &p, err, sizeof(err))) {
        fprintf(stderr, "    reopen: %s\n", err);
        return 1;
    }
    if (read_all(p, 0, err, sizeof(err)) != ok) return 1;
    int64_t first;
    size_t len;
    uint8_t *b = mk_batch(5, 200, 1, 1, &len);
    st = ts_partition_append(p, b, len, &first, NULL, err, sizeof(err));
    free(b);
    if (st || first != ok) {
        fprintf(stderr, "    append after freeing space: %s (first %lld, want %ld)\n", err,
                (long long)first, ok);
        return 1;
    }
    ts_engine_close(eng);
    ts_config_destroy(c);
    return 0;
}

TT_TEST(disk_full_is_a_clear_error_and_loses_nothing)
{
    char mnt[512];
    snprintf(mnt, sizeof(mnt), "%s/full-mnt", g_root);
    ts_fs_mkdirs(mnt, NULL, 0);
    fflush(NULL);
    pid_t pid = fork();
    TT_ASSERT(pid >= 0);
    if (pid == 0) _exit(disk_full_child(mnt));
    int ws = 0;
    TT_ASSERT(waitpid(pid, &ws, 0) == pid);
    TT_ASSERT(WIFEXITED(ws));
    if (WEXITSTATUS(ws) == 77) TT_SKIP("cannot mount a small tmpfs here (needs CAP_SYS_ADMIN)");
    TT_ASSERT_EQ_INT(WEXITSTATUS(ws), 0);
}

/* Regression (review #4): a handle used after ts_partition_delete fails
 * cleanly (the sanitizer build catches any use of freed segments). */
/* Descriptors of this process open on a file under dir. */
static int fds_under(const char *dir)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    struct dirent *de;
    while ((de = readdir(d))) {
        char link[300], target[1024];
        snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
        ssize_t k = readlink(link, target, sizeof(target) - 1);
        if (k <= 0) continue;
        target[k] = 0;
        if (!strncmp(target, dir, strlen(dir))) n++;
    }
    closedir(d);
    return n;
}

TT_TEST(deleted_partition_handle_fails_cleanly)
{
    env e;
    env_init(&e, NULL);
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "del", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(append_n(p, 5, 2, 20, 1, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
    char pdir[800];
    snprintf(pdir, sizeof(pdir), "%s/del-0/", e.data);
    TT_CHECK(fds_under(pdir) > 0);
    TT_CHECK_OKE(ts_partition_delete(e.eng, "del", 0, e.err, sizeof(e.err)), e.err);
    /* Regression (issue 7 #7): the segments' descriptors are closed by the
     * delete, not at engine close (a broker undoing a create that ran out
     * of descriptors needs them back). */
    TT_CHECK_EQ_INT(fds_under(pdir), 0);
    ts_offsets o;
    TT_CHECK_EQ_INT(ts_partition_offsets(p, &o), TS_E_CLOSED);
    TT_CHECK_EQ_INT(ts_partition_flush(p, e.err, sizeof(e.err)), TS_E_CLOSED);
    TT_CHECK_EQ_INT(ts_partition_enforce_retention(p, e.err, sizeof(e.err)), TS_E_CLOSED);
    TT_CHECK_EQ_INT(ts_partition_roll(p, e.err, sizeof(e.err)), TS_E_CLOSED);
    uint8_t *d;
    size_t len;
    TT_CHECK_EQ_INT(ts_partition_read(p, 0, 100, &d, &len, e.err, sizeof(e.err)), TS_E_CLOSED);
    ts_sleep_ms(100); /* background ticks run over the deleted partition */
    char dir[800];
    snprintf(dir, sizeof(dir), "%s/del", e.bucket);
    TT_CHECK(ts_fs_du(dir) == 0); /* its objects and manifests are gone */
    ts_partition *p2;
    TT_CHECK_EQ_INT(ts_partition_open(e.eng, "del", 0, 0, &p2, e.err, sizeof(e.err)), TS_E_NOT_FOUND);
done:
    env_done(&e);
}

/* Regression (review #5): a segment's max timestamp survives a restart even
 * when it grew between time-index entries (out-of-order CreateTime). */
TT_TEST(max_timestamp_survives_restart)
{
    env e;
    env_init(&e, (const char *[]){"remote.storage.enable", "false", "log.index.interval.bytes",
                                   "100", "log.segment.bytes", "1024", NULL});
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "mt", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    const int64_t ts[] = {100, 500, 50, 60};
    for (int i = 0; i < 4; i++) {
        size_t len;
        uint8_t *b = mk_batch(1, 40, i, ts[i], &len);
        TT_CHECK_OKE(ts_partition_append(p, b, len, NULL, NULL, e.err, sizeof(e.err)), e.err);
        free(b);
    }
    TT_CHECK_OKE(roll(p, e.err, sizeof(e.err)), e.err);
    int64_t off;
    TT_CHECK_OK(ts_partition_offset_for_time(p, 300, &off, e.err, sizeof(e.err)));
    TT_CHECK_EQ_INT(off, 1);
    env_close(&e);
    e.eng = NULL;
    TT_CHECK_OKE(env_open(&e), e.err);
    TT_CHECK_OKE(ts_partition_open(e.eng, "mt", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(ts_partition_offset_for_time(p, 300, &off, e.err, sizeof(e.err)), e.err);
    TT_CHECK_EQ_INT(off, 1);
    ts_segment_info *rows;
    size_t n;
    TT_CHECK_OK(ts_partition_placement(p, &rows, &n, e.err, sizeof(e.err)));
    TT_CHECK(n >= 1 && rows[0].max_timestamp == 500);
    free(rows);
done:
    env_done(&e);
}

/* Rolls do not fsync on the appending thread: closed segments are synced
 * in the background and the recovery point (the first segment not known
 * synced) follows; segments past it are fully validated on open. */
TT_TEST(recovery_point_follows_background_sync)
{
    env e;
    env_init(&e, (const char *[]){"remote.storage.enable", "false", "log.segment.bytes", "4096",
                                   NULL});
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "rp", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(append_n(p, 60, 4, 50, 1, e.err, sizeof(e.err)), e.err);
    ts_offsets o;
    TT_CHECK_OK(ts_partition_offsets(p, &o));
    char path[800];
    snprintf(path, sizeof(path), "%s/rp-0/recovery-point", e.data);
    long long rp = -1;
    for (int i = 0; i < 500; i++) { /* the background sync catches up */
        FILE *f = fopen(path, "r");
        if (f) {
            if (fscanf(f, "%lld", &rp) != 1) rp = -1;
            fclose(f);
        }
        ts_segment_info *rows;
        size_t n;
        TT_CHECK_OK(ts_partition_placement(p, &rows, &n, e.err, sizeof(e.err)));
        int64_t active_base = n ? rows[n - 1].base_offset : 0;
        free(rows);
        if (rp == active_base) break;
        ts_sleep_ms(10);
    }
    TT_CHECK(rp > 0);
    env_close(&e);
    e.eng = NULL;
    /* Pretend nothing was known synced and damage a closed segment in the
     * middle: the full scan on open must find it and cut there. */
    FILE *f = fopen(path, "w");
    fputs("0\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/rp-0/%020d.log", e.data, 0);
    int fd = open(path, O_RDWR);
    uint8_t x;
    TT_CHECK(pread(fd, &x, 1, 700) == 1);
    x ^= 0x20;
    TT_CHECK(pwrite(fd, &x, 1, 700) == 1);
    close(fd);
    TT_CHECK_OKE(env_open(&e), e.err);
    TT_CHECK_OKE(ts_partition_open(e.eng, "rp", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    long recs = 0;
    int64_t off = 0;
    for (;;) { /* every batch served is valid; the damaged tail of segment 0 is gone */
        uint8_t *d;
        size_t len;
        TT_CHECK_OKE(ts_partition_read(p, off, 100000, &d, &len, e.err, sizeof(e.err)), e.err);
        if (!len) break;
        size_t pos = 0;
        while (pos < len) {
            ts_batch_hdr h;
            TT_CHECK_OKE(ts_batch_validate(d + pos, len - pos, 1 << 20, &h, e.err, sizeof(e.err)), e.err);
            recs += h.records_count;
            off = ts_batch_last_offset(&h) + 1;
            pos += ts_batch_total_size(&h);
        }
        free(d);
    }
    TT_CHECK(recs < 240 && recs > 150); /* segment 0 lost its damaged tail only */
done:
    env_done(&e);
}

TT_TEST(bad_config_is_named)
{
    env e;
    env_init(&e, NULL);
    TT_CHECK_OK(ts_config_set(e.cfg, "remote.storage.url", "", e.err, sizeof(e.err)));
    TT_CHECK_EQ_INT(env_open(&e), TS_E_CONFIG);
    TT_CHECK(strstr(e.err, "remote.storage.url") != NULL);
    ts_engine *eng2;
    TT_CHECK_OK(ts_config_set(e.cfg, "remote.storage.enable", "false", e.err, sizeof(e.err)));
    TT_CHECK_OKE(env_open(&e), e.err);
    TT_CHECK_EQ_INT(ts_engine_open(e.cfg, &eng2, e.err, sizeof(e.err)), TS_E_IO);
    TT_CHECK(strstr(e.err, "in use") != NULL); /* one engine per data directory */
done:
    env_done(&e);
}

/* ---- issue 7: the appending thread never waits on the disk ------------- */

static long long read_recovery_point_file(const char *data, const char *part)
{
    char path[900];
    snprintf(path, sizeof(path), "%s/%s/recovery-point", data, part);
    long long rp = -1;
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%lld", &rp) != 1) rp = -1;
        fclose(f);
    }
    return rp;
}

static int64_t active_base(ts_partition *p)
{
    ts_segment_info *rows;
    size_t n;
    if (ts_partition_placement(p, &rows, &n, NULL, 0)) return -1;
    int64_t b = n ? rows[n - 1].base_offset : 0;
    free(rows);
    return b;
}

/* Regression (issue 7 #6): with flush.messages=1 (which any client may set
 * through CreateTopics) the appending thread — the broker's network loop —
 * performs no fsync and no unlink: the sync worker makes the records
 * durable (observed: unflushed records drop to 0, the recovery point
 * reaches the active segment) and local retention's deletions run on a
 * worker. An explicit flush (acks=-1) stays synchronous and durable. */
TT_TEST(flush_messages_and_deletes_stay_off_the_appending_thread)
{
    env e;
    env_init(&e, (const char *[]){"log.flush.interval.messages", "1", "log.flush.interval.ms",
                                   "3600000", "log.segment.bytes", "20000",
                                   "log.local.retention.bytes", "20000", NULL});
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "fm", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    uint64_t s0, u0, s1, u1;
    ts_fs_thread_io_counts(&s0, &u0);
    for (int i = 0; i < 120; i++) {
        size_t len;
        uint8_t *b = mk_batch(10, 150, i, i, &len);
        ts_status st;
        int tries = 0;
        while ((st = ts_partition_append(p, b, len, NULL, NULL, e.err, sizeof(e.err))) ==
                   TS_E_BACKPRESSURE && tries++ < 5000)
            ts_sleep_ms(2);
        free(b);
        TT_CHECK_OKE(st, e.err);
    }
    ts_fs_thread_io_counts(&s1, &u1);
    TT_CHECK_MSG(s1 == s0 && u1 == u0, "the appending thread ran %llu fsync(s) and %llu unlink(s)",
                  (unsigned long long)(s1 - s0), (unsigned long long)(u1 - u0));
    /* ...and yet the data becomes durable, through the worker. */
    ts_engine_stats es;
    for (int t = 0; t < 1000; t++) {
        ts_engine_stats_get(e.eng, &es);
        if (es.unflushed_records == 0) break;
        ts_sleep_ms(10);
    }
    TT_CHECK_EQ_INT(es.unflushed_records, 0);
    long long rp = -1;
    for (int t = 0; t < 1000; t++) {
        rp = read_recovery_point_file(e.data, "fm-0");
        if (rp == active_base(p)) break;
        ts_sleep_ms(10);
    }
    TT_CHECK_EQ_INT(rp, active_base(p));
    TT_CHECK(rp > 0);
    /* Segments that left local disk are gone from it (the worker unlinked). */
    TT_CHECK_OKE(ts_partition_wait_uploaded(p, 30000, e.err, sizeof(e.err)), e.err);
    char dir[800];
    snprintf(dir, sizeof(dir), "%s/fm-0", e.data);
    size_t logs = 99;
    for (int t = 0; t < 1000; t++) {
        TT_CHECK_OK(ts_partition_enforce_retention(p, e.err, sizeof(e.err)));
        if ((logs = count_files(dir, ".log")) <= 3) break;
        ts_sleep_ms(10);
    }
    TT_CHECK_MSG(logs <= 3, "%zu segment files left locally", logs);
    TT_CHECK_EQ_INT(read_all(p, 0, e.err, sizeof(e.err)), 1200);
    /* An explicit flush is synchronous: it fsyncs on the caller's thread. */
    TT_CHECK_OKE(append_n(p, 1, 1, 10, 1, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(ts_partition_flush(p, e.err, sizeof(e.err)), e.err);
    ts_engine_stats_get(e.eng, &es);
    TT_CHECK_EQ_INT(es.unflushed_records, 0);
done:
    env_done(&e);
}

/* The same without remote storage: the sync worker exists for every engine. */
TT_TEST(flush_messages_off_the_appending_thread_without_remote_storage)
{
    env e;
    env_init(&e, (const char *[]){"remote.storage.enable", "false", "log.flush.interval.messages",
                                   "1", "log.flush.interval.ms", "3600000", "log.segment.bytes",
                                   "20000", NULL});
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "fl", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    uint64_t s0, s1;
    ts_fs_thread_io_counts(&s0, NULL);
    TT_CHECK_OKE(append_n(p, 60, 10, 150, 1, e.err, sizeof(e.err)), e.err);
    ts_fs_thread_io_counts(&s1, NULL);
    TT_CHECK_MSG(s1 == s0, "the appending thread ran %llu fsync(s)",
                  (unsigned long long)(s1 - s0));
    ts_engine_stats es;
    for (int t = 0; t < 1000; t++) {
        ts_engine_stats_get(e.eng, &es);
        if (es.unflushed_records == 0) break;
        ts_sleep_ms(10);
    }
    TT_CHECK_EQ_INT(es.unflushed_records, 0);
    long long rp = -1;
    for (int t = 0; t < 1000; t++) {
        if ((rp = read_recovery_point_file(e.data, "fl-0")) == active_base(p)) break;
        ts_sleep_ms(10);
    }
    TT_CHECK(rp > 0 && rp == active_base(p));
done:
    env_done(&e);
}

/* Found while moving unlinks to the worker: a deleted partition's segments
 * were unlinked by name at their last unref (engine close), which removed
 * the files of the partition created again under the same name. */
TT_TEST(recreated_partition_survives_the_old_ones_close)
{
    env e;
    env_init(&e, (const char *[]){"log.segment.bytes", "20000", NULL});
    TT_CHECK_OKE(env_open(&e), e.err);
    ts_partition *p;
    TT_CHECK_OKE(ts_partition_open(e.eng, "again", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(append_n(p, 30, 10, 150, 1, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(ts_partition_delete(e.eng, "again", 0, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(ts_partition_open(e.eng, "again", 0, 1, &p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_OKE(append_n(p, 30, 10, 150, 1, e.err, sizeof(e.err)), e.err);
    env_close(&e);
    e.eng = NULL;
    TT_CHECK_OKE(env_open(&e), e.err);
    TT_CHECK_OKE(ts_partition_open(e.eng, "again", 0, 0, &p, e.err, sizeof(e.err)), e.err);
    TT_CHECK_EQ_INT(read_all(p, 0, e.err, sizeof(e.err)), 300);
done:
    env_done(&e);
}

/* ts_segment_list: only names of the 20-digit ".log" form, ascending; an
 * unlistable directory is TS_E_IO, an empty one no bases. */
TT_TEST(segment_list_sorts_and_filters)
{
    char dir[512], path[600];
    snprintf(dir, sizeof(dir), "%s/seglist-%d", g_root, ++g_case);
    TT_ASSERT(mkdir(dir, 0755) == 0);
    int64_t *bases = NULL;
    size_t n = 99;
    char err[256];
    TT_OKE(ts_segment_list(dir, &bases, &n, err, sizeof(err)), err);
    TT_ASSERT(n == 0 && bases == NULL);
    const char *names[] = {"00000000000000000300.log", "00000000000000000007.log",
                           "00000000000000000300.index", "0000000000000000001.log", "x.log",
                           "00000000000000000042.log"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        FILE *f = fopen(path, "w");
        TT_ASSERT(f != NULL);
        fclose(f);
    }
    TT_OKE(ts_segment_list(dir, &bases, &n, err, sizeof(err)), err);
    TT_ASSERT_EQ_INT(n, 3);
    TT_ASSERT(bases[0] == 7 && bases[1] == 42 && bases[2] == 300);
    free(bases);
    snprintf(path, sizeof(path), "%s/absent", dir);
    TT_ASSERT(ts_segment_list(path, &bases, &n, err, sizeof(err)) == TS_E_IO);
    TT_ASSERT(strstr(err, "cannot list") != NULL);
}
int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    tt_tmpdir(g_root, sizeof(g_root), "tiering");
    TT_RUN(segment_list_sorts_and_filters);
    TT_RUN(append_rejects_bad_batches_atomically);
    TT_RUN(append_refuses_batches_whose_records_do_not_parse);
    TT_RUN(reads_roll_and_ranges);
    TT_RUN(recovery_truncates_torn_tail_and_rebuilds_indexes);
    TT_RUN(disk_full_is_a_clear_error_and_loses_nothing);
    TT_RUN(deleted_partition_handle_fails_cleanly);
    TT_RUN(max_timestamp_survives_restart);
    TT_RUN(recovery_point_follows_background_sync);
    TT_RUN(bad_config_is_named);
    TT_RUN(flush_messages_and_deletes_stay_off_the_appending_thread);
    TT_RUN(flush_messages_off_the_appending_thread_without_remote_storage);
    TT_RUN(recreated_partition_survives_the_old_ones_close);
    if (!getenv("TS_KEEP_TMP")) ts_fs_rmtree(g_root, NULL, 0);
    return tt_summary();
}
