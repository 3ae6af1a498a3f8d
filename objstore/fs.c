/*
 * fs.c — the embedded default object store: one local directory, one file
 * per object, key "a/b/c" at <root>/a/b/c.
 *
 * It has to behave like S3 where the layers above can tell: an object is
 * either absent or complete (never half-written, even across a crash),
 * a conditional put has exactly one winner, and listing is in byte order.
 * So every write goes to a uniquely named temp file under <root>/.tmp/
 * (same file system, never listed, never a valid key), is fsynced, and is
 * published with one rename(2) — or link(2) for TS_PUT_IF_NONE_MATCH, which
 * fails with EEXIST atomically where a stat-then-rename would race — and the
 * directory holding it is fsynced, as is every directory created on the
 * way. Directories exist only to hold keys: a delete removes the parents it
 * leaves empty, and a put that races with that pruning (ENOENT on publish)
 * recreates the path and tries again.
 *
 * Deletes are not fsynced: a crash may bring a deleted object back, which
 * the layers above already tolerate (retention and GC delete again), and
 * making every delete pay a directory fsync would slow retention down for
 * nothing.
 *
 * The store keeps no mutable state after open, so it is thread-safe
 * without a lock; the file system serializes what needs serializing.
 * Symlinks and special files under the root are not objects and are
 * neither followed nor listed.
 */
#include "objstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fsutil.h"

#define FS_KEY_MAX 1024
#define FS_TMP_DIR ".tmp"
/* A publish that keeps losing its parent directory to concurrent deletes
 * gives up after this many tries rather than spin forever. */
#define FS_PUBLISH_TRIES 16
/* Temp files older than this at open time belong to a crashed writer. */
#define FS_STALE_TMP_SECONDS 3600

typedef struct fs_store {
    ts_objstore base;
    char root[PATH_MAX];   /* absolute, no trailing '/' */
    char tmpdir[PATH_MAX]; /* <root>/.tmp */
} fs_store;

typedef struct fs_writer {
    ts_objstore_writer base;
    fs_store *s;
    int fd;
    ts_status failed; /* TS_OK, or why an earlier write failed */
    char key[FS_KEY_MAX + 1];
    char tmp[PATH_MAX];
} fs_writer;

static const ts_objstore_ops fs_ops;
static const ts_objstore_writer_ops fs_writer_ops;

/* The errno mapping every fs operation reports with. */
static ts_status fs_status(int e)
{
    switch (e) {
    case ENOENT: return TS_E_NOT_FOUND;
    case ENOSPC:
    case EDQUOT: return TS_E_NOSPACE;
    default: return TS_E_IO;
    }
}

/* On the write path a missing file means the store's own directory went
 * away under us, which is an I/O problem, not a missing key. */
static ts_status fs_write_status(int e)
{
    return e == ENOENT ? TS_E_IO : fs_status(e);
}

/* Extra words for the errors a key layout can cause on a directory tree. */
static const char *fs_hint(int e)
{
    if (e == ENOTDIR) return " (a prefix of this key is itself an object)";
    if (e == EISDIR) return " (this key is a prefix of other objects)";
    return "";
}

/* ".tmp/..." would reach the temp files: refuse it as a key. */
static ts_status fs_check_reserved(const char *key, const char *what, char *errstr, size_t errlen)
{
    size_t n = strlen(FS_TMP_DIR);
    if (!strncmp(key, FS_TMP_DIR, n) && (key[n] == '/' || key[n] == '\0'))
        return ts_err_set(errstr, errlen, TS_E_INVAL,
                          "fs %s of '%s': keys under '%s/' are reserved for the fs store's temp "
                          "files",
                          what, key, FS_TMP_DIR);
    return TS_OK;
}

