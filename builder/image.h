/* Images in the store: import from an OCI layout or oci-archive, the
 * parallel unpack of their layers into the layer cache, the rootfs handed
 * to runtime/, removal and garbage collection. */
#ifndef BUILDER_IMAGE_H
#define BUILDER_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"
#include "layer.h"
#include "manifest.h"
#include "store.h"

struct image_stats
{
  size_t layers;          /* in the image */
  size_t layers_unpacked; /* newly unpacked (the rest were cached) */
  uint64_t bytes_unpacked;
};

/* Where layer blobs the store lacks come from (a layout, a registry). */
struct layer_source
{
  /* An fd to read blob d from; called before the unpack threads start. */
  int (*open) (void *ctx, const struct descriptor *d, struct error *err);
  /* Runs in the caller's thread while the unpackers read (a download). */
  int (*pump) (void *ctx, struct error *err);
  /* Give up: make every fd handed out reach its end. */
  void (*abort) (void *ctx);
  void *ctx;
};

/* Unpack the image's layers that the cache lacks, in parallel, each into a
 * temp dir renamed into place only once it is complete. A blob the store
 * lacks is read from the source and copied in by the same read. */
int image_unpack_layers (struct store *s, const struct layer_source *src, const struct manifest *m,
                         const struct image_config *c, const struct layer_limits *limits,
                         struct image_stats *stats, struct error *err);

/* Import every image of an OCI layout directory or oci-archive tar; tag
 * (when not NULL) replaces the layout's ref.name. */
int image_import (struct store *s, const char *path, const char *tag,
                  const struct layer_limits *limits, struct image_stats *stats,
                  struct error *err);

/* The manifest and config an index.json descriptor stands for (an index is
 * resolved to this platform's manifest). */
int image_load (struct store *s, json_t *desc, struct manifest *m, struct image_config *c,
                struct error *err);

struct image_rootfs
{
  char **lowers; /* layer directories, top first */
  size_t n_lowers;
  struct image_config config;
};

int image_rootfs (struct store *s, const char *ref, struct image_rootfs *out, struct error *err);
void image_rootfs_clear (struct image_rootfs *r);
/* "user[:group]" by number or by name in the image's /etc/passwd and
 * /etc/group (read inside the layers, never through their symlinks). */
int image_lookup_user (const struct image_rootfs *r, const char *spec, uid_t *uid, gid_t *gid,
                       struct error *err);

int image_remove (struct store *s, const char *ref, struct error *err);

struct registry_opts;
/* Pull REF ("host[:port]/repo[:tag|@digest]") from its registry: layers
 * download in parallel and unpack while they download; cached layers are
 * not downloaded again. The image is tagged REF. */
int image_pull (struct store *s, const char *ref, const struct registry_opts *opts,
                const struct layer_limits *limits, struct image_stats *stats, struct error *err);

struct gc_stats
{
  size_t blobs_removed;
  size_t layers_removed;
};
int image_gc (struct store *s, struct gc_stats *stats, struct error *err);

#endif
