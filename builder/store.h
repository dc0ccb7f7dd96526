/* The image store under agentd's root: an OCI image layout (oci-layout,
 * index.json, blobs/sha256/) plus the layer cache (layers/<diff-id>/).
 * Every blob is written to a temp file, verified against its digest and
 * size, then renamed into place; index.json is replaced atomically. */
#ifndef BUILDER_STORE_H
#define BUILDER_STORE_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "../common/error.h"
#include "digest.h"

#define REF_NAME_ANNOTATION "org.opencontainers.image.ref.name"

struct store
{
  char root[PATH_MAX];
  int rootfd;
  int blobsfd;  /* blobs/sha256 */
  int layersfd; /* layers */
  int lockfd;   /* flock'ed while index.json or the caches change */
};

int store_open (const char *root, struct store **out, struct error *err);
void store_close (struct store *s);
/* Exclusive lock around changes (import, pull, rm, gc). */
int store_lock (struct store *s, struct error *err);
void store_unlock (struct store *s);

bool store_has_blob (struct store *s, const struct digest *d);
/* A blob written by the caller: a temp file (name into tmp), then commit
 * (rename into place, once the caller verified it) or abort. */
int store_blob_begin (struct store *s, const struct digest *d, char *tmp, size_t cap,
                      struct error *err);
int store_blob_commit (struct store *s, const char *tmp, const struct digest *d, struct error *err);
void store_blob_abort (struct store *s, const char *tmp);
/* Check the digest and size of what streamed in against the descriptor's. */
int blob_verify (const struct digest *want, int64_t want_size, const struct digest *got,
                 uint64_t got_size, struct error *err);

/* Copy what fd yields into the store as blob d (size < 0: not known). */
int store_put_blob (struct store *s, int fd, const struct digest *d, int64_t size,
                    struct error *err);
/* Bytes in memory into the store as blob d, verified like any other. */
int store_put_data (struct store *s, const void *data, size_t len, const struct digest *d,
                    struct error *err);
/* A small blob (manifest, config) into memory, verified again on read. */
int store_read_blob (struct store *s, const struct digest *d, int64_t size, size_t max,
                     char **data, size_t *len, struct error *err);
int store_open_blob (struct store *s, const struct digest *d, struct error *err);

/* index.json: tags are its manifests' ref.name annotations. */
json_t *store_load_index (struct store *s, struct error *err);
int store_save_index (struct store *s, json_t *index, struct error *err);
/* Find the descriptor tagged ref, or whose digest is ref ("sha256:..."). */
json_t *store_find_ref (json_t *index, const char *ref);

bool store_has_layer (struct store *s, const struct digest *diff_id);
/* layers/<hex> as a path (for the overlay) into buf. */
const char *store_layer_path (struct store *s, const struct digest *diff_id, char *buf, size_t cap);

#endif
