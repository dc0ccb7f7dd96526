/* controld serve: one epoll loop over the listening socket, a signalfd and
 * the nodes' connections. A node says HELLO (its token checked), then
 * streams USAGE_BATCHes; each is committed to the ledger before its
 * USAGE_ACK goes out. A project out of credits gets STOP_PROJECT on every
 * connection whose batches charge it. */
#include "server.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/netaddr.h"
#include "../proto/messages.h"

#define OUT_MAX (8u << 20) /* a node that reads nothing is dropped */
#define NODE_ID_MAX 63

struct node_conn
{
  struct proto_conn conn;
  bool hello, closing;
  char node[NODE_ID_MAX + 1];
  char **stop_sent; /* projects already told to stop on this connection */
  size_t n_stop_sent;
  uint32_t next_reqid;
  struct node_conn *next;
};

#define CREDIT_CHECK_S 2 /* how often the stopped projects are looked up */

struct server
{
  const struct server_config *cfg;
  struct ledger *ledger;
  int epfd, listen_fd, signal_fd, timer_fd;
  struct node_conn *conns;
  char **stopped; /* projects out of credits, as last looked up */
};

static bool
in_list (char **list, const char *s)
{
  for (char **p = list; p && *p; p++)
    if (strcmp (*p, s) == 0)
      return true;
  return false;
}

static void
list_add (char ***list, const char *s)
{
  size_t n = 0;
  while (*list && (*list)[n])
    n++;
  char **g = realloc (*list, (n + 2) * sizeof *g);
  if (g == NULL)
    return;
  if ((g[n] = strdup (s)) != NULL)
    n++;
  g[n] = NULL;
  *list = g;
}

static void
free_list (char **list)
{
  for (char **p = list; p && *p; p++)
    free (*p);
  free (list);
}

static void
conn_close (struct server *s, struct node_conn *c)
{
  for (struct node_conn **p = &s->conns; *p; p = &(*p)->next)
    if (*p == c)
      {
        *p = c->next;
        break;
      }
  if (c->hello)
    fprintf (stderr, "controld: node %s disconnected\n", c->node);
  epoll_ctl (s->epfd, EPOLL_CTL_DEL, c->conn.fd, NULL);
  close (c->conn.fd);
  proto_conn_free (&c->conn);
  for (size_t i = 0; i < c->n_stop_sent; i++)
    free (c->stop_sent[i]);
  free (c->stop_sent);
  free (c);
}

/* Write what the socket takes; false when the connection was closed. */
static bool
conn_flush (struct server *s, struct node_conn *c)
{
  struct error err = { 0 };
  int r = proto_conn_flush (&c->conn, &err);
  if (r < 0 || (r == 0 && c->closing) || c->conn.out.len - c->conn.out_pos > OUT_MAX)
    {
      conn_close (s, c);
      return false;
    }
  struct epoll_event ev = { .events = EPOLLIN | (r == 1 ? EPOLLOUT : 0), .data.ptr = c };
  epoll_ctl (s->epfd, EPOLL_CTL_MOD, c->conn.fd, &ev);
  return true;
}

static void
send_msg (struct node_conn *c, uint8_t type, uint16_t flags, uint32_t reqid, const void *msg)
{
  struct error err = { 0 };
  struct proto_buf b = { 0 };
  if (proto_encode (type, msg, &b, &err) < 0
      || proto_conn_queue (&c->conn, type, flags, reqid, &b, &err) < 0)
    fprintf (stderr, "controld: send %s: %s\n", proto_msg_name (type), err.msg);
  proto_buf_free (&b);
}

static void __attribute__ ((format (printf, 4, 5)))
send_error (struct node_conn *c, uint32_t reqid, uint64_t code, const char *fmt, ...)
{
  char text[ERROR_MSG_MAX + 64];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (text, sizeof text, fmt, ap);
  va_end (ap);
  struct msg_error e = { code, text };
  send_msg (c, MSG_ERROR, PROTO_F_REPLY, reqid, &e);
}

static bool
valid_node_id (const char *id)
{
  size_t n = id ? strlen (id) : 0;
  if (n == 0 || n > NODE_ID_MAX)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!(id[i] >= 'a' && id[i] <= 'z') && !(id[i] >= 'A' && id[i] <= 'Z')
        && !(id[i] >= '0' && id[i] <= '9') && !strchr ("-_.", id[i]))
      return false;
  return true;
}

static void send_stop (struct node_conn *c, const char *project);

