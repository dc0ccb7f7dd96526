#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "../common/cleanup.h"
#include "../common/parse.h"

#define CONFIG_MAX_BYTES (256 * 1024)
#define CONFIG_MAX_DEPTH 2 /* the document mapping, then env or command */

struct parser
{
  yaml_parser_t p;
  const char *name;
  struct error *err;
  int depth;
};

static int __attribute__ ((format (printf, 3, 4)))
fail_at (struct parser *ps, const yaml_event_t *ev, const char *fmt, ...)
{
  error_setx (ps->err, EINVAL, "%s: line %zu column %zu: ", ps->name, ev->start_mark.line + 1,
              ev->start_mark.column + 1);
  size_t n = strlen (ps->err->msg);
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (ps->err->msg + n, sizeof ps->err->msg - n, fmt, ap);
  va_end (ap);
  return -1;
}

/* The next event, refusing aliases and anchors (no alias bombs), and
 * nesting beyond what the schema has. */
static int
next (struct parser *ps, yaml_event_t *ev)
{
  if (!yaml_parser_parse (&ps->p, ev))
    return error_setx (ps->err, EINVAL, "%s: line %zu column %zu: %s", ps->name,
                       ps->p.problem_mark.line + 1, ps->p.problem_mark.column + 1,
                       ps->p.problem ? ps->p.problem : "not valid YAML");
  if (ev->type == YAML_ALIAS_EVENT)
    {
      fail_at (ps, ev, "%s", "aliases are not allowed in deploy.yaml");
      yaml_event_delete (ev);
      return -1;
    }
  if ((ev->type == YAML_SCALAR_EVENT && ev->data.scalar.anchor)
      || (ev->type == YAML_MAPPING_START_EVENT && ev->data.mapping_start.anchor)
      || (ev->type == YAML_SEQUENCE_START_EVENT && ev->data.sequence_start.anchor))
    {
      fail_at (ps, ev, "%s", "anchors are not allowed in deploy.yaml");
      yaml_event_delete (ev);
      return -1;
    }
  if (ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT)
    {
      if (++ps->depth > CONFIG_MAX_DEPTH)
        {
          fail_at (ps, ev, "%s", "nested too deeply for deploy.yaml's schema");
          yaml_event_delete (ev);
          return -1;
        }
    }
  else if (ev->type == YAML_MAPPING_END_EVENT || ev->type == YAML_SEQUENCE_END_EVENT)
    ps->depth--;
  return 0;
}

static int
scalar (struct parser *ps, const char *key, char **out)
{
  yaml_event_t ev;
  if (next (ps, &ev) < 0)
    return -1;
  if (ev.type != YAML_SCALAR_EVENT)
    {
      fail_at (ps, &ev, "%s: expected a single value", key);
      yaml_event_delete (&ev);
      return -1;
    }
  free (*out);
  *out = strdup ((const char *) ev.data.scalar.value);
  yaml_event_delete (&ev);
  return *out ? 0 : error_set (ps->err, ENOMEM, "%s", ps->name);
}

enum value_kind
{
  V_PORT,
  V_PIDS,
  V_SIZE,
  V_CPUS,
  V_DURATION,
};

static int
parse_value (enum value_kind k, const char *s, uint64_t *out, struct error *err)
{
  int64_t v = 0;
  int r = -1;
  switch (k)
    {
    case V_PORT: r = parse_count (s, 65535, &v, err); break;
    case V_PIDS: r = parse_count (s, 4194304, &v, err); break;
    case V_SIZE: r = parse_size (s, &v, err); break;
    case V_CPUS: r = parse_cpus (s, &v, err); break;
    case V_DURATION: return parse_duration (s, out, err);
    }
  if (r == 0)
    *out = (uint64_t) v;
  return r;
}

/* A scalar for a typed key, checked by its kind; messages carry the place. */
static int
typed (struct parser *ps, const char *key, enum value_kind kind, uint64_t *out)
{
  yaml_event_t ev;
  if (next (ps, &ev) < 0)
    return -1;
  int r = 0;
  struct error perr = { 0 };
  if (ev.type != YAML_SCALAR_EVENT)
    r = fail_at (ps, &ev, "%s: expected a single value", key);
  else if (parse_value (kind, (const char *) ev.data.scalar.value, out, &perr) < 0)
    {
      char what[ERROR_MSG_MAX + 64];
      snprintf (what, sizeof what, "%s: %s", key, perr.msg);
      r = fail_at (ps, &ev, "%s", what);
    }
  yaml_event_delete (&ev);
  return r;
}

