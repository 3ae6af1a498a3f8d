/*
 * topics.c — the broker's topic registry and its metadata files.
 *
 * The plugin stores partitions; it does not enumerate topics. The broker
 * keeps the list (name, partition count, overrides as created) in
 * <log.dirs>/.broker/topics, committed offsets in .broker/offsets and the
 * producer-id counter in .broker/producer-ids, written on the meta pool's
 * single thread so the newest version always wins (formats below, at the
 * metadata files section). A topic missing from
 * the file but known to the plugin (data dir rebuilt from the bucket) is
 * adopted on first use.
 *
 * Thread: loop thread, except meta_run (meta pool worker).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker.h"
#include "meta_log.h"

int topic_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 249 || !strcmp(name, ".") || !strcmp(name, "..")) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

static void topic_free(btopic *t)
{
    if (!t) return;
    for (int32_t i = 0; i < t->npartitions; i++) {
        pid_state *p = t->parts ? t->parts[i].pids : NULL;
        while (p) {
            pid_state *n = p->next;
            free(p);
            p = n;
        }
    }
    for (size_t i = 0; i < t->nconfigs; i++) {
        free(t->configs[i].key);
        free(t->configs[i].value);
    }
    free(t->configs);
    free(t->parts);
    free(t->name);
    free(t);
}

/* Opens nparts partitions and links the topic in. at_start: a topic from
 * the metadata file at startup; a partition that fails to open there stays
 * offline (h NULL, its requests answer KAFKA_STORAGE_ERROR) instead of
 * keeping the broker from starting, as Kafka takes one bad log dir offline.
 * Otherwise (create, adopt) a failure undoes the whole topic. */
static int topic_register(broker *b, const char *name, int32_t nparts, int create,
                          const bprop *cfg, size_t ncfg, int at_start, char *msg, size_t msglen)
{
    btopic *t = calloc(1, sizeof(*t));
    if (!t) return KAFKA_UNKNOWN_SERVER_ERROR;
    t->name = strdup(name);
    t->parts = calloc((size_t)nparts, sizeof(*t->parts));
    t->configs = ncfg ? calloc(ncfg, sizeof(*t->configs)) : NULL;
    if (!t->name || !t->parts || (ncfg && !t->configs)) goto oom;
    t->npartitions = nparts;
    for (size_t i = 0; i < ncfg; i++) {
        t->configs[i].key = strdup(cfg[i].key);
        t->configs[i].value = strdup(cfg[i].value ? cfg[i].value : "");
        t->nconfigs++;
        if (!t->configs[i].key || !t->configs[i].value) goto oom;
    }
    for (int32_t i = 0; i < nparts; i++) {
        char err[512] = "";
        t->parts[i].index = i;
        tsp_status st = b->pl->partition_open(b->eng, name, i, create ? TSP_PART_CREATE : 0,
                                              &t->parts[i].h, err, sizeof err);
        if (st != TSP_OK && at_start) {
            blog_error("opening %s-%d: %s: %s; the partition stays offline (its requests answer "
                       "KAFKA_STORAGE_ERROR) until the broker restarts with it repaired",
                       name, i, b->pl->status_name(st), err);
            t->parts[i].h = NULL;
            continue;
        }
        if (st != TSP_OK) {
            blog_error("opening %s-%d: %s: %s", name, i, b->pl->status_name(st), err);
            snprintf(msg, msglen, "%s", err);
            topic_free(t);
            return kafka_error_from_status(st);
        }
        idempotence_rebuild(b, &t->parts[i]);
    }
    t->next = b->topics;
    b->topics = t;
    return KAFKA_NONE;
oom:
    topic_free(t);
    return KAFKA_UNKNOWN_SERVER_ERROR;
}

static int is_doomed(broker *b, const char *name)
{
    for (btopic *t = b->doomed; t; t = t->next)
        if (!strcmp(t->name, name)) return 1;
    return 0;
}

