/*
 * strlist.h — a growable list of malloc'd strings, and the one strcmp
 * comparator for qsort/bsearch over char * arrays.
 *
 * Several places collect names (object keys from a LIST, topic names) into
 * a char ** that callers later own and free with ts_strlist_free or, for
 * arrays handed out through the public API, ts_topics_free.
 */
#ifndef TS_COMMON_STRLIST_H
#define TS_COMMON_STRLIST_H

#include <stddef.h>

typedef struct ts_strlist {
    char **v;
    size_t n, cap;
} ts_strlist;

/* Appends a copy of s (ts_strlist_addn: of its first len bytes).
 * Returns 0, or -1 when out of memory (the list is unchanged). */
int ts_strlist_add(ts_strlist *l, const char *s);
int ts_strlist_addn(ts_strlist *l, const char *s, size_t len);
/* Linear search: non-zero when s is in the list. */
int ts_strlist_has(const ts_strlist *l, const char *s);
/* Sorts by strcmp; ts_strlist_sorted_has then searches in O(log n). */
void ts_strlist_sort(ts_strlist *l);
int ts_strlist_sorted_has(const ts_strlist *l, const char *s);
/* Frees every string and the array; leaves an empty list. */
void ts_strlist_free(ts_strlist *l);

/* qsort/bsearch comparator over elements of type char * (strcmp order). */
int ts_strptr_cmp(const void *a, const void *b);

#endif
