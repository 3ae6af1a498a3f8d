/*
 * acl.c — the pure half of acl.h: the binding set, Kafka's matching rules
 * and the one record format of a binding.
 *
 * Kafka's AclAuthorizer decides in three steps, and so does acl_decide:
 * a super user is allowed; a resource no binding applies to (any principal,
 * any operation) gets allow.everyone.if.no.acl.found; otherwise a matching
 * DENY wins over every ALLOW. "Applies to" is a LITERAL binding of the same
 * name or of the wildcard "*", or a PREFIXED one whose name starts the
 * resource's. The set is an array with a hash index on (type, pattern,
 * name): a check looks up the name, "*" and every prefix of the name (one
 * incremental FNV-1a pass), so its cost grows with the name's length and the
 * bindings that apply, not with every binding stored (Metadata checks each
 * topic). Without the index (out of memory) the same rules run over the
 * whole array.
 *
 * Thread: any (no shared state); the broker uses it on the loop.
 */
#include "acl.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void acl_set_init(acl_set *s) { memset(s, 0, sizeof *s); }

void acl_entry_free(acl_entry *e)
{
    if (!e) return;
    free(e->name);
    free(e->principal);
    free(e->host);
    e->name = e->principal = e->host = NULL;
}

void acl_set_free(acl_set *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) acl_entry_free(&s->v[i]);
    free(s->v);
    free(s->bucket);
    free(s->next);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------- index */

#define FNV_OFFSET 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL

static uint64_t hash_seed(int rtype, int ptype)
{
    uint64_t h = FNV_OFFSET;
    h = (h ^ (uint8_t)rtype) * FNV_PRIME;
    return (h ^ (uint8_t)ptype) * FNV_PRIME;
}

static uint64_t hash_more(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * FNV_PRIME;
    return h;
}

static uint64_t entry_hash(const acl_entry *e)
{
    return hash_more(hash_seed(e->rtype, e->ptype), e->name, strlen(e->name));
}

static void index_insert(acl_set *s, size_t i)
{
    size_t b = (size_t)(entry_hash(&s->v[i]) & (s->nbuckets - 1));
    s->next[i] = s->bucket[b];
    s->bucket[b] = (uint32_t)(i + 1);
}

/* Rebuilds the index for the current bindings; without memory the set
 * keeps working unindexed. */
static void index_rebuild(acl_set *s)
{
    free(s->bucket);
    free(s->next);
    s->bucket = NULL;
    s->next = NULL;
    size_t nb = 64;
    while (nb < 2 * s->cap) nb *= 2;
    s->bucket = calloc(nb, sizeof *s->bucket);
    s->next = calloc(s->cap ? s->cap : 1, sizeof *s->next);
    if (!s->bucket || !s->next) {
        free(s->bucket);
        free(s->next);
        s->bucket = NULL;
        s->next = NULL;
        return;
    }
    s->nbuckets = nb;
    for (size_t i = 0; i < s->n; i++) index_insert(s, i);
}

static int str_eq(const char *a, const char *b)
{
    if (!a || !b) return a == b;
    return !strcmp(a, b);
}

int acl_entry_equal(const acl_entry *a, const acl_entry *b)
{
    return a->rtype == b->rtype && a->ptype == b->ptype && a->op == b->op &&
           a->perm == b->perm && str_eq(a->name, b->name) && str_eq(a->principal, b->principal) &&
           str_eq(a->host, b->host);
}

int acl_set_add(acl_set *s, const acl_entry *e)
{
    for (size_t i = 0; i < s->n; i++)
        if (acl_entry_equal(&s->v[i], e)) return 0;
    int grown = 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        acl_entry *v = realloc(s->v, cap * sizeof *v);
        if (!v) return -1;
        s->v = v;
        s->cap = cap;
        grown = 1;
    }
    acl_entry c = *e;
    c.name = strdup(e->name ? e->name : "");
    c.principal = strdup(e->principal ? e->principal : "");
    c.host = strdup(e->host ? e->host : "");
    if (!c.name || !c.principal || !c.host) {
        acl_entry_free(&c);
        return -1;
    }
    s->v[s->n++] = c;
    if (grown || !s->bucket)
        index_rebuild(s);
    else
        index_insert(s, s->n - 1);
    return 1;
}

int acl_set_remove(acl_set *s, const acl_entry *e)
{
    for (size_t i = 0; i < s->n; i++)
        if (acl_entry_equal(&s->v[i], e)) {
            acl_entry_free(&s->v[i]);
            memmove(&s->v[i], &s->v[i + 1], (s->n - i - 1) * sizeof *s->v);
            s->n--;
            index_rebuild(s); /* indexes moved; removals are rare (DeleteAcls) */
            return 1;
        }
    return 0;
}

/* ------------------------------------------------------------- names */

