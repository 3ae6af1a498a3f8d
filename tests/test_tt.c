/*
 * test_tt.c — tests of the test harness (tt.h): a failed TT_CHECK still runs
 * the test's cleanup, so a test that started threads (an engine, a
 * partition, an upload pool) stops them even when it fails, and the next
 * test does not inherit them.
 *
 * The failing tests run in a child process (fork), since their failure is
 * the point: the child reports through a pipe what ran, and its exit code
 * and summary line are what ctest would see.
 *
 * Also tt_proc.h: a helper process announces its port, is stopped and
 * reaped, and one that announces nothing is refused and reaped too.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tt.h"
#include "tt_proc.h"

static int g_report = -1; /* the child's end of the pipe */

static void report(const char *what)
{
    ssize_t n = write(g_report, what, strlen(what));
    (void)n;
}

/* Stands in for an engine: a thread that runs until told to stop. */
typedef struct worker {
    pthread_t th;
    atomic_int stop;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    while (!atomic_load(&w->stop)) usleep(1000);
    return NULL;
}

static worker *worker_start(void)
{
    worker *w = calloc(1, sizeof(*w));
    if (w && pthread_create(&w->th, NULL, work, w)) {
        free(w);
        w = NULL;
    }
    return w;
}

static void worker_stop(worker *w)
{
    if (!w) return;
    atomic_store(&w->stop, 1);
    pthread_join(w->th, NULL);
    free(w);
    report("joined;");
}

/* --- run in the child ---------------------------------------------------- */

TT_TEST(child_check_fails)
{
    worker *w = worker_start();
    TT_CHECK(w != NULL);
    TT_CHECK_EQ_INT(1 + 1, 3); /* the deliberate failure */
    report("after-failure;");  /* must not run */
done:
    worker_stop(w);
    report("cleanup;");
}

TT_TEST(child_check_passes)
{
    worker *w = worker_start();
    TT_CHECK(w != NULL);
    TT_CHECK_STR("a", "a");
    TT_CHECK_OK(TS_OK);
    report("body;");
done:
    worker_stop(w);
    report("cleanup;");
}

/* Runs one child test; returns its exit code and what it reported. */
static int run_child(void (*fn)(void), const char *name, char *out, size_t outlen)
{
    int p[2];
    if (pipe(p)) return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        close(p[0]);
        g_report = p[1];
        tt_passed = tt_failed = tt_skipped = 0;
        tt_argc = 0; /* run every TT_RUN below */
        tt_cur_failed = 0;
        fprintf(stderr, "  RUN  %s (in a child process)\n", name);
        fn();
        if (tt_cur_failed)
            tt_failed++;
        else
            tt_passed++;
        _exit(tt_summary());
    }
    close(p[1]);
    size_t n = 0;
    ssize_t k;
    while (n + 1 < outlen && (k = read(p[0], out + n, outlen - 1 - n)) > 0) n += (size_t)k;
    out[n] = '\0';
    close(p[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* --- the tests ------------------------------------------------------------- */

TT_TEST(failed_check_runs_cleanup)
{
    char got[256];
    int rc = run_child(child_check_fails, "child_check_fails", got, sizeof(got));
    TT_ASSERT_EQ_INT(rc, 1); /* the failure is reported as one */
    /* the thread was joined and nothing after the failed check ran */
    TT_ASSERT_STR(got, "joined;cleanup;");
}

TT_TEST(passing_check_runs_cleanup_once)
{
    char got[256];
    int rc = run_child(child_check_passes, "child_check_passes", got, sizeof(got));
    TT_ASSERT_EQ_INT(rc, 0);
    TT_ASSERT_STR(got, "body;joined;cleanup;");
}

TT_TEST(proc_reports_port_and_is_reaped)
{
    pid_t pid = 0;
    int port = 0;
    char err[256] = "";
    int rc = tt_proc_start((char *[]){"/bin/sh", "-c", "echo PORT 4242; exec sleep 60", NULL}, &pid,
                           &port, err, sizeof(err));
    TT_ASSERT_MSG(rc == 0, "%s", err);
    TT_ASSERT_EQ_INT(port, 4242);
    pid_t was = pid;
    TT_ASSERT(was > 0 && kill(was, 0) == 0); /* still running: it serves on its port */
    tt_proc_stop(&pid);
    TT_ASSERT_EQ_INT(pid, -1);
    TT_ASSERT(kill(was, 0) == -1 && errno == ESRCH); /* gone and reaped, no zombie */
    tt_proc_stop(&pid);                              /* twice is harmless */
}

TT_TEST(proc_without_port_is_refused_and_reaped)
{
    pid_t pid = 0;
    int port = 0;
    char err[256] = "";
    TT_ASSERT_EQ_INT(tt_proc_start((char *[]){"/bin/sh", "-c", "echo hello; exec sleep 60", NULL},
                                   &pid, &port, err, sizeof(err)),
                     -1);
    TT_ASSERT_EQ_INT(pid, -1);
    TT_ASSERT_MSG(strstr(err, "did not report its port") && strstr(err, "\"hello\""), "%s", err);
    /* the sleeping shell was stopped: this process has no child left */
    TT_ASSERT(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD);
    TT_ASSERT_EQ_INT(tt_proc_start((char *[]){"/nonexistent/helper", NULL}, &pid, &port, err,
                                   sizeof(err)),
                     -1);
    TT_ASSERT_EQ_INT(pid, -1);
    TT_ASSERT_MSG(strstr(err, "cannot start /nonexistent/helper"), "%s", err);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    TT_RUN(failed_check_runs_cleanup);
    TT_RUN(passing_check_runs_cleanup_once);
    TT_RUN(proc_reports_port_and_is_reaped);
    TT_RUN(proc_without_port_is_refused_and_reaped);
    return tt_summary();
}
