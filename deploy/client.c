#include "client.h"


#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

const char *
client_socket_path (const char *given)
{
  if (given && given[0])
    return given;
  const char *env = getenv ("AGENTD_SOCKET");
  return env && env[0] ? env : PROTO_DEFAULT_SOCKET;
}

int
client_connect (struct client *c, const char *path, struct error *err)
{
  memset (c, 0, sizeof *c);
  c->path = path;
  struct sockaddr_un sa = { .sun_family = AF_UNIX };
  if (strlen (path) >= sizeof sa.sun_path)
    return error_setx (err, ENAMETOOLONG, "socket path `%s` is too long", path);
  strcpy (sa.sun_path, path);
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return error_set (err, errno, "socket");
  if (connect (fd, (struct sockaddr *) &sa, sizeof sa) < 0)
    {
      int e = errno;
      close (fd);
      return error_set (err, e, "cannot reach agentd at `%s` (is `agentd serve` running? --socket or AGENTD_SOCKET)", path);
    }
  proto_conn_init (&c->conn, fd);
  c->next_id = 1;
  return 0;
}

void
client_close (struct client *c)
{
  if (c->conn.fd >= 0)
    close (c->conn.fd);
  c->conn.fd = -1;
  proto_conn_free (&c->conn);
}

int
client_send (struct client *c, uint8_t type, const void *msg, uint32_t *id, struct error *err)
{
  struct proto_buf b = { 0 };
  *id = c->next_id++;
  int r = proto_encode (type, msg, &b, err);
  if (r == 0)
    r = proto_conn_queue (&c->conn, type, 0, *id, &b, err);
  proto_buf_free (&b);
  if (r == 0 && proto_conn_flush (&c->conn, err) < 0)
    {
      /* agentd may have refused us and closed: its reason is readable. */
      struct proto_frame f;
      struct msg_error e;
      struct error ignored;
      if (proto_conn_recv (&c->conn, &f, &ignored) == 1 && f.h.type == MSG_ERROR
          && proto_decode (MSG_ERROR, f.payload, f.h.length, &e, &ignored) == 0)
        {
          error_setx (err, (int) e.code, "%s", e.message ? e.message : "refused");
          proto_msg_clear (MSG_ERROR, &e);
          return -1;
        }
      r = error_prefix (err, "send to agentd");
    }
  return r;
}

int
client_recv (struct client *c, uint32_t id, uint8_t *type, union client_reply *msg, bool *more,
             struct error *err)
{
  for (;;)
    {
      struct proto_frame f;
      int r = proto_conn_recv (&c->conn, &f, err);
      if (r < 0)
        return error_prefix (err, "agentd");
      if (r == 0)
        return error_setx (err, ECONNRESET, "agentd closed the connection");
      if (f.h.request_id != id && f.h.request_id != 0)
        continue; /* not ours */
      if (proto_decode (f.h.type, f.payload, f.h.length, msg, err) < 0)
        return error_prefix (err, "agentd's reply");
      *type = f.h.type;
      *more = (f.h.flags & PROTO_F_MORE) != 0;
      if (f.h.type == MSG_ERROR)
        {
          error_setx (err, (int) msg->error.code, "%s", msg->error.message ? msg->error.message : "error");
          proto_msg_clear (MSG_ERROR, msg);
          return -1;
        }
      return 0;
    }
}

json_t *
client_deployment_json (const struct msg_deployment_info *i)
{
  return json_pack ("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:s}",
                    "id", i->id ?: "", "project", i->project ?: "", "environment", i->env ?: "",
                    "service", i->service ?: "", "image", i->image ?: "", "state", i->state ?: "",
                    "version", (json_int_t) i->version, "pid", (json_int_t) i->pid, "restarts",
                    (json_int_t) i->restarts, "address", i->address ?: "", "url", i->url ?: "",
                    "last_exit", i->last_exit ?: "", "started_at", (json_int_t) i->started_at,
                    "port", (json_int_t) i->port, "host_port", (json_int_t) i->host_port,
                    "restart_policy", i->restart ?: "");
}

json_t *
client_usage_json (const struct msg_usage_row *u, double *cost)
{
  double cpu = u->cpu_us / 1e6, gbs = u->memory_byte_seconds / 1e9;
  *cost = u->cost_nusd / 1e9;
  return json_pack ("{s:s, s:I, s:f, s:f, s:f, s:I, s:I, s:f}", "deployment", u->deployment ?: "",
                    "seconds", (json_int_t) u->seconds, "cpu_seconds", cpu, "memory_gb_seconds", gbs,
                    "storage_gb_seconds", u->disk_byte_seconds / 1e9, "net_rx_bytes",
                    (json_int_t) u->net_rx, "net_tx_bytes", (json_int_t) u->net_tx, "cost_usd", *cost);
}
