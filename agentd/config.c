#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/parse.h"
#include "../common/yamldoc.h"

static int
uid_item (struct yaml_doc *y, const yaml_event_t *ev, size_t n, void *ctx)
{
  struct agentd_config *c = ctx;
  int64_t v = 0;
  struct error perr = { 0 };
  if (parse_count ((const char *) ev->data.scalar.value, 4294967294LL, &v, &perr) < 0)
    return yaml_doc_fail (y, ev, "allow_uids: numeric uids, at most %d", AGENTD_CONFIG_MAX_UIDS);
  c->allow_uids[n] = (uid_t) v;
  c->n_allow_uids = (int) n + 1;
  return 0;
}

static int
uid_list (struct yaml_doc *y, struct agentd_config *c)
{
  return yaml_doc_expect (y, YAML_SEQUENCE_START_EVENT, "allow_uids", "a list of numeric uids") < 0
             ? -1
             : yaml_doc_items (y, "allow_uids", "numeric uids, at most 16", AGENTD_CONFIG_MAX_UIDS,
                               uid_item, c);
}

static int
on_key (struct yaml_doc *y, const char *key, const yaml_event_t *kev, void *ctx)
{
  struct agentd_config *c = ctx;
  struct
  {
    const char *key;
    char **slot;
  } strings[] = {
    { "root", &c->root },       { "socket", &c->socket },   { "subnet", &c->subnet },
    { "bridge", &c->bridge },   { "metrics", &c->metrics }, { "socket_group", &c->socket_group },
    { "control", &c->control }, { "node_id", &c->node_id }, { "token_file", &c->token_file },
  };
  for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++)
    if (strcmp (key, strings[i].key) == 0)
      return yaml_doc_string (y, key, strings[i].slot);
  if (strcmp (key, "network") == 0)
    {
      c->has_network = true;
      return yaml_doc_value (y, key, YV_BOOL, &c->network);
    }
  if (strcmp (key, "port_base") == 0)
    return yaml_doc_value (y, key, YV_PORT, &c->port_base);
  if (strcmp (key, "log_max") == 0)
    return yaml_doc_value (y, key, YV_SIZE, &c->log_max);
  if (strcmp (key, "journal_max") == 0)
    return yaml_doc_value (y, key, YV_SIZE, &c->journal_max);
  if (strcmp (key, "journal_sync") == 0)
    {
      c->has_journal_sync = true;
      return yaml_doc_value (y, key, YV_DURATION, &c->journal_sync);
    }
  if (strcmp (key, "allow_uids") == 0)
    return uid_list (y, c);
  return yaml_doc_fail (y, kev,
                        "unknown key `%s` (known: root, socket, subnet, bridge, network, "
                        "port_base, metrics, log_max, allow_uids, socket_group, journal_max, "
                        "journal_sync, control, node_id, token_file)",
                        key);
}

int
agentd_config_parse (const char *name, const char *text, size_t len, struct agentd_config *out,
                     struct error *err)
{
  memset (out, 0, sizeof *out);
  int r = yaml_doc_parse (name, text, len, 2, on_key, out, err);
  if (r < 0)
    agentd_config_clear (out);
  return r;
}

int
agentd_config_load (const char *path, struct agentd_config *out, struct error *err)
{
  memset (out, 0, sizeof *out);
  int r = yaml_doc_load (path, false, 2, on_key, out, err);
  if (r < 0)
    agentd_config_clear (out);
  return r;
}

void
agentd_config_clear (struct agentd_config *c)
{
  free (c->root);
  free (c->socket);
  free (c->subnet);
  free (c->bridge);
  free (c->metrics);
  free (c->socket_group);
  free (c->control);
  free (c->node_id);
  free (c->token_file);
  memset (c, 0, sizeof *c);
}
