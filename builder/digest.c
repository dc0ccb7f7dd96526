#include "digest.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

int
digest_parse (const char *s, struct digest *out, struct error *err)
{
  if (strncmp (s, "sha256:", 7) != 0)
    return error_setx (err, EINVAL, "digest `%.80s`: only sha256 digests are supported", s);
  const char *hex = s + 7;
  if (strlen (hex) != 64 || strspn (hex, "0123456789abcdef") != 64)
    return error_setx (err, EINVAL, "digest `%.80s`: expected 64 lowercase hex digits", s);
  memcpy (out->hex, hex, 65);
  return 0;
}

const char *
digest_str (const struct digest *d, char *buf)
{
  snprintf (buf, DIGEST_STR_MAX, "sha256:%s", d->hex);
  return buf;
}

const char *
digest_what (const char *kind, const struct digest *d, char *buf)
{
  snprintf (buf, DIGEST_WHAT_MAX, "%.8s sha256:%s", kind, d->hex);
  return buf;
}

int
digest_equal (const struct digest *a, const struct digest *b)
{
  return memcmp (a->hex, b->hex, 64) == 0;
}

/* struct sha256 is an EVP_MD_CTX behind an opaque name. */
struct sha256 *
sha256_new (void)
{
  EVP_MD_CTX *ctx = EVP_MD_CTX_new ();
  if (ctx == NULL || EVP_DigestInit_ex (ctx, EVP_sha256 (), NULL) != 1)
    {
      EVP_MD_CTX_free (ctx);
      return NULL;
    }
  return (struct sha256 *) ctx;
}

void
sha256_update (struct sha256 *h, const void *data, size_t len)
{
  EVP_DigestUpdate ((EVP_MD_CTX *) h, data, len);
}

void
sha256_final (struct sha256 *h, struct digest *out)
{
  unsigned char md[32];
  unsigned int n = 0;
  EVP_DigestFinal_ex ((EVP_MD_CTX *) h, md, &n);
  for (unsigned i = 0; i < 32; i++)
    snprintf (out->hex + 2 * i, 3, "%02x", md[i]);
}

void
sha256_free (struct sha256 *h)
{
  EVP_MD_CTX_free ((EVP_MD_CTX *) h);
}

int
sha256_of (const void *data, size_t len, struct digest *out)
{
  struct sha256 *h = sha256_new ();
  if (h == NULL)
    return -1;
  sha256_update (h, data, len);
  sha256_final (h, out);
  sha256_free (h);
  return 0;
}
