/* A layer blob as a stream of tar bytes: gzip (ISA-L), zstd (libzstd) or
 * plain, chosen by the blob's magic bytes (media types lie), hashed as it
 * streams (the diff-id) and capped in expanded size (bombs). Inflating runs
 * in its own thread, one chunk ahead of the reader, so that decompression
 * and file writing overlap. */
#ifndef BUILDER_DECOMPRESS_H
#define BUILDER_DECOMPRESS_H

#include <stdint.h>
#include <sys/types.h>

#include "../common/error.h"
#include "digest.h"

enum compression
{
  COMPRESSION_NONE,
  COMPRESSION_GZIP,
  COMPRESSION_ZSTD,
};

/* From the first bytes of a blob. */
enum compression compression_detect (const unsigned char *head, size_t len);

struct decomp;

/* Optionally, every compressed byte read is also hashed and written to fd:
 * one read of a blob both fills the store and unpacks it. */
struct decomp_tee
{
  int fd;
  struct sha256 *hash;
  uint64_t bytes;
};

/* Takes ownership of fd. `what` names the blob in errors. */
int decomp_open (int fd, const char *what, uint64_t max_out, struct decomp_tee *tee,
                 struct decomp **out, struct error *err);
/* The next bytes of the expanded stream, without a copy: *data points into
 * the decompressor's current chunk, valid until the next call. Returns 0 at
 * the end, -1 with err set. */
ssize_t decomp_next (struct decomp *d, const void **data, struct error *err);
/* Read to the end (whatever the tar reader left), then the digest and size
 * of the whole expanded stream. */
int decomp_finish (struct decomp *d, struct digest *digest, uint64_t *size,
                   struct error *err);
void decomp_free (struct decomp *d);

#endif
