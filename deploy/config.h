/* deploy.yaml: the per-directory defaults for `deploy up` (README.md,
 * "deploy.yaml"). Parsed with libyaml, strictly: unknown keys, wrong types,
 * aliases and deep nesting are errors naming the line and column. */
#ifndef DEPLOY_CONFIG_H
#define DEPLOY_CONFIG_H

#include <stdint.h>

#include "../common/error.h"

#define CONFIG_MAX_ITEMS 256

struct deploy_config
{
  char *project, *env, *service, *image, *restart;
  uint64_t port, memory, cpu_millis, pids, ttl_seconds;
  char *command[CONFIG_MAX_ITEMS + 1]; /* NULL-terminated */
  char *envv[CONFIG_MAX_ITEMS + 1];    /* K=V, NULL-terminated */
};

/* Parse text (of length len) named `name` in messages. */
int deploy_config_parse (const char *name, const char *text, size_t len, struct deploy_config *out,
                  struct error *err);
/* Read and parse path; a missing file is an empty config (returns 0). */
int deploy_config_load (const char *path, struct deploy_config *out, struct error *err);
void deploy_config_clear (struct deploy_config *c);

#endif
