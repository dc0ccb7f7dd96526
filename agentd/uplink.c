#include "uplink.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/fsutil.h"
#include "logs.h"

#define BATCH_BYTES (256u << 10) /* a batch stops growing past this */
#define WINDOW 4                 /* batches sent and not yet acknowledged */
#define ACK_TIMEOUT_S 30.0       /* no ack for this long: the connection is dead */
#define BACKOFF_MIN_S 0.5
#define BACKOFF_MAX_S 30.0
#define MAX_QUERIES 16
#define ACK_DELAYS 4096 /* kept for the delay quantiles */
#define DELAY_WINDOW_S 60.0 /* the quantiles cover the acks of the last minute */

struct cmd
{
  uint8_t type;
  uint16_t flags;
  uint32_t reqid; /* the control plane's (a reply), or the client's (a query) */
  uint64_t client;
  struct proto_buf payload;
  struct cmd *next;
};

struct event_node
{
  struct uplink_event ev;
  struct event_node *next;
};

struct query
{
  uint32_t wire_reqid; /* 0: free */
  uint32_t client_reqid;
  uint64_t client;
};

struct uplink
{
  struct uplink_config cfg;
  struct journal *j;
  char boot_id[40];
  pthread_t thread;
  int wake_fd;  /* the thread waits on it: new records, commands, stop */
  int event_fd; /* the loop waits on it: events */
  pthread_mutex_t lock;
  struct cmd *cmds, **cmds_tail;
  struct event_node *events, **events_tail;
  bool stop, connected;

  /* The thread's own. */
  struct proto_conn conn;
  uint32_t next_reqid;
  uint64_t acked;
  int outstanding;
  double waiting_since; /* when the oldest unacknowledged batch went out */
  struct query queries[MAX_QUERIES];
  struct
  {
    uint32_t reqid;
    uint64_t newest_ms; /* the sample time of the batch's last record */
  } sent[WINDOW];

  /* Shared with uplink_stats (under lock). */
  uint64_t stat_acked, stat_acks;
  struct
  {
    double at; /* monotonic seconds of the ack */
    float delay_s;
  } delays[ACK_DELAYS]; /* a ring */
};

static void
kick (int fd)
{
  uint64_t one = 1;
  if (write (fd, &one, sizeof one) < 0)
    return; /* the counter is saturated: a wake-up is pending anyway */
}

static void
drain (int fd)
{
  uint64_t v;
  if (read (fd, &v, sizeof v) < 0)
    return; /* nothing pending */
}

static void
push_event (struct uplink *u, const struct uplink_event *ev)
{
  struct event_node *n = calloc (1, sizeof *n);
  if (n == NULL)
    return;
  n->ev = *ev;
  pthread_mutex_lock (&u->lock);
  *u->events_tail = n;
  u->events_tail = &n->next;
  pthread_mutex_unlock (&u->lock);
  kick (u->event_fd);
}

static bool
stopping (struct uplink *u)
{
  pthread_mutex_lock (&u->lock);
  bool s = u->stop;
  pthread_mutex_unlock (&u->lock);
  return s;
}

static void
set_connected (struct uplink *u, bool c)
{
  pthread_mutex_lock (&u->lock);
  u->connected = c;
  pthread_mutex_unlock (&u->lock);
}

/* Sleep up to secs, or until woken to stop. */
static void
pause_for (struct uplink *u, double secs)
{
  double until = monotonic_seconds () + secs;
  while (!stopping (u))
    {
      double left = until - monotonic_seconds ();
      if (left <= 0)
        return;
      struct pollfd p = { u->wake_fd, POLLIN, 0 };
      if (poll (&p, 1, (int) (left * 1000) + 1) > 0)
        drain (u->wake_fd);
    }
}

static int
queue_frame (struct uplink *u, uint8_t type, uint16_t flags, uint32_t reqid, const void *msg,
             struct error *err)
{
  struct proto_buf b = { 0 };
  int r = proto_encode (type, msg, &b, err);
  if (r == 0)
    r = proto_conn_queue (&u->conn, type, flags, reqid, &b, err);
  proto_buf_free (&b);
  return r;
}

/* Wait up to secs for events on fd; a stop request ends the wait early.
 * The fd's revents, 0 on a timeout or a stop. */
