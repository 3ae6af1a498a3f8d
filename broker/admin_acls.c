/*
 * admin_acls.c — the broker's authorizer (acl.h, broker half): settings,
 * where the bindings live, CreateAcls/DescribeAcls/DeleteAcls and the checks
 * every handler makes.
 *
 * Without authorizer.class.name nothing here refuses anything (acl_check is
 * 1, AuthorizedOperations are all) and the ACL APIs answer
 * SECURITY_DISABLED, as Kafka without an authorizer.
 *
 * Where the bindings live:
 *  - a single node: <log.dirs>/.broker/acls, a "# tierbroker acls v1" line
 *    then one JSON record per line (acl.h's format), rewritten whole on the
 *    meta pool (tmp + fsync + rename + fsync dir) and read at startup. A
 *    change is applied in memory at once (later requests see it), answered
 *    once the file is durable; a failed write takes the change back out and
 *    answers KAFKA_STORAGE_ERROR.
 *  - a cluster: one etcd key per binding below the prefix (acls/..., the
 *    key from acl_entry_key, the value the same JSON record), written in
 *    txns on the cluster pool and answered once etcd acknowledged them; every
 *    broker (this one too) applies them from its watch, so a binding made
 *    through one broker is enforced by all.
 *
 * Thread: loop, except the jobs' `run` (meta or cluster pool), which touch
 * only their job.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "acl.h"
#include "broker.h"
#include "cluster_internal.h"

#define ACL_FILE_HEADER "# tierbroker acls v1\n"
/* Hard maximum of bindings (the file, a DescribeAcls answer stay bounded). */
#define ACL_MAX_BINDINGS 100000
/* etcd's default --max-txn-ops is 128. */
#define ACL_TXN_OPS 64

typedef struct bacl {
    int enabled;
    acl_set set;
    char *super_users;
    acl_policy pol;
    char path[1100];
} bacl;

static const char *const g_aliases[] = {
    "kafka.security.authorizer.AclAuthorizer",
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
};

/* ---------------------------------------------------------------- file */

static char *acl_file_render(const acl_set *s, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    n = (size_t)snprintf(out, cap, "%s", ACL_FILE_HEADER);
    for (size_t i = 0; i < s->n; i++) {
        char *j = acl_entry_json(&s->v[i]);
        if (!j) goto fail;
        size_t jl = strlen(j);
        if (n + jl + 2 > cap) {
            while (n + jl + 2 > cap) cap *= 2;
            char *o = realloc(out, cap);
            if (!o) {
                free(j);
                goto fail;
            }
            out = o;
        }
        memcpy(out + n, j, jl);
        n += jl;
        out[n++] = '\n';
        free(j);
    }
    out[n] = 0;
    *len = n;
    return out;
fail:
    free(out);
    return NULL;
}

static int acl_file_load(bacl *a, char *err, size_t errlen)
{
    FILE *f = fopen(a->path, "r");
    if (!f) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "cannot read %s: %s", a->path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0, rc = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        lineno++;
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (!n || line[0] == '#') continue;
        acl_entry e;
        const char *why;
        if (acl_entry_from_json(line, (size_t)n, &e, &why) != 0) {
            snprintf(err, errlen, "%s line %d: %s (fix or remove the line)", a->path, lineno, why);
            rc = -1;
            break;
        }
        int added = a->set.n < ACL_MAX_BINDINGS ? acl_set_add(&a->set, &e) : -1;
        acl_entry_free(&e);
        if (added < 0) {
            snprintf(err, errlen, "%s: more than %d bindings or out of memory", a->path,
                     ACL_MAX_BINDINGS);
            rc = -1;
            break;
        }
    }
    free(line);
    fclose(f);
    return rc;
}

typedef struct acl_change acl_change;
typedef void (*acl_change_fn)(broker *b, acl_change *ch);