const char *acl_op_name(int op)
{
    static const char *n[] = {"UNKNOWN", "ANY",   "ALL",    "READ",     "WRITE",
                              "CREATE",  "DELETE", "ALTER", "DESCRIBE", "CLUSTER_ACTION",
                              "DESCRIBE_CONFIGS", "ALTER_CONFIGS", "IDEMPOTENT_WRITE"};
    return op >= 0 && op < (int)(sizeof n / sizeof *n) ? n[op] : "UNKNOWN";
}

const char *acl_rtype_name(int t)
{
    static const char *n[] = {"UNKNOWN", "ANY", "TOPIC", "GROUP", "CLUSTER", "TRANSACTIONAL_ID"};
    return t >= 0 && t < (int)(sizeof n / sizeof *n) ? n[t] : "UNKNOWN";
}

const char *acl_ptype_name(int t)
{
    static const char *n[] = {"UNKNOWN", "ANY", "MATCH", "LITERAL", "PREFIXED"};
    return t >= 0 && t < (int)(sizeof n / sizeof *n) ? n[t] : "UNKNOWN";
}

const char *acl_perm_name(int t)
{
    static const char *n[] = {"UNKNOWN", "ANY", "DENY", "ALLOW"};
    return t >= 0 && t < (int)(sizeof n / sizeof *n) ? n[t] : "UNKNOWN";
}

static int code_of(const char *(*name)(int), const char *s, int max)
{
    for (int i = 0; s && i <= max; i++)
        if (!strcmp(name(i), s)) return i;
    return -1;
}

/* ---------------------------------------------------------- validity */

static int host_valid(const char *h)
{
    unsigned char buf[16];
    return !strcmp(h, "*") || inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
}

static int principal_valid(const char *p)
{
    return !strncmp(p, "User:", 5) && p[5] && strlen(p) <= ACL_MAX_FIELD;
}

int acl_entry_valid(const acl_entry *e, const char **why)
{
    *why = NULL;
    if (e->rtype < ACL_RES_TOPIC || e->rtype > ACL_RES_TRANSACTIONAL_ID)
        *why = "resource type must be TOPIC, GROUP, CLUSTER or TRANSACTIONAL_ID";
    else if (e->ptype != ACL_PAT_LITERAL && e->ptype != ACL_PAT_PREFIXED)
        *why = "pattern type must be LITERAL or PREFIXED";
    else if (!e->name || !*e->name || strlen(e->name) > ACL_MAX_FIELD)
        *why = "resource name must be non-empty (at most 1024 bytes)";
    else if (e->rtype == ACL_RES_CLUSTER &&
             (e->ptype != ACL_PAT_LITERAL || strcmp(e->name, ACL_CLUSTER_NAME)))
        *why = "the only valid name for the CLUSTER resource is the literal kafka-cluster";
    else if (!e->principal || !principal_valid(e->principal))
        *why = "principal must be User:<name> (User:* for everyone)";
    else if (!e->host || !host_valid(e->host))
        *why = "host must be * or an IP address";
    else if (e->op < ACL_OP_ALL || e->op > ACL_OP_IDEMPOTENT_WRITE)
        *why = "operation must be a concrete operation (not ANY or UNKNOWN)";
    else if (e->perm != ACL_PERM_ALLOW && e->perm != ACL_PERM_DENY)
        *why = "permission type must be ALLOW or DENY";
    return *why ? -1 : 0;
}

int acl_filter_valid(const acl_entry *f, const char **why)
{
    *why = NULL;
    if (f->rtype < ACL_RES_ANY || f->rtype > ACL_RES_TRANSACTIONAL_ID)
        *why = "unknown resource type in the filter";
    else if (f->ptype < ACL_PAT_ANY || f->ptype > ACL_PAT_PREFIXED)
        *why = "unknown pattern type in the filter";
    else if (f->op < ACL_OP_ANY || f->op > ACL_OP_IDEMPOTENT_WRITE)
        *why = "unknown operation in the filter";
    else if (f->perm < ACL_PERM_ANY || f->perm > ACL_PERM_ALLOW)
        *why = "unknown permission type in the filter";
    return *why ? -1 : 0;
}

/* ---------------------------------------------------------- matching */

/* Whether binding e's resource pattern applies to the resource name. */
static int pattern_applies(const acl_entry *e, int rtype, const char *name)
{
    if (e->rtype != rtype) return 0;
    if (e->ptype == ACL_PAT_LITERAL) return !strcmp(e->name, name) || !strcmp(e->name, "*");
    if (e->ptype == ACL_PAT_PREFIXED) return !strncmp(name, e->name, strlen(e->name));
    return 0;
}

