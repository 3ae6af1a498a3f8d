/*
 * plugin_host.h — what the plugin tests share as a host: loading
 * libtierstore-plugin.so the way a broker does (dlopen + the one entry
 * symbol), `--plugin PATH` (or $TIERSTORE_PLUGIN) on the command line, and
 * the end of a run. Test scaffolding, header-only (one test per program).
 */
#ifndef TS_TESTS_PLUGIN_HOST_H
#define TS_TESTS_PLUGIN_HOST_H

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tierstore_plugin.h"
#include "tests/tt.h"

static const char *g_path;
static void *g_dl;
static const tsp_plugin *g_pl;
static char g_dir[512];

static const tsp_plugin *load(void)
{
    if (g_pl) return g_pl;
    g_dl = dlopen(g_path, RTLD_NOW | RTLD_LOCAL);
    if (!g_dl) {
        fprintf(stderr, "dlopen %s: %s\n", g_path, dlerror());
        return NULL;
    }
    tsp_entry_fn entry = (tsp_entry_fn)dlsym(g_dl, TSP_ENTRY_SYMBOL);
    if (!entry) return NULL;
    char err[256] = "";
    g_pl = entry(TSP_ABI_MAJOR, err, sizeof err);
    return g_pl;
}

/* Takes `--plugin PATH` out of argv, hands the rest (test names) to tt and
 * makes the scratch directory g_dir. Returns 0, or 2 without a plugin. */
static int host_init(int argc, char **argv, const char *prog, const char *tag)
{
    static char *rest[64];
    int nrest = 0;
    for (int i = 0; i < argc && nrest < 63; i++) {
        if (!strcmp(argv[i], "--plugin") && i + 1 < argc) {
            g_path = argv[++i];
            continue;
        }
        rest[nrest++] = argv[i];
    }
    rest[nrest] = NULL;
    if (!g_path) g_path = getenv("TIERSTORE_PLUGIN");
    if (!g_path) {
        fprintf(stderr, "usage: %s --plugin PATH [test...]\n", prog);
        return 2;
    }
    TT_INIT(nrest, rest);
    tt_tmpdir(g_dir, sizeof g_dir, tag);
    return 0;
}

/* Unloads the plugin, removes g_dir, prints the summary. */
static int host_finish(void)
{
    if (g_dl) dlclose(g_dl);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return tt_summary();
}

#endif
