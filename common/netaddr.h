/* TCP endpoints and shared-secret tokens, as the command lines give them
 * (deploy mcp --listen, controld --listen, agentd --control). */
#ifndef COMMON_NETADDR_H
#define COMMON_NETADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/* "ADDR:PORT" with an IPv4 address (or "localhost"), port 1-65535. */
int parse_hostport (const char *s, struct sockaddr_in *out, struct error *err);
bool is_loopback (const struct sockaddr_in *sa);

#define TOKEN_MIN 16

/* The first line of a token file: at least TOKEN_MIN characters. */
int read_token_file (const char *path, char *out, size_t cap, struct error *err);
/* Compare in constant time (no early exit that times the secret). */
bool token_equal (const char *a, const char *b);

#endif
