/*
 * etcd.h — a small etcd v3 client over the JSON gateway (libcurl + cJSON).
 *
 * etcd is tierbroker's coordination store (issue 10): broker registrations
 * under leases, the controller key, topic and partition state updated by
 * compare-and-swap, watches resumed by revision. Debian ships no C client,
 * so this module speaks etcd 3.4's gRPC-gateway: POST /v3/kv/range|put|txn|
 * deleterange, /v3/lease/grant|keepalive|revoke and the streamed /v3/watch,
 * keys and values base64, int64 fields as JSON strings.
 *
 * It knows nothing of tierstore: no engine header, no ts_common. Its status
 * codes are its own (ts_etcd_status), mapped by the caller.
 *
 * Threads: one ts_etcd serves any number of threads at once. Each call
 * borrows a libcurl handle from the client's small pool (one handle per
 * thread at a time), the "current endpoint" is an atomic, nothing else is
 * shared. A lease keeper and each watch run on their own thread and call
 * back from it. ts_etcd_destroy must come after every keeper and watch of
 * the client is stopped.
 *
 * Errors: every call takes a caller-owned buffer (errstr, errlen; either
 * may be NULL/0) and writes what failed there: the operation, the key, the
 * endpoint and etcd's own message. A failed compare in a txn is not an
 * error: the call returns TS_ETCD_OK with succeeded = 0.
 *
 * Memory: results are owned by the caller and freed with the matching
 * *_free; every response body is capped (max_response_bytes), every value
 * decoded is capped (max_value_bytes), each watch line too.
 */
#ifndef TS_ETCD_ETCD_H
#define TS_ETCD_ETCD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Never renumbered, never reused. */
typedef enum ts_etcd_status {
    TS_ETCD_OK = 0,
    TS_ETCD_E_INVAL = -1,       /* bad argument, or etcd refused the request as invalid */
    TS_ETCD_E_NOMEM = -2,       /* allocation failed */
    TS_ETCD_E_UNAVAILABLE = -3, /* connection refused/reset, 5xx, no leader, leader changed
                                   (retriable; retried within the call's budget) */
    TS_ETCD_E_TIMEOUT = -4,     /* the call's deadline passed (retriable) */
    TS_ETCD_E_PROTOCOL = -5,    /* the answer is not what etcd's gateway sends */
    TS_ETCD_E_REFUSED = -6,     /* etcd answered with an error that no retry fixes */
    TS_ETCD_E_NOT_FOUND = -7,   /* the lease does not exist (expired or revoked) */
    TS_ETCD_E_COMPACTED = -8,   /* the revision asked for has been compacted */
    TS_ETCD_E_TOO_LARGE = -9,   /* a response, line or value beyond its cap */
    TS_ETCD_E_CLOSED = -10,     /* the keeper or watch was stopped */
} ts_etcd_status;

const char *ts_etcd_status_name(ts_etcd_status st);
/* 1 for TS_ETCD_E_UNAVAILABLE and TS_ETCD_E_TIMEOUT. */
int ts_etcd_status_is_retriable(ts_etcd_status st);

/* ------------------------------------------------------------------------
 * Client
 * ------------------------------------------------------------------------ */
typedef struct ts_etcd ts_etcd;

typedef struct ts_etcd_opts {
    /* "host:port[,host:port...]"; each may carry "http://"; "etcd://" is
     * accepted in front of the whole list (metadata.store.url's form). */
    const char *endpoints;
    int64_t op_timeout_ms;      /* deadline of one call, retries included (5000) */
    int64_t request_timeout_ms; /* cap of one HTTP attempt (2000) */
    int64_t connect_timeout_ms; /* cap of one TCP connect (1000) */
    int64_t retry_base_ms;      /* first backoff ceiling after a full round of endpoints (50) */
    int64_t retry_max_ms;       /* backoff ceiling cap (1000) */
    int max_attempts;           /* 0: limited by op_timeout_ms only */
    size_t max_response_bytes;  /* one response body or one watch line (8 MiB) */
    size_t max_value_bytes;     /* one key or value, decoded or sent (1.5 MiB, etcd's
                                   default --max-request-bytes) */
} ts_etcd_opts;

