/* OCI (and Docker schema 2) index, manifest and config documents, parsed
 * with jansson and checked before use. */
#ifndef BUILDER_MANIFEST_H
#define BUILDER_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"
#include "digest.h"

#define MANIFEST_MAX_BYTES (4 << 20)

struct descriptor
{
  char media_type[128];
  struct digest digest;
  int64_t size;
};

enum doc_kind
{
  DOC_INDEX,
  DOC_MANIFEST,
};

struct manifest
{
  struct descriptor config;
  struct descriptor *layers;
  size_t n_layers;
};

struct image_config
{
  char **env;        /* NULL-terminated, or NULL */
  char **entrypoint;
  char **cmd;
  char *workdir;
  char *user;
  struct digest *diff_ids;
  size_t n_diff_ids;
};

/* Index or manifest, by mediaType (or shape when it is absent); media_type
 * (may be NULL) gets the declared type, or the OCI one for the kind. */
int doc_kind (const char *json, size_t len, const char *what, enum doc_kind *out,
              char media_type[128], struct error *err);
/* The manifest for os/arch in an image index. */
int index_pick_platform (const char *json, size_t len, const char *what, const char *os,
                         const char *arch, struct descriptor *out, struct error *err);
int manifest_parse (const char *json, size_t len, const char *what, struct manifest *out,
                    struct error *err);
int config_parse (const char *json, size_t len, const char *what, struct image_config *out,
                  struct error *err);
void manifest_clear (struct manifest *m);
void config_clear (struct image_config *c);

/* This machine's architecture in OCI terms ("amd64", "arm64", ...). */
const char *oci_arch (void);

#endif
