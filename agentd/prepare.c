/* The preparer thread: what a start needs but no workload decides (network
 * namespaces with their veth and address; the runtime's spare cgroups and
 * state dirs) is made ahead, off the loop thread, so that a start is
 * clone + mount + exec. The loop hands it addresses to wire up; it hands
 * back ready slots through a pipe and never touches the loop's state. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"

#define SPARES 16

struct prep_result
{
  struct net_slot slot;
  int ok;
  char msg[ERROR_MSG_MAX];
};

struct preparer_ctx
{
  struct net_config net;
  struct rt_runtime *rt;
  int req_fd, res_fd;
};

static void *
preparer_main (void *arg)
{
  struct preparer_ctx *p = arg;
  /* Work ahead only when nothing else wants the CPU: a start in flight
   * must not wait behind the next one's preparations. */
  struct sched_param none = { 0 };
  pthread_setschedparam (pthread_self (), SCHED_IDLE, &none);
  uint32_t addr;
  ssize_t n;
  while ((n = read (p->req_fd, &addr, sizeof addr)) == (ssize_t) sizeof addr || (n < 0 && errno == EINTR))
    {
      if (n < 0)
        continue;
      struct error err = { 0 };
      if (addr != 0)
        {
          struct prep_result r = { .ok = 1 };
          if (net_slot_prepare (&p->net, addr, &r.slot, &err) < 0)
            {
              r.ok = 0;
              r.slot.addr = addr;
              snprintf (r.msg, sizeof r.msg, "%s", err.msg);
            }
          if (write (p->res_fd, &r, sizeof r) != (ssize_t) sizeof r)
            net_slot_release (&r.slot);
        }
      if (rt_prepare (p->rt, SPARES, &err) < 0)
        fprintf (stderr, "agentd: prepare spare cgroups: %s\n", err.msg);
    }
  return NULL;
}

static void
on_prepared (struct loop_handler *h, uint32_t events)
{
  (void) events;
  struct daemon *d = container_of (h, struct daemon, prep_h);
  struct prep_result r;
  while (read (d->prep_res[0], &r, sizeof r) == (ssize_t) sizeof r)
    {
      d->pool_pending--;
      if (!r.ok)
        {
          fprintf (stderr, "agentd: %s (retrying in 5 s)\n", r.msg);
          net_addr_release (d, r.slot.addr);
          d->pool_retry_at = monotonic_seconds () + 5;
          continue;
        }
      if (d->pool_n < NET_POOL_SIZE)
        d->pool[d->pool_n++] = r.slot;
      else
        {
          net_addr_release (d, r.slot.addr);
          net_slot_release (&r.slot);
        }
    }
}

int
preparer_start (struct daemon *d, struct error *err)
{
  struct preparer_ctx *ctx = malloc (sizeof *ctx);
  if (ctx == NULL)
    return error_set (err, ENOMEM, "preparer");
  d->prep_ctx = ctx;
  if (pipe2 (d->prep_req, O_CLOEXEC) < 0 || pipe2 (d->prep_res, O_CLOEXEC) < 0)
    return error_set (err, errno, "preparer pipes");
  fcntl (d->prep_res[0], F_SETFL, O_NONBLOCK);
  *ctx = (struct preparer_ctx){ d->net, d->rt, d->prep_req[0], d->prep_res[1] };
  d->prep_h.fn = on_prepared;
  if (loop_add (&d->loop, d->prep_res[0], EPOLLIN, &d->prep_h, err) < 0)
    return -1;
  int e = pthread_create (&d->prep_thread, NULL, preparer_main, ctx);
  if (e != 0)
    return error_set (err, e, "preparer thread");
  d->prep_running = true;
  return 0;
}

void
preparer_request (struct daemon *d, uint32_t addr)
{
  if (!d->prep_running)
    return;
  if (write (d->prep_req[1], &addr, sizeof addr) == (ssize_t) sizeof addr && addr)
    d->pool_pending++;
}

void
preparer_stop (struct daemon *d)
{
  if (!d->prep_running)
    return;
  close (d->prep_req[1]); /* the thread ends at EOF */
  pthread_join (d->prep_thread, NULL);
  d->prep_running = false;
  on_prepared (&d->prep_h, 0); /* slots made meanwhile join the pool (released by the caller) */
  loop_del (&d->loop, d->prep_res[0]);
  close (d->prep_req[0]);
  close (d->prep_res[0]);
  close (d->prep_res[1]);
  free (d->prep_ctx);
  d->prep_ctx = NULL;
}