/* One CreateAcls or DeleteAcls in flight: the bindings it adds or removes
 * (each marked whether it changed memory), the file's bytes or the etcd
 * ops, the reply. */
struct acl_change {
    bjob j;
    broker *b;
    reply r;
    int deleting;
    acl_entry *v;   /* the bindings added or removed */
    int *changed;   /* v[i] was new (create) or present (delete) */
    size_t n;
    char *data;     /* single node: the file */
    size_t len;
    char path[1100];
    int ok;
    char err[512];
    acl_change_fn answer; /* on the loop once durable (or failed) */
    void *ctx;            /* the handler's answer state */
};

static void change_free(acl_change *ch)
{
    for (size_t i = 0; i < ch->n; i++) acl_entry_free(&ch->v[i]);
    free(ch->v);
    free(ch->changed);
    free(ch->data);
    free(ch);
}

static void file_write_run(bjob *j)
{
    acl_change *ch = (acl_change *)j;
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp", ch->path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(ch->err, sizeof ch->err, "open %s: %s", tmp, strerror(errno));
        return;
    }
    const char *p = ch->data;
    size_t left = ch->len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            snprintf(ch->err, sizeof ch->err, "write %s: %s", tmp, strerror(errno));
            close(fd);
            unlink(tmp);
            return;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        snprintf(ch->err, sizeof ch->err, "fsync %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return;
    }
    if (rename(tmp, ch->path) != 0) {
        snprintf(ch->err, sizeof ch->err, "rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return;
    }
    char dir[1100];
    snprintf(dir, sizeof dir, "%s", ch->path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    ch->ok = 1;
}

/* Applies ch to memory (forward = 1) or takes it back (0). */
static void change_apply(bacl *a, acl_change *ch, int forward)
{
    for (size_t i = 0; i < ch->n; i++) {
        int add = ch->deleting ? !forward : forward;
        if (forward) {
            int rc = add ? acl_set_add(&a->set, &ch->v[i]) : acl_set_remove(&a->set, &ch->v[i]);
            ch->changed[i] = rc > 0;
        } else if (ch->changed[i]) {
            if (add)
                acl_set_add(&a->set, &ch->v[i]);
            else
                acl_set_remove(&a->set, &ch->v[i]);
        }
    }
}

static void change_done(bjob *j)
{
    acl_change *ch = (acl_change *)j;
    broker *b = ch->b;
    if (!b->acl) {
        ch->ok = 0;
        snprintf(ch->err, sizeof ch->err, "shutting down");
    } else if (!b->cluster_mode && !ch->ok) {
        blog_error("ACLs not saved, change taken back: %s", ch->err);
        change_apply(b->acl, ch, 0);
    } else if (b->cluster_mode && ch->ok) {
        change_apply(b->acl, ch, 1); /* the watch brings the same keys: idempotent */
    } else if (b->cluster_mode) {
        blog_error("ACLs not written to etcd: %s", ch->err);
    }
    ch->answer(b, ch);
    change_free(ch);
}

/* etcd: each binding's key put (create) or deleted, ACL_TXN_OPS per txn.
 * Cluster pool. */
static void etcd_write_run(bjob *j)
{
    acl_change *ch = (acl_change *)j;
    bcluster *c = ch->b->cluster;
    if (!c) {
        snprintf(ch->err, sizeof ch->err, "not registered in the cluster yet");
        return;
    }
    ts_etcd_op ops[ACL_TXN_OPS];
    char *keys[ACL_TXN_OPS], *vals[ACL_TXN_OPS];
    for (size_t i = 0; i < ch->n;) {
        size_t k = 0;
        for (; k < ACL_TXN_OPS && i < ch->n; k++, i++) {
            char rel[4 * ACL_MAX_FIELD * 3 + 128];
            keys[k] = vals[k] = NULL;
            if (acl_entry_key(&ch->v[i], rel, sizeof rel) != 0) {
                snprintf(ch->err, sizeof ch->err, "binding too long for an etcd key");
                goto out;
            }
            size_t kl = c->prefix_len + strlen(rel) + 1;
            keys[k] = malloc(kl);
            if (keys[k]) snprintf(keys[k], kl, "%s%s", c->prefix, rel);
            vals[k] = ch->deleting ? NULL : acl_entry_json(&ch->v[i]);
            memset(&ops[k], 0, sizeof ops[k]);
            ops[k].type = ch->deleting ? TS_ETCD_OP_DELETE : TS_ETCD_OP_PUT;
            ops[k].key = keys[k];
            ops[k].key_len = keys[k] ? strlen(keys[k]) : 0;
            ops[k].value = vals[k];
            ops[k].value_len = vals[k] ? strlen(vals[k]) : 0;
            if (!keys[k] || (!ch->deleting && !vals[k])) {
                snprintf(ch->err, sizeof ch->err, "out of memory");
                k++;
                goto out;
            }
        }
        ts_etcd_txn_result r;
        char err[400] = "";
        ts_etcd_status st = ts_etcd_txn(c->etcd, NULL, 0, ops, k, NULL, 0, &r, err, sizeof err);
        if (st == TS_ETCD_OK) ts_etcd_txn_result_free(&r);
        for (size_t x = 0; x < k; x++) {
            free(keys[x]);
            free(vals[x]);
        }
        if (st != TS_ETCD_OK) {
            snprintf(ch->err, sizeof ch->err, "etcd: %s", err);
            return;
        }
        continue;
    out:
        for (size_t x = 0; x < k; x++) {
            free(keys[x]);
            free(vals[x]);
        }
        return;
    }
    ch->ok = 1;
}

/* Makes ch durable, then ch->answer runs on the loop. */
static void change_submit(broker *b, acl_change *ch)
{
    bacl *a = b->acl;
    ch->b = b;
    ch->j.done = change_done;
    if (b->cluster_mode) {
        for (size_t i = 0; i < ch->n; i++) ch->changed[i] = 1;
        ch->j.run = etcd_write_run;
        if (!b->cluster || !b->cluster->pool) {
            snprintf(ch->err, sizeof ch->err, "not registered in the cluster yet");
            ch->answer(b, ch);
            change_free(ch);
            return;
        }
        bpool_submit(b->cluster->pool, &ch->j);
        return;
    }
    change_apply(a, ch, 1);
    snprintf(ch->path, sizeof ch->path, "%s", a->path);
    ch->j.run = file_write_run;
    ch->data = acl_file_render(&a->set, &ch->len);
    if (!ch->data) {
        snprintf(ch->err, sizeof ch->err, "out of memory");
        change_apply(a, ch, 0);
        ch->answer(b, ch);
        change_free(ch);
        return;
    }
    bpool_submit(b->meta_pool, &ch->j);
}

/* ------------------------------------------------------------ settings */

int acl_init(broker *b, char *err, size_t errlen)
{
    const char *cls = bconfig_get(&b->cfg, "authorizer.class.name");
    const char *every = bconfig_get(&b->cfg, "allow.everyone.if.no.acl.found");
    if (strcmp(every, "true") && strcmp(every, "false")) {
        snprintf(err, errlen, "allow.everyone.if.no.acl.found must be true or false, not '%s'",
                 every);
        return -1;
    }
    if (!*cls) return 0; /* no authorizer: b->acl stays NULL */
    int known = 0;
    for (size_t i = 0; i < sizeof g_aliases / sizeof *g_aliases; i++)
        known |= !strcmp(cls, g_aliases[i]);
    if (!known) {
        snprintf(err, errlen,
                 "authorizer.class.name=%s is not available: tierbroker has one built-in ACL "
                 "authorizer, named kafka.security.authorizer.AclAuthorizer or "
                 "org.apache.kafka.metadata.authorizer.StandardAuthorizer (or leave it empty "
                 "for no authorization)",
                 cls);
        return -1;
    }
    bacl *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    acl_set_init(&a->set);
    a->enabled = 1;
    a->super_users = strdup(bconfig_get(&b->cfg, "super.users"));
    a->pol.super_users = a->super_users;
    a->pol.allow_if_none = !strcmp(every, "true");
    snprintf(a->path, sizeof a->path, "%s/acls", b->meta_dir);
    b->acl = a;
    if (!b->cluster_mode && acl_file_load(a, err, errlen) != 0) return -1;
    blog_info("authorizer %s: %zu ACL bindings%s, allow.everyone.if.no.acl.found=%s", cls,
              a->set.n, b->cluster_mode ? " (from etcd once registered)" : "", every);
    return 0;
}

void acl_free(broker *b)
{
    bacl *a = b->acl;
    if (!a) return;
    b->acl = NULL;
    acl_set_free(&a->set);
    free(a->super_users);
    free(a);
}

int acl_enabled(const broker *b) { return b->acl != NULL; }

/* ------------------------------------------------------------- checks */

/* "User:<principal>" and the peer's address without its port. */
static void who(const reply *r, char *principal, size_t pl, char *host, size_t hl)
{
    snprintf(principal, pl, "User:%s", r->c ? conn_principal(r->c) : "ANONYMOUS");
    snprintf(host, hl, "%s", r->c ? conn_peer(r->c) : "");
    char *colon = strrchr(host, ':');
    if (colon) *colon = 0;
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        memmove(host, host + 1, n - 2);
        host[n - 2] = 0;
    }
}

