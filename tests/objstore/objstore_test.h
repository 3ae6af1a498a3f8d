/*
 * objstore_test.h — what the objstore unit tests share: a fresh fs store
 * under $TMPDIR, listing and comparing helpers, the error buffer.
 * Header-only (static inline), like tt.h, so each test program is one file.
 */
#ifndef TS_TESTS_OBJSTORE_TEST_H
#define TS_TESTS_OBJSTORE_TEST_H

#include "tests/tt.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fsutil.h"
#include "objstore/faulty.h"
#include "objstore/objstore.h"

static char g_err[1024];
#define ERR g_err, sizeof(g_err)

/* ---- helpers ------------------------------------------------------------ */

static inline ts_objstore *open_fs(char *dir, size_t dlen, const char *tag)
{
    tt_tmpdir(dir, dlen, tag);
    ts_objstore *os = NULL;
    if (ts_objstore_fs_open(dir, &os, ERR) != TS_OK) {
        fprintf(stderr, "fs open %s: %s\n", dir, g_err);
        exit(2);
    }
    return os;
}

static inline void cleanup(ts_objstore *os, const char *dir)
{
    ts_objstore_destroy(os);
    ts_fs_rmtree(dir, NULL, 0);
}

static inline size_t count_tmp(const char *dir)
{
    char p[4096];
    snprintf(p, sizeof(p), "%s/.tmp", dir);
    DIR *d = opendir(p);
    if (!d) return (size_t)-1;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static inline int path_exists(const char *dir, const char *rel)
{
    char p[4096];
    struct stat sb;
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    return lstat(p, &sb) == 0;
}

typedef struct listing {
    char keys[64][128];
    uint64_t sizes[64];
    int n;
    int stop_after; /* 0 = never */
} listing;

static inline int collect(const char *key, uint64_t size, void *opaque)
{
    listing *l = opaque;
    if (l->n < 64) {
        snprintf(l->keys[l->n], sizeof(l->keys[0]), "%s", key);
        l->sizes[l->n] = size;
    }
    l->n++;
    return l->stop_after && l->n >= l->stop_after;
}

static inline ts_status list_all(ts_objstore *os, const char *prefix, listing *l)
{
    memset(l, 0, sizeof(*l));
    return ts_objstore_list(os, prefix, collect, l, ERR);
}

static inline int count_cb(const char *key, uint64_t size, void *opaque)
{
    (void)key; (void)size;
    (*(int *)opaque)++;
    return 0;
}

static inline int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Gets key whole and compares it to want/wlen. 1 when equal. */
static inline int get_equals(ts_objstore *os, const char *key, const void *want, size_t wlen)
{
    uint8_t *b = NULL;
    size_t n = 0;
    if (ts_objstore_get(os, key, 0, TS_OBJSTORE_TO_END, &b, &n, ERR) != TS_OK) return 0;
    int eq = n == wlen && (wlen == 0 || !memcmp(b, want, wlen));
    free(b);
    return eq;
}

#endif