btopic *topic_find(broker *b, const char *name)
{
    for (btopic *t = b->topics; t; t = t->next)
        if (!strcmp(t->name, name)) return t;
    if (is_doomed(b, name)) return NULL;
    /* Known to the plugin (recovered from the bucket) but not to us. */
    if (!topic_name_valid(name)) return NULL;
    int32_t *parts = NULL;
    size_t n = 0;
    char err[256];
    if (b->pl->topic_partitions(b->eng, name, &parts, &n, err, sizeof err) != TSP_OK || n == 0) {
        b->pl->buffer_free(parts);
        return NULL;
    }
    int32_t max = 0;
    for (size_t i = 0; i < n; i++)
        if (parts[i] + 1 > max) max = parts[i] + 1;
    b->pl->buffer_free(parts);
    blog_info("adopting topic %s (%d partitions) known to the storage engine", name, max);
    if (topic_register(b, name, max, 1, NULL, 0, 0, err, sizeof err) != KAFKA_NONE) return NULL;
    meta_save_topics(b, NULL, NULL);
    return b->topics;
}

bpart *topic_part(broker *b, const char *topic, int32_t partition, int16_t *err)
{
    btopic *t = topic_find(b, topic);
    if (!t || partition < 0 || partition >= t->npartitions) {
        *err = KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
        return NULL;
    }
    if (!t->parts[partition].h) { /* offline since startup (topic_register) */
        *err = KAFKA_KAFKA_STORAGE_ERROR;
        return NULL;
    }
    *err = KAFKA_NONE;
    return &t->parts[partition];
}

int topic_create(broker *b, const char *name, int32_t nparts, const bprop *cfg, size_t ncfg,
                 int validate_only, char *msg, size_t msglen)
{
    msg[0] = 0;
    if (!topic_name_valid(name)) {
        snprintf(msg, msglen, "topic name '%s' must be 1..249 chars of [A-Za-z0-9._-]", name);
        return KAFKA_INVALID_TOPIC_EXCEPTION;
    }
    for (btopic *t = b->topics; t; t = t->next)
        if (!strcmp(t->name, name)) {
            snprintf(msg, msglen, "topic '%s' already exists", name);
            return KAFKA_TOPIC_ALREADY_EXISTS;
        }
    if (is_doomed(b, name)) {
        snprintf(msg, msglen, "topic '%s' is still being deleted; retry shortly", name);
        return KAFKA_TOPIC_ALREADY_EXISTS;
    }
    if (nparts == -1) nparts = b->num_partitions;
    if (nparts <= 0 || nparts > 100000) {
        snprintf(msg, msglen, "number of partitions %d must be 1..100000", nparts);
        return KAFKA_INVALID_PARTITIONS;
    }
    if (validate_only) return KAFKA_NONE;
    if (ncfg) {
        tsp_property *props = calloc(ncfg, sizeof(*props));
        if (!props) return KAFKA_UNKNOWN_SERVER_ERROR;
        for (size_t i = 0; i < ncfg; i++) {
            props[i].key = cfg[i].key;
            props[i].value = cfg[i].value ? cfg[i].value : "";
        }
        tsp_status st = b->pl->topic_set_config(b->eng, name, props, ncfg, msg, msglen);
        free(props);
        if (st != TSP_OK) return st == TSP_E_CONFIG ? KAFKA_INVALID_CONFIG : kafka_error_from_status(st);
    }
    int rc = topic_register(b, name, nparts, 1, cfg, ncfg, 0, msg, msglen);
    if (rc == KAFKA_NONE) {
        blog_info("created topic %s with %d partitions", name, nparts);
        meta_save_topics(b, NULL, NULL);
    }
    return rc;
}

