#include "messages.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum field_kind
{
  K_U64,
  K_STR,
  K_STR_LIST, /* char **, NULL-terminated */
  K_MSG_LIST, /* T *items at offset, size_t count at count_offset */
};

struct field_desc
{
  uint32_t number;
  enum field_kind kind;
  const char *name;
  size_t offset;
  size_t count_offset;
  const struct proto_msg_desc *sub;
};

struct proto_msg_desc
{
  uint8_t type; /* 0 for messages only ever nested */
  const char *name;
  size_t size;
  const struct field_desc *fields;
  size_t n_fields;
};

#define F(num, kind, st, member) { num, kind, #member, offsetof (st, member), 0, NULL }
#define FL(num, st, member, count, subdesc)                                                  \
  { num, K_MSG_LIST, #member, offsetof (st, member), offsetof (st, count), &subdesc }
#define DESC(t, nm, st, tbl) { t, nm, sizeof (st), tbl, sizeof tbl / sizeof tbl[0] }

static const struct field_desc error_fields[] = {
  F (1, K_U64, struct msg_error, code),
  F (2, K_STR, struct msg_error, message),
};

static const struct field_desc deploy_fields[] = {
  F (1, K_STR, struct msg_deploy, project),
  F (2, K_STR, struct msg_deploy, env),
  F (3, K_STR, struct msg_deploy, service),
  F (4, K_STR, struct msg_deploy, image),
  F (5, K_STR_LIST, struct msg_deploy, argv),
  F (6, K_STR_LIST, struct msg_deploy, envv),
  F (7, K_U64, struct msg_deploy, port),
  F (8, K_U64, struct msg_deploy, memory_bytes),
  F (9, K_U64, struct msg_deploy, cpu_millis),
  F (10, K_U64, struct msg_deploy, pids),
  F (11, K_STR, struct msg_deploy, restart),
  F (12, K_U64, struct msg_deploy, ttl_seconds),
  F (13, K_U64, struct msg_deploy, insecure_registry),
  F (14, K_U64, struct msg_deploy, health_timeout_s),
};

static const struct field_desc progress_fields[] = {
  F (1, K_STR, struct msg_progress, phase),
  F (2, K_STR, struct msg_progress, message),
  F (3, K_U64, struct msg_progress, done),
  F (4, K_U64, struct msg_progress, total),
};

static const struct field_desc deploy_result_fields[] = {
  F (1, K_STR, struct msg_deploy_result, id),
  F (2, K_U64, struct msg_deploy_result, version),
  F (3, K_STR, struct msg_deploy_result, status),
  F (4, K_STR, struct msg_deploy_result, address),
  F (5, K_STR, struct msg_deploy_result, url),
  F (6, K_U64, struct msg_deploy_result, pull_us),
  F (7, K_U64, struct msg_deploy_result, start_us),
  F (8, K_U64, struct msg_deploy_result, ready_us),
  F (9, K_U64, struct msg_deploy_result, total_us),
  F (10, K_U64, struct msg_deploy_result, exec_mono_ns),
};

static const struct field_desc deployment_info_fields[] = {
  F (1, K_STR, struct msg_deployment_info, id),
  F (2, K_STR, struct msg_deployment_info, project),
  F (3, K_STR, struct msg_deployment_info, env),
  F (4, K_STR, struct msg_deployment_info, service),
  F (5, K_STR, struct msg_deployment_info, image),
  F (6, K_STR, struct msg_deployment_info, state),
  F (7, K_U64, struct msg_deployment_info, version),
  F (8, K_U64, struct msg_deployment_info, pid),
  F (9, K_U64, struct msg_deployment_info, restarts),
  F (10, K_STR, struct msg_deployment_info, address),
  F (11, K_STR, struct msg_deployment_info, url),
  F (12, K_STR, struct msg_deployment_info, last_exit),
  F (13, K_U64, struct msg_deployment_info, started_at),
  F (14, K_U64, struct msg_deployment_info, port),
  F (15, K_U64, struct msg_deployment_info, host_port),
  F (16, K_STR, struct msg_deployment_info, restart),
};
static const struct proto_msg_desc deployment_info_desc
    = DESC (0, "DEPLOYMENT_INFO", struct msg_deployment_info, deployment_info_fields);

static const struct field_desc list_fields[] = {
  F (1, K_STR, struct msg_list, project),
  F (2, K_STR, struct msg_list, env),
  F (3, K_STR, struct msg_list, service),
};

static const struct field_desc list_result_fields[] = {
  FL (1, struct msg_list_result, deployments, n_deployments, deployment_info_desc),
};

static const struct field_desc logs_fields[] = {
  F (1, K_STR, struct msg_logs, project), F (2, K_STR, struct msg_logs, env),
  F (3, K_STR, struct msg_logs, service), F (4, K_U64, struct msg_logs, tail),
  F (5, K_U64, struct msg_logs, follow),
};

static const struct field_desc log_line_fields[] = {
  F (1, K_U64, struct msg_log_line, ts_us),
  F (2, K_U64, struct msg_log_line, stream),
  F (3, K_STR, struct msg_log_line, text),
};
static const struct proto_msg_desc log_line_desc
    = DESC (0, "LOG_LINE", struct msg_log_line, log_line_fields);

static const struct field_desc log_lines_fields[] = {
  FL (1, struct msg_log_lines, lines, n_lines, log_line_desc),
};

static const struct field_desc down_fields[] = {
  F (1, K_STR, struct msg_down, project),
  F (2, K_STR, struct msg_down, env),
  F (3, K_STR, struct msg_down, service),
};

static const struct field_desc down_result_fields[] = {
  F (1, K_STR_LIST, struct msg_down_result, removed),
};

static const struct field_desc env_info_fields[] = {
  F (1, K_STR, struct msg_env_info, project),
  F (2, K_STR, struct msg_env_info, env),
  F (3, K_U64, struct msg_env_info, services),
  F (4, K_U64, struct msg_env_info, production),
  F (5, K_U64, struct msg_env_info, ttl_seconds),
  F (6, K_U64, struct msg_env_info, expires_at),
};
static const struct proto_msg_desc env_info_desc
    = DESC (0, "ENV_INFO", struct msg_env_info, env_info_fields);

static const struct field_desc env_list_fields[] = {
  F (1, K_STR, struct msg_env_list, project),
};

static const struct field_desc env_list_result_fields[] = {
  FL (1, struct msg_env_list_result, envs, n_envs, env_info_desc),
};

static const struct field_desc status_fields[] = {
  F (1, K_U64, struct msg_status, unused),
};

static const struct field_desc status_result_fields[] = {
  F (1, K_STR, struct msg_status_result, version),
  F (2, K_STR, struct msg_status_result, root),
  F (3, K_STR, struct msg_status_result, cgroup),
  F (4, K_STR, struct msg_status_result, bridge),
  F (5, K_STR, struct msg_status_result, subnet),
  F (6, K_U64, struct msg_status_result, pid),
  F (7, K_U64, struct msg_status_result, uptime_s),
  F (8, K_U64, struct msg_status_result, deployments),
  F (9, K_U64, struct msg_status_result, running),
};

static const struct field_desc usage_fields[] = {
  F (1, K_STR, struct msg_usage, project), F (2, K_STR, struct msg_usage, env),
  F (3, K_STR, struct msg_usage, service), F (4, K_U64, struct msg_usage, since_s),
};

static const struct field_desc usage_row_fields[] = {
  F (1, K_STR, struct msg_usage_row, deployment),
  F (2, K_U64, struct msg_usage_row, seconds),
  F (3, K_U64, struct msg_usage_row, cpu_us),
  F (4, K_U64, struct msg_usage_row, memory_byte_seconds),
  F (5, K_U64, struct msg_usage_row, net_rx),
  F (6, K_U64, struct msg_usage_row, net_tx),
  F (7, K_U64, struct msg_usage_row, cost_nusd),
  F (8, K_U64, struct msg_usage_row, disk_byte_seconds),
};
static const struct proto_msg_desc usage_row_desc
    = DESC (0, "USAGE_ROW", struct msg_usage_row, usage_row_fields);

static const struct field_desc usage_result_fields[] = {
  FL (1, struct msg_usage_result, rows, n_rows, usage_row_desc),
  F (2, K_STR, struct msg_usage_result, source),
};

static const struct field_desc usage_sample_fields[] = {
  F (1, K_STR, struct msg_usage_sample, id),
  F (2, K_U64, struct msg_usage_sample, version),
  F (3, K_U64, struct msg_usage_sample, cpu_usec),
  F (4, K_U64, struct msg_usage_sample, memory_current),
  F (5, K_U64, struct msg_usage_sample, memory_peak),
  F (6, K_U64, struct msg_usage_sample, io_read),
  F (7, K_U64, struct msg_usage_sample, io_write),
  F (8, K_U64, struct msg_usage_sample, pids),
  F (9, K_U64, struct msg_usage_sample, net_rx),
  F (10, K_U64, struct msg_usage_sample, net_tx),
  F (11, K_U64, struct msg_usage_sample, disk_bytes),
  F (12, K_U64, struct msg_usage_sample, psi_cpu_us),
  F (13, K_U64, struct msg_usage_sample, psi_memory_us),
  F (14, K_U64, struct msg_usage_sample, psi_io_us),
};
static const struct proto_msg_desc usage_sample_desc
    = DESC (0, "USAGE_SAMPLE", struct msg_usage_sample, usage_sample_fields);

static const struct field_desc usage_record_fields[] = {
  F (1, K_U64, struct msg_usage_record, seq),
  F (2, K_U64, struct msg_usage_record, ts_ms),
  F (3, K_STR, struct msg_usage_record, boot_id),
  FL (4, struct msg_usage_record, samples, n_samples, usage_sample_desc),
};
static const struct proto_msg_desc usage_record_desc
    = DESC (0, "USAGE_RECORD", struct msg_usage_record, usage_record_fields);

static const struct field_desc hello_fields[] = {
  F (1, K_STR, struct msg_hello, node_id),
  F (2, K_STR, struct msg_hello, boot_id),
  F (3, K_STR, struct msg_hello, token),
  F (4, K_U64, struct msg_hello, version),
  F (5, K_U64, struct msg_hello, next_seq),
};

static const struct field_desc hello_result_fields[] = {
  F (1, K_U64, struct msg_hello_result, acked_seq),
};

static const struct field_desc usage_batch_fields[] = {
  FL (1, struct msg_usage_batch, records, n_records, usage_record_desc),
  F (2, K_U64, struct msg_usage_batch, lost_before),
};

static const struct field_desc usage_ack_fields[] = {
  F (1, K_U64, struct msg_usage_ack, acked_seq),
};

static const struct field_desc stop_project_fields[] = {
  F (1, K_STR, struct msg_stop_project, project),
  F (2, K_STR, struct msg_stop_project, reason),
};

static const struct field_desc resume_project_fields[] = {
  F (1, K_STR, struct msg_resume_project, project),
};

static const struct field_desc stop_project_result_fields[] = {
  F (1, K_STR, struct msg_stop_project_result, project),
  F (2, K_STR_LIST, struct msg_stop_project_result, stopped),
};

static const struct proto_msg_desc descs[] = {
  DESC (MSG_ERROR, "ERROR", struct msg_error, error_fields),
  DESC (MSG_DEPLOY, "DEPLOY", struct msg_deploy, deploy_fields),
  DESC (MSG_PROGRESS, "PROGRESS", struct msg_progress, progress_fields),
  DESC (MSG_DEPLOY_RESULT, "DEPLOY_RESULT", struct msg_deploy_result, deploy_result_fields),
  DESC (MSG_LIST, "LIST", struct msg_list, list_fields),
  DESC (MSG_LIST_RESULT, "LIST_RESULT", struct msg_list_result, list_result_fields),
  DESC (MSG_LOGS, "LOGS", struct msg_logs, logs_fields),
  DESC (MSG_LOG_LINES, "LOG_LINES", struct msg_log_lines, log_lines_fields),
  DESC (MSG_DOWN, "DOWN", struct msg_down, down_fields),
  DESC (MSG_DOWN_RESULT, "DOWN_RESULT", struct msg_down_result, down_result_fields),
  DESC (MSG_ENV_LIST, "ENV_LIST", struct msg_env_list, env_list_fields),
  DESC (MSG_ENV_LIST_RESULT, "ENV_LIST_RESULT", struct msg_env_list_result,
        env_list_result_fields),
  DESC (MSG_STATUS, "STATUS", struct msg_status, status_fields),
  DESC (MSG_STATUS_RESULT, "STATUS_RESULT", struct msg_status_result, status_result_fields),
  DESC (MSG_USAGE, "USAGE", struct msg_usage, usage_fields),
  DESC (MSG_USAGE_RESULT, "USAGE_RESULT", struct msg_usage_result, usage_result_fields),
  DESC (MSG_HELLO, "HELLO", struct msg_hello, hello_fields),
  DESC (MSG_HELLO_RESULT, "HELLO_RESULT", struct msg_hello_result, hello_result_fields),
  DESC (MSG_USAGE_BATCH, "USAGE_BATCH", struct msg_usage_batch, usage_batch_fields),
  DESC (MSG_USAGE_ACK, "USAGE_ACK", struct msg_usage_ack, usage_ack_fields),
  DESC (MSG_STOP_PROJECT, "STOP_PROJECT", struct msg_stop_project, stop_project_fields),
  DESC (MSG_STOP_PROJECT_RESULT, "STOP_PROJECT_RESULT", struct msg_stop_project_result,
        stop_project_result_fields),
  DESC (MSG_RESUME_PROJECT, "RESUME_PROJECT", struct msg_resume_project, resume_project_fields),
};

const struct proto_msg_desc *
proto_msg_desc (uint8_t type)
{
  for (size_t i = 0; i < sizeof descs / sizeof descs[0]; i++)
    if (descs[i].type == type)
      return &descs[i];
  return NULL;
}

const char *
proto_msg_name (uint8_t type)
{
  const struct proto_msg_desc *d = proto_msg_desc (type);
  return d ? d->name : "unknown";
}

#define AT(msg, f, T) ((T *) ((char *) (msg) + (f)->offset))

static void encode_fields (const struct proto_msg_desc *d, const void *msg, struct proto_buf *out);

static void
encode_field (const struct field_desc *f, const void *msg, struct proto_buf *out)
{
  switch (f->kind)
    {
    case K_U64:
      if (*AT (msg, f, const uint64_t))
        proto_put_varint (out, f->number, *AT (msg, f, const uint64_t));
      break;
    case K_STR:
      {
        const char *s = *AT (msg, f, char *const);
        if (s)
          proto_put_bytes (out, f->number, s, strlen (s));
        break;
      }
    case K_STR_LIST:
      for (char *const *s = *AT (msg, f, char **const); s && *s; s++)
        proto_put_bytes (out, f->number, *s, strlen (*s));
      break;
    case K_MSG_LIST:
      {
        const char *items = *AT (msg, f, char *const);
        size_t n = *(const size_t *) ((const char *) msg + f->count_offset);
        struct proto_buf sub = { 0 };
        for (size_t i = 0; i < n; i++)
          {
            proto_buf_reset (&sub);
            encode_fields (f->sub, items + i * f->sub->size, &sub);
            if (sub.oom)
              out->oom = true;
            proto_put_bytes (out, f->number, sub.data, sub.len);
          }
        proto_buf_free (&sub);
        break;
      }
    }
}

static void
encode_fields (const struct proto_msg_desc *d, const void *msg, struct proto_buf *out)
{
  for (size_t i = 0; i < d->n_fields; i++)
    encode_field (&d->fields[i], msg, out);
}

int
proto_encode (uint8_t type, const void *msg, struct proto_buf *out, struct error *err)
{
  const struct proto_msg_desc *d = proto_msg_desc (type);
  if (d == NULL)
    return error_setx (err, EINVAL, "encode: unknown message type 0x%02x", type);
  proto_buf_reset (out);
  encode_fields (d, msg, out);
  if (out->oom)
    return error_set (err, ENOMEM, "encode %s", d->name);
  if (out->len > PROTO_MAX_PAYLOAD)
    return error_setx (err, EMSGSIZE, "encode %s: %zu bytes exceed the frame limit", d->name,
                       out->len);
  return 0;
}

static void clear_fields (const struct proto_msg_desc *d, void *msg);

static int decode_fields (const struct proto_msg_desc *d, const uint8_t *p, size_t n, void *msg,
                          struct error *err);

static int
decode_string (const struct proto_msg_desc *d, const struct field_desc *fd,
               const struct proto_field *f, char **out, struct error *err)
{
  if (memchr (f->ptr, '\0', f->len))
    return error_setx (err, EBADMSG, "%s.%s: string holds a NUL byte", d->name, fd->name);
  *out = strndup ((const char *) f->ptr, f->len);
  if (*out == NULL)
    return error_set (err, ENOMEM, "%s.%s", d->name, fd->name);
  return 0;
}

#define MAX_LIST_ITEMS 65536

/* Room for item n and a terminator. Capacity doubles: it is reallocated
 * only when n is below 4 or a power of two, to hold 2n (at least 4) + 1. */
static void *
grow (void *items, size_t n, size_t elem)
{
  if (n > 4 && (n & (n - 1)) != 0)
    return items;
  size_t cap = n < 4 ? 4 : n * 2;
  return realloc (items, (cap + 1) * elem);
}

static int
decode_field (const struct proto_msg_desc *d, const struct field_desc *fd,
              const struct proto_field *f, void *msg, struct error *err)
{
  enum proto_wire want = fd->kind == K_U64 ? PROTO_WIRE_VARINT : PROTO_WIRE_BYTES;
  if (f->wire != want)
    return error_setx (err, EBADMSG, "%s.%s: wrong wire type %u", d->name, fd->name,
                       (unsigned) f->wire);
  switch (fd->kind)
    {
    case K_U64:
      *AT (msg, fd, uint64_t) = f->u64;
      return 0;
    case K_STR:
      {
        char **slot = AT (msg, fd, char *);
        free (*slot); /* the last occurrence wins */
        *slot = NULL;
        return decode_string (d, fd, f, slot, err);
      }
    case K_STR_LIST:
      {
        char ***list = AT (msg, fd, char **);
        size_t n = 0;
        while (*list && (*list)[n])
          n++;
        if (n == MAX_LIST_ITEMS)
          return error_setx (err, E2BIG, "%s.%s: more than %d items", d->name, fd->name,
                             MAX_LIST_ITEMS);
        char **g = grow (*list, n, sizeof (char *));
        if (g == NULL)
          return error_set (err, ENOMEM, "%s.%s", d->name, fd->name);
        *list = g;
        g[n] = NULL;
        g[n + 1] = NULL;
        return decode_string (d, fd, f, &g[n], err);
      }
    case K_MSG_LIST:
      {
        char **items = AT (msg, fd, char *);
        size_t *count = (size_t *) ((char *) msg + fd->count_offset);
        if (*count == MAX_LIST_ITEMS)
          return error_setx (err, E2BIG, "%s.%s: more than %d items", d->name, fd->name,
                             MAX_LIST_ITEMS);
        char *g = grow (*items, *count, fd->sub->size);
        if (g == NULL)
          return error_set (err, ENOMEM, "%s.%s", d->name, fd->name);
        *items = g;
        char *item = g + *count * fd->sub->size;
        memset (item, 0, fd->sub->size);
        (*count)++;
        if (decode_fields (fd->sub, f->ptr, f->len, item, err) < 0)
          return error_prefix (err, "%s.%s[%zu]", d->name, fd->name, *count - 1);
        return 0;
      }
    }
  return 0;
}

static int
decode_fields (const struct proto_msg_desc *d, const uint8_t *p, size_t n, void *msg,
               struct error *err)
{
  struct proto_reader r = { .p = p, .len = n };
  struct proto_field f;
  int rc;
  while ((rc = proto_next (&r, &f, err)) == 1)
    {
      const struct field_desc *fd = NULL;
      for (size_t i = 0; i < d->n_fields && fd == NULL; i++)
        if (d->fields[i].number == f.number)
          fd = &d->fields[i];
      if (fd == NULL)
        continue; /* a newer peer's field: skip it */
      if (decode_field (d, fd, &f, msg, err) < 0)
        return -1;
    }
  return rc < 0 ? error_prefix (err, "%s", d->name) : 0;
}

int
proto_decode (uint8_t type, const uint8_t *p, size_t n, void *msg, struct error *err)
{
  const struct proto_msg_desc *d = proto_msg_desc (type);
  if (d == NULL)
    return error_setx (err, EPROTO, "unknown message type 0x%02x", type);
  memset (msg, 0, d->size);
  if (decode_fields (d, p, n, msg, err) < 0)
    {
      clear_fields (d, msg);
      return -1;
    }
  return 0;
}

static void
clear_fields (const struct proto_msg_desc *d, void *msg)
{
  for (size_t i = 0; i < d->n_fields; i++)
    {
      const struct field_desc *f = &d->fields[i];
      switch (f->kind)
        {
        case K_U64:
          break;
        case K_STR:
          free (*AT (msg, f, char *));
          break;
        case K_STR_LIST:
          for (char **s = *AT (msg, f, char **); s && *s; s++)
            free (*s);
          free (*AT (msg, f, char **));
          break;
        case K_MSG_LIST:
          {
            char *items = *AT (msg, f, char *);
            size_t n = *(size_t *) ((char *) msg + f->count_offset);
            for (size_t k = 0; k < n; k++)
              clear_fields (f->sub, items + k * f->sub->size);
            free (items);
            break;
          }
        }
    }
  memset (msg, 0, d->size);
}

void
proto_msg_clear (uint8_t type, void *msg)
{
  const struct proto_msg_desc *d = proto_msg_desc (type);
  if (d)
    clear_fields (d, msg);
}