static short
wait_fd (struct uplink *u, int fd, short events, double secs)
{
  double until = monotonic_seconds () + secs;
  for (;;)
    {
      double left = until - monotonic_seconds ();
      if (left <= 0 || stopping (u))
        return 0;
      struct pollfd p[2] = { { fd, events, 0 }, { u->wake_fd, POLLIN, 0 } };
      if (poll (p, 2, (int) (left * 1000) + 1) < 0 && errno != EINTR)
        return POLLERR;
      if (p[1].revents & POLLIN)
        drain (u->wake_fd);
      if (p[0].revents)
        return p[0].revents;
    }
}

/* Flush and wait for one frame, up to secs. 1: a frame, 0: timeout, -1. */
static int
recv_frame (struct uplink *u, struct proto_frame *f, double secs, struct error *err)
{
  double until = monotonic_seconds () + secs;
  for (;;)
    {
      int r = proto_conn_next (&u->conn, f, err);
      if (r != 0)
        return r;
      int pending = proto_conn_flush (&u->conn, err);
      if (pending < 0)
        return -1;
      double left = until - monotonic_seconds ();
      if (left <= 0 || stopping (u))
        return 0;
      short rev = wait_fd (u, u->conn.fd, (short) (POLLIN | (pending ? POLLOUT : 0)), left);
      if (rev & (POLLIN | POLLHUP | POLLERR))
        {
          int rr = proto_conn_read (&u->conn, err);
          if (rr < 0)
            return -1;
          if (rr == 0 && proto_conn_next (&u->conn, f, err) == 0)
            return error_setx (err, ECONNRESET, "the control plane closed the connection");
        }
    }
}