static ts_status fs_path(const fs_store *s, const char *key, const char *what, char *path,
                         size_t len, char *errstr, size_t errlen)
{
    ts_status st = fs_check_reserved(key, what, errstr, errlen);
    if (st != TS_OK) return st;
    if ((size_t)snprintf(path, len, "%s/%s", s->root, key) >= len)
        return ts_err_set(errstr, errlen, TS_E_INVAL, "fs %s of '%s': path under %s too long", what,
                          key, s->root);
    return TS_OK;
}

/* Parent directory of path (path has a '/' past the root). */
static void parent_of(const char *path, char *dir, size_t len)
{
    ts_strlcpy(dir, path, len);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) *slash = '\0';
}

/* Creates the directories between the root and path's parent, fsyncing the
 * parent of each one it creates so the new entry survives a crash. A
 * concurrent delete may prune a directory just made (ENOENT one level
 * down): start over, a bounded number of times. */
static ts_status make_parents(const fs_store *s, const char *key, const char *path, char *errstr,
                              size_t errlen)
{
    char dir[PATH_MAX];
    size_t rl = strlen(s->root);
    int e = 0;
    for (int attempt = 0; attempt < FS_PUBLISH_TRIES; attempt++) {
        ts_strlcpy(dir, path, sizeof(dir));
        e = 0;
        for (char *p = dir + rl + 1; (p = strchr(p, '/')) != NULL; p++) {
            *p = '\0';
            if (mkdir(dir, 0755) == 0) {
                char parent[PATH_MAX];
                parent_of(dir, parent, sizeof(parent));
                ts_status st = ts_fs_fsync_dir(parent, errstr, errlen);
                if (st == TS_E_NOT_FOUND) { /* pruned already: start over */
                    e = ENOENT;
                    break;
                }
                if (st != TS_OK) return ts_err_prefix(errstr, errlen, st, "fs put of '%s'", key);
            } else if (errno != EEXIST) {
                e = errno;
                break;
            }
            *p = '/';
        }
        if (e != ENOENT) break;
    }
    if (!e) return TS_OK;
    return ts_err_set(errstr, errlen, fs_write_status(e),
                      "fs put of '%s': cannot create directory %s: %s%s", key, dir, strerror(e),
                      fs_hint(e));
}

/* Opens a fresh temp file under <root>/.tmp. */
static ts_status tmp_create(const fs_store *s, const char *key, char *tmp, size_t len, int *fd,
                            char *errstr, size_t errlen)
{
    for (int attempt = 0;; attempt++) {
        char rnd[33];
        ts_rand_hex(rnd, 16);
        if (snprintf(tmp, len, "%s/%s", s->tmpdir, rnd) >= (int)len)
            return ts_err_set(errstr, errlen, TS_E_INVAL, "fs put of '%s': temp path too long", key);
        *fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (*fd >= 0) return TS_OK;
        int e = errno;
        /* Someone removed .tmp (an operator cleaning up): recreate it once. */
        if (e == ENOENT && attempt == 0 && mkdir(s->tmpdir, 0755) == 0) continue;
        if (e == EEXIST && attempt < 3) continue;
        return ts_err_set(errstr, errlen, fs_write_status(e),
                          "fs put of '%s': cannot create temp file %s: %s", key, tmp, strerror(e));
    }
}

/* Moves the finished temp file to path: rename, or link + unlink for a
 * put that must not replace, then fsyncs the directory. Leaves tmp for the
 * caller to remove on failure. */