static int check(broker *b, const reply *r, int op, int rtype, const char *name, int log)
{
    bacl *a = b->acl;
    if (!a) return 1;
    char principal[300], host[300];
    who(r, principal, sizeof principal, host, sizeof host);
    if (rtype == ACL_RES_CLUSTER) name = ACL_CLUSTER_NAME;
    int ok = acl_decide(&a->set, &a->pol, principal, host, op, rtype, name ? name : "");
    if (!ok && log)
        blog_warn("authorization failed: principal %s from host %s may not %s %s '%s' (%s)",
                  principal, host, acl_op_name(op), acl_rtype_name(rtype), name ? name : "",
                  kafka_api_name(r->hdr.api_key));
    return ok;
}

int acl_check(broker *b, const reply *r, int op, int rtype, const char *name)
{
    return check(b, r, op, rtype, name, 1);
}

int acl_check_quiet(broker *b, const reply *r, int op, int rtype, const char *name)
{
    return check(b, r, op, rtype, name, 0);
}

int acl_check_any(broker *b, const reply *r, int op, int rtype)
{
    bacl *a = b->acl;
    if (!a) return 1;
    char principal[300], host[300];
    who(r, principal, sizeof principal, host, sizeof host);
    return acl_decide_any(&a->set, &a->pol, principal, host, op, rtype);
}

