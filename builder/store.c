#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/fsutil.h"

static int
open_dir_at (int dirfd, const char *name, struct error *err)
{
  if (mkdirat (dirfd, name, 0700) < 0 && errno != EEXIST)
    return error_set (err, errno, "create `%s`", name);
  int fd = openat (dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return error_set (err, errno, "open `%s`", name);
  return fd;
}

int
store_open (const char *root, struct store **out, struct error *err)
{
  struct store *s = calloc (1, sizeof *s);
  if (s == NULL)
    return error_set (err, ENOMEM, "store");
  s->rootfd = s->blobsfd = s->layersfd = s->lockfd = -1;
  snprintf (s->root, sizeof s->root, "%s", root);
  cleanup_close int blobs = -1;
  if (mkdir_p (root, 0711, err) < 0
      || (s->rootfd = open (root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0
      || (blobs = open_dir_at (s->rootfd, "blobs", err)) < 0
      || (s->blobsfd = open_dir_at (blobs, "sha256", err)) < 0
      || (s->layersfd = open_dir_at (s->rootfd, "layers", err)) < 0)
    {
      if (s->rootfd < 0 && err->msg[0] == '\0')
        error_set (err, errno, "open `%s`", root);
      error_prefix (err, "image store `%s`", root);
      store_close (s);
      return -1;
    }
  chmod (s->root, 0711); /* a user namespace's root must reach layers/ */
  fchmod (s->layersfd, 0711);
  s->lockfd = openat (s->rootfd, ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (faccessat (s->rootfd, "oci-layout", F_OK, 0) < 0)
    {
      static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
      if (write_file_atomic (root, "oci-layout", layout, sizeof layout - 1, 0644, err) < 0)
        {
          store_close (s);
          return -1;
        }
    }
  *out = s;
  return 0;
}

void
store_close (struct store *s)
{
  if (s == NULL)
    return;
  int fds[] = { s->rootfd, s->blobsfd, s->layersfd, s->lockfd };
  for (size_t i = 0; i < 4; i++)
    if (fds[i] >= 0)
      close (fds[i]);
  free (s);
}

int
store_lock (struct store *s, struct error *err)
{
  if (s->lockfd < 0 || flock (s->lockfd, LOCK_EX) < 0)
    return error_set (err, errno, "lock image store `%s`", s->root);
  return 0;
}

void
store_unlock (struct store *s)
{
  if (s->lockfd >= 0)
    flock (s->lockfd, LOCK_UN);
}

bool
store_has_blob (struct store *s, const struct digest *d)
{
  return faccessat (s->blobsfd, d->hex, F_OK, 0) == 0;
}

int
store_blob_begin (struct store *s, const struct digest *d, char *tmp, size_t cap, struct error *err)
{
  snprintf (tmp, cap, ".tmp-%s-%d", d->hex, (int) gettid ());
  int fd = openat (s->blobsfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    {
      char dstr[DIGEST_STR_MAX];
      return error_set (err, errno, "blob %s: create temp file", digest_str (d, dstr));
    }
  return fd;
}

int
store_blob_commit (struct store *s, const char *tmp, const struct digest *d, struct error *err)
{
  if (renameat (s->blobsfd, tmp, s->blobsfd, d->hex) < 0)
    {
      char dstr[DIGEST_STR_MAX];
      int e = errno;
      unlinkat (s->blobsfd, tmp, 0);
      return error_set (err, e, "blob %s: rename into place", digest_str (d, dstr));
    }
  return 0;
}

void
store_blob_abort (struct store *s, const char *tmp)
{
  unlinkat (s->blobsfd, tmp, 0);
}

int
blob_verify (const struct digest *want, int64_t want_size, const struct digest *got, uint64_t got_size,
             struct error *err)
{
  char wstr[DIGEST_STR_MAX], gstr[DIGEST_STR_MAX];
  digest_str (want, wstr);
  if (want_size >= 0 && got_size != (uint64_t) want_size)
    return error_setx (err, EINVAL, "blob %s: %llu bytes, its descriptor says %lld (truncated?)", wstr,
                       (unsigned long long) got_size, (long long) want_size);
  if (!digest_equal (got, want))
    return error_setx (err, EINVAL, "blob %s: digest mismatch, the content is %s", wstr, digest_str (got, gstr));
  return 0;
}

int
store_put_blob (struct store *s, int fd, const struct digest *d, int64_t size, struct error *err)
{
  char dstr[DIGEST_STR_MAX], tmp[96];
  digest_str (d, dstr);
  cleanup_close int out = store_blob_begin (s, d, tmp, sizeof tmp, err);
  if (out < 0)
    return -1;
  struct sha256 *h = sha256_new ();
  cleanup_free char *buf = malloc (1 << 20);
  uint64_t total = 0;
  int ret = -1;
  if (h == NULL || buf == NULL)
    {
      error_set (err, ENOMEM, "blob %s", dstr);
      goto done;
    }
  for (;;)
    {
      ssize_t n = read (fd, buf, 1 << 20);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          error_set (err, errno, "blob %s: read", dstr);
          goto done;
        }
      if (n == 0)
        break;
      total += n;
      if (size >= 0 && total > (uint64_t) size)
        {
          error_setx (err, EINVAL, "blob %s: larger than the %lld bytes its descriptor says", dstr, (long long) size);
          goto done;
        }
      sha256_update (h, buf, n);
      for (ssize_t off = 0; off < n;)
        {
          ssize_t w = write (out, buf + off, n - off);
          if (w < 0)
            {
              error_set (err, errno, "blob %s: write", dstr);
              goto done;
            }
          off += w;
        }
    }
  struct digest got;
  sha256_final (h, &got);
  if (blob_verify (d, size, &got, total, err) < 0)
    goto done;
  ret = store_blob_commit (s, tmp, d, err);
done:
  if (h)
    sha256_free (h);
  if (ret < 0)
    store_blob_abort (s, tmp);
  return ret;
}

int
store_put_data (struct store *s, const void *data, size_t len, const struct digest *d, struct error *err)
{
  if (store_has_blob (s, d))
    return 0;
  char tmp[96];
  cleanup_close int fd = store_blob_begin (s, d, tmp, sizeof tmp, err);
  if (fd < 0)
    return -1;
  struct digest got;
  int r = sha256_of (data, len, &got) < 0 ? error_set (err, ENOMEM, "blob") : blob_verify (d, len, &got, len, err);
  if (r == 0 && write (fd, data, len) != (ssize_t) len)
    r = error_set (err, errno, "blob: write");
  if (r < 0)
    {
      store_blob_abort (s, tmp);
      return -1;
    }
  return store_blob_commit (s, tmp, d, err);
}

int
store_open_blob (struct store *s, const struct digest *d, struct error *err)
{
  int fd = openat (s->blobsfd, d->hex, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    {
      char dstr[DIGEST_STR_MAX];
      return error_set (err, errno, "blob %s", digest_str (d, dstr));
    }
  return fd;
}

int
store_read_blob (struct store *s, const struct digest *d, int64_t size, size_t max, char **data,
                 size_t *len, struct error *err)
{
  char dstr[DIGEST_STR_MAX];
  digest_str (d, dstr);
  cleanup_close int fd = store_open_blob (s, d, err);
  if (fd < 0)
    return -1;
  struct stat st;
  if (fstat (fd, &st) < 0)
    return error_set (err, errno, "blob %s", dstr);
  if ((size_t) st.st_size > max || (size >= 0 && st.st_size != size))
    return error_setx (err, EINVAL, "blob %s: unexpected size %lld", dstr, (long long) st.st_size);
  cleanup_free char *buf = malloc (st.st_size + 1);
  if (buf == NULL)
    return error_set (err, ENOMEM, "blob %s", dstr);
  if (pread (fd, buf, st.st_size, 0) != st.st_size)
    return error_setx (err, EIO, "blob %s: short read", dstr);
  buf[st.st_size] = '\0';
  struct digest got;
  if (sha256_of (buf, st.st_size, &got) < 0)
    return error_set (err, ENOMEM, "blob %s", dstr);
  if (!digest_equal (&got, d))
    return error_setx (err, EINVAL, "blob %s: stored content does not match its digest", dstr);
  *len = st.st_size;
  *data = steal_pointer (&buf);
  return 0;
}

json_t *
store_load_index (struct store *s, struct error *err)
{
  cleanup_close int fd = openat (s->rootfd, "index.json", O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT)
    return json_pack ("{s:i, s:[]}", "schemaVersion", 2, "manifests");
  if (fd < 0)
    {
      error_set (err, errno, "image store `%s`: index.json", s->root);
      return NULL;
    }
  json_error_t je;
  json_t *index = json_loadfd (fd, 0, &je);
  if (index == NULL || !json_is_array (json_object_get (index, "manifests")))
    {
      error_setx (err, EINVAL, "image store `%s`: index.json line %d: %s", s->root, je.line,
                  index ? "no manifests array" : je.text);
      json_decref (index);
      return NULL;
    }
  return index;
}

int
store_save_index (struct store *s, json_t *index, struct error *err)
{
  cleanup_free char *text = json_dumps (index, JSON_INDENT (2) | JSON_SORT_KEYS);
  if (text == NULL)
    return error_set (err, ENOMEM, "index.json");
  return write_file_atomic (s->root, "index.json", text, strlen (text), 0644, err);
}

json_t *
store_find_ref (json_t *index, const char *ref)
{
  size_t i;
  json_t *m;
  json_array_foreach (json_object_get (index, "manifests"), i, m)
    {
      const char *name = json_string_value (json_object_get (json_object_get (m, "annotations"),
                                                             REF_NAME_ANNOTATION));
      const char *digest = json_string_value (json_object_get (m, "digest"));
      if ((name && strcmp (name, ref) == 0) || (digest && strcmp (digest, ref) == 0))
        return m;
    }
  return NULL;
}

bool
store_has_layer (struct store *s, const struct digest *diff_id)
{
  return faccessat (s->layersfd, diff_id->hex, F_OK, 0) == 0;
}

const char *
store_layer_path (struct store *s, const struct digest *diff_id, char *buf, size_t cap)
{
  snprintf (buf, cap, "%s/layers/%s", s->root, diff_id->hex);
  return buf;
}
