/* Metering (DESIGN.md, "Metering"): one timer for all workloads; each
 * second their cumulative counters (files kept open, pread) go into one
 * journal record, written and synced at once. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "../common/fsutil.h"
#include "daemon.h"

/* A writable layer's size takes a directory walk: done this seldom. */
#define DISK_SAMPLE_S 30.0

/* The host end of the workload's veth sees the reverse direction: what it
 * transmits, the workload received. The veth goes away with the workload's
 * network namespace, maybe before its last sample: then the counter keeps
 * its last reading (a counter that went back would read as a restart). */
static uint64_t
net_counter (struct instance *in, int which)
{
  if (in->net.veth[0] == '\0')
    return 0;
  if (in->net_fd[which] < 0)
    {
      char path[96];
      snprintf (path, sizeof path, "/sys/class/net/%s/statistics/%s", in->net.veth,
                which == 0 ? "tx_bytes" : "rx_bytes");
      in->net_fd[which] = open (path, O_RDONLY | O_CLOEXEC);
    }
  char buf[32];
  if (in->net_fd[which] >= 0 && pread_all (in->net_fd[which], buf, sizeof buf) > 0)
    {
      uint64_t v = strtoull (buf, NULL, 10);
      if (v > in->net_seen[which])
        in->net_seen[which] = v;
    }
  return in->net_seen[which];
}

void
meter_forget (struct instance *in)
{
  for (int i = 0; i < 2; i++)
    if (in->net_fd[i] >= 0)
      {
        close (in->net_fd[i]);
        in->net_fd[i] = -1;
      }
}

static uint64_t
disk_bytes (struct instance *in, double now)
{
  if (in->disk_at == 0 || now - in->disk_at >= DISK_SAMPLE_S)
    {
      in->disk_bytes = rt_writable_bytes (in->c);
      in->disk_at = now;
    }
  return in->disk_bytes;
}

/* One instance's cumulative counters; false when it has none to give
 * (exited: nothing to bill). */
static bool
sample_one (struct instance *in, double now, struct msg_usage_sample *out)
{
  struct rt_usage u;
  struct error ignored;
  if (in == NULL || in->c == NULL || in->state == INST_EXITED || rt_usage (in->c, &u, &ignored) < 0)
    return false;
  *out = (struct msg_usage_sample){ in->dep->id,
                                    in->version,
                                    u.cpu_usec,
                                    u.memory_current,
                                    u.memory_peak,
                                    u.io_read_bytes,
                                    u.io_write_bytes,
                                    u.pids_current,
                                    net_counter (in, 0),
                                    net_counter (in, 1),
                                    disk_bytes (in, now),
                                    u.psi_cpu_us,
                                    u.psi_memory_us,
                                    u.psi_io_us };
  return true;
}

static void
append (struct daemon *d, const struct msg_usage_sample *s, size_t n, bool tick)
{
  struct error err = { 0 };
  bool sync = false;
  if (tick)
    {
      d->samples++;
      sync = d->journal_sync_s && d->samples % d->journal_sync_s == 0;
    }
  if (journal_append (d->journal, log_now_us () / 1000, s, n, &err) < 0
      || (sync && journal_sync (d->journal, &err) < 0))
    fprintf (stderr, "agentd: %s\n", err.msg);
  else if (d->uplink)
    uplink_notify (d->uplink);
}

void
meter_sample (struct daemon *d, double now)
{
  if (d->journal == NULL)
    return;
  /* Every instance with a cgroup: the current version, one starting, and
   * old ones draining. Stopped or scaled to zero: nothing to bill. */
  size_t n = 0, cap = 0;
  const size_t per = 2 + sizeof d->deployments->draining / sizeof d->deployments->draining[0];
  for (struct deployment *dep = d->deployments; dep; dep = dep->link)
    cap += per;
  struct msg_usage_sample *s = calloc (cap + 1, sizeof *s);
  if (s == NULL)
    return;
  for (struct deployment *dep = d->deployments; dep; dep = dep->link)
    {
      n += sample_one (dep->current, now, &s[n]);
      n += sample_one (dep->next, now, &s[n]);
      for (size_t i = 0; i < per - 2; i++)
        n += sample_one (dep->draining[i], now, &s[n]);
    }
  if (n > 0)
    append (d, s, n, true);
  free (s);
}

void
meter_final (struct daemon *d, struct instance *in)
{
  struct msg_usage_sample s;
  if (d->journal && sample_one (in, monotonic_seconds (), &s))
    append (d, &s, 1, false);
}