int topic_delete(broker *b, const char *name, char *msg, size_t msglen)
{
    msg[0] = 0;
    btopic **pp = &b->topics, *t = NULL;
    while (*pp) {
        if (!strcmp((*pp)->name, name)) {
            t = *pp;
            break;
        }
        pp = &(*pp)->next;
    }
    if (!t) {
        snprintf(msg, msglen, "topic '%s' does not exist", name);
        return KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    }
    /* Parked fetches may hold partition pointers of this topic; jobs in the
     * pools may hold its plugin handles: the plugin delete waits for them. */
    fetch_abort_all(b);
    *pp = t->next;
    t->next = b->doomed;
    b->doomed = t;
    blog_info("deleting topic %s", name);
    meta_save_topics(b, NULL, NULL);
    if (b->jobs_inflight == 0) topics_reap(b);
    return KAFKA_NONE;
}

void topics_reap(broker *b)
{
    while (b->doomed) {
        btopic *t = b->doomed;
        b->doomed = t->next;
        for (int32_t i = 0; i < t->npartitions; i++) {
            char msg[512] = "";
            tsp_status st = b->pl->partition_delete(b->eng, t->name, i, msg, sizeof msg);
            if (st != TSP_OK && st != TSP_E_NOT_FOUND)
                blog_error("deleting %s-%d: %s: %s", t->name, i, b->pl->status_name(st), msg);
        }
        blog_info("deleted topic %s", t->name);
        topic_free(t);
    }
}

/* ------------------------------------------------------- metadata files */

/*
 * <log.dirs>/.broker/ holds three files, each written only by the meta
 * pool's single thread (so writes land in submission order):
 *
 *  topics        one topic per line: name TAB partitions (TAB hex(key)=hex(value))*
 *                Names are validated ([A-Za-z0-9._-]), configs hex, so no field
 *                can hold a TAB or newline. Rewritten whole (tmp + fsync +
 *                rename + fsync dir) on every create/delete: it is small and
 *                changes rarely.
 *  offsets       an append-only log of commits, one record per committed
 *                partition (byte format in meta_log.h: hex fields and a
 *                CRC-32, so a client's bytes can never end a record or start
 *                another one). Load replays records in order (a later one
 *                wins); a record that does not parse or check (the torn tail
 *                of a crash during an append) is skipped. An OffsetCommit appends its records and
 *                fsyncs; when the log holds more than OFFSETS_COMPACT_FACTOR
 *                times the live offsets (+ OFFSETS_COMPACT_SLACK), the next
 *                commit rewrites it whole instead (tmp + rename), so a commit
 *                costs O(its size) amortized and the file stays within a
 *                constant factor of the live set. The first save after a start
 *                and any save after a failed one is such a rewrite, so a torn
 *                tail never ends up in the middle of the log. Files of older
 *                versions (lines "hex(group) TAB topic TAB partition TAB
 *                offset TAB hex(metadata)") are still read.
 *  producer-ids  one decimal and a newline: the end of the newest reserved
 *                block of producer ids (handlers.c); replaced atomically.
 *
 * A save whose data would exceed its hard maximum fails: the old file stays
 * and `done` gets ok = 0 (an OffsetCommit then answers an error).
 */

#define META_TOPICS_MAX (256u << 20)
#define META_OFFSETS_MAX (1u << 30)
#define OFFSETS_COMPACT_FACTOR 4
#define OFFSETS_COMPACT_SLACK 1024
/* Producer ids of older versions came from the clock, below 10^14: a data
 * dir without a counter starts above them. */
#define PRODUCER_ID_FIRST 1000000000000000LL

typedef struct meta_job {
    bjob j;
    broker *b;
    char path[1100];
    char *data;
    size_t len;
    int append; /* append data (then fsync) instead of replacing the file */
    int offsets;
    int ok;
    char err[1400];
    meta_done_fn done;
    void *arg;
} meta_job;

static int write_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static void fsync_dir(const char *dir)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
}

/* Meta pool worker: appends to the log; on failure cuts the file back to
 * where it was, so no partial record stays behind. */
