/*
 * placement.c — Kafka's replica assignment (AdminUtils.assignReplicasToBrokers,
 * rack-aware when every broker has a rack): used by CreateTopics and the
 * controller (__consumer_offsets). Pure: no broker state, no etcd; the random
 * start and shift come from rand() (unit.broker_placement seeds it).
 *
 * For each partition p: the first replica is broker (p + start) of the
 * rack-alternated broker list; the others follow at a shift that grows every
 * n partitions, skipping a broker whose rack already holds a replica until
 * every rack does, and brokers already chosen. So leaders spread evenly, and
 * replicas of a partition span as many racks as they can.
 * Thread: any.
 */
#include <stdlib.h>
#include <string.h>

#include "placement.h"

/* Kafka's AdminUtils.replicaIndex. */
static int32_t replica_index(int32_t first, int32_t shift, int32_t j, int32_t n)
{
    int32_t s = 1 + (shift + j) % (n - 1);
    return (first + s) % n;
}

/* Brokers ordered by id, then interleaved by rack (Kafka's
 * getRackAlternatedBrokerList): rack a's first, rack b's first, ... */
static size_t rack_alternated(const cl_broker *in, size_t n, const cl_broker **out,
                              const char **racks, int use_racks)
{
    const cl_broker *sorted[256];
    size_t m = n > 256 ? 256 : n;
    for (size_t i = 0; i < m; i++) sorted[i] = &in[i];
    for (size_t i = 1; i < m; i++)
        for (size_t k = i; k > 0 && sorted[k - 1]->id > sorted[k]->id; k--) {
            const cl_broker *t = sorted[k];
            sorted[k] = sorted[k - 1];
            sorted[k - 1] = t;
        }
    size_t nr = 0;
    for (size_t i = 0; i < m; i++) {
        const char *r = use_racks ? sorted[i]->rack : "";
        size_t k = 0;
        while (k < nr && strcmp(racks[k], r)) k++;
        if (k == nr) racks[nr++] = r;
    }
    /* Sorted rack names, then round robin over them. */
    for (size_t i = 1; i < nr; i++)
        for (size_t k = i; k > 0 && strcmp(racks[k - 1], racks[k]) > 0; k--) {
            const char *t = racks[k];
            racks[k] = racks[k - 1];
            racks[k - 1] = t;
        }
    size_t o = 0;
    size_t taken[256] = {0};
    while (o < m)
        for (size_t k = 0; k < nr; k++) {
            size_t seen = 0;
            for (size_t i = 0; i < m; i++) {
                const char *r = use_racks ? sorted[i]->rack : "";
                if (strcmp(r, racks[k])) continue;
                if (seen++ == taken[k]) {
                    out[o++] = sorted[i];
                    taken[k]++;
                    break;
                }
            }
        }
    return nr;
}

void cluster_assign(const cl_broker *brokers, size_t n, int32_t nparts, int32_t rf, int32_t *out)
{
    const cl_broker *arr[256];
    const char *racks[256];
    int use_racks = n > 0;
    for (size_t i = 0; i < n; i++)
        if (!brokers[i].rack[0]) use_racks = 0;
    int32_t nb = (int32_t)(n > 256 ? 256 : n);
    int32_t nracks = (int32_t)rack_alternated(brokers, (size_t)nb, arr, racks, use_racks);
    int32_t start = nb ? rand() % nb : 0, shift = nb ? rand() % nb : 0;
    for (int32_t p = 0; p < nparts; p++) {
        if (p > 0 && p % nb == 0) shift++;
        int32_t first = (p + start) % nb;
        int32_t *r = &out[p * rf];
        const char *rr[CLUSTER_MAX_REPLICAS];
        int32_t nr = 0, nracks_used = 0;
        r[nr] = arr[first]->id;
        rr[nr++] = use_racks ? arr[first]->rack : "";
        nracks_used = 1;
        for (int32_t k = 0; nr < rf && nb > 1; k++) {
            const cl_broker *cand = arr[replica_index(first, shift * nracks, k, nb)];
            const char *crack = use_racks ? cand->rack : "";
            int rack_has = 0, has = 0;
            for (int32_t i = 0; i < nr; i++) {
                if (!strcmp(rr[i], crack)) rack_has = 1;
                if (r[i] == cand->id) has = 1;
            }
            if ((!rack_has || nracks_used == nracks) && (!has || nr == nb)) {
                if (!rack_has) nracks_used++;
                r[nr] = cand->id;
                rr[nr++] = crack;
            }
            if (k > 4 * nb * rf) break; /* cannot happen with rf <= nb; bounded anyway */
        }
    }
}

