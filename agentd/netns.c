#include "netns.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/dlib.h"

/* libmnl, loaded once: Debian ships no static archive, and agentd is
 * static for start time (as with ISA-L and libcurl). */
static struct
{
  struct mnl_socket *(*open) (int);
  int (*bind) (struct mnl_socket *, unsigned int, pid_t);
  ssize_t (*sendto) (const struct mnl_socket *, const void *, size_t);
  ssize_t (*recvfrom) (const struct mnl_socket *, void *, size_t);
  int (*close) (struct mnl_socket *);
  unsigned int (*portid) (const struct mnl_socket *);
  struct nlmsghdr *(*put_header) (void *);
  void *(*put_extra) (struct nlmsghdr *, size_t);
  void (*attr_put) (struct nlmsghdr *, uint16_t, size_t, const void *);
  void (*attr_put_u32) (struct nlmsghdr *, uint16_t, uint32_t);
  void (*attr_put_strz) (struct nlmsghdr *, uint16_t, const char *);
  struct nlattr *(*nest_start) (struct nlmsghdr *, uint16_t);
  void (*nest_end) (struct nlmsghdr *, struct nlattr *);
} mnl;
static pthread_once_t mnl_once = PTHREAD_ONCE_INIT;
static char mnl_error[256];
static bool mnl_ok;

static void
mnl_load (void)
{
  const struct dl_symbol syms[] = {
    { "mnl_socket_open", (void **) &mnl.open },
    { "mnl_socket_bind", (void **) &mnl.bind },
    { "mnl_socket_sendto", (void **) &mnl.sendto },
    { "mnl_socket_recvfrom", (void **) &mnl.recvfrom },
    { "mnl_socket_close", (void **) &mnl.close },
    { "mnl_socket_get_portid", (void **) &mnl.portid },
    { "mnl_nlmsg_put_header", (void **) &mnl.put_header },
    { "mnl_nlmsg_put_extra_header", (void **) &mnl.put_extra },
    { "mnl_attr_put", (void **) &mnl.attr_put },
    { "mnl_attr_put_u32", (void **) &mnl.attr_put_u32 },
    { "mnl_attr_put_strz", (void **) &mnl.attr_put_strz },
    { "mnl_attr_nest_start", (void **) &mnl.nest_start },
    { "mnl_attr_nest_end", (void **) &mnl.nest_end },
  };
  mnl_ok = dl_load ("libmnl.so.0", "libmnl0", syms, sizeof syms / sizeof syms[0], mnl_error,
                    sizeof mnl_error) == 0;
}

struct nl
{
  struct mnl_socket *s;
  unsigned int portid, seq;
  char buf[8192];
};

static int
nl_open (struct nl *nl, struct error *err)
{
  pthread_once (&mnl_once, mnl_load);
  if (!mnl_ok)
    return error_setx (err, ENOSYS, "rtnetlink: %s", mnl_error);
  nl->s = mnl.open (NETLINK_ROUTE);
  if (nl->s == NULL)
    return error_setx (err, EIO, "rtnetlink: cannot open a socket");
  if (mnl.bind (nl->s, 0, MNL_SOCKET_AUTOPID) < 0)
    {
      mnl.close (nl->s);
      nl->s = NULL;
      return error_setx (err, EIO, "rtnetlink: cannot bind");
    }
  nl->portid = mnl.portid (nl->s);
  nl->seq = (unsigned int) time (NULL);
  return 0;
}

static void
nl_close (struct nl *nl)
{
  if (nl->s)
    mnl.close (nl->s);
  nl->s = NULL;
}

static struct nlmsghdr *
nl_msg (struct nl *nl, uint16_t type, uint16_t flags)
{
  struct nlmsghdr *h = mnl.put_header (nl->buf);
  h->nlmsg_type = type;
  h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
  h->nlmsg_seq = ++nl->seq;
  return h;
}

