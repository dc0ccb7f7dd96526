/* `deploy mcp --listen`: the MCP server over Streamable HTTP (MCP
 * 2025-11-25, "Transports: Streamable HTTP"), on libmicrohttpd with a
 * thread per connection. POST /mcp carries one JSON-RPC message: a request
 * is answered with a JSON body, or with an SSE stream when the call wants
 * progress notifications; notifications get 202. A session id is issued at
 * initialize and required after it; DELETE ends a session; GET has no
 * server stream here (405). Origin is checked against DNS rebinding, and a
 * bearer token is required when --token-file is given. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include "../common/netaddr.h"
#include "mcp_internal.h"

#define BODY_MAX (4u << 20)
#define SESSIONS_MAX 256

struct inflight
{
  json_t *id;
  int efd; /* written by a notifications/cancelled */
  struct inflight *next;
};

struct session
{
  char id[40];
  struct inflight *inflight;
  struct session *next;
};

struct server
{
  const char *socket;
  json_t *tools;
  char token[256]; /* "" when none is required */
  pthread_mutex_t lock;
  struct session *sessions;
  int n_sessions;
};

struct req
{
  char *body;
  size_t len;
  bool too_big;
};

/* ---- sessions ----------------------------------------------------------------- */

static struct session *
session_find (struct server *s, const char *id)
{
  for (struct session *x = s->sessions; id && x; x = x->next)
    if (strcmp (x->id, id) == 0)
      return x;
  return NULL;
}

static struct session *
session_new (struct server *s)
{
  unsigned char r[16];
  if (getrandom (r, sizeof r, 0) != sizeof r || s->n_sessions == SESSIONS_MAX)
    return NULL;
  struct session *x = calloc (1, sizeof *x);
  if (x == NULL)
    return NULL;
  for (int i = 0; i < 16; i++)
    sprintf (x->id + 2 * i, "%02x", r[i]);
  x->next = s->sessions;
  s->sessions = x;
  s->n_sessions++;
  return x;
}

static bool
session_drop (struct server *s, const char *id)
{
  for (struct session **p = &s->sessions; *p; p = &(*p)->next)
    if (strcmp ((*p)->id, id) == 0)
      {
        struct session *x = *p;
        *p = x->next;
        for (struct inflight *f = x->inflight; f; f = f->next)
          if (write (f->efd, &(uint64_t){ 1 }, 8) < 0)
            continue; /* ending the session cancels what runs in it */
        s->n_sessions--;
        /* Requests still running hold their inflight records; the session
         * itself is freed only when none is left. */
        if (x->inflight == NULL)
          free (x);
        return true;
      }
  return false;
}

/* ---- one request's transport ---------------------------------------------------- */

struct call
{
  struct mcp m;
  struct server *srv;
  struct inflight rec;
  int sse_fd;    /* SSE mode: the pipe's write end; -1: JSON mode */
  json_t *reply; /* JSON mode: the response */
};

static void
call_emit (struct mcp *m, json_t *msg)
{
  struct call *c = m->transport;
  if (c->sse_fd < 0)
    {
      /* JSON mode holds the one response (a request without a progress
       * token gets no notifications). */
      if (json_object_get (msg, "id"))
        {
          json_decref (c->reply);
          c->reply = json_incref (msg);
        }
      return;
    }
  char *s = json_dumps (msg, JSON_COMPACT);
  if (s == NULL)
    return;
  char *ev;
  int n = asprintf (&ev, "event: message\ndata: %s\n\n", s);
  free (s);
  if (n > 0)
    for (ssize_t off = 0; off < n;)
      {
        ssize_t w = write (c->sse_fd, ev + off, (size_t) (n - off));
        if (w <= 0)
          break; /* the client went away */
        off += w;
      }
  free (ev);
}

static bool
call_cancelled (struct mcp *m, json_t *id)
{
  (void) id;
  struct call *c = m->transport;
  uint64_t v;
  return read (c->rec.efd, &v, sizeof v) == sizeof v;
}

static void
call_begin (struct server *srv, struct session *sess, struct call *c, json_t *id)
{
  memset (c, 0, sizeof *c);
  c->srv = srv;
  c->sse_fd = -1;
  c->m = (struct mcp){ .socket = srv->socket, .tools = srv->tools, .initialized = true,
                       .emit = call_emit, .is_cancelled = call_cancelled, .transport = c,
                       .queued = json_array () };
  c->rec.id = json_incref (id);
  c->rec.efd = eventfd (0, EFD_CLOEXEC | EFD_NONBLOCK);
  c->m.cancel_fd = c->rec.efd;
  if (sess)
    {
      pthread_mutex_lock (&srv->lock);
      c->rec.next = sess->inflight;
      sess->inflight = &c->rec;
      pthread_mutex_unlock (&srv->lock);
    }
}