static ts_status publish(const fs_store *s, const char *key, const char *tmp, const char *path,
                         int noreplace, char *errstr, size_t errlen)
{
    int e = 0;
    for (int attempt = 0; attempt < FS_PUBLISH_TRIES; attempt++) {
        ts_status st = make_parents(s, key, path, errstr, errlen);
        if (st != TS_OK) return st;
        int rc;
        if (noreplace) {
            rc = link(tmp, path);
            /* File systems without hard links still offer an atomic
             * no-replace rename. */
            if (rc != 0 && (errno == EPERM || errno == EOPNOTSUPP || errno == EMLINK))
                rc = renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE);
        } else {
            rc = rename(tmp, path);
        }
        if (rc == 0) {
            e = 0;
            break;
        }
        e = errno;
        if (e != ENOENT) break; /* ENOENT: a delete pruned the parent; again */
    }
    if (e == EEXIST)
        return ts_err_set(errstr, errlen, TS_E_EXISTS,
                          "fs put of '%s': object already exists at %s (if-none-match)", key, path);
    if (e)
        return ts_err_set(errstr, errlen, fs_write_status(e),
                          "fs put of '%s': cannot move %s to %s: %s%s", key, tmp, path,
                          strerror(e), fs_hint(e));
    if (noreplace) unlink(tmp); /* the object lives on as path; a leftover is only garbage */
    char dir[PATH_MAX];
    parent_of(path, dir, sizeof(dir));
    ts_status st = ts_fs_fsync_dir(dir, errstr, errlen);
    /* Gone already: a concurrent delete of this very key removed the object
     * and pruned its directory; the put itself completed. */
    if (st == TS_E_NOT_FOUND) return TS_OK;
    if (st != TS_OK) return ts_err_prefix(errstr, errlen, st, "fs put of '%s'", key);
    return TS_OK;
}

static ts_status fs_put(ts_objstore *os, const char *key, const void *data, size_t len,
                        unsigned flags, char *errstr, size_t errlen)
{
    fs_store *s = (fs_store *)os;
    char path[PATH_MAX], tmp[PATH_MAX];
    int fd;
    ts_status st = fs_path(s, key, "put", path, sizeof(path), errstr, errlen);
    if (st != TS_OK) return st;
    st = tmp_create(s, key, tmp, sizeof(tmp), &fd, errstr, errlen);
    if (st != TS_OK) return st;
    int e = ts_fs_write_full(fd, data, len, TS_FS_AT_POS) < 0 ? errno : 0;
    const char *what = "write";
    if (!e && fsync(fd) != 0) {
        e = errno;
        what = "fsync";
    }
    if (close(fd) != 0 && !e) {
        e = errno;
        what = "close";
    }
    if (e) {
        unlink(tmp);
        return ts_err_set(errstr, errlen, fs_write_status(e), "fs put of '%s': %s of %s failed: %s",
                          key, what, tmp, strerror(e));
    }
    st = publish(s, key, tmp, path, (flags & TS_PUT_IF_NONE_MATCH) != 0, errstr, errlen);
    if (st != TS_OK) unlink(tmp);
    return st;
}

static ts_status fs_get(ts_objstore *os, const char *key, uint64_t offset, uint64_t len,
                        uint8_t **out, size_t *out_len, char *errstr, size_t errlen)
{
    fs_store *s = (fs_store *)os;
    char path[PATH_MAX];
    ts_status st = fs_path(s, key, "get", path, sizeof(path), errstr, errlen);
    if (st != TS_OK) return st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR || e == ELOOP)
            return ts_err_set(errstr, errlen, TS_E_NOT_FOUND, "fs get of '%s': no such object (%s)",
                              key, path);
        return ts_err_set(errstr, errlen, fs_status(e), "fs get of '%s': cannot open %s: %s", key,
                          path, strerror(e));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return ts_err_set(errstr, errlen, fs_status(e), "fs get of '%s': cannot stat %s: %s", key,
                          path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return ts_err_set(errstr, errlen, TS_E_NOT_FOUND,
                          "fs get of '%s': no such object (%s is a directory of other keys)", key,
                          path);
    }
    uint64_t size = (uint64_t)sb.st_size;
    /* Like S3's 416: a range starting at or past the end is refused, except
     * offset 0, so that "the whole object" works for an empty one too. */
    if (offset >= size && !(offset == 0 && size == 0)) {
        close(fd);
        return ts_err_set(errstr, errlen, TS_E_INVAL,
                          "fs get of '%s': range start %llu is not within the object's %llu bytes "
                          "(range not satisfiable)",
                          key, (unsigned long long)offset, (unsigned long long)size);
    }
    uint64_t n = size - offset;
    if (len < n) n = len;
    uint8_t *buf = malloc(n ? (size_t)n : 1);
    if (!buf) {
        close(fd);
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "fs get of '%s': cannot allocate %llu bytes",
                          key, (unsigned long long)n);
    }
    ssize_t r = ts_fs_read_full(fd, buf, (size_t)n, (int64_t)offset);
    int e = r < 0 ? errno : 0;
    uint64_t got = r < 0 ? 0 : (uint64_t)r;
    close(fd);
    if (got != n) {
        free(buf);
        if (e)
            return ts_err_set(errstr, errlen, fs_status(e), "fs get of '%s': read of %s failed: %s",
                              key, path, strerror(e));
        return ts_err_set(errstr, errlen, TS_E_IO,
                          "fs get of '%s': %s ended after %llu of %llu bytes (changed while read)",
                          key, path, (unsigned long long)(offset + got),
                          (unsigned long long)size);
    }
    *out = buf;
    *out_len = (size_t)n;
    return TS_OK;
}