/* Send h and wait for its acknowledgement; the kernel's errno on failure.
 * The ack is read here, not through mnl_cb_run: a library dlopen'ed into a
 * static binary has its own libc, so its errno is not ours. */
static int
nl_talk (struct nl *nl, struct nlmsghdr *h, const char *what, struct error *err)
{
  unsigned seq = h->nlmsg_seq;
  if (mnl.sendto (nl->s, h, h->nlmsg_len) < 0)
    return error_setx (err, EIO, "rtnetlink: %s: send failed", what);
  for (;;)
    {
      ssize_t n = mnl.recvfrom (nl->s, nl->buf, sizeof nl->buf);
      if (n < 0)
        return error_setx (err, EIO, "rtnetlink: %s: receive failed", what);
      size_t left = (size_t) n;
      for (struct nlmsghdr *r = (struct nlmsghdr *) nl->buf; NLMSG_OK (r, left);
           r = NLMSG_NEXT (r, left))
        {
          if (r->nlmsg_seq != seq || r->nlmsg_type != NLMSG_ERROR)
            continue;
          const struct nlmsgerr *e = NLMSG_DATA (r);
          if (e->error == 0)
            return 0;
          return error_set (err, -e->error, "rtnetlink: %s", what);
        }
    }
}

static struct ifinfomsg *
put_ifinfo (struct nlmsghdr *h, int index, unsigned up)
{
  struct ifinfomsg *ifi = mnl.put_extra (h, sizeof *ifi);
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = index;
  ifi->ifi_flags = up;
  ifi->ifi_change = up;
  return ifi;
}

static int
link_up (struct nl *nl, int index, const char *name, struct error *err)
{
  struct nlmsghdr *h = nl_msg (nl, RTM_NEWLINK, 0);
  put_ifinfo (h, index, IFF_UP);
  char what[64];
  snprintf (what, sizeof what, "bring up %s", name);
  return nl_talk (nl, h, what, err);
}

static int
addr_add (struct nl *nl, int index, const char *name, uint32_t addr, int prefix,
          struct error *err)
{
  struct nlmsghdr *h = nl_msg (nl, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE);
  struct ifaddrmsg *ifa = mnl.put_extra (h, sizeof *ifa);
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = (unsigned char) prefix;
  ifa->ifa_index = (unsigned) index;
  uint32_t be = htonl (addr);
  mnl.attr_put_u32 (h, IFA_LOCAL, be);
  mnl.attr_put_u32 (h, IFA_ADDRESS, be);
  char what[64], a[16];
  net_addr_str (addr, a);
  snprintf (what, sizeof what, "address %s/%d on %s", a, prefix, name);
  return nl_talk (nl, h, what, err);
}

static int
default_route (struct nl *nl, uint32_t gw, struct error *err)
{
  struct nlmsghdr *h = nl_msg (nl, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE);
  struct rtmsg *rt = mnl.put_extra (h, sizeof *rt);
  rt->rtm_family = AF_INET;
  rt->rtm_table = RT_TABLE_MAIN;
  rt->rtm_protocol = RTPROT_STATIC;
  rt->rtm_scope = RT_SCOPE_UNIVERSE;
  rt->rtm_type = RTN_UNICAST;
  mnl.attr_put_u32 (h, RTA_GATEWAY, htonl (gw));
  return nl_talk (nl, h, "default route", err);
}

int
net_config_parse (const char *cidr, struct net_config *out, struct error *err)
{
  char ip[32];
  int prefix;
  struct in_addr a;
  if (sscanf (cidr, "%31[0-9.]/%d", ip, &prefix) != 2 || inet_pton (AF_INET, ip, &a) != 1
      || prefix < 8 || prefix > 28)
    return error_setx (err, EINVAL, "subnet `%s`: expected an IPv4 CIDR such as 10.88.0.0/16 (prefix 8-28)", cidr);
  if (out->bridge[0] == '\0')
    strcpy (out->bridge, "agentd0");
  uint32_t mask = ~0u << (32 - prefix);
  out->subnet = ntohl (a.s_addr) & mask;
  out->prefix = prefix;
  return 0;
}

