/* Content digests: "sha256:<64 lowercase hex>", checked before use, and
 * computed while data streams. */
#ifndef BUILDER_DIGEST_H
#define BUILDER_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

#define DIGEST_STR_MAX 72 /* "sha256:" + 64 hex + NUL */

struct digest
{
  char hex[65]; /* the 64 hex characters */
};

/* Accepts only sha256 with exactly 64 lowercase hex digits. */
int digest_parse (const char *s, struct digest *out, struct error *err);
/* "sha256:<hex>" into buf (DIGEST_STR_MAX). */
const char *digest_str (const struct digest *d, char *buf);
int digest_equal (const struct digest *a, const struct digest *b);
/* "KIND sha256:<hex>" into buf, for messages: "layer sha256:ab12...". */
#define DIGEST_WHAT_MAX (DIGEST_STR_MAX + 16)
const char *digest_what (const char *kind, const struct digest *d, char *buf);

struct sha256;
struct sha256 *sha256_new (void);
void sha256_update (struct sha256 *h, const void *data, size_t len);
void sha256_final (struct sha256 *h, struct digest *out);
void sha256_free (struct sha256 *h);
/* The digest of a buffer in one call; -1 when out of memory. */
int sha256_of (const void *data, size_t len, struct digest *out);

#endif
