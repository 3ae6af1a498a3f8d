/*
 * cli_args.h — number arguments of the command-line tools (tierctl,
 * tierstore-demo, tierstore-kafka-demo): strtoll with end and range
 * checks, and one message naming the option, instead of atol's silent 0.
 *
 * Header-only (static) so that tools that link nothing of tierstore, such
 * as the Kafka demo, can use it too.
 */
#ifndef TS_CLI_ARGS_H
#define TS_CLI_ARGS_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Parses s as a decimal integer in [min, max] into *out. On anything else
 * (empty, trailing characters, out of range, overflow) prints
 * "<prog>: invalid value 's' for <what>: expected an integer from min to max"
 * to stderr and returns -1. what names the option ("--mb") or argument. */
static inline int cli_parse_i64(const char *prog, const char *what, const char *s, int64_t min,
                                int64_t max, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = s && *s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || *end || errno == ERANGE || v < min || v > max) {
        fprintf(stderr, "%s: invalid value '%s' for %s: expected an integer from %lld to %lld\n",
                prog, s ? s : "", what, (long long)min, (long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

#endif
