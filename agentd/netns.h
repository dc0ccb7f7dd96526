/* Workload networking: a bridge agentd owns, and per workload a network
 * namespace with loopback, one end of a veth pair (eth0) with an address
 * from the subnet, and a default route through the bridge. rtnetlink
 * through libmnl (loaded on first use). */
#ifndef AGENTD_NETNS_H
#define AGENTD_NETNS_H

#include <stdint.h>

#include "../common/error.h"

struct net_config
{
  char bridge[16];  /* interface name, default agentd0 */
  uint32_t subnet;  /* network address, host byte order */
  int prefix;       /* e.g. 16 */
};

/* "10.88.0.0/16" → subnet and prefix; the gateway is the first address. */
int net_config_parse (const char *cidr, struct net_config *out, struct error *err);
uint32_t net_gateway (const struct net_config *c);
/* The workload addresses: gateway+1 .. broadcast-1. */
uint32_t net_first_host (const struct net_config *c);
uint32_t net_last_host (const struct net_config *c);
void net_addr_str (uint32_t addr, char out[16]);

/* Create the bridge when missing, give it the gateway address, bring it up. */
int net_bridge_up (const struct net_config *c, struct error *err);

struct net_slot
{
  uint32_t addr;
  int netns_fd;      /* the prepared namespace, to join at start */
  char veth[16];     /* the host end, on the bridge */
};

/* A new network namespace for addr, wired to the bridge. */
int net_slot_prepare (const struct net_config *c, uint32_t addr, struct net_slot *out,
                      struct error *err);
/* Delete the host end (the namespace's end goes with it) and close the fd. */
void net_slot_release (struct net_slot *s);
/* The host veth name agentd uses for addr. */
void net_veth_name (uint32_t addr, char out[16]);
/* Delete every veth of ours on the bridge whose address keep() rejects:
 * what a crash left behind. */
int net_reconcile (int (*keep) (void *ctx, uint32_t addr), void *ctx, struct error *err);

#endif