static void
call_end (struct session *sess, struct call *c)
{
  struct server *srv = c->srv;
  if (sess)
    {
      pthread_mutex_lock (&srv->lock);
      for (struct inflight **p = &sess->inflight; *p; p = &(*p)->next)
        if (*p == &c->rec)
          {
            *p = c->rec.next;
            break;
          }
      /* A session ended meanwhile is freed by its last request. */
      bool orphan = session_find (srv, sess->id) != sess && sess->inflight == NULL;
      pthread_mutex_unlock (&srv->lock);
      if (orphan)
        free (sess);
    }
  if (c->rec.efd >= 0)
    close (c->rec.efd);
  json_decref (c->rec.id);
  json_decref (c->m.queued);
  json_decref (c->reply);
}

/* SSE mode: the call runs in its own thread, writing events into a pipe
 * whose other end is the response body. */
struct sse_job
{
  struct call call;
  struct session *sess;
  json_t *msg;
};

static void *
sse_thread (void *arg)
{
  struct sse_job *j = arg;
  mcp_handle (&j->call.m, j->msg);
  close (j->call.sse_fd);
  call_end (j->sess, &j->call);
  json_decref (j->msg);
  free (j);
  return NULL;
}

/* ---- HTTP ---------------------------------------------------------------------------- */

static enum MHD_Result
respond (struct MHD_Connection *conn, unsigned status, json_t *body, const char *session)
{
  char *text = body ? json_dumps (body, JSON_COMPACT) : NULL;
  struct MHD_Response *r = MHD_create_response_from_buffer (text ? strlen (text) : 0,
                                                           text ? text : (char *) "",
                                                           text ? MHD_RESPMEM_MUST_FREE
                                                                : MHD_RESPMEM_PERSISTENT);
  if (text)
    MHD_add_response_header (r, "Content-Type", "application/json");
  if (session)
    MHD_add_response_header (r, "Mcp-Session-Id", session);
  if (status == MHD_HTTP_UNAUTHORIZED)
    MHD_add_response_header (r, "WWW-Authenticate", "Bearer");
  if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
    MHD_add_response_header (r, "Allow", "POST, DELETE");
  enum MHD_Result ret = MHD_queue_response (conn, status, r);
  MHD_destroy_response (r);
  json_decref (body);
  return ret;
}

static enum MHD_Result
http_error (struct MHD_Connection *conn, unsigned status, int code, const char *msg)
{
  return respond (conn, status,
                  json_pack ("{s:s, s:n, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", "error", "code",
                             code, "message", msg),
                  NULL);
}

/* DNS rebinding: a browser page from elsewhere may reach 127.0.0.1; its
 * Origin then names the other site. */
static bool
origin_ok (const char *origin)
{
  if (origin == NULL)
    return true;
  const char *host = strstr (origin, "://");
  host = host ? host + 3 : origin;
  const char *allowed[] = { "localhost", "127.0.0.1", "[::1]" };
  for (size_t i = 0; i < 3; i++)
    {
      size_t n = strlen (allowed[i]);
      if (strncmp (host, allowed[i], n) == 0 && (host[n] == '\0' || host[n] == ':' || host[n] == '/'))
        return true;
    }
  return false;
}