int32_t acl_authorized_ops(broker *b, const reply *r, int rtype, const char *name, int32_t ops)
{
    if (!b->acl) return ops;
    int32_t out = 0;
    for (int op = ACL_OP_READ; op <= ACL_OP_IDEMPOTENT_WRITE; op++)
        if ((ops & (1 << op)) && check(b, r, op, rtype, name, 0)) out |= 1 << op;
    return out;
}

/* ----------------------------------------------------------- the APIs */

static const char *const NO_AUTHORIZER =
    "no authorizer is configured on this broker (authorizer.class.name)";

static void binding_from_wire(const kafka_AclBinding *w, acl_entry *e)
{
    e->rtype = w->resource_type;
    e->ptype = w->pattern_type;
    e->op = w->operation;
    e->perm = w->permission_type;
    e->name = (char *)w->resource_name;
    e->principal = (char *)w->principal;
    e->host = (char *)w->host;
}

typedef struct create_ctx {
    int32_t n;
    int16_t *err;
    const char **msg; /* static strings */
} create_ctx;

static void create_answer(broker *b, acl_change *ch)
{
    create_ctx *x = ch->ctx;
    int f = ch->r.hdr.flexible;
    kw w;
    reply_begin(&ch->r, &w);
    kw_i32(&w, 0);
    kw_array(&w, f, x->n);
    for (int32_t i = 0; i < x->n; i++) {
        int16_t e = x->err[i];
        const char *m = x->msg[i];
        if (e == KAFKA_NONE && !ch->ok) {
            e = b->cluster_mode ? KAFKA_UNKNOWN_SERVER_ERROR : KAFKA_KAFKA_STORAGE_ERROR;
            m = ch->err;
        }
        kw_i16(&w, e);
        kw_str(&w, f, m);
        kw_tags(&w, f);
    }
    kw_tags(&w, f);
    reply_end(b, &ch->r, &w);
    free(x->err);
    free(x->msg);
    free(x);
}

