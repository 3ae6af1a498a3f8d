/*
 * acl.h — Kafka's ACL model (KIP-11, prefixed patterns KIP-290): bindings of
 * (resource type, pattern type, resource name) to (principal, host,
 * operation, permission), the filters of DescribeAcls/DeleteAcls, and the
 * decision Kafka's AclAuthorizer makes for one request.
 *
 * Two halves:
 *  - the pure part (acl.c, library ts_broker_acl): the set of bindings, the
 *    matcher, the filters, the one record format (a JSON object per binding:
 *    the lines of the ACL file and the values of the etcd keys) and the etcd
 *    key of a binding. No broker, no I/O: unit-tested (unit.broker_acl) and
 *    fuzzed alone.
 *  - the broker's part (admin_acls.c, declared at the end): the authorizer
 *    of a running broker (authorizer.class.name, super.users,
 *    allow.everyone.if.no.acl.found), the ACL file, the etcd keys,
 *    CreateAcls/DescribeAcls/DeleteAcls and the checks the handlers call.
 *
 * Codes are Kafka's wire values (AclOperation, ResourceType, PatternType,
 * AclPermissionType in clients/.../acl and resource). Thread: the loop.
 */
#ifndef TS_BROKER_ACL_H
#define TS_BROKER_ACL_H

#include <stddef.h>
#include <stdint.h>

/* AclOperation */
enum {
    ACL_OP_UNKNOWN = 0,
    ACL_OP_ANY = 1, /* filters only */
    ACL_OP_ALL = 2,
    ACL_OP_READ = 3,
    ACL_OP_WRITE = 4,
    ACL_OP_CREATE = 5,
    ACL_OP_DELETE = 6,
    ACL_OP_ALTER = 7,
    ACL_OP_DESCRIBE = 8,
    ACL_OP_CLUSTER_ACTION = 9,
    ACL_OP_DESCRIBE_CONFIGS = 10,
    ACL_OP_ALTER_CONFIGS = 11,
    ACL_OP_IDEMPOTENT_WRITE = 12,
};
/* ResourceType */
enum {
    ACL_RES_UNKNOWN = 0,
    ACL_RES_ANY = 1, /* filters only */
    ACL_RES_TOPIC = 2,
    ACL_RES_GROUP = 3,
    ACL_RES_CLUSTER = 4,
    ACL_RES_TRANSACTIONAL_ID = 5,
};
/* PatternType */
enum {
    ACL_PAT_UNKNOWN = 0,
    ACL_PAT_ANY = 1,   /* filters: any pattern type, the name compared as is */
    ACL_PAT_MATCH = 2, /* filters: every binding that applies to the name */
    ACL_PAT_LITERAL = 3,
    ACL_PAT_PREFIXED = 4,
};
/* AclPermissionType */
enum { ACL_PERM_UNKNOWN = 0, ACL_PERM_ANY = 1, ACL_PERM_DENY = 2, ACL_PERM_ALLOW = 3 };

/* The cluster resource's one name, as in Kafka. */
#define ACL_CLUSTER_NAME "kafka-cluster"
/* The longest principal, host or resource name a binding may have. */
#define ACL_MAX_FIELD 1024

/* One binding, or a filter (NULL strings = any; codes ANY/MATCH). */
typedef struct acl_entry {
    int8_t rtype, ptype, op, perm;
    char *name, *principal, *host;
} acl_entry;

/* A set of bindings, each once, with a hash index on (resource type,
 * pattern type, name), so a decision looks up the resource's literal name,
 * the wildcard and each prefix of the name instead of scanning every
 * binding (acl.c). */
typedef struct acl_set {
    acl_entry *v;
    size_t n, cap;
    uint32_t *bucket; /* nbuckets heads: binding index + 1, 0 = empty; NULL = no index */
    uint32_t *next;   /* per binding: the next of its bucket, index + 1 */
    size_t nbuckets;  /* a power of two */
} acl_set;

void acl_set_init(acl_set *s);
void acl_set_free(acl_set *s);
void acl_entry_free(acl_entry *e);
/* Copies e in: 1 added, 0 already there, -1 out of memory. */
int acl_set_add(acl_set *s, const acl_entry *e);
/* Removes the binding equal to e: 1 removed, 0 absent. */
int acl_set_remove(acl_set *s, const acl_entry *e);
int acl_entry_equal(const acl_entry *a, const acl_entry *b);

/* Whether binding e is selected by filter f (DescribeAcls, DeleteAcls). */
int acl_filter_matches(const acl_entry *f, const acl_entry *e);
/* A filter Kafka accepts: known codes, a name with LITERAL/PREFIXED...; 0
 * or -1 with *why. */
int acl_filter_valid(const acl_entry *f, const char **why);
/* A binding CreateAcls may store: a concrete resource type, LITERAL or
 * PREFIXED, a non-empty name (kafka-cluster for CLUSTER), a "User:" principal,
 * a host "*" or an IP address, a concrete operation, ALLOW or DENY. */
int acl_entry_valid(const acl_entry *e, const char **why);