static enum MHD_Result
handle_post (struct server *srv, struct MHD_Connection *conn, struct req *rq)
{
  if (rq->too_big)
    return http_error (conn, 413, -32600, "message larger than 4 MiB");
  json_error_t jerr;
  json_t *msg = json_loadb (rq->body ? rq->body : "", rq->len, JSON_REJECT_DUPLICATES, &jerr);
  if (msg == NULL)
    {
      char m[300];
      snprintf (m, sizeof m, "parse error: %s", jerr.text);
      return http_error (conn, MHD_HTTP_BAD_REQUEST, -32700, m);
    }
  if (!json_is_object (msg))
    {
      json_decref (msg);
      return http_error (conn, MHD_HTTP_BAD_REQUEST, -32600,
                         "one JSON-RPC message per POST (batches are not supported)");
    }
  const char *method = json_string_value (json_object_get (msg, "method"));
  json_t *id = json_object_get (msg, "id");
  const char *sid = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Mcp-Session-Id");
  const char *pv = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "MCP-Protocol-Version");
  bool is_init = method && strcmp (method, "initialize") == 0;
  enum MHD_Result ret;

  if (pv)
    {
      bool known = false;
      for (size_t i = 0; i < MCP_N_VERSIONS; i++)
        known |= strcmp (pv, mcp_versions[i]) == 0;
      if (!known)
        {
          json_decref (msg);
          return http_error (conn, MHD_HTTP_BAD_REQUEST, -32600, "unsupported MCP-Protocol-Version");
        }
    }
  pthread_mutex_lock (&srv->lock);
  struct session *sess = is_init ? NULL : session_find (srv, sid);
  pthread_mutex_unlock (&srv->lock);
  if (!is_init && sess == NULL)
    {
      json_decref (msg);
      return sid ? http_error (conn, MHD_HTTP_NOT_FOUND, -32600, "unknown session: initialize again")
                 : http_error (conn, MHD_HTTP_BAD_REQUEST, -32600,
                               "Mcp-Session-Id header required (from the initialize response)");
    }

  if (id == NULL || method == NULL)
    {
      /* A notification (or a response to us): accepted. A cancellation
       * reaches the request it names. */
      if (method && strcmp (method, "notifications/cancelled") == 0)
        {
          json_t *rid = json_object_get (json_object_get (msg, "params"), "requestId");
          pthread_mutex_lock (&srv->lock);
          for (struct inflight *f = sess->inflight; f; f = f->next)
            if (json_equal (f->id, rid) && write (f->efd, &(uint64_t){ 1 }, 8) < 0)
              break;
          pthread_mutex_unlock (&srv->lock);
        }
      json_decref (msg);
      return respond (conn, MHD_HTTP_ACCEPTED, NULL, NULL);
    }

  if (is_init)
    {
      struct call c;
      call_begin (srv, NULL, &c, id);
      c.m.initialized = false;
      mcp_handle (&c.m, msg);
      char sidbuf[40] = "";
      if (c.reply && json_object_get (c.reply, "result"))
        {
          pthread_mutex_lock (&srv->lock);
          struct session *x = session_new (srv);
          if (x)
            snprintf (sidbuf, sizeof sidbuf, "%s", x->id);
          pthread_mutex_unlock (&srv->lock);
          if (x == NULL)
            {
              call_end (NULL, &c);
              json_decref (msg);
              return http_error (conn, MHD_HTTP_SERVICE_UNAVAILABLE, -32603, "too many sessions");
            }
        }
      ret = respond (conn, MHD_HTTP_OK, json_incref (c.reply), sidbuf[0] ? sidbuf : NULL);
      call_end (NULL, &c);
      json_decref (msg);
      return ret;
    }

  json_t *token = json_object_get (json_object_get (json_object_get (msg, "params"), "_meta"),
                                   "progressToken");
  if (token && strcmp (method, "tools/call") == 0)
    {
      /* Progress wanted: an SSE stream, fed by the call's own thread. */
      struct sse_job *j = calloc (1, sizeof *j);
      int p[2];
      if (j == NULL || pipe2 (p, O_CLOEXEC) < 0)
        {
          free (j);
          json_decref (msg);
          return http_error (conn, MHD_HTTP_INTERNAL_SERVER_ERROR, -32603, "out of resources");
        }
      call_begin (srv, sess, &j->call, id);
      j->call.sse_fd = p[1];
      j->sess = sess;
      j->msg = msg;
      pthread_t t;
      if (pthread_create (&t, NULL, sse_thread, j) != 0)
        {
          close (p[0]);
          close (p[1]);
          call_end (sess, &j->call);
          free (j);
          json_decref (msg);
          return http_error (conn, MHD_HTTP_INTERNAL_SERVER_ERROR, -32603, "out of resources");
        }
      pthread_detach (t);
      struct MHD_Response *r = MHD_create_response_from_pipe (p[0]);
      MHD_add_response_header (r, "Content-Type", "text/event-stream");
      MHD_add_response_header (r, "Cache-Control", "no-cache");
      ret = MHD_queue_response (conn, MHD_HTTP_OK, r);
      MHD_destroy_response (r);
      return ret;
    }

  struct call c;
  call_begin (srv, sess, &c, id);
  mcp_handle (&c.m, msg);
  ret = c.reply ? respond (conn, MHD_HTTP_OK, json_incref (c.reply), NULL)
                : respond (conn, MHD_HTTP_ACCEPTED, NULL, NULL); /* cancelled */
  call_end (sess, &c);
  json_decref (msg);
  return ret;
}