static void
on_hello (struct server *s, struct node_conn *c, uint32_t reqid, const struct msg_hello *m)
{
  if (!valid_node_id (m->node_id))
    {
      send_error (c, reqid, PROTO_E_INVALID, "HELLO: node_id must be 1-%d of [A-Za-z0-9._-]",
                  NODE_ID_MAX);
      c->closing = true;
      return;
    }
  if (m->version != PROTO_VERSION)
    {
      send_error (c, reqid, PROTO_E_INVALID, "HELLO: protocol version %llu, controld speaks %d",
                  (unsigned long long) m->version, PROTO_VERSION);
      c->closing = true;
      return;
    }
  if (s->cfg->token[0] && !token_equal (m->token ? m->token : "", s->cfg->token))
    {
      fprintf (stderr, "controld: node %s refused: wrong token\n", m->node_id);
      send_error (c, reqid, PROTO_E_DENIED, "node %s: wrong token", m->node_id);
      c->closing = true;
      return;
    }
  struct error err = { 0 };
  struct msg_hello_result r = { 0 };
  if (ledger_acked (s->ledger, m->node_id, &r.acked_seq, &err) < 0
      || (m->next_seq && m->next_seq <= r.acked_seq
          && ledger_journal_reset (s->ledger, m->node_id, m->next_seq, &r.acked_seq, &err) < 0))
    {
      send_error (c, reqid, PROTO_E_FAILED, "%s", err.msg);
      c->closing = true;
      return;
    }
  snprintf (c->node, sizeof c->node, "%s", m->node_id);
  c->hello = true;
  fprintf (stderr, "controld: node %s connected (boot %s), acknowledged up to %llu\n", c->node,
           m->boot_id ? m->boot_id : "?", (unsigned long long) r.acked_seq);
  send_msg (c, MSG_HELLO_RESULT, PROTO_F_REPLY, reqid, &r);
  /* Projects out of credits stay stopped on a node that (re)connects. */
  char **stopped;
  if (ledger_stopped_projects (s->ledger, &stopped, &err) == 0)
    {
      for (char **p = stopped; *p; p++)
        send_stop (c, *p);
      free_list (stopped);
    }
}

/* Tell the node, once per connection, to stop a project's workloads. */
static void
send_stop (struct node_conn *c, const char *project)
{
  for (size_t i = 0; i < c->n_stop_sent; i++)
    if (strcmp (c->stop_sent[i], project) == 0)
      return;
  char **g = realloc (c->stop_sent, (c->n_stop_sent + 1) * sizeof *g);
  if (g == NULL)
    return;
  c->stop_sent = g;
  if ((g[c->n_stop_sent] = strdup (project)) == NULL)
    return;
  c->n_stop_sent++;
  struct msg_stop_project m = { (char *) project, (char *) "credits exhausted" };
  send_msg (c, MSG_STOP_PROJECT, 0, ++c->next_reqid, &m);
}

/* Credits added (by controld credits add, another process) let a stopped
 * project deploy again; a project stopped through one node's batches is
 * stopped on every node. */
static void
check_credits (struct server *s)
{
  char **now;
  struct error err = { 0 };
  if (ledger_stopped_projects (s->ledger, &now, &err) < 0)
    {
      fprintf (stderr, "controld: %s\n", err.msg);
      return;
    }
  for (char **p = s->stopped; p && *p; p++)
    if (!in_list (now, *p))
      {
        fprintf (stderr, "controld: project %s has credits again: its deploys are taken\n", *p);
        struct msg_resume_project m = { *p };
        for (struct node_conn *c = s->conns; c; c = c->next)
          {
            if (!c->hello)
              continue;
            for (size_t i = 0; i < c->n_stop_sent; i++)
              if (strcmp (c->stop_sent[i], *p) == 0)
                {
                  free (c->stop_sent[i]);
                  c->stop_sent[i] = c->stop_sent[--c->n_stop_sent];
                  break;
                }
            send_msg (c, MSG_RESUME_PROJECT, 0, ++c->next_reqid, &m);
          }
      }
  for (char **p = now; *p; p++)
    if (!in_list (s->stopped, *p))
      for (struct node_conn *c = s->conns; c; c = c->next)
        if (c->hello)
          send_stop (c, *p);
  free_list (s->stopped);
  s->stopped = now;
  for (struct node_conn *c = s->conns, *next; c; c = next)
    {
      next = c->next;
      conn_flush (s, c);
    }
}

static void
on_batch (struct server *s, struct node_conn *c, uint32_t reqid, const struct msg_usage_batch *b)
{
  struct ingest_result r;
  struct error err = { 0 };
  if (ledger_ingest (s->ledger, &s->cfg->rates, c->node, b, &r, &err) < 0)
    {
      fprintf (stderr, "controld: node %s: %s\n", c->node, err.msg);
      send_error (c, reqid, PROTO_E_FAILED, "%s", err.msg);
      return;
    }
  struct msg_usage_ack ack = { r.acked };
  send_msg (c, MSG_USAGE_ACK, PROTO_F_REPLY, reqid, &ack);
  for (char **p = r.stop_projects; p && *p; p++)
    {
      send_stop (c, *p);
      if (!in_list (s->stopped, *p))
        list_add (&s->stopped, *p); /* so that credits added soon after resume it */
    }
  ingest_result_clear (&r);
}

