/*
 * fuzz_acl_record.c — libFuzzer target for the ACL record parser
 * (broker/acl.c: acl_entry_from_json), which reads every line of
 * <log.dirs>/.broker/acls at startup and every acls/ value of etcd in a
 * cluster. Input: one record. A record that parses must be valid, render
 * back to JSON that parses to the same binding, and have an etcd key.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/acl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    acl_entry e;
    const char *why;
    if (acl_entry_from_json((const char *)data, size, &e, &why) != 0) {
        if (!why) abort(); /* a refusal always says why */
        return 0;
    }
    if (acl_entry_valid(&e, &why) != 0) abort();
    char *j = acl_entry_json(&e);
    acl_entry back;
    if (!j || acl_entry_from_json(j, strlen(j), &back, &why) != 0 || !acl_entry_equal(&e, &back))
        abort();
    char key[16384];
    if (acl_entry_key(&e, key, sizeof key) != 0 && strlen(e.name) + strlen(e.principal) < 1000)
        abort();
    acl_entry_free(&back);
    acl_entry_free(&e);
    free(j);
    return 0;
}