static acl_change *change_new(const reply *r, size_t n, int deleting)
{
    acl_change *ch = calloc(1, sizeof *ch);
    if (!ch) return NULL;
    ch->r = *r;
    ch->deleting = deleting;
    ch->v = calloc(n ? n : 1, sizeof *ch->v);
    ch->changed = calloc(n ? n : 1, sizeof *ch->changed);
    if (!ch->v || !ch->changed) {
        change_free(ch);
        return NULL;
    }
    return ch;
}

static int entry_copy(acl_entry *dst, const acl_entry *src)
{
    *dst = *src;
    dst->name = strdup(src->name);
    dst->principal = strdup(src->principal);
    dst->host = strdup(src->host);
    if (dst->name && dst->principal && dst->host) return 0;
    acl_entry_free(dst);
    return -1;
}

/* Answers without a change: every result err (msg). */
static void create_refuse(broker *b, reply *r, const kafka_CreateAclsRequest *q, int16_t err,
                          const char *msg)
{
    int f = r->hdr.flexible;
    kw w;
    reply_begin(r, &w);
    kw_i32(&w, 0);
    kw_array(&w, f, q->ncreations);
    for (int32_t i = 0; i < q->ncreations; i++) {
        kw_i16(&w, err);
        kw_str(&w, f, msg);
        kw_tags(&w, f);
    }
    kw_tags(&w, f);
    reply_end(b, r, &w);
}

void handle_CreateAcls(broker *b, reply *r, kafka_request *q)
{
    const kafka_CreateAclsRequest *cq = &q->u.create_acls;
    if (!b->acl) {
        create_refuse(b, r, cq, KAFKA_SECURITY_DISABLED, NO_AUTHORIZER);
        return;
    }
    if (!acl_check(b, r, ACL_OP_ALTER, ACL_RES_CLUSTER, NULL)) {
        create_refuse(b, r, cq, KAFKA_CLUSTER_AUTHORIZATION_FAILED,
                      "ALTER on the cluster is needed to create ACLs");
        return;
    }
    acl_change *ch = change_new(r, (size_t)cq->ncreations, 0);
    create_ctx *x = calloc(1, sizeof *x);
    if (x) {
        x->n = cq->ncreations;
        x->err = calloc((size_t)(x->n ? x->n : 1), sizeof *x->err);
        x->msg = calloc((size_t)(x->n ? x->n : 1), sizeof *x->msg);
    }
    if (!ch || !x || !x->err || !x->msg) {
        if (x) {
            free(x->err);
            free(x->msg);
            free(x);
        }
        if (ch) change_free(ch);
        create_refuse(b, r, cq, KAFKA_UNKNOWN_SERVER_ERROR, "out of memory");
        return;
    }
    for (int32_t i = 0; i < cq->ncreations; i++) {
        acl_entry e;
        const char *why;
        binding_from_wire(&cq->creations[i], &e);
        if (acl_entry_valid(&e, &why) != 0) {
            x->err[i] = KAFKA_INVALID_REQUEST;
            x->msg[i] = why;
        } else if (b->acl->set.n + ch->n >= ACL_MAX_BINDINGS) {
            x->err[i] = KAFKA_POLICY_VIOLATION;
            x->msg[i] = "too many ACL bindings on this broker";
        } else if (entry_copy(&ch->v[ch->n], &e) != 0) {
            x->err[i] = KAFKA_UNKNOWN_SERVER_ERROR;
            x->msg[i] = "out of memory";
        } else {
            ch->n++;
        }
    }
    ch->ctx = x;
    ch->answer = create_answer;
    for (size_t i = 0; i < ch->n; i++) {
        char *j = acl_entry_json(&ch->v[i]);
        blog_info("ACL created by User:%s: %s", conn_principal(r->c), j ? j : "?");
        free(j);
    }
    if (!ch->n) { /* nothing valid: nothing to write */
        ch->ok = 1;
        create_answer(b, ch);
        change_free(ch);
        return;
    }
    change_submit(b, ch);
}