static enum MHD_Result
on_request (void *cls, struct MHD_Connection *conn, const char *url, const char *method,
            const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
  (void) version;
  struct server *srv = cls;
  struct req *rq = *con_cls;
  if (rq == NULL)
    {
      rq = calloc (1, sizeof *rq);
      *con_cls = rq;
      return rq ? MHD_YES : MHD_NO;
    }
  if (*upload_size)
    {
      if (!rq->too_big && rq->len + *upload_size <= BODY_MAX)
        {
          char *g = realloc (rq->body, rq->len + *upload_size + 1);
          if (g == NULL)
            rq->too_big = true;
          else
            {
              memcpy (g + rq->len, upload, *upload_size);
              rq->body = g;
              rq->len += *upload_size;
            }
        }
      else
        rq->too_big = true;
      *upload_size = 0;
      return MHD_YES;
    }
  if (strcmp (url, "/mcp") != 0)
    return http_error (conn, MHD_HTTP_NOT_FOUND, -32600, "the MCP endpoint is /mcp");
  if (!origin_ok (MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Origin")))
    return http_error (conn, MHD_HTTP_FORBIDDEN, -32600, "Origin not allowed");
  if (srv->token[0])
    {
      const char *auth = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Authorization");
      if (auth == NULL || strncmp (auth, "Bearer ", 7) != 0 || !token_equal (auth + 7, srv->token))
        return http_error (conn, MHD_HTTP_UNAUTHORIZED, -32600, "a valid bearer token is required");
    }
  if (strcmp (method, "POST") == 0)
    return handle_post (srv, conn, rq);
  if (strcmp (method, "DELETE") == 0)
    {
      const char *sid = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Mcp-Session-Id");
      pthread_mutex_lock (&srv->lock);
      bool found = sid && session_drop (srv, sid);
      pthread_mutex_unlock (&srv->lock);
      return found ? respond (conn, MHD_HTTP_OK, NULL, NULL)
                   : http_error (conn, MHD_HTTP_NOT_FOUND, -32600, "unknown session");
    }
  return respond (conn, MHD_HTTP_METHOD_NOT_ALLOWED, NULL, NULL); /* GET: no server stream */
}

static void
on_done (void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode t)
{
  (void) cls;
  (void) conn;
  (void) t;
  struct req *rq = *con_cls;
  if (rq)
    {
      free (rq->body);
      free (rq);
    }
  *con_cls = NULL;
}

int
mcp_serve_http (const char *socket, const char *listen, const char *token_file)
{
  struct sockaddr_in sa;
  struct server srv = { .socket = socket };
  struct error err = { 0 };
  if (parse_hostport (listen, &sa, &err) < 0
      || (token_file && read_token_file (token_file, srv.token, sizeof srv.token, &err) < 0))
    {
      fprintf (stderr, "deploy mcp: %s\n", err.msg);
      return 2;
    }
  if (!is_loopback (&sa) && token_file == NULL)
    {
      fprintf (stderr, "deploy mcp: --listen %s is not a loopback address: give --token-file\n", listen);
      return 2;
    }
  srv.tools = mcp_tools_load ();
  if (srv.tools == NULL)
    return 1;
  pthread_mutex_init (&srv.lock, NULL);
  signal (SIGPIPE, SIG_IGN);
  /* Blocked before MHD's threads exist, so that they inherit it. */
  sigset_t set;
  sigemptyset (&set);
  sigaddset (&set, SIGINT);
  sigaddset (&set, SIGTERM);
  pthread_sigmask (SIG_BLOCK, &set, NULL);
  struct MHD_Daemon *d
      = MHD_start_daemon (MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL,
                          NULL, on_request, &srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &sa,
                          MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
                          MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 300, MHD_OPTION_END);
  if (d == NULL)
    {
      fprintf (stderr, "deploy mcp: cannot listen on %s\n", listen);
      json_decref (srv.tools);
      return 1;
    }
  fprintf (stderr, "deploy mcp: serving MCP at http://%s/mcp\n", listen);
  int sig;
  sigwait (&set, &sig);
  MHD_stop_daemon (d); /* joins the connection threads */
  while (srv.sessions)
    {
      struct session *x = srv.sessions;
      srv.sessions = x->next;
      free (x);
    }
  json_decref (srv.tools);
  return 0;
}
