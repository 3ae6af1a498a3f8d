/*
 * demo_disk.h — how much disk a directory takes, as both demos report it
 * (the local footprint beside what went to the bucket).
 *
 * Header-only (static), like cli_args.h and demo_events.h: the Kafka demo
 * links nothing of tierstore. It asks du(1) rather than walking the tree so
 * that the number is the one an operator's `du -sb` shows.
 */
#ifndef TS_DEMO_DISK_H
#define TS_DEMO_DISK_H

#include <stdio.h>

/* Bytes below dir (`du -sb`), leaving out entries named exclude (NULL: none);
 * 0 when du fails or dir does not exist. */
static inline unsigned long long demo_du(const char *dir, const char *exclude)
{
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "du -sb %s%s '%s' 2>/dev/null", exclude ? "--exclude=" : "",
             exclude ? exclude : "", dir);
    FILE *f = popen(cmd, "r");
    unsigned long long v = 0;
    if (f) {
        if (fscanf(f, "%llu", &v) != 1) v = 0;
        pclose(f);
    }
    return v;
}

#endif