/* Writes one DescribeAcls/DeleteAcls binding's resource-side fields. */
static void write_resource(kw *w, int v, int f, const acl_entry *e)
{
    kw_i8(w, e->rtype);
    kw_str(w, f, e->name);
    if (v >= 1) kw_i8(w, e->ptype);
}

static void write_who(kw *w, int f, const acl_entry *e)
{
    kw_str(w, f, e->principal);
    kw_str(w, f, e->host);
    kw_i8(w, e->op);
    kw_i8(w, e->perm);
}

/* v0 cannot carry a pattern type: only LITERAL bindings are shown there. */
static int visible(int v, const acl_entry *e) { return v >= 1 || e->ptype == ACL_PAT_LITERAL; }

void handle_DescribeAcls(broker *b, reply *r, kafka_request *q)
{
    int v = r->hdr.api_version, f = r->hdr.flexible;
    acl_entry flt;
    binding_from_wire(&q->u.describe_acls.filter, &flt);
    const char *why = NULL;
    int16_t err = KAFKA_NONE;
    if (!b->acl) {
        err = KAFKA_SECURITY_DISABLED;
        why = NO_AUTHORIZER;
    } else if (!acl_check(b, r, ACL_OP_DESCRIBE, ACL_RES_CLUSTER, NULL)) {
        err = KAFKA_CLUSTER_AUTHORIZATION_FAILED;
        why = "DESCRIBE on the cluster is needed to describe ACLs";
    } else if (acl_filter_valid(&flt, &why) != 0) {
        err = KAFKA_INVALID_REQUEST;
    }
    kw w;
    reply_begin(r, &w);
    kw_i32(&w, 0);
    kw_i16(&w, err);
    kw_str(&w, f, why);
    if (err != KAFKA_NONE) {
        kw_array(&w, f, 0);
        kw_tags(&w, f);
        reply_end(b, r, &w);
        return;
    }
    /* One Resources entry per distinct (type, name, pattern), in first-seen order. */
    const acl_set *s = &b->acl->set;
    char *sel = calloc(s->n ? s->n : 1, 1);
    if (!sel) {
        kw_array(&w, f, 0);
        kw_tags(&w, f);
        reply_end(b, r, &w);
        return;
    }
    for (size_t i = 0; i < s->n; i++) sel[i] = visible(v, &s->v[i]) && acl_filter_matches(&flt, &s->v[i]);
    int32_t nres = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (sel[i] != 1) continue;
        nres++;
        for (size_t k = i + 1; k < s->n; k++)
            if (sel[k] == 1 && s->v[k].rtype == s->v[i].rtype &&
                s->v[k].ptype == s->v[i].ptype && !strcmp(s->v[k].name, s->v[i].name))
                sel[k] = 2; /* listed with i */
    }
    kw_array(&w, f, nres);
    for (size_t i = 0; i < s->n; i++) {
        if (sel[i] != 1) continue;
        write_resource(&w, v, f, &s->v[i]);
        int32_t nacl = 1;
        for (size_t k = i + 1; k < s->n; k++)
            nacl += sel[k] == 2 && s->v[k].rtype == s->v[i].rtype &&
                    s->v[k].ptype == s->v[i].ptype && !strcmp(s->v[k].name, s->v[i].name);
        kw_array(&w, f, nacl);
        for (size_t k = i; k < s->n; k++) {
            if (k != i && !(sel[k] == 2 && s->v[k].rtype == s->v[i].rtype &&
                            s->v[k].ptype == s->v[i].ptype && !strcmp(s->v[k].name, s->v[i].name)))
                continue;
            write_who(&w, f, &s->v[k]);
            kw_tags(&w, f);
        }
        kw_tags(&w, f);
    }
    free(sel);
    kw_tags(&w, f);
    reply_end(b, r, &w);
}