static void
on_stopped (struct server *s, struct node_conn *c, const struct msg_stop_project_result *m)
{
  char text[512];
  size_t n = 0, at = 0;
  text[0] = '\0';
  for (char **p = m->stopped; p && *p; p++, n++)
    if (at < sizeof text)
      at += (size_t) snprintf (text + at, sizeof text - at, "%s%s", n ? ", " : "", *p);
  char line[600];
  snprintf (line, sizeof line, "node %s stopped %zu workload(s)%s%s", c->node, n, n ? ": " : "",
            text);
  struct error err = { 0 };
  if (ledger_event (s->ledger, "stopped", m->project, c->node, line, &err) < 0)
    fprintf (stderr, "controld: %s\n", err.msg);
}

static void
on_usage (struct server *s, struct node_conn *c, uint32_t reqid, const struct msg_usage *m)
{
  struct usage_query q = { m->project, m->env, m->service, 0, 0 };
  if (m->since_s)
    {
      time_t now = time (NULL);
      q.since_ms = ((uint64_t) now - (m->since_s < (uint64_t) now ? m->since_s : (uint64_t) now)) * 1000;
    }
  struct usage_line *lines;
  size_t n;
  struct error err = { 0 };
  if (ledger_usage (s->ledger, &q, &lines, &n, &err) < 0)
    {
      send_error (c, reqid, PROTO_E_FAILED, "%s", err.msg);
      return;
    }
  struct msg_usage_row *rows = calloc (n + 1, sizeof *rows);
  char (*ids)[100] = calloc (n + 1, sizeof *ids);
  for (size_t i = 0; rows && ids && i < n; i++)
    {
      const struct usage_line *u = &lines[i];
      snprintf (ids[i], sizeof ids[i], "%s.%s.%s", u->project, u->env, u->service);
      rows[i] = (struct msg_usage_row){ ids[i],        u->seconds,  u->cpu_us,
                                        u->memory_byte_s, u->net_rx, u->net_tx,
                                        (uint64_t) (u->cost * 1e9 + 0.5), u->disk_byte_s };
    }
  struct msg_usage_result res = { rows, rows && ids ? n : 0, (char *) "control" };
  send_msg (c, MSG_USAGE_RESULT, PROTO_F_REPLY, reqid, &res);
  free (rows);
  free (ids);
  free (lines);
}

static void
dispatch (struct server *s, struct node_conn *c, const struct proto_frame *f)
{
  uint8_t t = f->h.type;
  uint32_t id = f->h.request_id;
  bool known = t == MSG_HELLO || t == MSG_USAGE_BATCH || t == MSG_USAGE
               || (t == MSG_STOP_PROJECT_RESULT && (f->h.flags & PROTO_F_REPLY));
  if (!known)
    {
      send_error (c, id, PROTO_E_UNKNOWN_TYPE, "controld takes no %s (0x%02x)",
                  proto_msg_name (t), t);
      return;
    }
  if (!c->hello && t != MSG_HELLO)
    {
      send_error (c, id, PROTO_E_DENIED, "%s before HELLO: say HELLO with the node's token first",
                  proto_msg_name (t));
      c->closing = true;
      return;
    }
  union
  {
    struct msg_hello hello;
    struct msg_usage_batch batch;
    struct msg_usage usage;
    struct msg_stop_project_result stopped;
  } m;
  struct error err = { 0 };
  if (proto_decode (t, f->payload, f->h.length, &m, &err) < 0)
    {
      send_error (c, id, PROTO_E_MALFORMED, "%s", err.msg);
      return;
    }
  switch (t)
    {
    case MSG_HELLO:
      if (c->hello)
        send_error (c, id, PROTO_E_INVALID, "HELLO: already said");
      else
        on_hello (s, c, id, &m.hello);
      break;
    case MSG_USAGE_BATCH: on_batch (s, c, id, &m.batch); break;
    case MSG_USAGE: on_usage (s, c, id, &m.usage); break;
    case MSG_STOP_PROJECT_RESULT: on_stopped (s, c, &m.stopped); break;
    }
  proto_msg_clear (t, &m);
}

