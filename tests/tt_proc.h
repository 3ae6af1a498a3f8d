/*
 * tt_proc.h — a helper process a test starts and stops: a test double
 * (credsim.py, faultproxy.py) that binds a free loopback port and announces
 * it as its first line on stdout, "PORT n", so that tests never guess ports.
 *
 *   pid_t pid; int port; char err[256];
 *   if (tt_proc_start((char *[]){"/usr/bin/python3", SCRIPT, NULL}, &pid, &port,
 *                     err, sizeof(err))) { fprintf(stderr, "%s\n", err); ... }
 *   ...
 *   tt_proc_stop(&pid);
 *
 * Header-only (static inline), like tt.h.
 */
#ifndef TS_TT_PROC_H
#define TS_TT_PROC_H

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Stops a helper (SIGTERM) and reaps it; *pid <= 0 is a no-op. Sets *pid to
 * -1, so that calling it twice is harmless. */
static inline void tt_proc_stop(pid_t *pid)
{
    if (*pid > 0) {
        kill(*pid, SIGTERM);
        waitpid(*pid, NULL, 0);
    }
    *pid = -1;
}

/* Starts argv (argv[0] a path) with stdout on a pipe and reads its first
 * line, which must be "PORT n". 0 with *pid and *port set; -1 with the
 * reason in errbuf and no process left behind (*pid = -1). The helper's stdout
 * is closed after that line: it reports through its port, and its stderr
 * stays the test's. */
static inline int tt_proc_start(char *const argv[], pid_t *pid, int *port, char *errbuf,
                                size_t errbuf_len)
{
    const char *what = argv[1] ? argv[1] : argv[0];
    int fds[2];
    *pid = -1;
    if (pipe(fds)) {
        snprintf(errbuf, errbuf_len, "cannot start %s: pipe: %s", what, strerror(errno));
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    int rc = posix_spawn(pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc) {
        snprintf(errbuf, errbuf_len, "cannot start %s: %s", what, strerror(rc));
        close(fds[0]);
        *pid = -1;
        return -1;
    }
    FILE *f = fdopen(fds[0], "r");
    if (!f) {
        snprintf(errbuf, errbuf_len, "cannot read from %s: %s", what, strerror(errno));
        close(fds[0]);
        tt_proc_stop(pid);
        return -1;
    }
    char line[64] = "";
    int ok = fgets(line, sizeof(line), f) && sscanf(line, "PORT %d", port) == 1;
    fclose(f);
    if (!ok) {
        snprintf(errbuf, errbuf_len, "%s did not report its port (first line \"%.*s\")", what,
                 (int)strcspn(line, "\n"), line);
        tt_proc_stop(pid);
        return -1;
    }
    return 0;
}

#endif
