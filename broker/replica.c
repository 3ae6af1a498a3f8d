/*
 * replica.c — MINIMAL stand-in: cluster-repl replaces this file with the
 * real replication (fetchers, high watermark, ISR changes, acks=-1).
 *
 * Here a replica only takes the role etcd gives it: leader at the state's
 * epoch when this broker leads it (and is registered), follower otherwise.
 * Thread: loop.
 */
#include "broker.h"

void replica_on_state(broker *b, btopic *t, bpart *p, const cl_pstate *prev,
                      const cl_pstate *now)
{
    (void)t;
    if (!p->h || now->leader_epoch < 0 || !TSP_HAS(b->pl, partition_set_role)) return;
    int lead = now->leader == b->node_id && cluster_is_registered(b);
    if (prev && prev->leader_epoch == now->leader_epoch &&
        (prev->leader == b->node_id) == lead)
        return;
    char err[256] = "";
    tsp_status st = b->pl->partition_set_role(p->h, now->leader_epoch, lead, err, sizeof err);
    if (st != TSP_OK)
        blog_warn("partition %d: role %s at epoch %d: %s: %s", p->index,
                  lead ? "leader" : "follower", now->leader_epoch, b->pl->status_name(st), err);
}

void replica_on_brokers(broker *b) { (void)b; }
