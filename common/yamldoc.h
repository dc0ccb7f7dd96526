/* Strict YAML documents for the configuration files (deploy.yaml,
 * agentd.yaml), over libyaml's event parser: one mapping of known keys;
 * anchors and aliases refused (no alias bombs), nesting bounded, size
 * bounded, and every error names the file, line and column. */
#ifndef COMMON_YAMLDOC_H
#define COMMON_YAMLDOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "error.h"

#define YAML_DOC_MAX_BYTES (256 * 1024)

struct yaml_doc
{
  yaml_parser_t p;
  const char *name;
  struct error *err;
  int depth, max_depth;
};

enum yaml_value
{
  YV_PORT,     /* 1-65535 */
  YV_PIDS,     /* 1-4194304 */
  YV_SIZE,     /* 256M, 1G, ... */
  YV_CPUS,     /* 0.5 -> 500 millicores */
  YV_DURATION, /* 90s, 30m, 2h, 7d -> seconds */
  YV_BOOL,     /* true/false, yes/no, on/off -> 1/0 */
};

/* Called for each key of the top mapping; reads the value with the
 * helpers below. kev is the key's event, for errors that point at it. */
typedef int (*yaml_key_fn) (struct yaml_doc *y, const char *key, const yaml_event_t *kev,
                            void *ctx);

/* Parse text (named `name` in errors): an empty document is fine. */
int yaml_doc_parse (const char *name, const char *text, size_t len, int max_depth,
                    yaml_key_fn key, void *ctx, struct error *err);
/* Read a whole config file (at most YAML_DOC_MAX_BYTES) and parse it as
 * yaml_doc_parse does; a file that does not exist is an empty document
 * when missing_ok. */
int yaml_doc_load (const char *path, bool missing_ok, int max_depth, yaml_key_fn key, void *ctx,
                   struct error *err);

int yaml_doc_next (struct yaml_doc *y, yaml_event_t *ev);
/* The next event must be of type t (a list's or mapping's start); else an
 * error "KEY: expected WHAT". */
int yaml_doc_expect (struct yaml_doc *y, yaml_event_type_t t, const char *key, const char *what);
int yaml_doc_fail (struct yaml_doc *y, const yaml_event_t *ev, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
/* The items of a list whose start event was read: item() gets each one
 * that is a scalar (the n-th, from 0; it says what is wrong itself); an
 * item that is not a scalar, or more than max of them, is an error
 * "KEY: what". */
typedef int (*yaml_item_fn) (struct yaml_doc *y, const yaml_event_t *ev, size_t n, void *ctx);
int yaml_doc_items (struct yaml_doc *y, const char *key, const char *what, size_t max,
                    yaml_item_fn item, void *ctx);
/* The value of key as one string (replacing *out). */
int yaml_doc_string (struct yaml_doc *y, const char *key, char **out);
int yaml_doc_value (struct yaml_doc *y, const char *key, enum yaml_value kind, uint64_t *out);

#endif