static void meta_append(meta_job *m)
{
    int fd = open(m->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(m->err, sizeof m->err, "open %s: %s", m->path, strerror(errno));
        return;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(m->err, sizeof m->err, "stat %s: %s", m->path, strerror(errno));
        close(fd);
        return;
    }
    int rc = st.st_size == 0 ? write_all(fd, META_OFFSETS_HEADER, strlen(META_OFFSETS_HEADER)) : 0;
    if (rc == 0) rc = write_all(fd, m->data, m->len);
    if (rc == 0) rc = fsync(fd);
    if (rc != 0) {
        int e = errno;
        if (ftruncate(fd, st.st_size) == 0) fsync(fd);
        snprintf(m->err, sizeof m->err, "append to %s: %s", m->path, strerror(e));
        close(fd);
        return;
    }
    close(fd);
    if (st.st_size == 0) fsync_dir(m->b->meta_dir);
    m->ok = 1;
}

/* Meta pool worker: durable replace of one file. */
static void meta_run(bjob *j)
{
    meta_job *m = (meta_job *)j;
    m->ok = 0;
    if (m->append) {
        meta_append(m);
        return;
    }
    char tmp[1110];
    snprintf(tmp, sizeof tmp, "%s.tmp", m->path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(m->err, sizeof m->err, "open %s: %s", tmp, strerror(errno));
        return;
    }
    if (write_all(fd, m->data, m->len) != 0) {
        snprintf(m->err, sizeof m->err, "write %s: %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, m->path) != 0) {
        snprintf(m->err, sizeof m->err, "fsync/rename %s: %s", m->path, strerror(errno));
        unlink(tmp);
        return;
    }
    fsync_dir(m->b->meta_dir);
    m->ok = 1;
}

static void meta_done(bjob *j)
{
    meta_job *m = (meta_job *)j;
    if (!m->ok) blog_error("saving broker metadata: %s", m->err);
    /* Memory may now be ahead of the file: the next save rewrites it whole. */
    if (!m->ok && m->offsets) m->b->offsets_rewrite = 1;
    if (m->done) m->done(m->b, m->arg, m->ok);
    free(m->data);
    free(m);
}

/* Takes the writer's bytes; a writer that hit its cap fails the save. */
static void meta_submit(broker *b, const char *file, kw *w, int append, meta_done_fn done,
                        void *arg)
{
    int offsets = !strcmp(file, "offsets");
    if (w->err) {
        blog_error("saving broker metadata: %s/%s would exceed %zu bytes; keeping the previous "
                   "file",
                   b->meta_dir, file, w->max);
        kw_free(w);
        if (offsets) b->offsets_rewrite = 1;
        if (done) done(b, arg, 0);
        return;
    }
    meta_job *m = calloc(1, sizeof(*m));
    if (!m) {
        kw_free(w);
        if (offsets) b->offsets_rewrite = 1;
        if (done) done(b, arg, 0);
        return;
    }
    m->j.run = meta_run;
    m->j.done = meta_done;
    m->b = b;
    snprintf(m->path, sizeof m->path, "%s/%s", b->meta_dir, file);
    m->data = (char *)w->d;
    m->len = w->len;
    m->append = append;
    m->offsets = offsets;
    m->done = done;
    m->arg = arg;
    w->d = NULL;
    bpool_submit(b->meta_pool, &m->j);
}

static void hex(kw *w, const char *s) { meta_hex(w, s); }

/* For the topics file and offsets files of older versions. */
static char *unhex(const char *s) { return meta_unhex(s, strlen(s)); }

static void kw_text(kw *w, const char *s) { kw_raw(w, s, strlen(s)); }

void meta_save_topics(broker *b, meta_done_fn done, void *arg)
{
    kw w;
    kw_init(&w, META_TOPICS_MAX);
    for (btopic *t = b->topics; t; t = t->next) {
        char num[32];
        snprintf(num, sizeof num, "\t%d", t->npartitions);
        kw_text(&w, t->name);
        kw_text(&w, num);
        for (size_t i = 0; i < t->nconfigs; i++) {
            kw_text(&w, "\t");
            hex(&w, t->configs[i].key);
            kw_text(&w, "=");
            hex(&w, t->configs[i].value);
        }
        kw_text(&w, "\n");
    }
    meta_submit(b, "topics", &w, 0, done, arg);
}

/* The whole live set: replaces the log. */
static void offsets_rewrite(broker *b, meta_done_fn done, void *arg)
{
    kw w;
    kw_init(&w, META_OFFSETS_MAX);
    kw_text(&w, META_OFFSETS_HEADER);
    size_t n = 0;
    for (bgroup *g = group_first(b); g; g = group_next(g))
        for (committed *c = group_offsets(g); c; c = c->next, n++)
            meta_log_encode(&w, group_id(g), c->topic, c->partition, c->offset, c->metadata);
    b->offsets_live = n;
    b->offsets_logged = n;
    b->offsets_rewrite = 0;
    meta_submit(b, "offsets", &w, 0, done, arg);
}

void meta_log_offsets(broker *b, const meta_commit *c, size_t n, meta_done_fn done, void *arg)
{
    if (b->offsets_rewrite ||
        b->offsets_logged + n > OFFSETS_COMPACT_FACTOR * b->offsets_live + OFFSETS_COMPACT_SLACK) {
        offsets_rewrite(b, done, arg);
        return;
    }
    kw w;
    kw_init(&w, META_OFFSETS_MAX);
    for (size_t i = 0; i < n; i++)
        meta_log_encode(&w, c[i].group, c[i].topic, c[i].partition, c[i].offset, c[i].metadata);
    b->offsets_logged += n;
    meta_submit(b, "offsets", &w, 1, done, arg);
}

void meta_save_producer_ids(broker *b, int64_t end, meta_done_fn done, void *arg)
{
    kw w;
    kw_init(&w, 64);
    char num[32];
    snprintf(num, sizeof num, "%lld\n", (long long)end);
    kw_text(&w, num);
    meta_submit(b, "producer-ids", &w, 0, done, arg);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    kw w;
    kw_init(&w, (size_t)META_OFFSETS_MAX + 1);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) kw_raw(&w, buf, n);
    fclose(f);
    if (len) *len = w.len;
    kw_raw(&w, "", 1);
    if (w.err) {
        kw_free(&w);
        return NULL;
    }
    return (char *)w.d;
}

