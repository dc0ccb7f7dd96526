/* The stable endpoint of a deployment: 127.0.0.1:<host port>, forwarded to
 * whichever version is current when the connection arrives. Bytes move
 * with splice(2) through a pipe per direction, never through user space. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon.h"

#define PIPE_CAP (64 * 1024)

struct half
{
  int pipe[2];
  size_t buffered;
  bool src_eof, shut;
};

struct fwd_conn
{
  struct daemon *d;
  struct instance *in;
  int fd[2]; /* 0: the client, 1: the workload */
  struct loop_handler h[2];
  struct half dir[2]; /* 0: client → workload, 1: workload → client */
  bool connecting;
  bool closed; /* both fds may report in one epoll batch */
  struct fwd_conn *next;
};

static void
conn_close (struct fwd_conn *c)
{
  struct daemon *d = c->d;
  if (c->closed)
    return;
  c->closed = true;
  for (int i = 0; i < 2; i++)
    {
      if (c->fd[i] >= 0)
        {
          loop_del (&d->loop, c->fd[i]);
          close (c->fd[i]);
          c->fd[i] = -1;
        }
      for (int k = 0; k < 2; k++)
        if (c->dir[i].pipe[k] >= 0)
          {
            close (c->dir[i].pipe[k]);
            c->dir[i].pipe[k] = -1;
          }
    }
  if (c->in)
    c->in->forwarded--;
  for (struct fwd_conn **p = &d->conns; *p; p = &(*p)->next)
    if (*p == c)
      {
        *p = c->next;
        break;
      }
  daemon_defer_free (d, free, c);
}

void
forward_forget_instance (struct daemon *d, struct instance *in)
{
  for (struct fwd_conn *c = d->conns; c; c = c->next)
    if (c->in == in)
      c->in = NULL;
}

/* Move what can move in one direction. -1: the connection is broken. */
static int
pump (struct fwd_conn *c, int k, bool *progress)
{
  struct half *h = &c->dir[k];
  int src = c->fd[k], dst = c->fd[1 - k];
  if (!h->src_eof && h->buffered < PIPE_CAP)
    {
      ssize_t n = splice (src, NULL, h->pipe[1], NULL, PIPE_CAP - h->buffered,
                          SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0)
        {
          h->buffered += (size_t) n;
          *progress = true;
        }
      else if (n == 0)
        {
          h->src_eof = true;
          *progress = true;
        }
      else if (errno != EAGAIN && errno != EINTR)
        return -1;
    }
  if (h->buffered > 0)
    {
      ssize_t n = splice (h->pipe[0], NULL, dst, NULL, h->buffered,
                          SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0)
        {
          h->buffered -= (size_t) n;
          *progress = true;
        }
      else if (n < 0 && errno != EAGAIN && errno != EINTR)
        return -1;
    }
  if (h->src_eof && h->buffered == 0 && !h->shut)
    {
      shutdown (dst, SHUT_WR);
      h->shut = true;
    }
  return 0;
}

static void
conn_update (struct fwd_conn *c)
{
  for (int i = 0; i < 2; i++)
    {
      uint32_t ev = 0;
      if (!c->dir[i].src_eof && c->dir[i].buffered < PIPE_CAP)
        ev |= EPOLLIN;
      if (c->dir[1 - i].buffered > 0)
        ev |= EPOLLOUT;
      loop_mod (&c->d->loop, c->fd[i], ev, &c->h[i]);
    }
}

static void
conn_event (struct fwd_conn *c, int side, uint32_t events)
{
  if (c->closed)
    return;
  if (c->connecting)
    {
      if (side == 0)
        return; /* the client waits until the workload answers */
      int soerr = 0;
      socklen_t sl = sizeof soerr;
      getsockopt (c->fd[1], SOL_SOCKET, SO_ERROR, &soerr, &sl);
      if (soerr != 0 || (events & EPOLLERR))
        {
          conn_close (c);
          return;
        }
      c->connecting = false;
    }
  bool progress = true;
  while (progress)
    {
      progress = false;
      if (pump (c, 0, &progress) < 0 || pump (c, 1, &progress) < 0)
        {
          conn_close (c);
          return;
        }
    }
  if (c->dir[0].shut && c->dir[1].shut)
    {
      conn_close (c);
      return;
    }
  conn_update (c);
}

static void
on_client (struct loop_handler *h, uint32_t events)
{
  struct fwd_conn *c = container_of (h, struct fwd_conn, h[0]);
  conn_event (c, 0, events);
}

static void
on_workload (struct loop_handler *h, uint32_t events)
{
  struct fwd_conn *c = container_of (h, struct fwd_conn, h[1]);
  conn_event (c, 1, events);
}

static struct fwd_conn *
conn_new (struct daemon *d, int cfd)
{
  struct fwd_conn *c = calloc (1, sizeof *c);
  if (c == NULL)
    return NULL;
  c->d = d;
  c->fd[0] = cfd;
  c->fd[1] = -1;
  for (int i = 0; i < 2; i++)
    c->dir[i].pipe[0] = c->dir[i].pipe[1] = -1;
  c->next = d->conns;
  d->conns = c;
  return c;
}

void
forward_accept (struct loop_handler *h, uint32_t events)
{
  (void) events;
  struct deployment *dep = container_of (h, struct deployment, listen_h);
  struct daemon *d = dep->d;
  for (int burst = 0; burst < 64; burst++)
    {
      int cfd = accept4 (dep->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (cfd < 0)
        return;
      struct instance *in = dep->current;
      if (in == NULL || in->state != INST_RUNNING || in->net.addr == 0)
        {
          close (cfd); /* nothing serving: the client sees the connection end */
          continue;
        }
      struct fwd_conn *c = conn_new (d, cfd);
      if (c == NULL)
        {
          close (cfd);
          continue;
        }
      c->in = in;
      in->forwarded++;
      struct error ignored;
      struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons (dep->spec.port),
                                .sin_addr.s_addr = htonl (in->net.addr) };
      c->fd[1] = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (c->fd[1] < 0 || pipe2 (c->dir[0].pipe, O_NONBLOCK | O_CLOEXEC) < 0
          || pipe2 (c->dir[1].pipe, O_NONBLOCK | O_CLOEXEC) < 0
          || (connect (c->fd[1], (struct sockaddr *) &sa, sizeof sa) < 0 && errno != EINPROGRESS))
        {
          conn_close (c);
          continue;
        }
      c->connecting = true;
      c->h[0].fn = on_client;
      c->h[1].fn = on_workload;
      if (loop_add (&d->loop, c->fd[0], 0, &c->h[0], &ignored) < 0
          || loop_add (&d->loop, c->fd[1], EPOLLOUT, &c->h[1], &ignored) < 0)
        conn_close (c);
    }
}