static int
command_list (struct parser *ps, struct deploy_config *c)
{
  yaml_event_t ev;
  if (next (ps, &ev) < 0)
    return -1;
  if (ev.type == YAML_SCALAR_EVENT)
    {
      /* A plain string runs through the shell. */
      c->command[0] = strdup ("/bin/sh");
      c->command[1] = strdup ("-c");
      c->command[2] = strdup ((const char *) ev.data.scalar.value);
      yaml_event_delete (&ev);
      return 0;
    }
  if (ev.type != YAML_SEQUENCE_START_EVENT)
    {
      fail_at (ps, &ev, "%s", "command: expected a list of strings or one string");
      yaml_event_delete (&ev);
      return -1;
    }
  yaml_event_delete (&ev);
  for (size_t n = 0;; n++)
    {
      if (next (ps, &ev) < 0)
        return -1;
      if (ev.type == YAML_SEQUENCE_END_EVENT)
        {
          yaml_event_delete (&ev);
          return 0;
        }
      if (ev.type != YAML_SCALAR_EVENT || n == CONFIG_MAX_ITEMS)
        {
          fail_at (ps, &ev, "%s", n == CONFIG_MAX_ITEMS ? "command: too many items" : "command: items must be strings");
          yaml_event_delete (&ev);
          return -1;
        }
      c->command[n] = strdup ((const char *) ev.data.scalar.value);
      yaml_event_delete (&ev);
    }
}

static int
env_map (struct parser *ps, struct deploy_config *c)
{
  yaml_event_t ev;
  if (next (ps, &ev) < 0)
    return -1;
  if (ev.type != YAML_MAPPING_START_EVENT)
    {
      fail_at (ps, &ev, "%s", "env: expected a mapping of NAME: value");
      yaml_event_delete (&ev);
      return -1;
    }
  yaml_event_delete (&ev);
  for (size_t n = 0;; n++)
    {
      if (next (ps, &ev) < 0)
        return -1;
      if (ev.type == YAML_MAPPING_END_EVENT)
        {
          yaml_event_delete (&ev);
          return 0;
        }
      const char *k = ev.type == YAML_SCALAR_EVENT ? (const char *) ev.data.scalar.value : "";
      if (ev.type != YAML_SCALAR_EVENT || k[0] == '\0' || strchr (k, '=') || n == CONFIG_MAX_ITEMS)
        {
          fail_at (ps, &ev, "%s", "env: names must be non-empty strings without '='");
          yaml_event_delete (&ev);
          return -1;
        }
      char *key = strdup (k);
      yaml_event_delete (&ev);
      char *value = NULL;
      if (scalar (ps, "env value", &value) < 0)
        {
          free (key);
          return -1;
        }
      if (asprintf (&c->envv[n], "%s=%s", key, value) < 0)
        c->envv[n] = NULL;
      free (key);
      free (value);
    }
}