typedef struct delete_ctx {
    int32_t nfilters;
    int16_t *err;       /* per filter */
    const char **msg;
    size_t *first, *count; /* the filter's bindings in ch->v */
} delete_ctx;

static void delete_ctx_free(delete_ctx *x)
{
    if (!x) return;
    free(x->err);
    free(x->msg);
    free(x->first);
    free(x->count);
    free(x);
}

static void delete_answer(broker *b, acl_change *ch)
{
    delete_ctx *x = ch->ctx;
    int v = ch->r.hdr.api_version, f = ch->r.hdr.flexible;
    kw w;
    reply_begin(&ch->r, &w);
    kw_i32(&w, 0);
    kw_array(&w, f, x->nfilters);
    for (int32_t i = 0; i < x->nfilters; i++) {
        int16_t e = x->err[i];
        const char *m = x->msg[i];
        if (e == KAFKA_NONE && !ch->ok && x->count[i]) {
            e = b->cluster_mode ? KAFKA_UNKNOWN_SERVER_ERROR : KAFKA_KAFKA_STORAGE_ERROR;
            m = ch->err;
        }
        kw_i16(&w, e);
        kw_str(&w, f, m);
        int32_t nm = e == KAFKA_NONE ? (int32_t)x->count[i] : 0;
        kw_array(&w, f, nm);
        for (int32_t k = 0; k < nm; k++) {
            const acl_entry *a = &ch->v[x->first[i] + (size_t)k];
            kw_i16(&w, KAFKA_NONE);
            kw_str(&w, f, NULL);
            write_resource(&w, v, f, a);
            write_who(&w, f, a);
            kw_tags(&w, f);
        }
        kw_tags(&w, f);
    }
    kw_tags(&w, f);
    reply_end(b, &ch->r, &w);
    delete_ctx_free(x);
}

