/*
 * test_demo_disk.c — demo_du (cli/demo_disk.h), the disk footprint both
 * demos print: counts what is below a directory, leaves out the excluded
 * name, and is 0 for a directory that is not there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "demo_disk.h"
#include "tt.h"

static char dir[256];

static void write_file(const char *name, size_t n)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    TT_ASSERT(f != NULL);
    for (size_t i = 0; i < n; i++) fputc('x', f);
    fclose(f);
}

TT_TEST(counts_and_excludes)
{
    snprintf(dir, sizeof(dir), "/tmp/ts-demo-disk-XXXXXX");
    TT_ASSERT(mkdtemp(dir) != NULL);
    write_file("keep", 100000);
    write_file("skip", 300000);
    unsigned long long all = demo_du(dir, NULL), some = demo_du(dir, "skip");
    TT_CHECK(all >= 400000);
    TT_CHECK(some >= 100000 && some < 300000);
done:;
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    TT_ASSERT(system(cmd) == 0);
}

TT_TEST(missing_is_zero)
{
    TT_ASSERT(demo_du("/nonexistent/ts-demo-disk", NULL) == 0);
}

int main(int argc, char **argv)
{
    TT_INIT(argc, argv);
    TT_RUN(counts_and_excludes);
    TT_RUN(missing_is_zero);
    return tt_summary();
}
