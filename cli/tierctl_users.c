/*
 * tierctl_users.c — `tierctl users add|delete|list`: SCRAM credentials in
 * the broker's users file (<log.dirs>/.broker/users, format in
 * auth/scram.h). The password is read from stdin (one line; never from
 * argv, never printed); only salted keys are written. A running broker
 * picks the change up within a second (it watches the file's mtime).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth/scram.h"
#include "tierctl_users.h"

static int users_path(const char *log_dirs, char *out, size_t outlen)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/.broker", log_dirs);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "tierctl: cannot create %s: %s\n", dir, strerror(errno));
        return -1;
    }
    snprintf(out, outlen, "%s/users", dir);
    return 0;
}

/* One line of stdin without its newline; -1 when empty or unreadable. */
static int read_password(char *pw, size_t len)
{
    if (!fgets(pw, (int)len, stdin)) return -1;
    size_t n = strcspn(pw, "\r\n");
    pw[n] = 0;
    return n ? 0 : -1;
}

static int users_add(const char *path, ts_users *u, const char *name, int mech, int iterations)
{
    char pw[1024], err[512];
    if (read_password(pw, sizeof pw) != 0) {
        fprintf(stderr, "tierctl: users add: give the password on stdin (one line)\n");
        return 2;
    }
    ts_scram_cred c;
    int rc = ts_scram_cred_make(mech, pw, strlen(pw), NULL, 0, iterations, &c, err, sizeof err);
    explicit_bzero(pw, sizeof pw);
    if (rc != 0 || ts_users_set(u, name, &c) != 0) {
        fprintf(stderr, "tierctl: users add %s: %s\n", name, rc ? err : "bad user name");
        return 2;
    }
    if (ts_users_save(u, path, err, sizeof err) != 0) {
        fprintf(stderr, "tierctl: %s\n", err);
        return 1;
    }
    printf("%s: %s credential set (%d iterations)\n", name, ts_scram_mech_name(mech), iterations);
    return 0;
}

int tierctl_users(const char *log_dirs, const char *const *args, int nargs, const char *mech_name,
                  int iterations)
{
    char path[4200], err[512];
    if (users_path(log_dirs, path, sizeof path) != 0) return 1;
    int mech = mech_name ? ts_scram_mech_parse(mech_name) : TS_SCRAM_SHA512;
    if (!mech) {
        fprintf(stderr, "tierctl: --mechanism %s: expected SCRAM-SHA-256 or SCRAM-SHA-512\n",
                mech_name);
        return 2;
    }
    ts_users u;
    if (ts_users_load(&u, path, err, sizeof err) != 0) {
        fprintf(stderr, "tierctl: %s\n", err);
        return 1;
    }
    int rc = 0;
    if (!strcmp(args[0], "add") && nargs == 2) {
        rc = users_add(path, &u, args[1], mech, iterations);
    } else if (!strcmp(args[0], "delete") && nargs == 2) {
        if (!ts_users_delete(&u, args[1], mech_name ? mech : 0)) {
            fprintf(stderr, "tierctl: users delete: no credential for %s\n", args[1]);
            rc = 1;
        } else if (ts_users_save(&u, path, err, sizeof err) != 0) {
            fprintf(stderr, "tierctl: %s\n", err);
            rc = 1;
        }
    } else if (!strcmp(args[0], "list") && nargs == 1) {
        for (size_t i = 0; i < u.n; i++)
            printf("%s\t%s\t%d\n", u.v[i].name, ts_scram_mech_name(u.v[i].cred.mech),
                   u.v[i].cred.iterations);
    } else {
        fprintf(stderr, "usage: tierctl -c CONFIG users add|delete NAME [--mechanism M] "
                        "[--iterations N] | users list\n");
        rc = 2;
    }
    ts_users_free(&u);
    return rc;
}
