/*
 * placement.h — Kafka's rack-aware replica assignment (placement.c), pure.
 */
#ifndef TS_BROKER_PLACEMENT_H
#define TS_BROKER_PLACEMENT_H

#include <stddef.h>
#include <stdint.h>

#include "cluster.h"

/* nparts lists of rf broker ids into out (nparts * rf) over brokers (n, any
 * order, at most 256 used); racks count only when every broker has one.
 * rf <= n. */
void cluster_assign(const cl_broker *brokers, size_t n, int32_t nparts, int32_t rf,
                    int32_t *out);

#endif
