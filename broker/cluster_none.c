/*
 * cluster_none.c — TEMPORARY: the single-node answers of cluster.h, so that
 * the replication code (replica.c, fetcher.c) builds and its single-node
 * paths are tested before cluster.c (cluster-ctl's branch) is merged. It is
 * deleted by that merge; b->cluster stays NULL here, so every cluster path
 * is inert.
 */
#include "broker.h"

size_t cluster_brokers(const broker *b, const cl_broker **out)
{
    (void)b;
    *out = NULL;
    return 0;
}
const cl_broker *cluster_broker(const broker *b, int32_t id)
{
    (void)b;
    (void)id;
    return NULL;
}
const cl_pstate *cluster_pstate(const broker *b, const char *topic, int32_t partition)
{
    (void)b;
    (void)topic;
    (void)partition;
    return NULL;
}
int16_t cluster_check_leader(const broker *b, const char *topic, int32_t partition, int32_t epoch)
{
    (void)b;
    (void)topic;
    (void)partition;
    (void)epoch;
    return KAFKA_NONE;
}
int cluster_is_registered(const broker *b)
{
    (void)b;
    return 1;
}
void cluster_update_isr(broker *b, const char *topic, int32_t partition, int64_t expect_version,
                        const int32_t *isr, int32_t nisr, cluster_done_fn done, void *arg)
{
    (void)topic;
    (void)partition;
    (void)expect_version;
    (void)isr;
    (void)nisr;
    done(b, arg, 0);
}