/* Kafka's decision for principal ("User:alice") from host (an IP) doing op
 * on (rtype, name): super users always; no binding for the resource at all:
 * allow_if_none; then any matching DENY (op or ALL) refuses, and a matching
 * ALLOW (op, ALL, or one implying it: READ/WRITE/DELETE/ALTER imply
 * DESCRIBE, ALTER_CONFIGS implies DESCRIBE_CONFIGS) allows; else refused.
 * super_users: "User:a;User:b" (may be NULL). 1 allowed, 0 refused. */
typedef struct acl_policy {
    const char *super_users;
    int allow_if_none;
} acl_policy;
int acl_decide(const acl_set *s, const acl_policy *p, const char *principal, const char *host,
               int op, int rtype, const char *name);
/* Whether principal may do op on at least one resource of rtype (KIP-679:
 * an idempotent producer with WRITE on any topic): an ALLOW binding of rtype
 * that no DENY of the principal covers (a DENY on the literal "*", on the
 * same literal name, or on a prefix of the allowed name). */
int acl_decide_any(const acl_set *s, const acl_policy *p, const char *principal, const char *host,
                   int op, int rtype);
int acl_is_super(const acl_policy *p, const char *principal);

/* Kafka's names (ALL, READ, ..., TOPIC, LITERAL, ALLOW): "UNKNOWN" otherwise. */
const char *acl_op_name(int op);
const char *acl_rtype_name(int rtype);
const char *acl_ptype_name(int ptype);
const char *acl_perm_name(int perm);

/* The record of one binding: a JSON object (malloc'd) of its seven fields,
 * names as Kafka's ({"resource_type":"TOPIC","pattern_type":"LITERAL",
 * "name":"t","principal":"User:a","host":"*","operation":"READ",
 * "permission":"ALLOW"}). */
char *acl_entry_json(const acl_entry *e);
/* Parses one record into *e (strings malloc'd), checked by acl_entry_valid;
 * -1 and *why when it is not one. */
int acl_entry_from_json(const char *json, size_t len, acl_entry *e, const char **why);
/* The binding's key below the etcd prefix: "acls/" then the seven fields,
 * '/'-separated, '%' and '/' (and bytes < 0x21) percent-encoded. -1 when it
 * does not fit in outlen. */
int acl_entry_key(const acl_entry *e, char *out, size_t outlen);

/* ----------------------------------------- the broker's part (admin_acls.c) */
typedef struct broker broker;
typedef struct reply reply;
typedef struct kafka_request kafka_request;
typedef struct conn conn;

/* authorizer.class.name (empty: none; Kafka's AclAuthorizer and
 * StandardAuthorizer are this one), super.users,
 * allow.everyone.if.no.acl.found; loads <log.dirs>/.broker/acls on a single
 * node. -1 with err on a bad setting or an unreadable file. Main thread. */
int acl_init(broker *b, char *err, size_t errlen);
void acl_free(broker *b);
/* An authorizer is configured. */
int acl_enabled(const broker *b);
/* Whether the client of r may do op on (rtype, name): 1 without an
 * authorizer; a refusal is logged (rate-limited) with principal, host,
 * operation and resource. acl_check_quiet does not log (filtering: Metadata
 * of every topic, ListGroups). Loop thread. */
int acl_check(broker *b, const reply *r, int op, int rtype, const char *name);
int acl_check_quiet(broker *b, const reply *r, int op, int rtype, const char *name);
/* op on at least one resource of rtype (KIP-679). */
int acl_check_any(broker *b, const reply *r, int op, int rtype);
/* AuthorizedOperations of (rtype, name) for the client of r: the bits
 * (1 << op) of the operations in `ops` it may do (all of them without an
 * authorizer). */
int32_t acl_authorized_ops(broker *b, const reply *r, int rtype, const char *name, int32_t ops);

/* The operations Kafka reports as AuthorizedOperations (bits 1 << op): a
 * topic's, the cluster's. */
#define ACL_TOPIC_OPS                                                                            \
    ((1 << ACL_OP_READ) | (1 << ACL_OP_WRITE) | (1 << ACL_OP_CREATE) | (1 << ACL_OP_DELETE) |    \
     (1 << ACL_OP_ALTER) | (1 << ACL_OP_DESCRIBE) | (1 << ACL_OP_DESCRIBE_CONFIGS) |             \
     (1 << ACL_OP_ALTER_CONFIGS))
#define ACL_CLUSTER_OPS                                                                          \
    ((1 << ACL_OP_CREATE) | (1 << ACL_OP_ALTER) | (1 << ACL_OP_DESCRIBE) |                       \
     (1 << ACL_OP_CLUSTER_ACTION) | (1 << ACL_OP_DESCRIBE_CONFIGS) | (1 << ACL_OP_ALTER_CONFIGS) | \
     (1 << ACL_OP_IDEMPOTENT_WRITE))

void handle_CreateAcls(broker *b, reply *r, kafka_request *q);
void handle_DescribeAcls(broker *b, reply *r, kafka_request *q);
void handle_DeleteAcls(broker *b, reply *r, kafka_request *q);

/* Cluster mode (cluster.c's view, loop thread): an acls/ key changed (value
 * NULL: deleted); before a snapshot's keys every binding is forgotten. */
void acl_cluster_apply(broker *b, const char *key, const char *value);
void acl_cluster_snapshot_begin(broker *b);

#endif
