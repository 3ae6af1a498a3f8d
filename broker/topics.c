/*
 * topics.c — the broker's topic registry and its metadata files.
 *
 * The plugin stores partitions; it does not enumerate topics. The broker
 * keeps the list (name, partition count, overrides as created) in
 * <log.dirs>/.broker/topics and committed offsets in .broker/offsets, both
 * written whole (tmp + fsync + rename + fsync dir) on the meta pool's
 * single thread, so the newest version always wins. A topic missing from
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

typedef struct meta_job {
    bjob j;
    broker *b;
    char path[1100];
    char *data;
    size_t len;
    int ok;
    char err[1400];
    meta_done_fn done;
    void *arg;
} meta_job;

/* Meta pool worker: durable replace of one small file. */
static void meta_run(bjob *j)
{
    meta_job *m = (meta_job *)j;
    char tmp[1110];
    snprintf(tmp, sizeof tmp, "%s.tmp", m->path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    m->ok = 0;
    if (fd < 0) {
        snprintf(m->err, sizeof m->err, "open %s: %s", tmp, strerror(errno));
        return;
    }
    size_t off = 0;
    while (off < m->len) {
        ssize_t n = write(fd, m->data + off, m->len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            snprintf(m->err, sizeof m->err, "write %s: %s", tmp, strerror(errno));
            close(fd);
            return;
        }
        off += (size_t)n;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, m->path) != 0) {
        snprintf(m->err, sizeof m->err, "fsync/rename %s: %s", m->path, strerror(errno));
        return;
    }
    int dfd = open(m->b->meta_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    m->ok = 1;
}

static void meta_done(bjob *j)
{
    meta_job *m = (meta_job *)j;
    if (!m->ok) blog_error("saving broker metadata: %s", m->err);
    if (m->done) m->done(m->b, m->arg, m->ok);
    free(m->data);
    free(m);
}

static void meta_submit(broker *b, const char *file, char *data, size_t len, meta_done_fn done,
                        void *arg)
{
    meta_job *m = calloc(1, sizeof(*m));
    if (!m) {
        free(data);
        if (done) done(b, arg, 0);
        return;
    }
    m->j.run = meta_run;
    m->j.done = meta_done;
    m->b = b;
    snprintf(m->path, sizeof m->path, "%s/%s", b->meta_dir, file);
    m->data = data;
    m->len = len;
    m->done = done;
    m->arg = arg;
    bpool_submit(b->meta_pool, &m->j);
}

static void hex(kw *w, const char *s)
{
    static const char d[] = "0123456789abcdef";
    for (; *s; s++) {
        char two[2] = {d[(unsigned char)*s >> 4], d[(unsigned char)*s & 15]};
        kw_raw(w, two, 2);
    }
}

static char *unhex(const char *s)
{
    size_t n = strlen(s) / 2;
    char *o = malloc(n + 1);
    if (!o) return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        sscanf(s + 2 * i, "%2x", &v);
        o[i] = (char)v;
    }
    o[n] = 0;
    return o;
}

static void kw_text(kw *w, const char *s) { kw_raw(w, s, strlen(s)); }

/* Format: one topic per line: name TAB partitions (TAB key=value)*  */
void meta_save_topics(broker *b, meta_done_fn done, void *arg)
{
    kw w;
    kw_init(&w, 256u << 20);
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
    meta_submit(b, "topics", (char *)w.d, w.len, done, arg);
}

/* Format: group TAB topic TAB partition TAB offset TAB hex(metadata) */
void meta_save_offsets(broker *b, meta_done_fn done, void *arg)
{
    kw w;
    kw_init(&w, 1u << 30);
    for (bgroup *g = group_first(b); g; g = group_next(g)) {
        for (committed *c = group_offsets(g); c; c = c->next) {
            char num[64];
            hex(&w, group_id(g));
            kw_text(&w, "\t");
            kw_text(&w, c->topic);
            snprintf(num, sizeof num, "\t%d\t%lld\t", c->partition, (long long)c->offset);
            kw_text(&w, num);
            hex(&w, c->metadata ? c->metadata : "");
            kw_text(&w, "\n");
        }
    }
    meta_submit(b, "offsets", (char *)w.d, w.len, done, arg);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    kw w;
    kw_init(&w, 1u << 30);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) kw_raw(&w, buf, n);
    fclose(f);
    kw_raw(&w, "", 1);
    return (char *)w.d;
}

/* Startup, loop thread (before serving). */
int meta_load(broker *b, char *err, size_t errlen)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/topics", b->meta_dir);
    char *data = slurp(path);
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
    data = slurp(path);
    size_t count = 0;
    for (char *line = data ? strtok(data, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        char *f[5] = {0};
        char *save = NULL;
        f[0] = strtok_r(line, "\t", &save);
        for (int i = 1; i < 5; i++) f[i] = strtok_r(NULL, "\t", &save);
        if (!f[0] || !f[1] || !f[2] || !f[3]) continue;
        char *gid = unhex(f[0]);
        char *md = unhex(f[4] ? f[4] : "");
        bgroup *g = gid ? group_find(b, gid, 1) : NULL;
        if (g) group_set_offset(g, f[1], atoi(f[2]), strtoll(f[3], NULL, 10), md);
        free(gid);
        free(md);
        count++;
    }
    free(data);
    if (count) blog_info("loaded %zu committed offsets", count);
    return 0;
}