static int
dial (struct uplink *u, struct error *err)
{
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return error_set (err, errno, "socket");
  if (connect (fd, (const struct sockaddr *) &u->cfg.addr, sizeof u->cfg.addr) < 0
      && errno != EINPROGRESS)
    {
      error_set (err, errno, "connect to %s", u->cfg.addr_text);
      close (fd);
      return -1;
    }
  int e = 0;
  socklen_t len = sizeof e;
  if (wait_fd (u, fd, POLLOUT, 5) == 0 || getsockopt (fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0 || e)
    {
      error_set (err, e ? e : ETIMEDOUT, "connect to %s", u->cfg.addr_text);
      close (fd);
      return -1;
    }
  return fd;
}

/* HELLO, and the control plane's ack in reply. */
static int
hello (struct uplink *u, struct error *err)
{
  struct msg_hello h = { u->cfg.node_id, u->boot_id, u->cfg.token, PROTO_VERSION,
                         journal_next_seq (u->j) };
  uint32_t id = ++u->next_reqid;
  if (queue_frame (u, MSG_HELLO, 0, id, &h, err) < 0)
    return -1;
  struct proto_frame f;
  int r = recv_frame (u, &f, 10, err);
  if (r <= 0)
    return r == 0 ? error_setx (err, ETIMEDOUT, "no answer to HELLO") : -1;
  if (f.h.type == MSG_ERROR)
    {
      struct msg_error e;
      if (proto_decode (MSG_ERROR, f.payload, f.h.length, &e, err) == 0)
        {
          error_setx (err, e.code == PROTO_E_DENIED ? EACCES : EPROTO, "refused: %s",
                      e.message ? e.message : "?");
          proto_msg_clear (MSG_ERROR, &e);
        }
      return -1;
    }
  struct msg_hello_result hr;
  if (f.h.type != MSG_HELLO_RESULT || f.h.request_id != id
      || proto_decode (MSG_HELLO_RESULT, f.payload, f.h.length, &hr, err) < 0)
    return error_setx (err, EPROTO, "HELLO answered with %s", proto_msg_name (f.h.type));
  u->acked = hr.acked_seq;
  return 0;
}

/* journal_scan's callback: each record appended to the batch payload (a
 * batch is its records' fields one after another, so a one-record batch
 * encoded per record concatenates into the whole). */
struct batch
{
  struct proto_buf buf;
  uint64_t expect, first, last, n, newest_ms;
  bool failed;
};

static int
add_record (void *ctx, const struct msg_usage_record *r)
{
  struct batch *b = ctx;
  struct proto_buf one = { 0 };
  struct error err = { 0 };
  struct msg_usage_batch single = { (struct msg_usage_record *) r, 1, 0 };
  if (proto_encode (MSG_USAGE_BATCH, &single, &one, &err) < 0)
    {
      fprintf (stderr, "agentd: uplink: record %" PRIu64 ": %s\n", r->seq, err.msg);
      b->failed = true;
      proto_buf_free (&one);
      return 1;
    }
  proto_buf_append (&b->buf, one.data, one.len);
  proto_buf_free (&one);
  if (b->n++ == 0)
    b->first = r->seq;
  b->last = r->seq;
  b->newest_ms = r->ts_ms;
  return b->buf.len >= BATCH_BYTES;
}

/* Send batches while the window has room and the journal has records. */
static int
send_batches (struct uplink *u, struct journal_cursor *cur, struct error *err)
{
  while (u->outstanding < WINDOW)
    {
      struct batch b = { .expect = cur->next_seq };
      if (journal_scan (u->j, cur, add_record, &b, err) < 0)
        {
          proto_buf_free (&b.buf);
          return -1;
        }
      if (b.n == 0 || b.failed)
        {
          proto_buf_free (&b.buf);
          return 0;
        }
      if (b.first > b.expect)
        {
          /* The journal's bound dropped what came before: say so. */
          fprintf (stderr, "agentd: uplink: records %" PRIu64 " to %" PRIu64 " were dropped "
                           "unacknowledged (journal bound)\n", b.expect, b.first - 1);
          proto_put_varint (&b.buf, 2, b.first);
        }
      uint32_t id = ++u->next_reqid;
      int r = b.buf.oom ? error_set (err, ENOMEM, "batch")
                        : proto_conn_queue (&u->conn, MSG_USAGE_BATCH, 0, id, &b.buf, err);
      proto_buf_free (&b.buf);
      if (r < 0)
        return -1;
      for (int i = 0; i < WINDOW; i++)
        if (u->sent[i].reqid == 0)
          {
            u->sent[i].reqid = id;
            u->sent[i].newest_ms = b.newest_ms;
            break;
          }
      if (u->outstanding++ == 0)
        u->waiting_since = monotonic_seconds ();
    }
  return 0;
}

static struct query *
query_by_wire (struct uplink *u, uint32_t id)
{
  for (int i = 0; i < MAX_QUERIES; i++)
    if (u->queries[i].wire_reqid == id && id)
      return &u->queries[i];
  return NULL;
}

/* An ack: how long after its newest sample the batch became durable. */
static void
record_ack (struct uplink *u, uint32_t reqid)
{
  for (int i = 0; i < WINDOW; i++)
    if (u->sent[i].reqid == reqid)
      {
        double delay = (double) (log_now_us () / 1000 - u->sent[i].newest_ms) / 1000.0;
        u->sent[i].reqid = 0;
        pthread_mutex_lock (&u->lock);
        u->delays[u->stat_acks % ACK_DELAYS].at = monotonic_seconds ();
        u->delays[u->stat_acks % ACK_DELAYS].delay_s = (float) delay;
        u->stat_acks++;
        u->stat_acked = u->acked;
        pthread_mutex_unlock (&u->lock);
        return;
      }
}

/* A frame from the control plane. -1: the session must end. */
static int
on_frame (struct uplink *u, const struct proto_frame *f, struct error *err)
{
  struct query *q = (f->h.flags & PROTO_F_REPLY) ? query_by_wire (u, f->h.request_id) : NULL;
  if (q)
    {
      struct uplink_event ev = { UPLINK_USAGE_REPLY, q->client_reqid, q->client, "", f->h.type, { { 0 } } };
      q->wire_reqid = 0;
      if ((f->h.type != MSG_USAGE_RESULT && f->h.type != MSG_ERROR)
          || proto_decode (f->h.type, f->payload, f->h.length, &ev.msg, err) < 0)
        {
          ev.type = MSG_ERROR;
          ev.msg.error = (struct msg_error){ PROTO_E_FAILED, strdup ("the control plane's answer was malformed") };
        }
      push_event (u, &ev);
      return 0;
    }
  switch (f->h.type)
    {
    case MSG_USAGE_ACK:
      {
        struct msg_usage_ack a;
        if (proto_decode (MSG_USAGE_ACK, f->payload, f->h.length, &a, err) < 0)
          return -1;
        if (a.acked_seq > u->acked)
          {
            u->acked = a.acked_seq;
            journal_release (u->j, u->acked);
          }
        if (u->outstanding > 0)
          u->outstanding--;
        u->waiting_since = monotonic_seconds ();
        record_ack (u, f->h.request_id);
        return 0;
      }
    case MSG_ERROR:
      {
        struct msg_error e;
        if (proto_decode (MSG_ERROR, f->payload, f->h.length, &e, err) == 0)
          {
            error_setx (err, EPROTO, "the control plane answered: %s", e.message ? e.message : "?");
            proto_msg_clear (MSG_ERROR, &e);
          }
        return -1; /* a batch it could not store: start over after a pause */
      }
    case MSG_STOP_PROJECT:
      {
        struct msg_stop_project s;
        if (proto_decode (MSG_STOP_PROJECT, f->payload, f->h.length, &s, err) < 0)
          return -1;
        struct uplink_event ev = { .kind = UPLINK_STOP_PROJECT, .reqid = f->h.request_id };
        snprintf (ev.project, sizeof ev.project, "%s", s.project ? s.project : "");
        fprintf (stderr, "agentd: control plane: stop project %s (%s)\n", ev.project,
                 s.reason ? s.reason : "no reason given");
        proto_msg_clear (MSG_STOP_PROJECT, &s);
        push_event (u, &ev);
        return 0;
      }
    case MSG_RESUME_PROJECT:
      {
        struct msg_resume_project m;
        if (proto_decode (MSG_RESUME_PROJECT, f->payload, f->h.length, &m, err) < 0)
          return -1;
        struct uplink_event ev = { .kind = UPLINK_RESUME_PROJECT };
        snprintf (ev.project, sizeof ev.project, "%s", m.project ? m.project : "");
        proto_msg_clear (MSG_RESUME_PROJECT, &m);
        push_event (u, &ev);
        return 0;
      }
    default:
      fprintf (stderr, "agentd: uplink: ignored %s from the control plane\n",
               proto_msg_name (f->h.type));
      return 0;
    }
}

/* Commands from the loop thread go out on the connection. */
static int
send_commands (struct uplink *u, struct error *err)
{
  pthread_mutex_lock (&u->lock);
  struct cmd *c = u->cmds;
  u->cmds = NULL;
  u->cmds_tail = &u->cmds;
  pthread_mutex_unlock (&u->lock);
  int r = 0;
  while (c)
    {
      struct cmd *next = c->next;
      uint32_t id = c->reqid;
      if (c->type == MSG_USAGE)
        {
          struct query *q = query_by_wire (u, 0);
          for (int i = 0; q == NULL && i < MAX_QUERIES; i++)
            if (u->queries[i].wire_reqid == 0)
              q = &u->queries[i];
          id = ++u->next_reqid;
          if (q)
            *q = (struct query){ id, c->reqid, c->client };
          else
            {
              struct uplink_event ev = { UPLINK_USAGE_REPLY, c->reqid, c->client, "", MSG_ERROR, { { 0 } } };
              ev.msg.error = (struct msg_error){ PROTO_E_FAILED, strdup ("too many usage queries in flight: try again") };
              push_event (u, &ev);
              id = 0;
            }
        }
      if (r == 0 && id && proto_conn_queue (&u->conn, c->type, c->flags, id, &c->payload, err) < 0)
        r = -1;
      proto_buf_free (&c->payload);
      free (c);
      c = next;
    }
  return r;
}

/* Queries in flight die with the connection: their clients are told. */
static void
fail_queries (struct uplink *u)
{
  for (int i = 0; i < MAX_QUERIES; i++)
    if (u->queries[i].wire_reqid)
      {
        struct uplink_event ev = { UPLINK_USAGE_REPLY, u->queries[i].client_reqid, u->queries[i].client, "", MSG_ERROR, { { 0 } } };
        ev.msg.error = (struct msg_error){ PROTO_E_FAILED, strdup ("the connection to the control plane was lost: try again") };
        push_event (u, &ev);
        u->queries[i].wire_reqid = 0;
      }
}

/* One connection's life: stream until it fails or the thread stops. */
static int
session (struct uplink *u, struct error *err)
{
  struct journal_cursor cur = { .next_seq = u->acked + 1 };
  u->outstanding = 0;
  memset (u->sent, 0, sizeof u->sent);
  journal_release (u->j, u->acked);
  for (;;)
    {
      if (stopping (u))
        return 0;
      if (send_commands (u, err) < 0 || send_batches (u, &cur, err) < 0)
        return -1;
      int pending = proto_conn_flush (&u->conn, err);
      if (pending < 0)
        return -1;
      if (u->outstanding && monotonic_seconds () - u->waiting_since > ACK_TIMEOUT_S)
        return error_setx (err, ETIMEDOUT, "no acknowledgement for %.0f s", ACK_TIMEOUT_S);
      struct pollfd p[2] = { { u->conn.fd, (short) (POLLIN | (pending ? POLLOUT : 0)), 0 },
                             { u->wake_fd, POLLIN, 0 } };
      if (poll (p, 2, 1000) < 0 && errno != EINTR)
        return error_set (err, errno, "poll");
      if (p[1].revents & POLLIN)
        drain (u->wake_fd);
      if (p[0].revents & (POLLIN | POLLHUP | POLLERR))
        {
          int r = proto_conn_read (&u->conn, err);
          struct proto_frame f;
          int got;
          while ((got = proto_conn_next (&u->conn, &f, err)) == 1)
            if (on_frame (u, &f, err) < 0)
              return -1;
          if (got < 0 || r < 0)
            return -1;
          if (r == 0)
            return error_setx (err, ECONNRESET, "the control plane closed the connection");
        }
    }
}

static void *
run (void *arg)
{
  struct uplink *u = arg;
  double backoff = BACKOFF_MIN_S;
  bool said_down = false;
  while (!stopping (u))
    {
      struct error err = { 0 };
      int fd = dial (u, &err);
      if (fd >= 0)
        {
          proto_conn_init (&u->conn, fd);
          if (hello (u, &err) == 0)
            {
              fprintf (stderr, "agentd: uplink: connected to %s as node %s; the control plane "
                               "holds records up to %" PRIu64 "\n",
                       u->cfg.addr_text, u->cfg.node_id, u->acked);
              set_connected (u, true);
              backoff = BACKOFF_MIN_S;
              said_down = false;
              if (session (u, &err) == 0)
                err.msg[0] = '\0';
              set_connected (u, false);
              fail_queries (u);
            }
          close (fd);
          u->conn.fd = -1;
          proto_conn_free (&u->conn);
        }
      if (stopping (u))
        break;
      /* Jitter: between half and all of the backoff. */
      uint32_t rnd = 0;
      if (getrandom (&rnd, sizeof rnd, GRND_NONBLOCK) < 0)
        rnd = (uint32_t) getpid ();
      double wait = backoff * (0.5 + (rnd % 1000) / 2000.0);
      if (!said_down || err.code == EACCES)
        fprintf (stderr, "agentd: uplink: %s: %s; sampling goes on, retrying (every %.0f s at "
                         "most)\n", u->cfg.addr_text, err.msg[0] ? err.msg : "disconnected",
                 BACKOFF_MAX_S);
      said_down = true;
      pause_for (u, wait);
      backoff = backoff * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : backoff * 2;
    }
  return NULL;
}

int
uplink_start (const struct uplink_config *cfg, struct journal *j, struct uplink **out,
              struct error *err)
{
  struct uplink *u = calloc (1, sizeof *u);
  if (u == NULL)
    return error_set (err, ENOMEM, "uplink");
  u->cfg = *cfg;
  u->j = j;
  u->conn.fd = -1;
  u->cmds_tail = &u->cmds;
  u->events_tail = &u->events;
  pthread_mutex_init (&u->lock, NULL);
  struct error ignored;
  if (read_file_at (AT_FDCWD, "/proc/sys/kernel/random/boot_id", u->boot_id, sizeof u->boot_id,
                    &ignored) > 0)
    u->boot_id[strcspn (u->boot_id, "\n")] = '\0';
  u->wake_fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
  u->event_fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
  int e = u->wake_fd < 0 || u->event_fd < 0 ? errno : pthread_create (&u->thread, NULL, run, u);
  if (e)
    {
      if (u->wake_fd >= 0)
        close (u->wake_fd);
      if (u->event_fd >= 0)
        close (u->event_fd);
      pthread_mutex_destroy (&u->lock);
      free (u);
      return error_set (err, e, "start the uplink");
    }
  *out = u;
  return 0;
}

void
uplink_stop (struct uplink *u)
{
  if (u == NULL)
    return;
  pthread_mutex_lock (&u->lock);
  u->stop = true;
  pthread_mutex_unlock (&u->lock);
  kick (u->wake_fd);
  pthread_join (u->thread, NULL);
  struct uplink_event ev;
  while (uplink_next_event (u, &ev) == 1)
    uplink_event_clear (&ev);
  for (struct cmd *c = u->cmds, *next; c; c = next)
    {
      next = c->next;
      proto_buf_free (&c->payload);
      free (c);
    }
  close (u->wake_fd);
  close (u->event_fd);
  pthread_mutex_destroy (&u->lock);
  free (u);
}

int
uplink_event_fd (struct uplink *u)
{
  return u->event_fd;
}

int
uplink_next_event (struct uplink *u, struct uplink_event *ev)
{
  drain (u->event_fd);
  pthread_mutex_lock (&u->lock);
  struct event_node *n = u->events;
  if (n)
    {
      u->events = n->next;
      if (u->events == NULL)
        u->events_tail = &u->events;
    }
  pthread_mutex_unlock (&u->lock);
  if (n == NULL)
    return 0;
  *ev = n->ev;
  free (n);
  return 1;
}

void
uplink_event_clear (struct uplink_event *ev)
{
  if (ev->kind == UPLINK_USAGE_REPLY)
    proto_msg_clear (ev->type, &ev->msg);
}

void
uplink_notify (struct uplink *u)
{
  kick (u->wake_fd);
}

static int
push_cmd (struct uplink *u, uint8_t type, uint16_t flags, uint32_t reqid, uint64_t client,
          const void *msg, struct error *err)
{
  struct cmd *c = calloc (1, sizeof *c);
  if (c == NULL)
    return error_set (err, ENOMEM, "uplink");
  *c = (struct cmd){ .type = type, .flags = flags, .reqid = reqid, .client = client };
  if (proto_encode (type, msg, &c->payload, err) < 0)
    {
      proto_buf_free (&c->payload);
      free (c);
      return -1;
    }
  pthread_mutex_lock (&u->lock);
  *u->cmds_tail = c;
  u->cmds_tail = &c->next;
  pthread_mutex_unlock (&u->lock);
  kick (u->wake_fd);
  return 0;
}

int
uplink_usage (struct uplink *u, uint64_t client, uint32_t reqid, const struct msg_usage *m,
              struct error *err)
{
  pthread_mutex_lock (&u->lock);
  bool up = u->connected;
  pthread_mutex_unlock (&u->lock);
  if (!up)
    return error_setx (err, ENOTCONN, "the control plane at %s is not connected (usage lives in "
                                      "its ledger): try again, or run controld usage there",
                       u->cfg.addr_text);
  return push_cmd (u, MSG_USAGE, 0, reqid, client, m, err);
}

void
uplink_stopped (struct uplink *u, uint32_t reqid, const char *project, char **ids)
{
  struct msg_stop_project_result r = { (char *) project, ids };
  struct error err = { 0 };
  if (push_cmd (u, MSG_STOP_PROJECT_RESULT, PROTO_F_REPLY, reqid, 0, &r, &err) < 0)
    fprintf (stderr, "agentd: uplink: %s\n", err.msg);
}

static int
cmp_float (const void *a, const void *b)
{
  float x = *(const float *) a, y = *(const float *) b;
  return x < y ? -1 : x > y;
}

void
uplink_stats (struct uplink *u, struct uplink_stats *out)
{
  float sorted[ACK_DELAYS];
  memset (out, 0, sizeof *out);
  pthread_mutex_lock (&u->lock);
  out->connected = u->connected;
  out->acked_seq = u->stat_acked;
  out->acks = u->stat_acks;
  size_t kept = u->stat_acks < ACK_DELAYS ? (size_t) u->stat_acks : ACK_DELAYS, n = 0;
  double since = monotonic_seconds () - DELAY_WINDOW_S;
  for (size_t i = 0; i < kept; i++)
    if (u->delays[i].at >= since)
      sorted[n++] = u->delays[i].delay_s;
  pthread_mutex_unlock (&u->lock);
  if (n == 0)
    return;
  qsort (sorted, n, sizeof *sorted, cmp_float);
  out->delay_p50_s = sorted[(n - 1) / 2];
  out->delay_p99_s = sorted[(n - 1) * 99 / 100];
  out->delay_max_s = sorted[n - 1];
}
