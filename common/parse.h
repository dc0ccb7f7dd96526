/* Parsers for command-line and config values; each names what was wrong. */
#ifndef COMMON_PARSE_H
#define COMMON_PARSE_H

#include <stdint.h>
#include <sys/types.h>

#include "../common/error.h"

/* "256M", "1G", "512k", "1048576" (binary units, optional trailing B). */
int parse_size (const char *s, int64_t *out, struct error *err);
/* "0.5" -> 500 millicores; "2" -> 2000; at most three decimals. */
int parse_cpus (const char *s, int64_t *out, struct error *err);
/* A positive decimal integer no larger than max. */
int parse_count (const char *s, int64_t max, int64_t *out, struct error *err);
/* "30s", "15m", "2h", "7d" or plain seconds; at most a year. */
int parse_duration (const char *s, uint64_t *out, struct error *err);
/* "UID" or "UID:GID", numeric; gid defaults to uid. */
int parse_user (const char *s, uid_t *uid, gid_t *gid, struct error *err);

#endif
