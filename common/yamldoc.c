#include "yamldoc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleanup.h"
#include "parse.h"

static const char *
base_name (const char *path)
{
  const char *slash = strrchr (path, '/');
  return slash ? slash + 1 : path;
}

int
yaml_doc_fail (struct yaml_doc *y, const yaml_event_t *ev, const char *fmt, ...)
{
  error_setx (y->err, EINVAL, "%s: line %zu column %zu: ", y->name, ev->start_mark.line + 1,
              ev->start_mark.column + 1);
  size_t n = strlen (y->err->msg);
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (y->err->msg + n, sizeof y->err->msg - n, fmt, ap);
  va_end (ap);
  return -1;
}

static bool
has_anchor (const yaml_event_t *ev)
{
  return (ev->type == YAML_SCALAR_EVENT && ev->data.scalar.anchor)
         || (ev->type == YAML_MAPPING_START_EVENT && ev->data.mapping_start.anchor)
         || (ev->type == YAML_SEQUENCE_START_EVENT && ev->data.sequence_start.anchor);
}

/* The next event, refusing aliases and anchors, and nesting beyond what
 * the schema has. On error the event is already deleted. */
int
yaml_doc_next (struct yaml_doc *y, yaml_event_t *ev)
{
  if (!yaml_parser_parse (&y->p, ev))
    return error_setx (y->err, EINVAL, "%s: line %zu column %zu: %s", y->name,
                       y->p.problem_mark.line + 1, y->p.problem_mark.column + 1,
                       y->p.problem ? y->p.problem : "not valid YAML");
  const char *why = NULL;
  if (ev->type == YAML_ALIAS_EVENT)
    why = "aliases are not allowed in";
  else if (has_anchor (ev))
    why = "anchors are not allowed in";
  else if (ev->type == YAML_MAPPING_START_EVENT || ev->type == YAML_SEQUENCE_START_EVENT)
    {
      if (++y->depth > y->max_depth)
        why = "nested too deeply for the schema of";
    }
  else if (ev->type == YAML_MAPPING_END_EVENT || ev->type == YAML_SEQUENCE_END_EVENT)
    y->depth--;
  if (why == NULL)
    return 0;
  yaml_doc_fail (y, ev, "%s %s", why, base_name (y->name));
  yaml_event_delete (ev);
  return -1;
}

int
yaml_doc_expect (struct yaml_doc *y, yaml_event_type_t t, const char *key, const char *what)
{
  yaml_event_t ev;
  if (yaml_doc_next (y, &ev) < 0)
    return -1;
  int r = ev.type == t ? 0 : yaml_doc_fail (y, &ev, "%s: expected %s", key, what);
  yaml_event_delete (&ev);
  return r;
}

int
yaml_doc_items (struct yaml_doc *y, const char *key, const char *what, size_t max,
                yaml_item_fn item, void *ctx)
{
  for (size_t n = 0;; n++)
    {
      yaml_event_t ev;
      if (yaml_doc_next (y, &ev) < 0)
        return -1;
      int r;
      if (ev.type == YAML_SEQUENCE_END_EVENT)
        {
          yaml_event_delete (&ev);
          return 0;
        }
      if (ev.type != YAML_SCALAR_EVENT || n == max)
        r = yaml_doc_fail (y, &ev, "%s: %s", key, what);
      else
        r = item (y, &ev, n, ctx);
      yaml_event_delete (&ev);
      if (r < 0)
        return -1;
    }
}

int
yaml_doc_string (struct yaml_doc *y, const char *key, char **out)
{
  yaml_event_t ev;
  if (yaml_doc_next (y, &ev) < 0)
    return -1;
  if (ev.type != YAML_SCALAR_EVENT)
    {
      yaml_doc_fail (y, &ev, "%s: expected a single value", key);
      yaml_event_delete (&ev);
      return -1;
    }
  free (*out);
  *out = strdup ((const char *) ev.data.scalar.value);
  yaml_event_delete (&ev);
  return *out ? 0 : error_set (y->err, ENOMEM, "%s", y->name);
}

static int
parse_bool (const char *s, uint64_t *out, struct error *err)
{
  const char *yes[] = { "true", "yes", "on" }, *no[] = { "false", "no", "off" };
  for (int i = 0; i < 3; i++)
    if (strcasecmp (s, yes[i]) == 0 || strcasecmp (s, no[i]) == 0)
      {
        *out = strcasecmp (s, yes[i]) == 0;
        return 0;
      }
  return error_setx (err, EINVAL, "`%s`: expected true or false", s);
}

static int
parse_value (enum yaml_value k, const char *s, uint64_t *out, struct error *err)
{
  int64_t v = 0;
  int r = -1;
  switch (k)
    {
    case YV_PORT: r = parse_count (s, 65535, &v, err); break;
    case YV_PIDS: r = parse_count (s, 4194304, &v, err); break;
    case YV_SIZE: r = parse_size (s, &v, err); break;
    case YV_CPUS: r = parse_cpus (s, &v, err); break;
    case YV_DURATION: return parse_duration (s, out, err);
    case YV_BOOL: return parse_bool (s, out, err);
    }
  if (r == 0)
    *out = (uint64_t) v;
  return r;
}