static int
document (struct parser *ps, struct deploy_config *c)
{
  yaml_event_t ev;
  /* stream start, document start (or an empty stream) */
  for (;;)
    {
      if (next (ps, &ev) < 0)
        return -1;
      yaml_event_type_t t = ev.type;
      if (t == YAML_STREAM_END_EVENT)
        {
          yaml_event_delete (&ev);
          return 0;
        }
      if (t == YAML_MAPPING_START_EVENT)
        {
          yaml_event_delete (&ev);
          break;
        }
      if (t != YAML_STREAM_START_EVENT && t != YAML_DOCUMENT_START_EVENT)
        {
          fail_at (ps, &ev, "%s", "expected a mapping of keys (project, service, image, ...)");
          yaml_event_delete (&ev);
          return -1;
        }
      yaml_event_delete (&ev);
    }
  for (;;)
    {
      if (next (ps, &ev) < 0)
        return -1;
      if (ev.type == YAML_MAPPING_END_EVENT)
        {
          yaml_event_delete (&ev);
          break;
        }
      if (ev.type != YAML_SCALAR_EVENT)
        {
          fail_at (ps, &ev, "%s", "keys must be plain strings");
          yaml_event_delete (&ev);
          return -1;
        }
      char key[64];
      snprintf (key, sizeof key, "%s", (const char *) ev.data.scalar.value);
      int r;
      if (strcmp (key, "project") == 0)
        r = scalar (ps, key, &c->project);
      else if (strcmp (key, "environment") == 0)
        r = scalar (ps, key, &c->env);
      else if (strcmp (key, "service") == 0)
        r = scalar (ps, key, &c->service);
      else if (strcmp (key, "image") == 0)
        r = scalar (ps, key, &c->image);
      else if (strcmp (key, "restart") == 0)
        r = scalar (ps, key, &c->restart);
      else if (strcmp (key, "port") == 0)
        r = typed (ps, key, V_PORT, &c->port);
      else if (strcmp (key, "memory") == 0)
        r = typed (ps, key, V_SIZE, &c->memory);
      else if (strcmp (key, "cpus") == 0)
        r = typed (ps, key, V_CPUS, &c->cpu_millis);
      else if (strcmp (key, "pids") == 0)
        r = typed (ps, key, V_PIDS, &c->pids);
      else if (strcmp (key, "ttl") == 0)
        r = typed (ps, key, V_DURATION, &c->ttl_seconds);
      else if (strcmp (key, "command") == 0)
        r = command_list (ps, c);
      else if (strcmp (key, "env") == 0)
        r = env_map (ps, c);
      else
        r = fail_at (ps, &ev, "unknown key `%s` (known: project, environment, service, image, "
                              "command, env, port, memory, cpus, pids, restart, ttl)", key);
      yaml_event_delete (&ev);
      if (r < 0)
        return -1;
    }
  /* One document only. */
  for (int i = 0; i < 2; i++)
    {
      if (next (ps, &ev) < 0)
        return -1;
      bool ok = ev.type == (i == 0 ? YAML_DOCUMENT_END_EVENT : YAML_STREAM_END_EVENT);
      if (!ok)
        fail_at (ps, &ev, "%s", "only one YAML document is allowed");
      yaml_event_delete (&ev);
      if (!ok)
        return -1;
    }
  return 0;
}

int
deploy_config_parse (const char *name, const char *text, size_t len, struct deploy_config *out,
              struct error *err)
{
  memset (out, 0, sizeof *out);
  if (len > CONFIG_MAX_BYTES)
    return error_setx (err, EFBIG, "%s: larger than %d bytes", name, CONFIG_MAX_BYTES);
  struct parser ps = { .name = name, .err = err };
  if (!yaml_parser_initialize (&ps.p))
    return error_set (err, ENOMEM, "%s: YAML parser", name);
  yaml_parser_set_input_string (&ps.p, (const unsigned char *) text, len);
  int r = document (&ps, out);
  yaml_parser_delete (&ps.p);
  if (r < 0)
    deploy_config_clear (out);
  return r;
}

int
deploy_config_load (const char *path, struct deploy_config *out, struct error *err)
{
  memset (out, 0, sizeof *out);
  cleanup_close int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? 0 : error_set (err, errno, "open `%s`", path);
  struct stat st;
  if (fstat (fd, &st) < 0)
    return error_set (err, errno, "stat `%s`", path);
  if (st.st_size > CONFIG_MAX_BYTES)
    return error_setx (err, EFBIG, "%s: larger than %d bytes", path, CONFIG_MAX_BYTES);
  cleanup_free char *buf = malloc ((size_t) st.st_size + 1);
  if (buf == NULL)
    return error_set (err, ENOMEM, "read `%s`", path);
  ssize_t n = read (fd, buf, (size_t) st.st_size);
  if (n < 0)
    return error_set (err, errno, "read `%s`", path);
  return deploy_config_parse (path, buf, (size_t) n, out, err);
}

void
deploy_config_clear (struct deploy_config *c)
{
  free (c->project);
  free (c->env);
  free (c->service);
  free (c->image);
  free (c->restart);
  for (size_t i = 0; i < CONFIG_MAX_ITEMS; i++)
    {
      free (c->command[i]);
      free (c->envv[i]);
    }
  memset (c, 0, sizeof *c);
}
