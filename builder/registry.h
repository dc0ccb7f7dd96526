/* A client of the OCI distribution API on libcurl's multi interface:
 * manifests, and blobs fetched in parallel into the caller's sockets (the
 * unpackers read the other ends, so layers unpack while they download).
 * Bearer token challenges and basic auth; retries with backoff on 5xx and
 * resets, resuming with Range; redirects never carry credentials to
 * another host; plain http only for loopback or when asked. */
#ifndef BUILDER_REGISTRY_H
#define BUILDER_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"
#include "manifest.h"

struct registry_ref
{
  char host[256];      /* host[:port] */
  char repo[256];
  char reference[160]; /* tag or "sha256:..." */
  bool by_digest;
};

/* "HOST[:PORT]/REPO[:TAG|@sha256:...]"; the tag defaults to latest. */
int registry_ref_parse (const char *s, struct registry_ref *out, struct error *err);

struct registry_progress
{
  uint64_t bytes_done, bytes_total;
  size_t blobs_done, blobs_total;
};

struct registry_opts
{
  const char *username; /* basic auth, also sent to a token realm */
  const char *password;
  bool insecure;        /* allow plain http to a non-loopback host */
  long timeout_s;       /* connect timeout, and no byte for this long */
  int max_tries;        /* per request */
  void (*progress) (void *ctx, const struct registry_progress *p);
  void *progress_ctx;
};

struct registry;

int registry_open (const struct registry_ref *ref, const struct registry_opts *opts,
                   struct registry **out, struct error *err);
void registry_close (struct registry *r);

/* GET /v2/<repo>/<kind>/<ref> (kind "manifests", with the OCI and Docker
 * Accept types, or "blobs") into memory. */
int registry_get (struct registry *r, const char *kind, const char *ref, size_t max, char **body,
                  size_t *len, struct error *err);

struct blob_fetch
{
  struct descriptor desc;
  int fd;           /* written to (a socket: no SIGPIPE), closed when done */
  /* Filled in by registry_fetch_blobs. */
  uint64_t written;
  uint64_t skip;    /* a server that ignored Range: bytes to drop */
  int tries;
  double retry_at;
  bool active, done, failed;
  void *handle;
  struct error err;
};

/* Fetch all blobs in parallel; each fd is closed when its blob is complete
 * or has failed for good. The first failure is returned in err. */
int registry_fetch_blobs (struct registry *r, struct blob_fetch *f, size_t n, struct error *err);

#endif