int
yaml_doc_value (struct yaml_doc *y, const char *key, enum yaml_value kind, uint64_t *out)
{
  yaml_event_t ev;
  if (yaml_doc_next (y, &ev) < 0)
    return -1;
  int r = 0;
  struct error perr = { 0 };
  if (ev.type != YAML_SCALAR_EVENT)
    r = yaml_doc_fail (y, &ev, "%s: expected a single value", key);
  else if (parse_value (kind, (const char *) ev.data.scalar.value, out, &perr) < 0)
    r = yaml_doc_fail (y, &ev, "%s: %s", key, perr.msg);
  yaml_event_delete (&ev);
  return r;
}

/* stream start, document start, the top mapping's keys, one document. */
static int
document (struct yaml_doc *y, yaml_key_fn key, void *ctx)
{
  yaml_event_t ev;
  for (;;)
    {
      if (yaml_doc_next (y, &ev) < 0)
        return -1;
      yaml_event_type_t t = ev.type;
      int r = 0;
      if (t != YAML_STREAM_END_EVENT && t != YAML_MAPPING_START_EVENT
          && t != YAML_STREAM_START_EVENT && t != YAML_DOCUMENT_START_EVENT)
        r = yaml_doc_fail (y, &ev, "%s", "expected a mapping of keys");
      yaml_event_delete (&ev);
      if (r < 0 || t == YAML_STREAM_END_EVENT)
        return r;
      if (t == YAML_MAPPING_START_EVENT)
        break;
    }
  for (;;)
    {
      if (yaml_doc_next (y, &ev) < 0)
        return -1;
      if (ev.type == YAML_MAPPING_END_EVENT)
        {
          yaml_event_delete (&ev);
          break;
        }
      if (ev.type != YAML_SCALAR_EVENT)
        {
          yaml_doc_fail (y, &ev, "%s", "keys must be plain strings");
          yaml_event_delete (&ev);
          return -1;
        }
      char k[64];
      snprintf (k, sizeof k, "%s", (const char *) ev.data.scalar.value);
      int r = key (y, k, &ev, ctx);
      yaml_event_delete (&ev);
      if (r < 0)
        return -1;
    }
  for (int i = 0; i < 2; i++)
    {
      if (yaml_doc_next (y, &ev) < 0)
        return -1;
      bool ok = ev.type == (i == 0 ? YAML_DOCUMENT_END_EVENT : YAML_STREAM_END_EVENT);
      if (!ok)
        yaml_doc_fail (y, &ev, "%s", "only one YAML document is allowed");
      yaml_event_delete (&ev);
      if (!ok)
        return -1;
    }
  return 0;
}

int
yaml_doc_parse (const char *name, const char *text, size_t len, int max_depth, yaml_key_fn key,
                void *ctx, struct error *err)
{
  if (len > YAML_DOC_MAX_BYTES)
    return error_setx (err, EFBIG, "%s: larger than %d bytes", name, YAML_DOC_MAX_BYTES);
  struct yaml_doc y = { .name = name, .err = err, .max_depth = max_depth };
  if (!yaml_parser_initialize (&y.p))
    return error_set (err, ENOMEM, "%s: YAML parser", name);
  yaml_parser_set_input_string (&y.p, (const unsigned char *) text, len);
  int r = document (&y, key, ctx);
  yaml_parser_delete (&y.p);
  return r;
}

static int
read_doc (const char *path, bool missing_ok, char **text, size_t *len, struct error *err)
{
  *text = NULL;
  *len = 0;
  cleanup_close int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT && missing_ok ? 0 : error_set (err, errno, "open `%s`", path);
  struct stat st;
  if (fstat (fd, &st) < 0)
    return error_set (err, errno, "stat `%s`", path);
  if (st.st_size > YAML_DOC_MAX_BYTES)
    return error_setx (err, EFBIG, "%s: larger than %d bytes", path, YAML_DOC_MAX_BYTES);
  char *buf = malloc ((size_t) st.st_size + 1);
  if (buf == NULL)
    return error_set (err, ENOMEM, "read `%s`", path);
  ssize_t n = read (fd, buf, (size_t) st.st_size);
  if (n < 0)
    {
      int e = errno;
      free (buf);
      return error_set (err, e, "read `%s`", path);
    }
  *text = buf;
  *len = (size_t) n;
  return 0;
}

int
yaml_doc_load (const char *path, bool missing_ok, int max_depth, yaml_key_fn key, void *ctx,
               struct error *err)
{
  char *text;
  size_t len;
  if (read_doc (path, missing_ok, &text, &len, err) < 0)
    return -1;
  if (text == NULL)
    return 0;
  int r = yaml_doc_parse (path, text, len, max_depth, key, ctx, err);
  free (text);
  return r;
}
