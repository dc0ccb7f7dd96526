/* `deploy mcp`: an MCP server on stdio (MCP 2025-11-25, "Lifecycle",
 * "Transports: stdio", "Tools"). Requests are handled one at a time; while a
 * deploy waits on agentd, stdin is still read, so a cancellation is seen
 * and progress notifications flow. */
#include "mcp.h"
#include "mcp_internal.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/parse.h"
#include "client.h"
#include "names.h"

#define LINE_MAX_BYTES (4u << 20)

/* The tool definitions, compiled in from mcp_tools.json. */
__asm__ (".section .rodata\n"
         ".global mcp_tools_json\n"
         "mcp_tools_json:\n"
         ".incbin \"deploy/mcp_tools.json\"\n"
         ".byte 0\n"
         ".previous\n");
extern const char mcp_tools_json[];

json_t *
mcp_tools_load (void)
{
  json_error_t jerr;
  json_t *tools = json_loads (mcp_tools_json, 0, &jerr);
  if (tools == NULL)
    fprintf (stderr, "deploy mcp: tool definitions: line %d: %s\n", jerr.line, jerr.text);
  return tools;
}

const char *const mcp_versions[MCP_N_VERSIONS] = { MCP_LATEST, "2025-06-18", "2025-03-26" };


/* ---- output ---------------------------------------------------------------- */

/* Every message goes out through the transport (stdio or HTTP); msg is
 * consumed. */
static void
send_msg (struct mcp *m, json_t *msg)
{
  m->emit (m, msg);
  json_decref (msg);
}

