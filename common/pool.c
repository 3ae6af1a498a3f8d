/*
 * pool.c — worker pool (see pool.h). A mutex-protected singly linked FIFO
 * (ts_pool_submit_first puts a job at its head) and a condition variable; workers exit when the pool is stopping and the
 * queue is empty, so destroy runs what was already queued.
 */
#include "pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct job {
    ts_pool_fn fn;
    void *arg;
    struct job *next;
} job;

struct ts_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* work available or stopping */
    pthread_cond_t idle_cv; /* queue drained */
    job *head, *tail;
    size_t queued, running, max_queued;
    int stopping;
    int nthreads;
    pthread_t *threads;
    char name[32];
};

static void *worker(void *arg)
{
    ts_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->stopping) pthread_cond_wait(&p->cv, &p->mu);
        if (!p->head) break;
        job *j = p->head;
        p->head = j->next;
        if (!p->head) p->tail = NULL;
        p->queued--;
        p->running++;
        pthread_mutex_unlock(&p->mu);
        j->fn(j->arg);
        free(j);
        pthread_mutex_lock(&p->mu);
        p->running--;
        if (!p->head && !p->running) pthread_cond_broadcast(&p->idle_cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

ts_status ts_pool_create(const char *name, int nthreads, size_t max_queued, ts_pool **out)
{
    if (nthreads < 1) return TS_E_INVAL;
    ts_pool *p = calloc(1, sizeof(*p));
    if (!p) return TS_E_NOMEM;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    pthread_cond_init(&p->idle_cv, NULL);
    p->max_queued = max_queued;
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->threads = calloc((size_t)nthreads, sizeof(pthread_t));
    if (!p->threads) {
        free(p);
        return TS_E_NOMEM;
    }
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
            p->nthreads = i;
            ts_pool_destroy(p);
            return TS_E_NOMEM;
        }
        char tn[32];
        snprintf(tn, sizeof(tn), "%.10s-%d", name, i % 1000);
        tn[15] = 0;
        pthread_setname_np(p->threads[i], tn);
        p->nthreads = i + 1;
    }
    *out = p;
    return TS_OK;
}

/* Queues fn(arg) at the tail, or at the head when first is set. */
static ts_status enqueue(ts_pool *p, ts_pool_fn fn, void *arg, int first)
{
    job *j = malloc(sizeof(*j));
    if (!j) return TS_E_NOMEM;
    j->fn = fn;
    j->arg = arg;
    j->next = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->stopping) {
        pthread_mutex_unlock(&p->mu);
        free(j);
        return TS_E_CLOSED;
    }
    if (p->max_queued && p->queued >= p->max_queued) {
        pthread_mutex_unlock(&p->mu);
        free(j);
        return TS_E_BACKPRESSURE;
    }
    if (first) {
        j->next = p->head;
        p->head = j;
        if (!p->tail) p->tail = j;
    } else {
        if (p->tail) p->tail->next = j;
        else p->head = j;
        p->tail = j;
    }
    p->queued++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return TS_OK;
}

ts_status ts_pool_submit(ts_pool *p, ts_pool_fn fn, void *arg)
{
    return enqueue(p, fn, arg, 0);
}

ts_status ts_pool_submit_first(ts_pool *p, ts_pool_fn fn, void *arg)
{
    return enqueue(p, fn, arg, 1);
}

size_t ts_pool_pending(ts_pool *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->queued + p->running;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void ts_pool_drain(ts_pool *p)
{
    pthread_mutex_lock(&p->mu);
    while (p->head || p->running) pthread_cond_wait(&p->idle_cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void ts_pool_destroy(ts_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++) pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    pthread_cond_destroy(&p->idle_cv);
    free(p);
}