static ts_status fs_head(ts_objstore *os, const char *key, uint64_t *size, char *errstr,
                         size_t errlen)
{
    fs_store *s = (fs_store *)os;
    char path[PATH_MAX];
    ts_status st = fs_path(s, key, "head", path, sizeof(path), errstr, errlen);
    if (st != TS_OK) return st;
    struct stat sb;
    if (lstat(path, &sb) != 0) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR)
            return ts_err_set(errstr, errlen, TS_E_NOT_FOUND,
                              "fs head of '%s': no such object (%s)", key, path);
        return ts_err_set(errstr, errlen, fs_status(e), "fs head of '%s': cannot stat %s: %s", key,
                          path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode))
        return ts_err_set(errstr, errlen, TS_E_NOT_FOUND,
                          "fs head of '%s': no such object (%s is not a regular file)", key, path);
    *size = (uint64_t)sb.st_size;
    return TS_OK;
}

static ts_status fs_del(ts_objstore *os, const char *key, char *errstr, size_t errlen)
{
    fs_store *s = (fs_store *)os;
    char path[PATH_MAX];
    ts_status st = fs_path(s, key, "delete", path, sizeof(path), errstr, errlen);
    if (st != TS_OK) return st;
    if (unlink(path) != 0) {
        int e = errno;
        /* Missing, or a directory of other keys (so not an object): as S3,
         * deleting what is not there succeeds. */
        if (e == ENOENT || e == ENOTDIR || e == EISDIR) return TS_OK;
        return ts_err_set(errstr, errlen, fs_status(e), "fs delete of '%s': cannot unlink %s: %s",
                          key, path, strerror(e));
    }
    /* Prune the parents left empty; rmdir refuses non-empty ones, which is
     * where this stops. A put racing with this retries its publish. */
    size_t rl = strlen(s->root);
    char dir[PATH_MAX];
    parent_of(path, dir, sizeof(dir));
    while (strlen(dir) > rl && rmdir(dir) == 0) parent_of(dir, dir, sizeof(dir));
    return TS_OK;
}

/* ---- list --------------------------------------------------------------- */

typedef struct fs_ent {
    char *name; /* a directory's name carries a trailing '/' */
    uint64_t size;
    int is_dir;
} fs_ent;

/* Sorting "dir/" instead of "dir" puts a directory's keys exactly where
 * their full key strings fall among their siblings ('-' < '/' < '0'), so
 * the walk emits keys in byte order without collecting them all. */
static int ent_cmp(const void *a, const void *b)
{
    return strcmp(((const fs_ent *)a)->name, ((const fs_ent *)b)->name);
}