int acl_filter_matches(const acl_entry *f, const acl_entry *e)
{
    if (f->rtype != ACL_RES_ANY && f->rtype != e->rtype) return 0;
    switch (f->ptype) {
    case ACL_PAT_ANY:
        if (f->name && strcmp(f->name, e->name)) return 0;
        break;
    case ACL_PAT_MATCH:
        if (f->name && !pattern_applies(e, e->rtype, f->name)) return 0;
        break;
    default:
        if (f->ptype != e->ptype || (f->name && strcmp(f->name, e->name))) return 0;
        break;
    }
    if (f->principal && strcmp(f->principal, e->principal)) return 0;
    if (f->host && strcmp(f->host, e->host)) return 0;
    if (f->op != ACL_OP_ANY && f->op != e->op) return 0;
    if (f->perm != ACL_PERM_ANY && f->perm != e->perm) return 0;
    return 1;
}

int acl_is_super(const acl_policy *p, const char *principal)
{
    if (!p->super_users || !*p->super_users) return 0;
    size_t pl = strlen(principal);
    const char *s = p->super_users;
    while (*s) {
        while (*s == ' ' || *s == ';') s++;
        const char *end = strchr(s, ';');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        size_t t = n;
        while (t && s[t - 1] == ' ') t--;
        if (t == pl && !memcmp(s, principal, pl)) return 1;
        s += n;
    }
    return 0;
}

static int who_matches(const acl_entry *e, const char *principal, const char *host)
{
    return (!strcmp(e->principal, principal) || !strcmp(e->principal, "User:*")) &&
           (!strcmp(e->host, "*") || !strcmp(e->host, host));
}

/* Whether an ALLOW of binding op grants op (Kafka's implied operations). */
static int allow_grants(int bop, int op)
{
    if (bop == ACL_OP_ALL || bop == op) return 1;
    if (op == ACL_OP_DESCRIBE)
        return bop == ACL_OP_READ || bop == ACL_OP_WRITE || bop == ACL_OP_DELETE ||
               bop == ACL_OP_ALTER;
    if (op == ACL_OP_DESCRIBE_CONFIGS) return bop == ACL_OP_ALTER_CONFIGS;
    return 0;
}

/* The running decision over the bindings that apply to the resource:
 * -1 refused by a DENY, else whether any applied and whether one allowed. */
typedef struct verdict {
    int any, allowed, denied;
} verdict;

static void weigh(verdict *v, const acl_entry *e, const char *principal, const char *host,
                  int op)
{
    v->any = 1;
    if (!who_matches(e, principal, host)) return;
    if (e->perm == ACL_PERM_DENY && (e->op == op || e->op == ACL_OP_ALL)) v->denied = 1;
    if (e->perm == ACL_PERM_ALLOW && allow_grants(e->op, op)) v->allowed = 1;
}

/* The bindings of (rtype, ptype, the n bytes of key) hashed h. */
static void weigh_bucket(const acl_set *s, verdict *v, uint64_t h, int rtype, int ptype,
                         const char *key, size_t n, const char *principal, const char *host,
                         int op)
{
    for (uint32_t i = s->bucket[h & (s->nbuckets - 1)]; i && !v->denied; i = s->next[i - 1]) {
        const acl_entry *e = &s->v[i - 1];
        if (e->rtype == rtype && e->ptype == ptype && !strncmp(e->name, key, n) && !e->name[n])
            weigh(v, e, principal, host, op);
    }
}

int acl_decide(const acl_set *s, const acl_policy *p, const char *principal, const char *host,
               int op, int rtype, const char *name)
{
    if (acl_is_super(p, principal)) return 1;
    verdict v = {0, 0, 0};
    if (s->bucket) {
        size_t len = strlen(name);
        uint64_t lit = hash_seed(rtype, ACL_PAT_LITERAL);
        weigh_bucket(s, &v, hash_more(lit, name, len), rtype, ACL_PAT_LITERAL, name, len,
                     principal, host, op);
        if (strcmp(name, "*"))
            weigh_bucket(s, &v, hash_more(lit, "*", 1), rtype, ACL_PAT_LITERAL, "*", 1,
                         principal, host, op);
        uint64_t h = hash_seed(rtype, ACL_PAT_PREFIXED);
        for (size_t k = 1; k <= len && !v.denied; k++) {
            h = hash_more(h, name + k - 1, 1);
            weigh_bucket(s, &v, h, rtype, ACL_PAT_PREFIXED, name, k, principal, host, op);
        }
    } else {
        for (size_t i = 0; i < s->n && !v.denied; i++)
            if (pattern_applies(&s->v[i], rtype, name)) weigh(&v, &s->v[i], principal, host, op);
    }
    if (v.denied) return 0;
    if (!v.any) return p->allow_if_none;
    return v.allowed;
}

