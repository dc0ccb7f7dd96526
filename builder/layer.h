/* One layer tarball into a directory in overlayfs form, safely: every path
 * is resolved inside the layer root without following symlinks, so a
 * hostile layer cannot write outside its directory. Whiteouts `.wh.NAME`
 * become 0/0 character devices and `.wh..wh..opq` the directory's
 * trusted.overlay.opaque=y, whatever their order in the tar. */
#ifndef BUILDER_LAYER_H
#define BUILDER_LAYER_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"
#include "digest.h"

struct layer_limits
{
  uint64_t max_bytes;   /* expanded tar stream */
  uint64_t max_entries;
};

/* A hard link whose target is not in this layer: made a copy of the file
 * from a lower layer once those are unpacked (layer_link_from_lowers). */
struct layer_link
{
  char *path;
  char *target;
};

struct layer_unpacked
{
  struct digest diff_id; /* sha256 of the expanded tar stream */
  uint64_t tar_bytes;
  uint64_t entries;
  struct layer_link *links;
  size_t n_links;
};

/* Unpack the blob read from fd (gzip, zstd or plain tar by magic; fd is
 * taken) into dirfd, an empty directory. `what` names the layer in errors.
 * When expect_diff_id is given, a mismatch is an error. With tee, the
 * compressed bytes are also copied out and hashed as they are read. */
struct decomp_tee;
int layer_unpack (int fd, const char *what, int dirfd, const struct layer_limits *limits,
                  const struct digest *expect_diff_id, struct decomp_tee *tee,
                  struct layer_unpacked *out, struct error *err);

/* Resolve out->links against the lower layers' directories (the layer just
 * below first). */
int layer_link_from_lowers (int dirfd, const char *what, const struct layer_unpacked *u,
                            const int *lower_dirfds, size_t n_lowers, struct error *err);

void layer_unpacked_clear (struct layer_unpacked *u);

/* Split a tar path into a clean relative path: "./a//b/" -> "a/b". Rejects
 * absolute paths and ".." components; "" is the layer root ("/", "./"). */
int layer_clean_path (const char *in, char *out, size_t cap, struct error *err);

#endif
