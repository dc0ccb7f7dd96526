#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/yamldoc.h"

#define CONFIG_MAX_DEPTH 2 /* the document mapping, then env or command */

static int
command_item (struct yaml_doc *y, const yaml_event_t *ev, size_t n, void *ctx)
{
  (void) y;
  struct deploy_config *c = ctx;
  c->command[n] = strdup ((const char *) ev->data.scalar.value);
  return 0;
}

static int
command_list (struct yaml_doc *y, struct deploy_config *c)
{
  yaml_event_t ev;
  if (yaml_doc_next (y, &ev) < 0)
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
      yaml_doc_fail (y, &ev, "%s", "command: expected a list of strings or one string");
      yaml_event_delete (&ev);
      return -1;
    }
  yaml_event_delete (&ev);
  return yaml_doc_items (y, "command", "items must be strings, at most 256", CONFIG_MAX_ITEMS,
                         command_item, c);
}

static int
env_map (struct yaml_doc *y, struct deploy_config *c)
{
  yaml_event_t ev;
  if (yaml_doc_expect (y, YAML_MAPPING_START_EVENT, "env", "a mapping of NAME: value") < 0)
    return -1;
  for (size_t n = 0;; n++)
    {
      if (yaml_doc_next (y, &ev) < 0)
        return -1;
      if (ev.type == YAML_MAPPING_END_EVENT)
        {
          yaml_event_delete (&ev);
          return 0;
        }
      const char *k = ev.type == YAML_SCALAR_EVENT ? (const char *) ev.data.scalar.value : "";
      if (ev.type != YAML_SCALAR_EVENT || k[0] == '\0' || strchr (k, '=') || n == CONFIG_MAX_ITEMS)
        {
          yaml_doc_fail (y, &ev, "%s", "env: names must be non-empty strings without '='");
          yaml_event_delete (&ev);
          return -1;
        }
      char *key = strdup (k);
      yaml_event_delete (&ev);
      char *value = NULL;
      if (yaml_doc_string (y, "env value", &value) < 0)
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
on_key (struct yaml_doc *y, const char *key, const yaml_event_t *kev, void *ctx)
{
  struct deploy_config *c = ctx;
  if (strcmp (key, "project") == 0)
    return yaml_doc_string (y, key, &c->project);
  if (strcmp (key, "environment") == 0)
    return yaml_doc_string (y, key, &c->env);
  if (strcmp (key, "service") == 0)
    return yaml_doc_string (y, key, &c->service);
  if (strcmp (key, "image") == 0)
    return yaml_doc_string (y, key, &c->image);
  if (strcmp (key, "restart") == 0)
    return yaml_doc_string (y, key, &c->restart);
  if (strcmp (key, "port") == 0)
    return yaml_doc_value (y, key, YV_PORT, &c->port);
  if (strcmp (key, "memory") == 0)
    return yaml_doc_value (y, key, YV_SIZE, &c->memory);
  if (strcmp (key, "cpus") == 0)
    return yaml_doc_value (y, key, YV_CPUS, &c->cpu_millis);
  if (strcmp (key, "pids") == 0)
    return yaml_doc_value (y, key, YV_PIDS, &c->pids);
  if (strcmp (key, "ttl") == 0)
    return yaml_doc_value (y, key, YV_DURATION, &c->ttl_seconds);
  if (strcmp (key, "command") == 0)
    return command_list (y, c);
  if (strcmp (key, "env") == 0)
    return env_map (y, c);
  return yaml_doc_fail (y, kev,
                        "unknown key `%s` (known: project, environment, service, image, "
                        "command, env, port, memory, cpus, pids, restart, ttl)",
                        key);
}

int
deploy_config_parse (const char *name, const char *text, size_t len, struct deploy_config *out,
                     struct error *err)
{
  memset (out, 0, sizeof *out);
  int r = yaml_doc_parse (name, text, len, CONFIG_MAX_DEPTH, on_key, out, err);
  if (r < 0)
    deploy_config_clear (out);
  return r;
}

int
deploy_config_load (const char *path, struct deploy_config *out, struct error *err)
{
  memset (out, 0, sizeof *out);
  int r = yaml_doc_load (path, true, CONFIG_MAX_DEPTH, on_key, out, err);
  if (r < 0)
    deploy_config_clear (out);
  return r;
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
