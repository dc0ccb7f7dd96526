/* agentd.yaml: the daemon's settings in a file (`agentd serve --config`);
 * flags on the command line win over it. Strict like deploy.yaml. */
#ifndef AGENTD_CONFIG_H
#define AGENTD_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/error.h"

#define AGENTD_CONFIG_MAX_UIDS 16

struct agentd_config
{
  char *root, *socket, *subnet, *bridge, *metrics, *socket_group;
  char *control, *node_id, *token_file;
  bool has_network, has_journal_sync;
  uint64_t network; /* 0: --no-network */
  uint64_t port_base, log_max, journal_max, journal_sync;
  uid_t allow_uids[AGENTD_CONFIG_MAX_UIDS];
  int n_allow_uids;
};

int agentd_config_parse (const char *name, const char *text, size_t len, struct agentd_config *out,
                         struct error *err);
int agentd_config_load (const char *path, struct agentd_config *out, struct error *err);
void agentd_config_clear (struct agentd_config *c);

#endif
