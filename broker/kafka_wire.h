/*
 * kafka_wire.h — Kafka protocol primitives: a bounded slice reader, a
 * capped growable writer and a per-request arena.
 *
 * Every byte a client sends goes through kr_* functions, which never read
 * past the slice: each returns -1 on a short or invalid input and the caller
 * jumps to its single `fail:` exit (macros KR_* below). Array counts are
 * checked against the bytes left before anything is allocated, so a
 * 4-byte "2 billion elements" cannot make the broker allocate.
 *
 * Encodings (Kafka protocol guide, "Protocol Primitive Types"):
 *   intN        big-endian
 *   (u)varint   zig-zag varint / unsigned LEB128 varint
 *   string      int16 length + bytes; nullable: length -1 = null
 *   compact     unsigned varint (length + 1) + bytes; 0 = null
 *   bytes       int32 length + bytes (compact: uvarint length + 1)
 *   array       int32 count (-1 = null) or, compact, uvarint count + 1
 *   tagged      uvarint count, then (uvarint tag, uvarint size, bytes)*
 * `flex` selects the compact forms and tagged fields (flexible versions).
 *
 * Thread: any; a reader/writer/arena belongs to one thread at a time.
 */
#ifndef TS_BROKER_KAFKA_WIRE_H
#define TS_BROKER_KAFKA_WIRE_H

#include <stddef.h>
#include <stdint.h>

/* ---- arena: every allocation of one parsed request, freed at once ---- */
typedef struct karena_blk karena_blk;
typedef struct karena {
    karena_blk *head;
    size_t used;   /* total bytes handed out */
    size_t max;    /* hard cap */
} karena;

void karena_init(karena *a, size_t max);
void karena_free(karena *a);
/* Zeroed memory, 8-aligned; NULL when the cap is hit. */
void *karena_alloc(karena *a, size_t n);

/* ---- reader ---- */
typedef struct kr {
    const uint8_t *p;
    size_t len;
    size_t pos;
} kr;

/* A length-delimited view into the reader's buffer (not NUL-terminated). */
typedef struct kslice {
    const uint8_t *p;
    int32_t len; /* -1 = null */
} kslice;

static inline void kr_init(kr *r, const void *p, size_t len)
{
    r->p = (const uint8_t *)p;
    r->len = len;
    r->pos = 0;
}
static inline size_t kr_left(const kr *r) { return r->len - r->pos; }

int kr_i8(kr *r, int8_t *v);
int kr_i16(kr *r, int16_t *v);
int kr_i32(kr *r, int32_t *v);
int kr_i64(kr *r, int64_t *v);
int kr_uvarint(kr *r, uint32_t *v);
int kr_varint(kr *r, int32_t *v);
/* Zig-zag varint of up to 64 bits (record fields); at most 10 bytes. */
int kr_varlong(kr *r, int64_t *v);
int kr_skip(kr *r, size_t n);
int kr_uuid(kr *r, uint8_t out[16]);
/* Strings and bytes as views into the buffer. */
int kr_str(kr *r, int flex, kslice *out);
int kr_bytes(kr *r, int flex, kslice *out);
/* Copies a string into the arena, NUL-terminated; nullable strings give
 * NULL. A non-nullable string that is null fails. */
int kr_strdup(kr *r, int flex, int nullable, karena *a, const char **out);
/* Array count: -1 = null (only when nullable). Fails when count elements of
 * at least min_elem bytes each cannot fit in what is left. */
int kr_array(kr *r, int flex, int nullable, size_t min_elem, int32_t *count);
/* Skips a tagged-field section when flex; no-op otherwise. */
int kr_tags(kr *r, int flex);

#define KR_CHECK(expr)                                                                           \
    do {                                                                                         \
        if ((expr) != 0) goto fail;                                                              \
    } while (0)

/* ---- writer ---- */
typedef struct kw {
    uint8_t *d;
    size_t len, cap, max;
    int err; /* sticky: set when the cap is hit or malloc fails */
} kw;

void kw_init(kw *w, size_t max);
void kw_free(kw *w);
int kw_reserve(kw *w, size_t n);
void kw_raw(kw *w, const void *p, size_t n);
void kw_i8(kw *w, int8_t v);
void kw_i16(kw *w, int16_t v);
void kw_i32(kw *w, int32_t v);
void kw_i64(kw *w, int64_t v);
void kw_uvarint(kw *w, uint32_t v);
void kw_uuid_zero(kw *w);
/* s may be NULL (null string) */
void kw_str(kw *w, int flex, const char *s);
void kw_strn(kw *w, int flex, const char *s, int32_t n);
void kw_bytes(kw *w, int flex, const void *p, int32_t n); /* n = -1: null */
void kw_array(kw *w, int flex, int32_t n);               /* n = -1: null */
void kw_tags(kw *w, int flex);                           /* empty tag section */
/* Patching: remember a position, write later. */
void kw_put_i32_at(kw *w, size_t pos, int32_t v);

#endif