static void
on_conn (struct server *s, struct node_conn *c, uint32_t events)
{
  if ((events & EPOLLOUT) && !conn_flush (s, c))
    return;
  if (c->closing || !(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
    return;
  struct error err = { 0 };
  int r = proto_conn_read (&c->conn, &err);
  struct proto_frame f;
  int got;
  while (!c->closing && (got = proto_conn_next (&c->conn, &f, &err)) == 1)
    dispatch (s, c, &f);
  if (!c->closing && got < 0)
    {
      /* The framing is lost: say why, then close this connection only. */
      send_error (c, 0, err.code == EMSGSIZE ? PROTO_E_TOO_LARGE : PROTO_E_MALFORMED, "%s",
                  err.msg);
      c->closing = true;
    }
  if (r <= 0 && !c->closing)
    {
      conn_close (s, c);
      return;
    }
  conn_flush (s, c);
}

static void
on_accept (struct server *s)
{
  for (;;)
    {
      int fd = accept4 (s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0)
        return;
      struct node_conn *c = calloc (1, sizeof *c);
      struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
      if (c == NULL || epoll_ctl (s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        {
          free (c);
          close (fd);
          continue;
        }
      proto_conn_init (&c->conn, fd);
      c->next = s->conns;
      s->conns = c;
    }
}

int
server_run (const struct server_config *cfg, struct ledger *ledger, struct error *err)
{
  struct server s = { .cfg = cfg, .ledger = ledger, .epfd = -1, .listen_fd = -1, .signal_fd = -1,
                      .timer_fd = -1 };
  sigset_t set;
  sigemptyset (&set);
  sigaddset (&set, SIGINT);
  sigaddset (&set, SIGTERM);
  sigprocmask (SIG_BLOCK, &set, NULL);
  signal (SIGPIPE, SIG_IGN);
  int one = 1, rc = -1;
  s.listen_fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  s.signal_fd = signalfd (-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  s.epfd = epoll_create1 (EPOLL_CLOEXEC);
  s.timer_fd = timerfd_create (CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  struct itimerspec its = { { CREDIT_CHECK_S, 0 }, { CREDIT_CHECK_S, 0 } };
  if (s.listen_fd < 0 || s.signal_fd < 0 || s.epfd < 0 || s.timer_fd < 0
      || timerfd_settime (s.timer_fd, 0, &its, NULL) < 0)
    {
      error_set (err, errno, "controld: set up");
      goto out;
    }
  setsockopt (s.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind (s.listen_fd, (const struct sockaddr *) &cfg->listen, sizeof cfg->listen) < 0
      || listen (s.listen_fd, 128) < 0)
    {
      error_set (err, errno, "listen on %s", cfg->listen_text);
      goto out;
    }
  struct epoll_event lev = { .events = EPOLLIN, .data.ptr = &s.listen_fd };
  struct epoll_event sev = { .events = EPOLLIN, .data.ptr = &s.signal_fd };
  epoll_ctl (s.epfd, EPOLL_CTL_ADD, s.listen_fd, &lev);
  struct epoll_event tev = { .events = EPOLLIN, .data.ptr = &s.timer_fd };
  epoll_ctl (s.epfd, EPOLL_CTL_ADD, s.signal_fd, &sev);
  epoll_ctl (s.epfd, EPOLL_CTL_ADD, s.timer_fd, &tev);
  if (ledger_stopped_projects (ledger, &s.stopped, err) < 0)
    goto out;
  fprintf (stderr, "controld: listening on %s%s\n", cfg->listen_text,
           cfg->token[0] ? " (nodes need the token)" : "");
  for (;;)
    {
      struct epoll_event evs[64];
      int n = epoll_wait (s.epfd, evs, 64, -1);
      if (n < 0 && errno != EINTR)
        {
          error_set (err, errno, "epoll_wait");
          goto out;
        }
      for (int i = 0; i < n; i++)
        {
          if (evs[i].data.ptr == &s.listen_fd)
            on_accept (&s);
          else if (evs[i].data.ptr == &s.timer_fd)
            {
              uint64_t ticks;
              if (read (s.timer_fd, &ticks, sizeof ticks) > 0)
                check_credits (&s);
            }
          else if (evs[i].data.ptr == &s.signal_fd)
            {
              fprintf (stderr, "controld: stopping\n");
              rc = 0;
              goto out;
            }
          else
            on_conn (&s, evs[i].data.ptr, evs[i].events);
        }
    }
out:
  while (s.conns)
    conn_close (&s, s.conns);
  if (s.listen_fd >= 0)
    close (s.listen_fd);
  if (s.signal_fd >= 0)
    close (s.signal_fd);
  if (s.timer_fd >= 0)
    close (s.timer_fd);
  free_list (s.stopped);
  if (s.epfd >= 0)
    close (s.epfd);
  return rc;
}
