/*
 * topic_id.c — the per-topic id records of a broker's disk (topic_id.h has
 * the format and why it lives in .broker/). Blocking file I/O: called from
 * the topic pool, never the loop.
 */
#include "topic_id.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tierstore_names.h"

#define HEAD "version: 0\ntopic_id: "

int topic_id_valid(const char *id)
{
    if (!id || strlen(id) != TOPIC_ID_LEN) return 0;
    for (const char *c = id; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '_'))
            return 0;
    return 1;
}

size_t topic_id_format(const char *id, char *out, size_t outlen)
{
    if (!topic_id_valid(id)) return 0;
    int n = snprintf(out, outlen, HEAD "%s\n", id);
    return n > 0 && (size_t)n < outlen ? (size_t)n : 0;
}

int topic_id_parse(const char *buf, size_t len, char *id, char *err, size_t errlen)
{
    size_t hl = strlen(HEAD);
    char tmp[TOPIC_ID_LEN + 1];
    if (len < hl || memcmp(buf, HEAD, hl) != 0) {
        /* "version: <n>" with n != 0 is a newer format: say so, not "corrupt". */
        if (len > 9 && !memcmp(buf, "version: ", 9) && buf[9] != '0')
            snprintf(err, errlen, "unknown version (this broker reads version 0)");
        else
            snprintf(err, errlen, "does not start with \"version: 0\\ntopic_id: \"");
        goto fail;
    }
    if (len != hl + TOPIC_ID_LEN + 1 || buf[len - 1] != '\n') {
        snprintf(err, errlen, "the topic id is not %d characters and a newline", TOPIC_ID_LEN);
        goto fail;
    }
    memcpy(tmp, buf + hl, TOPIC_ID_LEN);
    tmp[TOPIC_ID_LEN] = 0;
    if (!topic_id_valid(tmp)) {
        snprintf(err, errlen, "the topic id holds a character outside base64url");
        goto fail;
    }
    memcpy(id, tmp, sizeof tmp);
    return 0;
fail:
    id[0] = 0;
    return -1;
}

static int path_of(char *out, size_t outlen, const char *dir, const char *topic, const char *sfx)
{
    if (!ts_topic_name_valid(topic)) return -1;
    int n = snprintf(out, outlen, "%s/%s%s", dir, topic, sfx);
    return n > 0 && (size_t)n < outlen ? 0 : -1;
}

int topic_id_read(const char *dir, const char *topic, char *id, char *err, size_t errlen)
{
    char path[2048], buf[TOPIC_ID_FILE_MAX + 1], why[128];
    id[0] = 0;
    if (path_of(path, sizeof path, dir, topic, "")) {
        snprintf(err, errlen, "invalid topic name or path for '%s' under %s", topic, dir);
        return -1;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) return 0;
    if (fd < 0) {
        snprintf(err, errlen, "open %s: %s", path, strerror(errno));
        return -1;
    }
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof buf - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            snprintf(err, errlen, "read %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (n == 0 || (len += (size_t)n) == sizeof buf) break;
    }
    close(fd);
    if (len > TOPIC_ID_FILE_MAX) {
        snprintf(err, errlen, "%s: larger than %d bytes: not a topic id file", path,
                 TOPIC_ID_FILE_MAX);
        return -1;
    }
    if (topic_id_parse(buf, len, id, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s: %s", path, why);
        return -1;
    }
    return 1;
}

static int fsync_dir(const char *dir, char *err, size_t errlen)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = dfd >= 0 ? fsync(dfd) : -1;
    if (rc != 0) snprintf(err, errlen, "fsync %s: %s", dir, strerror(errno));
    if (dfd >= 0) close(dfd);
    return rc;
}

int topic_id_write(const char *dir, const char *topic, const char *id, char *err, size_t errlen)
{
    char path[2048], tmp[2048], body[64];
    size_t len = topic_id_format(id, body, sizeof body);
    if (!len || path_of(path, sizeof path, dir, topic, "") ||
        path_of(tmp, sizeof tmp, dir, topic, "~tmp")) {
        snprintf(err, errlen, "recording topic id '%s' of '%s' under %s: invalid id or name",
                 id ? id : "", topic, dir);
        return -1;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "mkdir %s: %s", dir, strerror(errno));
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "open %s: %s", tmp, strerror(errno));
        return -1;
    }
    ssize_t n;
    do n = write(fd, body, len);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)len || fsync(fd) != 0) {
        snprintf(err, errlen, "write %s: %s", tmp, n >= 0 && n != (ssize_t)len ? "short write"
                                                                            : strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return fsync_dir(dir, err, errlen);
}

int topic_id_remove(const char *dir, const char *topic, char *err, size_t errlen)
{
    char path[2048];
    if (path_of(path, sizeof path, dir, topic, "")) {
        snprintf(err, errlen, "invalid topic name or path for '%s' under %s", topic, dir);
        return -1;
    }
    if (unlink(path) != 0) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "unlink %s: %s", path, strerror(errno));
        return -1;
    }
    return fsync_dir(dir, err, errlen);
}

int topic_id_list(const char *dir, void (*fn)(const char *topic, void *arg), void *arg,
                  char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "opendir %s: %s", dir, strerror(errno));
        return -1;
    }
    struct dirent *de;
    while ((de = readdir(d)))
        if (ts_topic_name_valid(de->d_name)) fn(de->d_name, arg);
    closedir(d);
    return 0;
}