/* Fills the defaults above (endpoints NULL). */
void ts_etcd_opts_default(ts_etcd_opts *o);

/* Parses the endpoints and makes the client; no request is sent. Calls
 * curl_global_init once per process (thread-safe with libcurl >= 7.84; call
 * ts_etcd_global_init before other threads start when in doubt). */
ts_etcd_status ts_etcd_create(const ts_etcd_opts *o, ts_etcd **out, char *errstr, size_t errlen);
void ts_etcd_destroy(ts_etcd *c); /* NULL is a no-op */
void ts_etcd_global_init(void);

/* The endpoint the next call tries first ("host:port"): the last one that
 * answered, or the next one after a failure. */
const char *ts_etcd_current_endpoint(const ts_etcd *c);

/* Counters, for tests and status pages. */
typedef struct ts_etcd_stats {
    uint64_t requests; /* HTTP attempts */
    uint64_t retries;  /* attempts after a retriable failure */
    uint64_t failovers; /* times the current endpoint moved */
} ts_etcd_stats;
void ts_etcd_get_stats(const ts_etcd *c, ts_etcd_stats *out);

/* ------------------------------------------------------------------------
 * Key-value
 * ------------------------------------------------------------------------ */
/* One key as etcd holds it. key and value are NUL-terminated copies (the
 * lengths are authoritative: keys and values may hold any byte). */
typedef struct ts_etcd_kv {
    char *key;
    size_t key_len;
    char *value;
    size_t value_len;
    int64_t create_revision, mod_revision, version, lease;
} ts_etcd_kv;

typedef enum ts_etcd_op_type {
    TS_ETCD_OP_RANGE = 0,
    TS_ETCD_OP_PUT = 1,
    TS_ETCD_OP_DELETE = 2,
} ts_etcd_op_type;

/* One request, alone or inside a txn. Zero-initialise, then set. */
typedef struct ts_etcd_op {
    ts_etcd_op_type type;
    const void *key;
    size_t key_len;
    int prefix;          /* range/delete: every key starting with key (empty key: all) */
    const void *value;   /* put */
    size_t value_len;
    int64_t lease;       /* put: attach to this lease (0: none) */
    int prev_kv;         /* put/delete: return the previous key-value(s) */
    int64_t limit;       /* range: at most this many keys (0: no limit) */
    int64_t revision;    /* range: read at this revision (0: latest) */
    int keys_only;       /* range: no values */
} ts_etcd_op;

/* Answer of one range, put or delete. */
typedef struct ts_etcd_resp {
    ts_etcd_op_type type;
    int64_t revision;   /* header revision: the store's revision when it answered */
    ts_etcd_kv *kvs;    /* range: keys found; put: the previous kv (0 or 1);
                           delete: previous kvs (with prev_kv) */
    size_t nkvs;
    int64_t count;      /* range: keys in the range (beyond limit too); delete: deleted */
    int more;           /* range: limit cut the answer */
} ts_etcd_resp;
void ts_etcd_resp_free(ts_etcd_resp *r); /* frees the contents, zeroes; NULL ok */

/* Runs one op (range, put or delete). out may be NULL for put/delete. */
ts_etcd_status ts_etcd_do(ts_etcd *c, const ts_etcd_op *op, ts_etcd_resp *out, char *errstr,
                          size_t errlen);

/* Shorthands for ts_etcd_do. get: one key (prefix 0) or a prefix with
 * limit (0: all); a missing key is not an error (nkvs == 0). */
ts_etcd_status ts_etcd_get(ts_etcd *c, const void *key, size_t key_len, int prefix, int64_t limit,
                           ts_etcd_resp *out, char *errstr, size_t errlen);
ts_etcd_status ts_etcd_put(ts_etcd *c, const void *key, size_t key_len, const void *value,
                           size_t value_len, int64_t lease, int64_t *revision, char *errstr,
                           size_t errlen);