static void
send_result (struct mcp *m, json_t *id, json_t *result)
{
  send_msg (m, json_pack ("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id, "result", result));
}

static void __attribute__ ((format (printf, 4, 5)))
send_error (struct mcp *m, json_t *id, int code, const char *fmt, ...)
{
  char msg[1024];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  send_msg (m, json_pack ("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id ? id : json_null (),
                       "error", "code", code, "message", msg));
}

/* A tool's answer: structured content plus its text rendering. */
static void
send_tool_result (struct mcp *m, json_t *id, json_t *structured, const char *text, bool is_error)
{
  json_t *r = json_pack ("{s:[{s:s, s:s}], s:b}", "content", "type", "text", "text", text,
                         "isError", is_error);
  if (structured)
    json_object_set_new (r, "structuredContent", structured);
  send_result (m, id, r);
}

static void __attribute__ ((format (printf, 3, 4)))
send_tool_error (struct mcp *m, json_t *id, const char *fmt, ...)
{
  char msg[1024];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  send_tool_result (m, id, NULL, msg, true);
}

/* ---- input ----------------------------------------------------------------- */

/* 1: a line in *line (caller frees), 0: nothing yet, -1: EOF or error. */
static int
take_line (struct mcp *m, char **line)
{
  char *nl = m->in_len ? memchr (m->in, '\n', m->in_len) : NULL;
  if (nl == NULL)
    {
      if (m->eof && m->in_len)
        nl = m->in + m->in_len; /* a last line without its newline */
      else
        return m->eof ? -1 : 0;
    }
  size_t n = (size_t) (nl - m->in);
  *line = strndup (m->in, n);
  size_t used = n < m->in_len ? n + 1 : n;
  memmove (m->in, m->in + used, m->in_len - used);
  m->in_len -= used;
  return 1;
}

/* Read what stdin has (blocking when block). -1 when a line is too long. */
static int
fill (struct mcp *m, bool block)
{
  if (!block)
    {
      struct pollfd p = { 0, POLLIN, 0 };
      if (poll (&p, 1, 0) <= 0)
        return 0;
    }
  if (m->in_cap - m->in_len < 65536)
    {
      size_t cap = m->in_cap ? m->in_cap * 2 : 131072;
      char *g = realloc (m->in, cap);
      if (g == NULL)
        return -1;
      m->in = g;
      m->in_cap = cap;
    }
  ssize_t n = read (0, m->in + m->in_len, m->in_cap - m->in_len);
  if (n <= 0)
    m->eof = true;
  else
    m->in_len += (size_t) n;
  if (m->skipping)
    {
      char *nl = memchr (m->in, '\n', m->in_len);
      size_t drop = nl ? (size_t) (nl - m->in) + 1 : m->in_len;
      memmove (m->in, m->in + drop, m->in_len - drop);
      m->in_len -= drop;
      m->skipping = nl == NULL;
    }
  if (m->in_len > LINE_MAX_BYTES && memchr (m->in, '\n', m->in_len) == NULL)
    {
      /* A message this large is refused, and the rest of its line skipped. */
      m->in_len = 0;
      m->skipping = true;
      send_error (m, NULL, -32600, "message larger than %u bytes", LINE_MAX_BYTES);
    }
  return 0;
}

/* ---- agentd ------------------------------------------------------------------ */

static int
agentd_call (struct mcp *m, uint8_t type, const void *req, union client_reply *r, struct error *err)
{
  struct client c;
  uint32_t id;
  uint8_t got;
  bool more;
  int ret = client_connect (&c, client_socket_path (m->socket), err) < 0
                    || client_send (&c, type, req, &id, err) < 0
                    || client_recv (&c, id, &got, r, &more, err) < 0
                ? -1
                : 0;
  client_close (&c);
  return ret;
}

static const char *
str_arg (json_t *args, const char *key)
{
  json_t *v = json_object_get (args, key);
  return json_is_string (v) ? json_string_value (v) : NULL;
}

/* ---- tools --------------------------------------------------------------------- */

/* Arguments of the wrong type are the client's mistake (-32602); a wrong
 * value is the agent's to fix (isError with what to do). */
static bool
check_types (struct mcp *m, json_t *id, json_t *schema, json_t *args)
{
  json_t *props = json_object_get (json_object_get (schema, "inputSchema"), "properties");
  json_t *required = json_object_get (json_object_get (schema, "inputSchema"), "required");
  size_t i;
  json_t *r;
  json_array_foreach (required, i, r)
  if (!json_object_get (args, json_string_value (r)))
    {
      send_error (m, id, -32602, "missing argument `%s`", json_string_value (r));
      return false;
    }
  const char *key;
  json_t *v;
  json_object_foreach (args, key, v)
  {
    json_t *p = json_object_get (props, key);
    if (p == NULL)
      {
        send_error (m, id, -32602, "unknown argument `%s`", key);
        return false;
      }
    json_t *t = json_object_get (p, "type");
    const char *want = json_string_value (t);
    bool ok = true;
    if (json_is_array (t))
      ok = json_is_string (v) || json_is_number (v);
    else if (strcmp (want, "string") == 0)
      ok = json_is_string (v);
    else if (strcmp (want, "integer") == 0)
      ok = json_is_integer (v);
    else if (strcmp (want, "number") == 0)
      ok = json_is_number (v);
    else if (strcmp (want, "boolean") == 0)
      ok = json_is_boolean (v);
    else if (strcmp (want, "array") == 0)
      ok = json_is_array (v);
    else if (strcmp (want, "object") == 0)
      ok = json_is_object (v);
    if (!ok)
      {
        send_error (m, id, -32602, "argument `%s` must be of type %s", key,
                    want ? want : "string or number");
        return false;
      }
  }
  return true;
}

static void
progress_note (struct mcp *m, json_t *token, double done, double total, const char *msg)
{
  if (token == NULL)
    return;
  json_t *p = json_pack ("{s:O, s:f, s:s}", "progressToken", token, "progress", done, "message", msg);
  if (total > 0)
    json_object_set_new (p, "total", json_real (total));
  send_msg (m, json_pack ("{s:s, s:s, s:o}", "jsonrpc", "2.0", "method", "notifications/progress",
                       "params", p));
}

/* stdio: a cancellation of request `id` among the messages that arrived
 * on stdin; the others are kept for after this request. */
static bool
stdio_cancelled (struct mcp *m, json_t *id)
{
  char *line;
  fill (m, false);
  while (take_line (m, &line) == 1)
    {
      json_t *msg = json_loads (line, 0, NULL);
      free (line);
      if (msg == NULL)
        continue; /* answered as a parse error later would need the text; drop */
      const char *method = json_string_value (json_object_get (msg, "method"));
      json_t *rid = json_object_get (json_object_get (msg, "params"), "requestId");
      if (method && strcmp (method, "notifications/cancelled") == 0 && json_equal (rid, id))
        {
          json_decref (msg);
          return true;
        }
      json_array_append_new (m->queued, msg);
    }
  if (m->eof)
    m->cancel_fd = -1; /* nothing more will come */
  return false;
}

/* stdio: one message a line on stdout. */
static void
stdio_emit (struct mcp *m, json_t *msg)
{
  (void) m;
  char *s = json_dumps (msg, JSON_COMPACT);
  if (s)
    {
      fputs (s, stdout);
      fputc ('\n', stdout);
      fflush (stdout);
      free (s);
    }
}

static void
tool_deploy (struct mcp *m, json_t *id, json_t *args, json_t *token)
{
  struct error err = { 0 };
  struct msg_deploy d = { 0 };
  char project[32], env[32];
  const char *dir = str_arg (args, "directory");
  names_project (str_arg (args, "project"), dir, project, sizeof project);
  names_env (str_arg (args, "environment"), dir, env, sizeof env);
  d.project = project;
  d.env = env;
  d.service = (char *) (str_arg (args, "service") ?: "web");
  d.image = (char *) str_arg (args, "image");
  d.restart = (char *) str_arg (args, "restart");
  d.port = (uint64_t) json_integer_value (json_object_get (args, "port"));
  const char *mem = str_arg (args, "memory"), *ttl = str_arg (args, "ttl");
  int64_t v;
  if (mem && parse_size (mem, &v, &err) < 0)
    return send_tool_error (m, id, "memory: %s. Give a size such as \"256M\".", err.msg);
  d.memory_bytes = mem ? (uint64_t) v : 0;
  json_t *cpus = json_object_get (args, "cpus");
  if (cpus)
    d.cpu_millis = (uint64_t) (json_number_value (cpus) * 1000 + 0.5);
  if (ttl && parse_duration (ttl, &d.ttl_seconds, &err) < 0)
    return send_tool_error (m, id, "ttl: %s", err.msg);
  char *argv[256] = { 0 }, *envv[256] = { 0 };
  size_t i, n = 0;
  json_t *x;
  json_array_foreach (json_object_get (args, "command"), i, x)
  if (json_is_string (x) && n < 255)
    argv[n++] = (char *) json_string_value (x);
  d.argv = n ? argv : NULL;
  const char *k;
  n = 0;
  json_object_foreach (json_object_get (args, "env"), k, x)
  if (json_is_string (x) && n < 255 && asprintf (&envv[n], "%s=%s", k, json_string_value (x)) >= 0)
    n++;
  d.envv = envv;

  struct client c;
  uint32_t rid;
  bool done = false;
  if (client_connect (&c, client_socket_path (m->socket), &err) < 0
      || client_send (&c, MSG_DEPLOY, &d, &rid, &err) < 0)
    {
      send_tool_error (m, id, "%s", err.msg);
      done = true;
    }
  double step = 0;
  while (!done)
    {
      /* Wait on agentd and on stdin (a cancellation). */
      struct pollfd p[2] = { { c.conn.fd, POLLIN, 0 }, { m->cancel_fd, POLLIN, 0 } };
      if (poll (p, m->cancel_fd >= 0 ? 2 : 1, -1) < 0 && errno != EINTR)
        break;
      if (m->cancel_fd >= 0 && (p[1].revents & (POLLIN | POLLHUP)) && m->is_cancelled (m, id))
        break; /* cancelled: no response, as the spec says */
      if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
        continue;
      if (proto_conn_read (&c.conn, &err) <= 0)
        {
          send_tool_error (m, id, "agentd closed the connection during the deploy");
          break;
        }
      struct proto_frame f;
      int got;
      while (!done && (got = proto_conn_next (&c.conn, &f, &err)) == 1)
        {
          if (f.h.request_id != rid)
            continue;
          union client_reply r;
          if (proto_decode (f.h.type, f.payload, f.h.length, &r, &err) < 0)
            {
              send_tool_error (m, id, "agentd's reply: %s", err.msg);
              done = true;
              break;
            }
          if (f.h.type == MSG_PROGRESS)
            progress_note (m, token, ++step, 0, r.progress.message ?: "");
          else if (f.h.type == MSG_ERROR)
            {
              send_tool_error (m, id, "%s", r.error.message ?: "deploy failed");
              done = true;
            }
          else if (f.h.type == MSG_DEPLOY_RESULT)
            {
              const struct msg_deploy_result *res = &r.deploy;
              json_t *s = json_pack (
                  "{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:{s:f, s:f, s:f, s:f}}", "id", res->id ?: "",
                  "project", project, "environment", env, "service", d.service, "version",
                  (json_int_t) res->version, "status", res->status ?: "", "url", res->url ?: "",
                  "address", res->address ?: "", "timings_ms", "pull", res->pull_us / 1e3, "start",
                  res->start_us / 1e3, "ready", res->ready_us / 1e3, "total", res->total_us / 1e3);
              char text[512];
              snprintf (text, sizeof text, "Deployed %s version %llu (%s) in %.1f ms.%s%s", res->id,
                        (unsigned long long) res->version, res->status, res->total_us / 1e3,
                        res->url && res->url[0] ? " Reach it at " : "", res->url ?: "");
              send_tool_result (m, id, s, text, false);
              done = true;
            }
          proto_msg_clear (f.h.type, &r);
        }
      if (got < 0)
        {
          send_tool_error (m, id, "agentd: %s", err.msg);
          break;
        }
    }
  client_close (&c);
  for (i = 0; envv[i]; i++)
    free (envv[i]);
}

static void
tool_list (struct mcp *m, json_t *id, json_t *args, const char *service)
{
  struct error err = { 0 };
  struct msg_list req = { (char *) str_arg (args, "project"), (char *) str_arg (args, "environment"),
                          (char *) service };
  union client_reply r;
  if (agentd_call (m, MSG_LIST, &req, &r, &err) < 0)
    return send_tool_error (m, id, "%s", err.msg);
  if (service)
    {
      if (r.list.n_deployments == 0)
        send_tool_error (m, id, "no service `%s` in %s/%s: see list_deployments", service, req.project,
                         req.env);
      else
        {
          const struct msg_deployment_info *i = &r.list.deployments[0];
          char text[512];
          snprintf (text, sizeof text, "%s is %s (version %llu, pid %llu, %llu restarts%s%s)%s%s", i->id,
                    i->state, (unsigned long long) i->version, (unsigned long long) i->pid,
                    (unsigned long long) i->restarts, i->last_exit[0] ? ", last exit: " : "",
                    i->last_exit, i->url[0] ? " at " : "", i->url);
          send_tool_result (m, id, client_deployment_json (i), text, false);
        }
    }
  else
    {
      json_t *arr = json_array ();
      size_t len = 0, cap = 4096;
      char *text = malloc (cap);
      text[0] = '\0';
      for (size_t k = 0; k < r.list.n_deployments; k++)
        {
          const struct msg_deployment_info *i = &r.list.deployments[k];
          json_array_append_new (arr, client_deployment_json (i));
          if (len + 256 < cap)
            len += (size_t) snprintf (text + len, cap - len, "%s: %s, version %llu%s%s\n", i->id,
                                      i->state, (unsigned long long) i->version,
                                      i->url[0] ? ", " : "", i->url);
        }
      if (len == 0)
        snprintf (text, cap, "No deployments.");
      send_tool_result (m, id, json_pack ("{s:o}", "deployments", arr), text, false);
      free (text);
    }
  proto_msg_clear (MSG_LIST_RESULT, &r);
}

static const char *
stream_name (uint64_t s)
{
  return s == 1 ? "stdout" : s == 2 ? "stderr" : "agentd";
}

/* `since` as seconds ago: a number, or an ISO 8601 UTC time. -1: bad. */
static int64_t
since_seconds (json_t *since)
{
  if (since == NULL)
    return 0;
  if (json_is_number (since))
    return (int64_t) json_number_value (since);
  struct tm tm = { 0 };
  if (!json_is_string (since) || strptime (json_string_value (since), "%Y-%m-%dT%H:%M:%S", &tm) == NULL)
    return -1;
  int64_t ago = (int64_t) time (NULL) - (int64_t) timegm (&tm);
  return ago > 0 ? ago : 1;
}

static void
tool_logs (struct mcp *m, json_t *id, json_t *args)
{
  struct error err = { 0 };
  json_t *lines = json_object_get (args, "lines"), *since = json_object_get (args, "since");
  int64_t ago = since_seconds (since);
  if (ago < 0)
    return send_tool_error (m, id, "since: give an ISO 8601 UTC time such as 2026-11-24T10:00:00Z, or seconds ago");
  uint64_t since_us = ago ? ((uint64_t) time (NULL) - (uint64_t) ago) * 1000000 : 0;
  struct msg_logs req = { (char *) str_arg (args, "project"), (char *) str_arg (args, "environment"),
                          (char *) str_arg (args, "service"),
                          since_us ? 0 : (uint64_t) (lines ? json_integer_value (lines) : 100), 0 };
  union client_reply r;
  if (agentd_call (m, MSG_LOGS, &req, &r, &err) < 0)
    return send_tool_error (m, id, "%s", err.msg);
  json_t *arr = json_array ();
  size_t cap = 1 << 16, len = 0;
  char *text = malloc (cap);
  text[0] = '\0';
  size_t first = 0, n = r.logs.n_lines;
  uint64_t want = lines ? (uint64_t) json_integer_value (lines) : 100;
  while (first < n && r.logs.lines[first].ts_us < since_us)
    first++;
  if (n - first > want)
    first = n - want;
  for (size_t k = first; k < n; k++)
    {
      const struct msg_log_line *l = &r.logs.lines[k];
      time_t t = (time_t) (l->ts_us / 1000000);
      struct tm tm;
      gmtime_r (&t, &tm);
      char ts[40], iso[48];
      strftime (ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
      snprintf (iso, sizeof iso, "%s.%06lluZ", ts, (unsigned long long) (l->ts_us % 1000000));
      json_array_append_new (arr, json_pack ("{s:s, s:s, s:s}", "time", iso, "stream",
                                             stream_name (l->stream), "text", l->text ?: ""));
      if (len + strlen (l->text ?: "") + 64 < cap)
        len += (size_t) snprintf (text + len, cap - len, "[%s] %s\n", stream_name (l->stream),
                                  l->text ?: "");
    }
  if (len == 0)
    snprintf (text, cap, "No log lines.");
  send_tool_result (m, id, json_pack ("{s:o}", "lines", arr), text, false);
  free (text);
  proto_msg_clear (MSG_LOG_LINES, &r);
}

static void
tool_usage (struct mcp *m, json_t *id, json_t *args)
{
  struct error err = { 0 };
  int64_t since = since_seconds (json_object_get (args, "since"));
  if (since < 0)
    return send_tool_error (m, id, "since: give an ISO 8601 UTC time such as 2026-11-24T10:00:00Z, or seconds ago");
  struct msg_usage req = { (char *) str_arg (args, "project"), (char *) str_arg (args, "environment"),
                           (char *) str_arg (args, "service"), (uint64_t) since };
  union client_reply r;
  if (agentd_call (m, MSG_USAGE, &req, &r, &err) < 0)
    return send_tool_error (m, id, "%s", err.msg);
  json_t *rows = json_array ();
  double total = 0;
  for (size_t i = 0; i < r.usage.n_rows; i++)
    {
      double cost;
      json_array_append_new (rows, client_usage_json (&r.usage.rows[i], &cost));
      total += cost;
    }
  const char *source = r.usage.source ? r.usage.source : "journal";
  char text[256];
  snprintf (text, sizeof text, "%zu service(s) used $%.8f in the period (%s).", json_array_size (rows), total,
            strcmp (source, "control") == 0 ? "the control plane's ledger" : "this node's journal");
  send_tool_result (m, id, json_pack ("{s:b, s:s, s:o}", "available", 1, "source", source, "usage", rows), text,
                    false);
  proto_msg_clear (MSG_USAGE_RESULT, &r);
}

static void
tool_environments (struct mcp *m, json_t *id, json_t *args)
{
  struct error err = { 0 };
  struct msg_env_list req = { (char *) str_arg (args, "project") };
  union client_reply r;
  if (agentd_call (m, MSG_ENV_LIST, &req, &r, &err) < 0)
    return send_tool_error (m, id, "%s", err.msg);
  json_t *arr = json_array ();
  char text[4096] = "";
  size_t len = 0;
  for (size_t k = 0; k < r.envs.n_envs; k++)
    {
      const struct msg_env_info *e = &r.envs.envs[k];
      json_t *exp = json_null ();
      if (e->expires_at)
        {
          time_t t = (time_t) e->expires_at;
          struct tm tm;
          gmtime_r (&t, &tm);
          char iso[40];
          strftime (iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
          exp = json_string (iso);
        }
      json_array_append_new (arr, json_pack ("{s:s, s:s, s:I, s:b, s:o}", "project", e->project,
                                             "environment", e->env, "services",
                                             (json_int_t) e->services, "production",
                                             (int) e->production, "expires_at", exp));
      if (len + 128 < sizeof text)
        len += (size_t) snprintf (text + len, sizeof text - len, "%s/%s: %llu services\n", e->project,
                                  e->env, (unsigned long long) e->services);
    }
  send_tool_result (m, id, json_pack ("{s:o}", "environments", arr), len ? text : "No environments.",
                    false);
  proto_msg_clear (MSG_ENV_LIST_RESULT, &r);
}

/* delete_environment (service NULL) and remove_service: a dry run unless
 * confirm is true. */
static void
tool_remove (struct mcp *m, json_t *id, json_t *args, bool one_service)
{
  struct error err = { 0 };
  const char *project = str_arg (args, "project"), *env = str_arg (args, "environment");
  const char *service = one_service ? str_arg (args, "service") : NULL;
  bool confirm = json_is_true (json_object_get (args, "confirm"));
  struct msg_list lreq = { (char *) project, (char *) env, (char *) service };
  union client_reply r;
  if (agentd_call (m, MSG_LIST, &lreq, &r, &err) < 0)
    return send_tool_error (m, id, "%s", err.msg);
  json_t *would = json_array ();
  for (size_t k = 0; k < r.list.n_deployments; k++)
    json_array_append_new (would, json_string (r.list.deployments[k].id));
  proto_msg_clear (MSG_LIST_RESULT, &r);
  if (json_array_size (would) == 0)
    {
      json_decref (would);
      return send_tool_error (m, id, "nothing to remove: no %s%s in %s/%s (see list_deployments)",
                              service ? "service " : "services", service ?: "", project, env);
    }
  json_t *removed = json_array ();
  char text[1024];
  if (!confirm)
    snprintf (text, sizeof text,
              "Nothing removed. This would stop and remove %zu service(s): call again with confirm: true to do it.",
              json_array_size (would));
  else
    {
      struct msg_down dreq = { (char *) project, (char *) env, (char *) service };
      if (agentd_call (m, MSG_DOWN, &dreq, &r, &err) < 0)
        {
          json_decref (would);
          json_decref (removed);
          return send_tool_error (m, id, "%s", err.msg);
        }
      for (char **p = r.down.removed; p && *p; p++)
        json_array_append_new (removed, json_string (*p));
      proto_msg_clear (MSG_DOWN_RESULT, &r);
      snprintf (text, sizeof text, "Removed %zu service(s).", json_array_size (removed));
    }
  send_tool_result (m, id, json_pack ("{s:b, s:o, s:o}", "confirmed", confirm, "would_remove", would,
                                   "removed", removed),
                    text, false);
}

static void
tool_call (struct mcp *m, json_t *id, json_t *params)
{
  const char *name = json_string_value (json_object_get (params, "name"));
  json_t *args = json_object_get (params, "arguments");
  json_t *token = json_object_get (json_object_get (params, "_meta"), "progressToken");
  if (name == NULL)
    return send_error (m, id, -32602, "tools/call: params.name must be a string");
  if (args && !json_is_object (args))
    return send_error (m, id, -32602, "tools/call: params.arguments must be an object");
  json_t *empty = json_object ();
  if (args == NULL)
    args = empty;
  json_t *tool = NULL;
  size_t i;
  json_t *t;
  json_array_foreach (m->tools, i, t)
  if (strcmp (json_string_value (json_object_get (t, "name")), name) == 0)
    tool = t;
  if (tool == NULL)
    send_error (m, id, -32602, "unknown tool `%s` (see tools/list)", name);
  else if (check_types (m, id, tool, args))
    {
      if (strcmp (name, "deploy") == 0)
        tool_deploy (m, id, args, token);
      else if (strcmp (name, "list_deployments") == 0)
        tool_list (m, id, args, NULL);
      else if (strcmp (name, "get_status") == 0)
        tool_list (m, id, args, str_arg (args, "service"));
      else if (strcmp (name, "get_logs") == 0)
        tool_logs (m, id, args);
      else if (strcmp (name, "list_environments") == 0)
        tool_environments (m, id, args);
      else if (strcmp (name, "delete_environment") == 0)
        tool_remove (m, id, args, false);
      else if (strcmp (name, "remove_service") == 0)
        tool_remove (m, id, args, true);
      else if (strcmp (name, "get_usage") == 0)
        tool_usage (m, id, args);
    }
  json_decref (empty);
}

/* ---- lifecycle and dispatch ------------------------------------------------------ */

static void
initialize (struct mcp *m, json_t *id, json_t *params)
{
  const char *asked = json_string_value (json_object_get (params, "protocolVersion"));
  if (asked == NULL)
    return send_error (m, id, -32602, "initialize: params.protocolVersion must be a string");
  /* The client's version when we speak it, else our latest (the client
   * then decides whether it can go on). */
  const char *v = MCP_LATEST;
  for (size_t i = 0; i < MCP_N_VERSIONS; i++)
    if (strcmp (asked, mcp_versions[i]) == 0)
      v = mcp_versions[i];
  m->initialized = true;
  send_result (m, id, json_pack ("{s:s, s:{s:{s:b}}, s:{s:s, s:s, s:s}, s:s}", "protocolVersion", v,
                              "capabilities", "tools", "listChanged", 0, "serverInfo", "name",
                              "agentd-deploy", "title", "agentd deploy", "version", "0.5.0",
                              "instructions",
                              "Deploy container images as services with `deploy`, then check them "
                              "with get_status and get_logs. Environments default to the git "
                              "branch; remove things with remove_service or delete_environment "
                              "(dry run unless confirm: true)."));
}

void
mcp_handle (struct mcp *m, json_t *msg)
{
  if (!json_is_object (msg))
    return send_error (m, NULL, -32600, "%s",
                       json_is_array (msg) ? "batches are not supported: send one message a line"
                                           : "a message must be a JSON object");
  json_t *id = json_object_get (msg, "id");
  const char *method = json_string_value (json_object_get (msg, "method"));
  const char *jsonrpc = json_string_value (json_object_get (msg, "jsonrpc"));
  if (jsonrpc == NULL || strcmp (jsonrpc, "2.0") != 0)
    return send_error (m, id, -32600, "jsonrpc must be \"2.0\"");
  if (method == NULL)
    return; /* a response to us: we send no requests, so nothing to match */
  if (id && !json_is_string (id) && !json_is_integer (id))
    return send_error (m, NULL, -32600, "id must be a string or an integer");
  json_t *params = json_object_get (msg, "params");
  if (params && !json_is_object (params))
    return send_error (m, id, -32602, "params must be an object");
  if (id == NULL)
    return; /* notifications: initialized, cancelled (of nothing running), ... */
  if (strcmp (method, "initialize") == 0)
    return initialize (m, id, params);
  if (strcmp (method, "ping") == 0)
    return send_result (m, id, json_object ());
  if (!m->initialized)
    return send_error (m, id, -32600, "not initialized: send initialize first");
  if (strcmp (method, "tools/list") == 0)
    return send_result (m, id, json_pack ("{s:O}", "tools", m->tools));
  if (strcmp (method, "tools/call") == 0)
    return tool_call (m, id, params ? params : json_object ());
  send_error (m, id, -32601, "method `%s` not found", method);
}

static int
serve_stdio (const char *socket)
{
  struct mcp m = { .socket = socket, .queued = json_array (), .emit = stdio_emit, .cancel_fd = 0,
                   .is_cancelled = stdio_cancelled };
  json_error_t jerr;
  m.tools = mcp_tools_load ();
  if (m.tools == NULL)
    return 1;
  for (;;)
    {
      while (json_array_size (m.queued))
        {
          json_t *q = json_incref (json_array_get (m.queued, 0));
          json_array_remove (m.queued, 0);
          mcp_handle (&m, q);
          json_decref (q);
        }
      char *line;
      int r = take_line (&m, &line);
      if (r < 0)
        break;
      if (r == 0)
        {
          fill (&m, true);
          continue;
        }
      if (line[strspn (line, " \t\r")] == '\0')
        {
          free (line);
          continue;
        }
      json_t *msg = json_loads (line, JSON_REJECT_DUPLICATES, &jerr);
      free (line);
      if (msg == NULL)
        {
          send_error (&m, NULL, -32700, "parse error: %s (column %d)", jerr.text, jerr.column);
          continue;
        }
      mcp_handle (&m, msg);
      json_decref (msg);
    }
  json_decref (m.tools);
  json_decref (m.queued);
  free (m.in);
  return 0;
}

/* ---- deploy mcp install --------------------------------------------------------------- */

static int
install (const char *socket, int argc, char **argv)
{
  const char *client = "claude";
  bool write = false;
  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--client") == 0 && i + 1 < argc)
        client = argv[++i];
      else if (strcmp (argv[i], "--write") == 0)
        write = true;
      else if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0)
        {
          puts ("Usage: deploy mcp install [--client claude|cursor|goose] [--write]\n\n"
                "Print the configuration that makes an AI agent run `deploy mcp` (with --write,\n"
                "also write it: .mcp.json for claude, .cursor/mcp.json for cursor, in the current\n"
                "directory; goose's is printed for ~/.config/goose/config.yaml).");
          return 0;
        }
      else
        {
          fprintf (stderr, "deploy mcp install: unknown argument `%s`\n", argv[i]);
          return 2;
        }
    }
  char self[PATH_MAX];
  ssize_t n = readlink ("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0)
    snprintf (self, sizeof self, "deploy");
  else
    self[n] = '\0';
  const char *sock = client_socket_path (socket);
  char *text = NULL;
  const char *file = NULL;
  if (strcmp (client, "claude") == 0 || strcmp (client, "cursor") == 0)
    {
      json_t *cfg = json_pack ("{s:{s:{s:s, s:s, s:[s, s, s]}}}", "mcpServers", "agentd", "type",
                               "stdio", "command", self, "args", "--socket", sock, "mcp");
      text = json_dumps (cfg, JSON_INDENT (2));
      json_decref (cfg);
      file = strcmp (client, "claude") == 0 ? ".mcp.json" : ".cursor/mcp.json";
    }
  else if (strcmp (client, "goose") == 0)
    {
      if (asprintf (&text,
                    "extensions:\n  agentd:\n    type: stdio\n    name: agentd\n    enabled: true\n"
                    "    cmd: %s\n    args: [\"--socket\", \"%s\", \"mcp\"]\n    timeout: 300\n",
                    self, sock)
          < 0)
        text = NULL;
    }
  else
    {
      fprintf (stderr, "deploy mcp install: --client `%s`: use claude, cursor or goose\n", client);
      return 2;
    }
  if (text == NULL)
    return 1;
  puts (text);
  int ret = 0;
  if (write && file == NULL)
    fprintf (stderr, "deploy mcp install: add the above to ~/.config/goose/config.yaml\n");
  else if (write)
    {
      if (strchr (file, '/'))
        mkdir (".cursor", 0755);
      FILE *f = fopen (file, "wx");
      if (f == NULL)
        {
          fprintf (stderr, "deploy mcp install: %s: %s (not overwritten)\n", file, strerror (errno));
          ret = 1;
        }
      else
        {
          fprintf (f, "%s\n", text);
          fclose (f);
          fprintf (stderr, "deploy mcp install: wrote %s\n", file);
        }
    }
  free (text);
  return ret;
}

int
cmd_mcp (const char *socket, int argc, char **argv)
{
  if (argc > 1 && strcmp (argv[1], "install") == 0)
    return install (socket, argc - 1, argv + 1);
  if (argc > 1 && (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0))
    {
      puts ("Usage: deploy [--socket PATH] mcp            serve MCP on stdin/stdout\n"
            "       deploy [--socket PATH] mcp --listen 127.0.0.1:PORT [--token-file F]\n"
            "                                            serve MCP over Streamable HTTP at /mcp\n"
            "       deploy mcp install [--client C] [--write]\n\n"
            "An MCP server (protocol 2025-11-25; 2025-06-18 and 2025-03-26 accepted) whose\n"
            "tools deploy, list, inspect, read logs of and remove services through agentd.");
      return 0;
    }
  const char *listen = NULL, *token_file = NULL;
  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--listen") == 0 && i + 1 < argc)
        listen = argv[++i];
      else if (strcmp (argv[i], "--token-file") == 0 && i + 1 < argc)
        token_file = argv[++i];
      else
        {
          fprintf (stderr, "deploy mcp: unknown or incomplete argument `%s` (see `deploy mcp --help`)\n",
                   argv[i]);
          return 2;
        }
    }
  if (listen)
    return mcp_serve_http (socket, listen, token_file);
  if (token_file)
    {
      fprintf (stderr, "deploy mcp: --token-file goes with --listen\n");
      return 2;
    }
  return serve_stdio (socket);
}