void handle_DeleteAcls(broker *b, reply *r, kafka_request *q)
{
    const kafka_DeleteAclsRequest *dq = &q->u.delete_acls;
    int16_t all_err = KAFKA_NONE;
    const char *all_msg = NULL;
    if (!b->acl) {
        all_err = KAFKA_SECURITY_DISABLED;
        all_msg = NO_AUTHORIZER;
    } else if (!acl_check(b, r, ACL_OP_ALTER, ACL_RES_CLUSTER, NULL)) {
        all_err = KAFKA_CLUSTER_AUTHORIZATION_FAILED;
        all_msg = "ALTER on the cluster is needed to delete ACLs";
    }
    size_t nf = (size_t)(dq->nfilters > 0 ? dq->nfilters : 0);
    size_t total = 0;
    if (!all_err)
        for (size_t i = 0; i < nf; i++) {
            acl_entry flt;
            binding_from_wire(&dq->filters[i], &flt);
            for (size_t k = 0; k < b->acl->set.n; k++)
                total += visible(r->hdr.api_version, &b->acl->set.v[k]) &&
                         acl_filter_matches(&flt, &b->acl->set.v[k]);
        }
    acl_change *ch = change_new(r, total, 1);
    delete_ctx *x = calloc(1, sizeof *x);
    if (x) {
        x->nfilters = (int32_t)nf;
        x->err = calloc(nf ? nf : 1, sizeof *x->err);
        x->msg = calloc(nf ? nf : 1, sizeof *x->msg);
        x->first = calloc(nf ? nf : 1, sizeof *x->first);
        x->count = calloc(nf ? nf : 1, sizeof *x->count);
    }
    if (!ch || !x || !x->err || !x->msg || !x->first || !x->count) {
        delete_ctx_free(x);
        if (ch) change_free(ch);
        all_err = KAFKA_UNKNOWN_SERVER_ERROR;
        all_msg = "out of memory";
        int f = r->hdr.flexible;
        kw w;
        reply_begin(r, &w);
        kw_i32(&w, 0);
        kw_array(&w, f, (int32_t)nf);
        for (size_t i = 0; i < nf; i++) {
            kw_i16(&w, all_err);
            kw_str(&w, f, all_msg);
            kw_array(&w, f, 0);
            kw_tags(&w, f);
        }
        kw_tags(&w, f);
        reply_end(b, r, &w);
        return;
    }
    ch->ctx = x;
    ch->answer = delete_answer;
    for (size_t i = 0; i < nf; i++) {
        acl_entry flt;
        const char *why;
        binding_from_wire(&dq->filters[i], &flt);
        x->first[i] = ch->n;
        if (all_err) {
            x->err[i] = all_err;
            x->msg[i] = all_msg;
            continue;
        }
        if (acl_filter_valid(&flt, &why) != 0) {
            x->err[i] = KAFKA_INVALID_REQUEST;
            x->msg[i] = why;
            continue;
        }
        for (size_t k = 0; k < b->acl->set.n && ch->n < total; k++) {
            const acl_entry *e = &b->acl->set.v[k];
            if (!visible(r->hdr.api_version, e) || !acl_filter_matches(&flt, e)) continue;
            if (entry_copy(&ch->v[ch->n], e) != 0) {
                x->err[i] = KAFKA_UNKNOWN_SERVER_ERROR;
                x->msg[i] = "out of memory";
                break;
            }
            ch->n++;
            x->count[i]++;
        }
    }
    for (size_t i = 0; i < ch->n; i++) {
        char *j = acl_entry_json(&ch->v[i]);
        blog_info("ACL deleted by User:%s: %s", conn_principal(r->c), j ? j : "?");
        free(j);
    }
    if (!ch->n) {
        ch->ok = 1;
        delete_answer(b, ch);
        change_free(ch);
        return;
    }
    change_submit(b, ch);
}

/* ------------------------------------------------------------- cluster */

void acl_cluster_snapshot_begin(broker *b)
{
    if (!b->acl) return;
    acl_set_free(&b->acl->set);
    acl_set_init(&b->acl->set);
}

void acl_cluster_apply(broker *b, const char *key, const char *value)
{
    bacl *a = b->acl;
    if (!a) return;
    if (value) {
        acl_entry e;
        const char *why;
        if (acl_entry_from_json(value, strlen(value), &e, &why) != 0) {
            blog_warn("cluster: etcd key %s is not an ACL binding (%s): ignored", key, why);
            return;
        }
        if (a->set.n < ACL_MAX_BINDINGS && acl_set_add(&a->set, &e) < 0)
            blog_error("cluster: ACL %s: out of memory", key);
        acl_entry_free(&e);
        return;
    }
    char k[4 * ACL_MAX_FIELD * 3 + 128];
    for (size_t i = 0; i < a->set.n; i++)
        if (acl_entry_key(&a->set.v[i], k, sizeof k) == 0 && !strcmp(k, key)) {
            acl_entry e;
            if (entry_copy(&e, &a->set.v[i]) != 0) return;
            acl_set_remove(&a->set, &e);
            acl_entry_free(&e);
            return;
        }
}