ts_etcd_status ts_etcd_delete(ts_etcd *c, const void *key, size_t key_len, int prefix,
                              int64_t *deleted, char *errstr, size_t errlen);

/* Transactions: if every compare holds, the success ops run, else the
 * failure ops; either way atomically at one revision. */
typedef enum ts_etcd_cmp_target {
    TS_ETCD_CMP_VERSION = 0,
    TS_ETCD_CMP_CREATE = 1, /* create_revision (0: the key does not exist) */
    TS_ETCD_CMP_MOD = 2,    /* mod_revision */
    TS_ETCD_CMP_VALUE = 3,
    TS_ETCD_CMP_LEASE = 4,
} ts_etcd_cmp_target;

typedef enum ts_etcd_cmp_result {
    TS_ETCD_EQUAL = 0,
    TS_ETCD_GREATER = 1,
    TS_ETCD_LESS = 2,
    TS_ETCD_NOT_EQUAL = 3,
} ts_etcd_cmp_result;

typedef struct ts_etcd_cmp {
    const void *key;
    size_t key_len;
    ts_etcd_cmp_target target;
    ts_etcd_cmp_result result;
    int64_t number;     /* VERSION, CREATE, MOD, LEASE */
    const void *value;  /* VALUE */
    size_t value_len;
} ts_etcd_cmp;

typedef struct ts_etcd_txn_result {
    int64_t revision;
    int succeeded;            /* 1: the compares held and the success ops ran */
    ts_etcd_resp *responses;  /* one per op of the branch that ran, in order */
    size_t nresponses;
} ts_etcd_txn_result;
void ts_etcd_txn_result_free(ts_etcd_txn_result *r);

/* out may be NULL when the outcome does not matter. */
ts_etcd_status ts_etcd_txn(ts_etcd *c, const ts_etcd_cmp *cmps, size_t ncmps,
                           const ts_etcd_op *success, size_t nsuccess, const ts_etcd_op *failure,
                           size_t nfailure, ts_etcd_txn_result *out, char *errstr, size_t errlen);

/* Compacts the history below revision (POST /v3/kv/compaction): watches
 * and reads at older revisions get COMPACTED afterwards. Maintenance and
 * tests; the cluster leaves it to etcd's --auto-compaction-*. */
ts_etcd_status ts_etcd_compact(ts_etcd *c, int64_t revision, char *errstr, size_t errlen);

/* ------------------------------------------------------------------------
 * Leases
 * ------------------------------------------------------------------------ */
/* id_hint 0: etcd picks the id. *granted_ttl may be NULL. */
ts_etcd_status ts_etcd_lease_grant(ts_etcd *c, int64_t ttl_s, int64_t id_hint, int64_t *id,
                                   int64_t *granted_ttl, char *errstr, size_t errlen);
/* One POST /v3/lease/keepalive. TS_ETCD_E_NOT_FOUND when the lease is gone
 * (expired or revoked). *ttl (may be NULL) is the TTL the lease restarts with. */
ts_etcd_status ts_etcd_lease_keepalive(ts_etcd *c, int64_t id, int64_t *ttl, char *errstr,
                                       size_t errlen);
/* Revoking a lease deletes every key attached to it. NOT_FOUND if gone. */
ts_etcd_status ts_etcd_lease_revoke(ts_etcd *c, int64_t id, char *errstr, size_t errlen);

/* A thread that keeps a lease alive: one keepalive every ttl/3. The lease
 * is lost when etcd says it is gone, or when no keepalive has been answered
 * for ttl seconds since the last one answered was sent (etcd may have let it
 * expire): then ts_etcd_keeper_lost turns 1, on_lost is called once from
 * the keeper's thread with the reason, and the thread ends. A lost lease is
 * never revived: grant a new one. */
typedef struct ts_etcd_keeper ts_etcd_keeper;
typedef void (*ts_etcd_lease_lost_cb)(void *arg, int64_t lease, ts_etcd_status why,
                                      const char *message);
