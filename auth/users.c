/*
 * auth/users.c — the users file (<log.dirs>/.broker/users): SCRAM
 * credentials, one a line, format in scram.h. tierctl writes it; the broker
 * reads it at startup, when its mtime changes, and writes it for
 * AlterUserScramCredentials.
 */
#include "auth/scram.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define USERS_HEADER "# tierstore users v1\n"

static int hex_decode(const char *in, char *out, size_t outlen)
{
    size_t n = strlen(in);
    if (n == 0 || n % 2 || n / 2 >= outlen) return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(in + 2 * i, "%2x", &v) != 1) return -1;
        if (v == 0) return -1;
        out[i] = (char)v;
    }
    out[n / 2] = 0;
    return 0;
}

static int b64_field(const char *in, uint8_t *out, size_t want, size_t *len)
{
    size_t n = 0;
    if (ts_auth_b64_decode(in, strlen(in), out, TS_SCRAM_MAX_DIGEST, &n) != 0) return -1;
    if (want && n != want) return -1;
    if (len) *len = n;
    return 0;
}

/* One line into (name, cred); -1 when malformed. */
static int parse_line(char *line, char *name, ts_scram_cred *c)
{
    char *f[6], *save = NULL;
    int n = 0;
    for (char *t = strtok_r(line, " \t\n", &save); t && n < 6; t = strtok_r(NULL, " \t\n", &save))
        f[n++] = t;
    if (n != 6 || strtok_r(NULL, " \t\n", &save)) return -1;
    memset(c, 0, sizeof *c);
    c->mech = ts_scram_mech_parse(f[0]);
    size_t dl = ts_scram_digest_len(c->mech);
    char *end = NULL;
    long it = strtol(f[2], &end, 10);
    if (!dl || hex_decode(f[1], name, TS_SCRAM_MAX_NAME) || *end ||
        it < TS_SCRAM_MIN_ITERATIONS || it > TS_SCRAM_MAX_ITERATIONS ||
        b64_field(f[3], c->salt, 0, &c->salt_len) || c->salt_len == 0 ||
        c->salt_len > TS_SCRAM_MAX_SALT || b64_field(f[4], c->stored_key, dl, NULL) ||
        b64_field(f[5], c->server_key, dl, NULL))
        return -1;
    c->iterations = (int)it;
    return 0;
}

int ts_users_load(ts_users *u, const char *path, char *err, size_t errlen)
{
    memset(u, 0, sizeof *u);
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    char line[1024];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n') continue;
        char name[TS_SCRAM_MAX_NAME];
        ts_scram_cred c;
        if (parse_line(line, name, &c) != 0 || ts_users_set(u, name, &c) != 0) {
            snprintf(err, errlen, "%s:%d: not a credential line (see auth/scram.h)", path, lineno);
            rc = -1;
            break;
        }
    }
    fclose(f);
    if (rc) ts_users_free(u);
    return rc;
}

static void write_line(FILE *f, const struct ts_user_cred *e)
{
    char salt[128], stored[128], server[128];
    size_t dl = ts_scram_digest_len(e->cred.mech);
    ts_auth_b64_encode(e->cred.salt, e->cred.salt_len, salt);
    ts_auth_b64_encode(e->cred.stored_key, dl, stored);
    ts_auth_b64_encode(e->cred.server_key, dl, server);
    fprintf(f, "%s ", ts_scram_mech_name(e->cred.mech));
    for (const unsigned char *p = (const unsigned char *)e->name; *p; p++) fprintf(f, "%02x", *p);
    fprintf(f, " %d %s %s %s\n", e->cred.iterations, salt, stored, server);
}

static int fsync_dir(const char *path)
{
    char d[4096];
    snprintf(d, sizeof d, "%s", path);
    int fd = open(dirname(d), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int ts_users_save(const ts_users *u, const char *path, char *err, size_t errlen)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    fchmod(fd, 0600);
    fputs(USERS_HEADER, f);
    for (size_t i = 0; i < u->n; i++) write_line(f, &u->v[i]);
    int ok = fflush(f) == 0 && fsync(fd) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0 || fsync_dir(path) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

const ts_scram_cred *ts_users_find(const ts_users *u, const char *name, int mech)
{
    for (size_t i = 0; i < u->n; i++)
        if (u->v[i].cred.mech == mech && !strcmp(u->v[i].name, name)) return &u->v[i].cred;
    return NULL;
}

int ts_users_set(ts_users *u, const char *name, const ts_scram_cred *cred)
{
    if (strlen(name) >= TS_SCRAM_MAX_NAME || !*name) return -1;
    for (size_t i = 0; i < u->n; i++)
        if (u->v[i].cred.mech == cred->mech && !strcmp(u->v[i].name, name)) {
            u->v[i].cred = *cred;
            return 0;
        }
    if (u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 8;
        struct ts_user_cred *v = realloc(u->v, cap * sizeof *v);
        if (!v) return -1;
        u->v = v;
        u->cap = cap;
    }
    snprintf(u->v[u->n].name, sizeof u->v[u->n].name, "%s", name);
    u->v[u->n].cred = *cred;
    u->n++;
    return 0;
}

int ts_users_delete(ts_users *u, const char *name, int mech)
{
    int gone = 0;
    for (size_t i = 0; i < u->n;) {
        if (!strcmp(u->v[i].name, name) && (!mech || u->v[i].cred.mech == mech)) {
            u->v[i] = u->v[--u->n];
            gone++;
        } else {
            i++;
        }
    }
    return gone;
}

void ts_users_free(ts_users *u)
{
    free(u->v);
    memset(u, 0, sizeof *u);
}