typedef struct walk_ctx {
    int (*cb)(const char *key, uint64_t size, void *opaque);
    void *opaque;
    int stopped;
    char key[FS_KEY_MAX + NAME_MAX + 2];
    char *errstr;
    size_t errlen;
    const char *root;
} walk_ctx;

/* Walks the directory open at fd (consumed), whose keys start with
 * ctx->key[0..klen). Only names starting with filter are taken; at the
 * store's root, .tmp is skipped. */
static ts_status walk(walk_ctx *ctx, int fd, size_t klen, const char *filter, int at_root)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        int e = errno;
        close(fd);
        return ts_err_set(ctx->errstr, ctx->errlen, fs_status(e),
                          "fs list under %s: cannot read directory for prefix '%.*s': %s",
                          ctx->root, (int)klen, ctx->key, strerror(e));
    }
    fs_ent *ents = NULL;
    size_t n = 0, cap = 0, flen = strlen(filter);
    ts_status st = TS_OK;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            if (errno) {
                int e = errno;
                st = ts_err_set(ctx->errstr, ctx->errlen, TS_E_IO,
                                "fs list under %s: reading directory for prefix '%.*s': %s",
                                ctx->root, (int)klen, ctx->key, strerror(e));
            }
            break;
        }
        const char *nm = de->d_name;
        if (!strcmp(nm, ".") || !strcmp(nm, "..")) continue;
        if (at_root && !strcmp(nm, FS_TMP_DIR)) continue;
        if (strncmp(nm, filter, flen)) continue;
        size_t nl = strlen(nm);
        if (klen + nl > FS_KEY_MAX) continue; /* not a key this store could have written */
        struct stat sb;
        if (fstatat(dirfd(d), nm, &sb, AT_SYMLINK_NOFOLLOW) != 0) continue; /* deleted meanwhile */
        if (!S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode)) continue;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 32;
            fs_ent *ne = realloc(ents, nc * sizeof(*ne));
            if (!ne) goto nomem;
            ents = ne;
            cap = nc;
        }
        int is_dir = S_ISDIR(sb.st_mode);
        char *copy = malloc(nl + 2);
        if (!copy) goto nomem;
        memcpy(copy, nm, nl);
        copy[nl] = is_dir ? '/' : '\0';
        copy[nl + 1] = '\0';
        ents[n].name = copy;
        ents[n].size = (uint64_t)sb.st_size;
        ents[n].is_dir = is_dir;
        n++;
    }
    if (st == TS_OK && n > 1) qsort(ents, n, sizeof(*ents), ent_cmp);
    for (size_t i = 0; i < n && st == TS_OK && !ctx->stopped; i++) {
        size_t nl = strlen(ents[i].name);
        memcpy(ctx->key + klen, ents[i].name, nl + 1);
        if (!ents[i].is_dir) {
            if (ctx->cb(ctx->key, ents[i].size, ctx->opaque)) ctx->stopped = 1;
            continue;
        }
        ents[i].name[nl - 1] = '\0';
        int sub = openat(dirfd(d), ents[i].name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0) continue; /* pruned by a concurrent delete */
        st = walk(ctx, sub, klen + nl, "", 0);
    }
    goto out;
nomem:
    st = ts_err_set(ctx->errstr, ctx->errlen, TS_E_NOMEM,
                    "fs list under %s: out of memory listing prefix '%.*s'", ctx->root, (int)klen,
                    ctx->key);
out:
    for (size_t i = 0; i < n; i++) free(ents[i].name);
    free(ents);
    closedir(d);
    return st;
}

