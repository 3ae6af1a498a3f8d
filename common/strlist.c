/* strlist.c — growable string lists (see strlist.h). */
#include "strlist.h"

#include <stdlib.h>
#include <string.h>

int ts_strptr_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int ts_strlist_addn(ts_strlist *l, const char *s, size_t len)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        char **nv = realloc(l->v, nc * sizeof(char *));
        if (!nv) return -1;
        l->v = nv;
        l->cap = nc;
    }
    char *c = malloc(len + 1);
    if (!c) return -1;
    memcpy(c, s, len);
    c[len] = '\0';
    l->v[l->n++] = c;
    return 0;
}

int ts_strlist_add(ts_strlist *l, const char *s) { return ts_strlist_addn(l, s, strlen(s)); }

int ts_strlist_has(const ts_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i], s)) return 1;
    return 0;
}

void ts_strlist_sort(ts_strlist *l)
{
    if (l->n > 1) qsort(l->v, l->n, sizeof(char *), ts_strptr_cmp);
}

int ts_strlist_sorted_has(const ts_strlist *l, const char *s)
{
    return l->n && bsearch(&s, l->v, l->n, sizeof(char *), ts_strptr_cmp) != NULL;
}

void ts_strlist_free(ts_strlist *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}