/* Whether a DENY of the principal covers every resource allow e grants. */
static int deny_covers(const acl_set *s, const acl_entry *allow, const char *principal,
                       const char *host, int op)
{
    for (size_t i = 0; i < s->n; i++) {
        const acl_entry *d = &s->v[i];
        if (d->perm != ACL_PERM_DENY || d->rtype != allow->rtype) continue;
        if (!who_matches(d, principal, host) || (d->op != op && d->op != ACL_OP_ALL)) continue;
        if (d->ptype == ACL_PAT_LITERAL && !strcmp(d->name, "*")) return 1;
        if (d->ptype == ACL_PAT_PREFIXED && !strncmp(allow->name, d->name, strlen(d->name)))
            return 1;
        if (d->ptype == ACL_PAT_LITERAL && allow->ptype == ACL_PAT_LITERAL &&
            !strcmp(d->name, allow->name))
            return 1;
    }
    return 0;
}

int acl_decide_any(const acl_set *s, const acl_policy *p, const char *principal, const char *host,
                   int op, int rtype)
{
    if (acl_is_super(p, principal)) return 1;
    int any = 0;
    for (size_t i = 0; i < s->n; i++) {
        const acl_entry *e = &s->v[i];
        if (e->rtype != rtype) continue;
        any = 1;
        if (e->perm != ACL_PERM_ALLOW || !who_matches(e, principal, host) ||
            !allow_grants(e->op, op))
            continue;
        if (!deny_covers(s, e, principal, host, op)) return 1;
    }
    return !any && p->allow_if_none;
}

/* ------------------------------------------------------------ records */

char *acl_entry_json(const acl_entry *e)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "resource_type", acl_rtype_name(e->rtype));
    cJSON_AddStringToObject(o, "pattern_type", acl_ptype_name(e->ptype));
    cJSON_AddStringToObject(o, "name", e->name ? e->name : "");
    cJSON_AddStringToObject(o, "principal", e->principal ? e->principal : "");
    cJSON_AddStringToObject(o, "host", e->host ? e->host : "");
    cJSON_AddStringToObject(o, "operation", acl_op_name(e->op));
    cJSON_AddStringToObject(o, "permission", acl_perm_name(e->perm));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static const char *json_str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int acl_entry_from_json(const char *json, size_t len, acl_entry *e, const char **why)
{
    memset(e, 0, sizeof *e);
    *why = "not a JSON object";
    cJSON *o = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(o)) goto fail;
    *why = "a field is missing or unknown";
    int rt = code_of(acl_rtype_name, json_str(o, "resource_type"), ACL_RES_TRANSACTIONAL_ID);
    int pt = code_of(acl_ptype_name, json_str(o, "pattern_type"), ACL_PAT_PREFIXED);
    int op = code_of(acl_op_name, json_str(o, "operation"), ACL_OP_IDEMPOTENT_WRITE);
    int pm = code_of(acl_perm_name, json_str(o, "permission"), ACL_PERM_ALLOW);
    const char *n = json_str(o, "name"), *pr = json_str(o, "principal"),
               *h = json_str(o, "host");
    if (rt < 0 || pt < 0 || op < 0 || pm < 0 || !n || !pr || !h) goto fail;
    e->rtype = (int8_t)rt;
    e->ptype = (int8_t)pt;
    e->op = (int8_t)op;
    e->perm = (int8_t)pm;
    e->name = strdup(n);
    e->principal = strdup(pr);
    e->host = strdup(h);
    *why = "out of memory";
    if (!e->name || !e->principal || !e->host) goto fail;
    if (acl_entry_valid(e, why) != 0) goto fail;
    cJSON_Delete(o);
    *why = NULL;
    return 0;
fail:
    cJSON_Delete(o);
    acl_entry_free(e);
    return -1;
}

static int key_put(char *out, size_t outlen, size_t *pos, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int esc = *p == '%' || *p == '/' || *p < 0x21 || *p == 0x7f;
        size_t need = esc ? 3 : 1;
        if (*pos + need >= outlen) return -1;
        if (esc)
            *pos += (size_t)snprintf(out + *pos, outlen - *pos, "%%%02X", *p);
        else
            out[(*pos)++] = (char)*p;
    }
    out[*pos] = 0;
    return 0;
}

int acl_entry_key(const acl_entry *e, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "acls/%s/%s/", acl_rtype_name(e->rtype),
                     acl_ptype_name(e->ptype));
    if (n < 0 || (size_t)n >= outlen) return -1;
    size_t pos = (size_t)n;
    if (key_put(out, outlen, &pos, e->name) || pos + 1 >= outlen) return -1;
    out[pos++] = '/';
    if (key_put(out, outlen, &pos, e->principal) || pos + 1 >= outlen) return -1;
    out[pos++] = '/';
    if (key_put(out, outlen, &pos, e->host)) return -1;
    n = snprintf(out + pos, outlen - pos, "/%s/%s", acl_op_name(e->op), acl_perm_name(e->perm));
    return n < 0 || (size_t)n >= outlen - pos ? -1 : 0;
}
