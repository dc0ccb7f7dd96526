/* controld's network side: nodes' uplinks over proto (PROTOCOL.md, "Uplink"). */
#ifndef CONTROL_SERVER_H
#define CONTROL_SERVER_H

#include <netinet/in.h>

#include "../common/error.h"
#include "ledger.h"

struct server_config
{
  struct sockaddr_in listen;
  char listen_text[64];
  char token[256]; /* "" when nodes need none (loopback only) */
  struct rates rates;
};

/* Serve until SIGINT or SIGTERM (0) or a failure (-1). */
int server_run (const struct server_config *cfg, struct ledger *ledger, struct error *err);

#endif