static ts_status fs_list(ts_objstore *os, const char *prefix,
                         int (*cb)(const char *key, uint64_t size, void *opaque), void *opaque,
                         char *errstr, size_t errlen)
{
    fs_store *s = (fs_store *)os;
    walk_ctx *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) return ts_err_set(errstr, errlen, TS_E_NOMEM, "fs list: out of memory");
    ctx->cb = cb;
    ctx->opaque = opaque;
    ctx->errstr = errstr;
    ctx->errlen = errlen;
    ctx->root = s->root;
    /* "a/b/c" walks <root>/a/b taking names that start with "c". */
    const char *slash = strrchr(prefix, '/');
    size_t dl = slash ? (size_t)(slash - prefix) + 1 : 0;
    memcpy(ctx->key, prefix, dl);
    ctx->key[dl] = '\0';
    char dir[PATH_MAX];
    ts_status st = TS_OK;
    if (snprintf(dir, sizeof(dir), "%s/%s", s->root, ctx->key) >= (int)sizeof(dir)) {
        free(ctx);
        return ts_err_set(errstr, errlen, TS_E_INVAL, "fs list of prefix '%s': path under %s too long",
                          prefix, s->root);
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e != ENOENT && e != ENOTDIR && e != ELOOP)
            st = ts_err_set(errstr, errlen, fs_status(e),
                            "fs list of prefix '%s': cannot open %s: %s", prefix, dir,
                            strerror(e));
        /* else: no such directory, no keys */
    } else {
        st = walk(ctx, fd, dl, prefix + dl, dl == 0);
    }
    free(ctx);
    return st;
}

/* ---- streaming writer --------------------------------------------------- */

static ts_status fs_writer_open(ts_objstore *os, const char *key, ts_objstore_writer **out,
                                char *errstr, size_t errlen)
{
    fs_store *s = (fs_store *)os;
    char path[PATH_MAX];
    ts_status st = fs_path(s, key, "writer_open", path, sizeof(path), errstr, errlen);
    if (st != TS_OK) return st;
    fs_writer *w = calloc(1, sizeof(*w));
    if (!w)
        return ts_err_set(errstr, errlen, TS_E_NOMEM, "fs writer_open of '%s': out of memory", key);
    st = tmp_create(s, key, w->tmp, sizeof(w->tmp), &w->fd, errstr, errlen);
    if (st != TS_OK) {
        free(w);
        return st;
    }
    w->base.ops = &fs_writer_ops;
    w->s = s;
    ts_strlcpy(w->key, key, sizeof(w->key)); /* fits: keys are checked to be <= 1024 bytes */
    *out = &w->base;
    return TS_OK;
}

static ts_status fs_w_write(ts_objstore_writer *wb, const void *data, size_t len, char *errstr,
                            size_t errlen)
{
    fs_writer *w = (fs_writer *)wb;
    if (w->failed != TS_OK)
        return ts_err_set(errstr, errlen, w->failed,
                          "fs write to '%s' after an earlier write failed; abort the writer",
                          w->key);
    int e = ts_fs_write_full(w->fd, data, len, TS_FS_AT_POS) < 0 ? errno : 0;
    if (!e) return TS_OK;
    w->failed = fs_write_status(e);
    return ts_err_set(errstr, errlen, w->failed, "fs write to '%s': write of %s failed: %s",
                      w->key, w->tmp, strerror(e));
}

static void fs_w_free(fs_writer *w)
{
    if (w->fd >= 0) close(w->fd);
    unlink(w->tmp);
    free(w);
}

static ts_status fs_w_commit(ts_objstore_writer *wb, char *errstr, size_t errlen)
{
    fs_writer *w = (fs_writer *)wb;
    ts_status st;
    if (w->failed != TS_OK) {
        /* Publishing would expose an object with a hole in it. */
        st = ts_err_set(errstr, errlen, w->failed,
                        "fs commit of '%s' refused: an earlier write failed; nothing was stored",
                        w->key);
        fs_w_free(w);
        return st;
    }
    int e = 0;
    const char *what = "fsync";
    if (fsync(w->fd) != 0) e = errno;
    if (close(w->fd) != 0 && !e) {
        e = errno;
        what = "close";
    }
    w->fd = -1;
    if (e) {
        st = ts_err_set(errstr, errlen, fs_write_status(e), "fs commit of '%s': %s of %s failed: %s",
                        w->key, what, w->tmp, strerror(e));
        fs_w_free(w);
        return st;
    }
    char path[PATH_MAX];
    st = fs_path(w->s, w->key, "commit", path, sizeof(path), errstr, errlen);
    if (st == TS_OK) st = publish(w->s, w->key, w->tmp, path, 0, errstr, errlen);
    fs_w_free(w); /* after a successful rename the unlink finds nothing */
    return st;
}