static int parse_i64(const char *s, size_t n, int64_t *out)
{
    char tmp[32];
    if (n == 0 || n >= sizeof tmp) return -1;
    memcpy(tmp, s, n);
    tmp[n] = 0;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (errno || *end || !(tmp[0] == '-' || (tmp[0] >= '0' && tmp[0] <= '9'))) return -1;
    *out = v;
    return 0;
}

/* One record of the log (without its newline); 0 when applied. */
static int offsets_apply_record(broker *b, const char *line, size_t len)
{
    meta_log_rec r;
    if (meta_log_decode(line, len, &r) != 0) return -1;
    bgroup *g = r.group[0] && topic_name_valid(r.topic) ? group_find(b, r.group, 1) : NULL;
    int rc = g ? group_set_offset(g, r.topic, r.partition, r.offset,
                                  r.metadata[0] ? r.metadata : NULL)
               : -1;
    if (rc > 0) b->offsets_live++;
    meta_log_rec_free(&r);
    return rc < 0 ? -1 : 0;
}

/* Offsets files written before the log format. */
static size_t offsets_load_v0(broker *b, char *data)
{
    size_t count = 0;
    char *save_line = NULL;
    for (char *line = strtok_r(data, "\n", &save_line); line;
         line = strtok_r(NULL, "\n", &save_line)) {
        char *f[5] = {0};
        char *save = NULL;
        f[0] = strtok_r(line, "\t", &save);
        for (int i = 1; i < 5; i++) f[i] = strtok_r(NULL, "\t", &save);
        if (!f[0] || !f[1] || !f[2] || !f[3] || !topic_name_valid(f[1])) continue;
        char *gid = unhex(f[0]);
        char *md = unhex(f[4] ? f[4] : "");
        bgroup *g = gid && gid[0] ? group_find(b, gid, 1) : NULL;
        int rc = g ? group_set_offset(g, f[1], atoi(f[2]), strtoll(f[3], NULL, 10),
                                      md && md[0] ? md : NULL)
                   : -1;
        if (rc > 0) b->offsets_live++;
        free(gid);
        free(md);
        count++;
    }
    return count;
}

