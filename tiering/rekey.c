/*
 * rekey.c — `tierctl rekey`: moves the data keys of a partition's encrypted
 * objects under the key ring's active key-encryption key.
 *
 * Envelope encryption makes this cheap: each object's data key is stored
 * only wrapped, in its manifest entry, so rotating a KEK needs no object
 * rewritten. Each data key is unwrapped with the KEK its entry names and
 * wrapped again under the active one; ts_index_rewrap commits all of them
 * as one new manifest version (pieces that change are written anew, the
 * old ones follow the dropped-piece rule). Afterwards the old KEK may leave
 * the ring. A KEK missing from the ring stops the rekey with an error
 * naming its id, and nothing is committed.
 */
#include <openssl/crypto.h>
#include <string.h>

#include "common/config_table.h"
#include "common/crypt.h"
#include "common/err.h"
#include "index/index.h"
#include "internal.h"

typedef struct rekey_ctx {
    const ts_keyring *ring;
    const char *active;
} rekey_ctx;

/* ts_index_rewrap_fn: unwrap under the entry's KEK, wrap under the active. */
static ts_status rewrap_one(ts_segment_meta *seg, void *opaque, char *errstr, size_t errlen)
{
    const rekey_ctx *c = opaque;
    uint8_t dk[TS_CRYPT_KEY_LEN], w[TS_CRYPT_WRAPPED_LEN];
    ts_status st = ts_crypt_unwrap(c->ring, seg->key_id, seg->object_key, seg->wrapped_key, dk,
                                   errstr, errlen);
    if (!st) st = ts_crypt_wrap(c->ring, c->active, seg->object_key, dk, w, errstr, errlen);
    OPENSSL_cleanse(dk, sizeof(dk));
    if (st) return st;
    memcpy(seg->wrapped_key, w, sizeof(w));
    snprintf(seg->key_id, sizeof(seg->key_id), "%s", c->active);
    return TS_OK;
}

ts_status ts_partition_rekey(ts_partition *p, size_t *rewrapped, char *errstr, size_t errlen)
{
    *rewrapped = 0;
    const ts_settings *set = p->eng->set;
    const char *active = set->remote_storage_encryption_active_key;
    if (!p->idx)
        return ts_err_set(errstr, errlen, TS_E_CONFIG,
                          "%s-%d: remote storage is disabled: nothing to rekey", p->topic, p->id);
    if (!p->eng->keyring || !active[0] || !ts_keyring_find(p->eng->keyring, active))
        return ts_err_set(errstr, errlen, TS_E_CONFIG,
                          "rekey needs remote.storage.encryption.keyring and an "
                          "remote.storage.encryption.active.key that is in it (active: '%s')",
                          active);
    rekey_ctx c = {p->eng->keyring, active};
    return ts_index_rewrap(p->idx, active, rewrap_one, &c, rewrapped, errstr, errlen);
}
