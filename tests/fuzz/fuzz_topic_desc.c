/* fuzz_topic_desc.c — libFuzzer target: the topic descriptor parser
 * (index/topic_desc.c) on arbitrary bytes (a descriptor is bucket content:
 * a wrong count would bring back partitions that never existed). A
 * document that parses has a count in 1..1000000, and the writer's output
 * for that count parses back to it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "index/index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int32_t n = 0, back = 0;
    char err[512];
    if (ts_index_topic_desc_parse("t/descriptor/x.json", "t", data, size, &n, err, sizeof(err)))
        return 0;
    if (n < 1 || n > 1000000) abort();
    char *json = ts_index_topic_desc_json("t", n, 1);
    if (!json || ts_index_topic_desc_parse("k", "t", (const uint8_t *)json, strlen(json), &back,
                                           err, sizeof(err)) || back != n)
        abort();
    free(json);
    return 0;
}