static void fs_w_abort(ts_objstore_writer *wb)
{
    fs_w_free((fs_writer *)wb);
}

/* ---- open --------------------------------------------------------------- */

/* Removes temp files a crashed process left behind. Only old ones: another
 * process may share this root and be writing right now. */
static void clean_stale_tmp(const fs_store *s)
{
    DIR *d = opendir(s->tmpdir);
    if (!d) return;
    time_t cutoff = time(NULL) - FS_STALE_TMP_SECONDS;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat sb;
        if (de->d_name[0] == '.') continue;
        if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode) &&
            sb.st_mtime < cutoff)
            unlinkat(dirfd(d), de->d_name, 0);
    }
    closedir(d);
}

static void fs_destroy(ts_objstore *os)
{
    free(os);
}

ts_status ts_objstore_fs_open(const char *root_dir, ts_objstore **out, char *errstr,
                              size_t errlen)
{
    if (!out) return ts_err_set(errstr, errlen, TS_E_INVAL, "fs open: out is NULL");
    *out = NULL;
    if (!root_dir || root_dir[0] != '/')
        return ts_err_set(errstr, errlen, TS_E_INVAL,
                          "fs open: root directory '%s' is not an absolute path",
                          root_dir ? root_dir : "(null)");
    size_t rl = strlen(root_dir);
    while (rl > 1 && root_dir[rl - 1] == '/') rl--;
    if (rl == 1)
        return ts_err_set(errstr, errlen, TS_E_INVAL,
                          "fs open: refusing '/' as the store's root; use a directory of its own");
    /* The root must fit the store's URL (file://<root>), which bounds it
     * well below PATH_MAX minus the longest key. */
    if (rl + strlen("file://") >= sizeof(((ts_objstore *)0)->url))
        return ts_err_set(errstr, errlen, TS_E_INVAL,
                          "fs open: root directory '%.64s...' is longer than %zu bytes", root_dir,
                          sizeof(((ts_objstore *)0)->url) - 1 - strlen("file://"));
    fs_store *s = calloc(1, sizeof(*s));
    if (!s) return ts_err_set(errstr, errlen, TS_E_NOMEM, "fs open of %s: out of memory", root_dir);
    memcpy(s->root, root_dir, rl);
    s->root[rl] = '\0';
    memcpy(s->tmpdir, s->root, rl);
    memcpy(s->tmpdir + rl, "/" FS_TMP_DIR, sizeof("/" FS_TMP_DIR));
    memcpy(s->base.url, "file://", 7);
    memcpy(s->base.url + 7, s->root, rl + 1);
    s->base.ops = &fs_ops;
    ts_status st = ts_fs_mkdirs(s->tmpdir, errstr, errlen);
    if (st != TS_OK) {
        ts_err_prefix(errstr, errlen, st, "fs open of %s", s->root);
        free(s);
        return st;
    }
    clean_stale_tmp(s);
    *out = &s->base;
    return TS_OK;
}

static const ts_objstore_ops fs_ops = {
    .scheme = "file",
    .put = fs_put,
    .writer_open = fs_writer_open,
    .get = fs_get,
    .head = fs_head,
    .del = fs_del,
    .del_many = NULL, /* the generic loop of single deletes is what this store would do anyway */
    .list = fs_list,
    .destroy = fs_destroy,
};

static const ts_objstore_writer_ops fs_writer_ops = {
    .write = fs_w_write,
    .commit = fs_w_commit,
    .abort = fs_w_abort,
};