uint32_t
net_gateway (const struct net_config *c)
{
  return c->subnet + 1;
}

uint32_t
net_first_host (const struct net_config *c)
{
  return c->subnet + 2;
}

uint32_t
net_last_host (const struct net_config *c)
{
  return c->subnet + (uint32_t) ((1ull << (32 - c->prefix)) - 2);
}

void
net_addr_str (uint32_t addr, char out[16])
{
  struct in_addr a = { htonl (addr) };
  inet_ntop (AF_INET, &a, out, 16);
}

void
net_veth_name (uint32_t addr, char out[16])
{
  snprintf (out, 16, "ad%08x", addr);
}

int
net_bridge_up (const struct net_config *c, struct error *err)
{
  struct nl nl = { 0 };
  if (nl_open (&nl, err) < 0)
    return -1;
  int ret = -1;
  struct nlmsghdr *h = nl_msg (&nl, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  put_ifinfo (h, 0, 0);
  mnl.attr_put_strz (h, IFLA_IFNAME, c->bridge);
  struct nlattr *info = mnl.nest_start (h, IFLA_LINKINFO);
  mnl.attr_put_strz (h, IFLA_INFO_KIND, "bridge");
  mnl.nest_end (h, info);
  if (nl_talk (&nl, h, "create bridge", err) < 0 && err->code != EEXIST)
    goto out;
  int index = (int) if_nametoindex (c->bridge);
  if (index == 0)
    {
      error_set (err, errno, "bridge `%s`", c->bridge);
      goto out;
    }
  if (addr_add (&nl, index, c->bridge, net_gateway (c), c->prefix, err) < 0
      || link_up (&nl, index, c->bridge, err) < 0)
    goto out;
  ret = 0;
out:
  if (ret < 0)
    error_prefix (err, "bridge `%s`", c->bridge);
  nl_close (&nl);
  return ret;
}

struct prepare_job
{
  const struct net_config *c;
  struct net_slot *slot;
  struct error *err;
  int ret;
};

/* A neighbour entry left from the address's previous holder would send
 * the first packets to a MAC that no longer exists. */
static void
forget_neighbour (struct nl *host, int bridge, uint32_t addr)
{
  struct nlmsghdr *h = nl_msg (host, RTM_DELNEIGH, 0);
  struct ndmsg *nd = mnl.put_extra (h, sizeof *nd);
  nd->ndm_family = AF_INET;
  nd->ndm_ifindex = bridge;
  mnl.attr_put_u32 (h, NDA_DST, htonl (addr));
  struct error ignored;
  nl_talk (host, h, "forget neighbour", &ignored); /* ENOENT is the usual answer */
}

/* The host end is created up, on the bridge; the peer is born in the
 * namespace as eth0. */
static int
create_veth (struct nl *host, int bridge, struct net_slot *s, struct error *err)
{
  struct nlmsghdr *h = nl_msg (host, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  put_ifinfo (h, 0, IFF_UP);
  mnl.attr_put_strz (h, IFLA_IFNAME, s->veth);
  mnl.attr_put_u32 (h, IFLA_MASTER, (uint32_t) bridge);
  struct nlattr *info = mnl.nest_start (h, IFLA_LINKINFO);
  mnl.attr_put_strz (h, IFLA_INFO_KIND, "veth");
  struct nlattr *data = mnl.nest_start (h, IFLA_INFO_DATA);
  struct nlattr *peer = mnl.nest_start (h, VETH_INFO_PEER);
  put_ifinfo (h, 0, 0);
  mnl.attr_put_strz (h, IFLA_IFNAME, "eth0");
  mnl.attr_put_u32 (h, IFLA_NET_NS_FD, (uint32_t) s->netns_fd);
  mnl.nest_end (h, peer);
  mnl.nest_end (h, data);
  mnl.nest_end (h, info);
  char what[64];
  snprintf (what, sizeof what, "create veth %s", s->veth);
  return nl_talk (host, h, what, err);
}

/* Runs in its own thread: unshare(CLONE_NEWNET) changes only the calling
 * thread, and a socket stays in the namespace it was made in. */
static void *
prepare_thread (void *arg)
{
  struct prepare_job *j = arg;
  struct net_slot *s = j->slot;
  struct nl host = { 0 }, ns = { 0 };
  j->ret = -1;
  /* Names are looked up in the thread's namespace: the bridge's first. */
  int bridge = (int) if_nametoindex (j->c->bridge);
  if (bridge == 0)
    {
      error_set (j->err, errno, "bridge `%s`", j->c->bridge);
      return NULL;
    }
  if (nl_open (&host, j->err) < 0)
    return NULL;
  forget_neighbour (&host, bridge, s->addr);
  if (unshare (CLONE_NEWNET) < 0)
    {
      error_set (j->err, errno, "new network namespace");
      goto out;
    }
  s->netns_fd = open ("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (s->netns_fd < 0)
    {
      error_set (j->err, errno, "open the new network namespace");
      goto out;
    }
  if (nl_open (&ns, j->err) < 0 || link_up (&ns, 1, "lo", j->err) < 0
      || create_veth (&host, bridge, s, j->err) < 0)
    goto out;
  int eth0 = (int) if_nametoindex ("eth0"); /* this thread is in the namespace */
  if (eth0 == 0)
    {
      error_set (j->err, errno, "eth0 in the new namespace");
      goto out;
    }
  if (addr_add (&ns, eth0, "eth0", s->addr, j->c->prefix, j->err) < 0
      || link_up (&ns, eth0, "eth0", j->err) < 0
      || default_route (&ns, net_gateway (j->c), j->err) < 0)
    goto out;
  j->ret = 0;
out:
  nl_close (&ns);
  nl_close (&host);
  return NULL;
}

int
net_slot_prepare (const struct net_config *c, uint32_t addr, struct net_slot *out,
                  struct error *err)
{
  *out = (struct net_slot){ .addr = addr, .netns_fd = -1 };
  net_veth_name (addr, out->veth);
  struct prepare_job j = { c, out, err, -1 };
  pthread_t t;
  int e = pthread_create (&t, NULL, prepare_thread, &j);
  if (e != 0)
    return error_set (err, e, "network namespace thread");
  pthread_join (t, NULL);
  if (j.ret < 0)
    {
      char a[16];
      net_addr_str (addr, a);
      error_prefix (err, "network for %s", a);
      net_slot_release (out);
      return -1;
    }
  return 0;
}

static void
veth_delete (const char *name)
{
  int index = (int) if_nametoindex (name);
  struct nl nl = { 0 };
  struct error ignored;
  if (index == 0 || nl_open (&nl, &ignored) < 0)
    return;
  struct nlmsghdr *h = nl_msg (&nl, RTM_DELLINK, 0);
  put_ifinfo (h, index, 0);
  nl_talk (&nl, h, "delete veth", &ignored);
  nl_close (&nl);
}

void
net_slot_release (struct net_slot *s)
{
  if (s->veth[0])
    veth_delete (s->veth);
  if (s->netns_fd >= 0)
    close (s->netns_fd);
  s->netns_fd = -1;
  s->veth[0] = '\0';
}

int
net_reconcile (int (*keep) (void *ctx, uint32_t addr), void *ctx, struct error *err)
{
  cleanup_closedir DIR *d = opendir ("/sys/class/net");
  if (d == NULL)
    return error_set (err, errno, "list network interfaces");
  struct dirent *e;
  while ((e = readdir (d)) != NULL)
    {
      unsigned addr;
      char tail;
      if (strlen (e->d_name) != 10 || sscanf (e->d_name, "ad%8x%c", &addr, &tail) != 1)
        continue;
      if (!keep (ctx, addr))
        veth_delete (e->d_name);
    }
  return 0;
}
