/*
 * tierctl_cluster.h — `tierctl cluster`: the cluster's brokers, controller
 * and partition leaders/ISRs as etcd holds them (tierctl_cluster.c).
 */
#ifndef TS_CLI_TIERCTL_CLUSTER_H
#define TS_CLI_TIERCTL_CLUSTER_H

/* Prints the view (text, or one JSON document with json); topic NULL: all.
 * Returns the exit status: 0, 1 (etcd or topic not found), 2 (no store). */
int tierctl_cluster(const char *url, const char *cluster_name, const char *topic, int json);

#endif
