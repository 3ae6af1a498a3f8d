/* fuzz_config.c — libFuzzer target: the properties-file parser and value
 * validation (operators' config files are input too). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "tierstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[] = "/tmp/fuzz-config-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return 0;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        unlink(path);
        return 0;
    }
    close(fd);
    char err[512];
    for (int strict = 0; strict < 2; strict++) {
        ts_config *c = ts_config_create();
        ts_config_load_file(c, path, strict, err, sizeof(err));
        ts_config_get(c, "log.segment.bytes");
        ts_config_destroy(c);
    }
    unlink(path);
    return 0;
}