ts_etcd_status ts_etcd_keeper_start(ts_etcd *c, int64_t lease, int64_t ttl_s,
                                    ts_etcd_lease_lost_cb on_lost, void *arg,
                                    ts_etcd_keeper **out, char *errstr, size_t errlen);
int ts_etcd_keeper_lost(const ts_etcd_keeper *k);
/* Keepalives answered so far. */
uint64_t ts_etcd_keeper_renewals(const ts_etcd_keeper *k);
/* CLOCK_MONOTONIC milliseconds at which the last keepalive answered was
 * sent (the keeper's start before the first): the lease is alive at most
 * TTL past it. A caller fencing itself on the lease compares against this,
 * not against when it noticed the answer (an answer read after the process
 * was frozen may be older than the TTL). */
int64_t ts_etcd_keeper_alive_ms(const ts_etcd_keeper *k);
/* Stops and joins the thread (at most op_timeout_ms); the lease is
 * left to expire (revoke it first to drop it at once). Not from on_lost.
 * NULL is a no-op. */
void ts_etcd_keeper_stop(ts_etcd_keeper *k);

/* ------------------------------------------------------------------------
 * Watch
 * ------------------------------------------------------------------------ */
typedef enum ts_etcd_event_type { TS_ETCD_EV_PUT = 0, TS_ETCD_EV_DELETE = 1 } ts_etcd_event_type;

typedef struct ts_etcd_event {
    ts_etcd_event_type type;
    ts_etcd_kv kv; /* DELETE: key and mod_revision only */
} ts_etcd_event;

typedef enum ts_etcd_watch_kind {
    TS_ETCD_WATCH_EVENTS = 0,       /* events, in revision order */
    TS_ETCD_WATCH_DISCONNECTED = 1, /* the stream broke; the watch reconnects by itself and
                                       resumes at next_revision (nothing lost) */
    TS_ETCD_WATCH_COMPACTED = 2,    /* next_revision was compacted away: events are lost;
                                       the watch has ended. Re-read, then watch again from
                                       the read's revision + 1 */
    TS_ETCD_WATCH_FAILED = 3,       /* etcd refused the watch; it has ended */
} ts_etcd_watch_kind;

typedef struct ts_etcd_watch_update {
    ts_etcd_watch_kind kind;
    const ts_etcd_event *events; /* EVENTS */
    size_t nevents;
    int64_t header_revision;
    int64_t next_revision;       /* where the watch resumes (after these events) */
    int64_t compact_revision;    /* COMPACTED: oldest revision still available */
    ts_etcd_status status;       /* DISCONNECTED, COMPACTED, FAILED */
    const char *message;         /* DISCONNECTED, COMPACTED, FAILED */
    const char *endpoint;        /* the member the stream is (was) on */
} ts_etcd_watch_update;

/* Runs on the watch thread; may call the client, must not stop its own
 * watch. The update and its events are valid during the call only. */
typedef void (*ts_etcd_watch_cb)(void *arg, const ts_etcd_watch_update *u);

typedef struct ts_etcd_watch_opts {
    const void *key;
    size_t key_len;
    int prefix;              /* every key under key */
    int64_t start_revision;  /* first revision delivered (0: what happens after etcd
                                first creates the watch; reconnects then resume there) */
    int64_t idle_timeout_ms; /* reconnect when the stream is silent this long (0: never;
                                a frozen member keeps its TCP connection open) */
    ts_etcd_watch_cb cb;
    void *arg;
} ts_etcd_watch_opts;

typedef struct ts_etcd_watch ts_etcd_watch;
ts_etcd_status ts_etcd_watch_start(ts_etcd *c, const ts_etcd_watch_opts *o, ts_etcd_watch **out,
                                   char *errstr, size_t errlen);
/* The revision the watch would resume at now. */
int64_t ts_etcd_watch_next_revision(const ts_etcd_watch *w);
/* Stops the stream (wakes it at once) and joins; no callback runs after
 * it returns. NULL is a no-op. */
void ts_etcd_watch_stop(ts_etcd_watch *w);

#ifdef __cplusplus
}
#endif
#endif