/* Startup, loop thread (before serving). */
int meta_load(broker *b, char *err, size_t errlen)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/topics", b->meta_dir);
    char *data = slurp(path, NULL);
    for (char *line = data ? strtok(data, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        char *save = NULL;
        char *name = strtok_r(line, "\t", &save);
        char *np = strtok_r(NULL, "\t", &save);
        if (!name || !np) continue;
        bprop cfg[64];
        size_t ncfg = 0;
        char *kv;
        while ((kv = strtok_r(NULL, "\t", &save)) && ncfg < 64) {
            char *eq = strchr(kv, '=');
            if (!eq) continue;
            *eq = 0;
            cfg[ncfg].key = unhex(kv);
            cfg[ncfg].value = unhex(eq + 1);
            if (!cfg[ncfg].key || !cfg[ncfg].value) {
                free(cfg[ncfg].key);
                free(cfg[ncfg].value);
                continue;
            }
            ncfg++;
        }
        char msg[512];
        int rc = topic_register(b, name, atoi(np), 1, cfg, ncfg, 1, msg, sizeof msg);
        for (size_t i = 0; i < ncfg; i++) {
            free(cfg[i].key);
            free(cfg[i].value);
        }
        if (rc != KAFKA_NONE) {
            snprintf(err, errlen, "opening topic %s from %s: %s", name, path, msg);
            free(data);
            return -1;
        }
    }
    free(data);

    snprintf(path, sizeof path, "%s/offsets", b->meta_dir);
    size_t len = 0, count = 0, bad = 0;
    data = slurp(path, &len);
    if (!data && access(path, F_OK) == 0) {
        snprintf(err, errlen, "cannot read %s (more than %u bytes?)", path, META_OFFSETS_MAX);
        return -1;
    }
    if (data && !strncmp(data, META_OFFSETS_HEADER, strlen(META_OFFSETS_HEADER))) {
        const char *p = data + strlen(META_OFFSETS_HEADER), *end = data + len;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            if (!nl) { /* torn tail: the append that was cut never answered */
                bad++;
                break;
            }
            if (offsets_apply_record(b, p, (size_t)(nl - p)) == 0)
                count++;
            else
                bad++;
            p = nl + 1;
        }
    } else if (data) {
        count = offsets_load_v0(b, data);
    }
    free(data);
    if (count) blog_info("loaded %zu committed offsets", count);
    if (bad) blog_warn("%s: skipped %zu damaged record(s) (a torn tail after a crash)", path, bad);
    /* The first save rewrites the log whole: drops a torn tail, converts an
     * older file. */
    b->offsets_logged = count + bad;
    b->offsets_rewrite = 1;

    snprintf(path, sizeof path, "%s/producer-ids", b->meta_dir);
    data = slurp(path, &len);
    b->next_producer_id = PRODUCER_ID_FIRST;
    if (data) {
        int64_t v;
        size_t n = len && data[len - 1] == '\n' ? len - 1 : len;
        if (parse_i64(data, n, &v) || v < 0) {
            snprintf(err, errlen,
                     "%s does not hold a producer id counter; it must be one decimal above "
                     "every producer id handed out (restore it from a backup)",
                     path);
            free(data);
            return -1;
        }
        b->next_producer_id = v;
        free(data);
    } else if (access(path, F_OK) == 0) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    b->producer_id_limit = b->next_producer_id; /* nothing of a new block handed out yet */
    return 0;
}
