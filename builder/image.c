#include "image.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/fsutil.h"
#include "decompress.h"
#include "registry.h"

/* ---- parallel layer unpack ---------------------------------------------- */

struct layer_job
{
  struct store *store;
  const struct descriptor *desc;
  const struct digest *diff_id;
  const struct layer_limits *limits;
  int fd;             /* the blob, from the source */
  bool copy;          /* the store lacks the blob: keep what is read */
  char blob_tmp[128]; /* the blob's temp file in the store, or "" */
  char tmp[128];      /* layers/<tmp>, "" when the layer was cached */
  int dirfd;
  struct layer_unpacked result;
  struct error err;
  int rc;
  pthread_t thread;
};

/* Unpack one layer; when the store lacks its blob, the same read copies
 * the blob into the store and checks its digest. */
static void *
layer_job_main (void *arg)
{
  struct layer_job *j = arg;
  pthread_setname_np (pthread_self (), "unpack");
  char what[DIGEST_WHAT_MAX];
  const struct digest *d = &j->desc->digest;
  digest_what ("layer", d, what);
  struct decomp_tee tee = { -1, NULL, 0 };
  int fd = steal_fd (&j->fd);
  if (j->copy
      && ((tee.fd = store_blob_begin (j->store, d, j->blob_tmp, sizeof j->blob_tmp, &j->err)) < 0
          || (tee.hash = sha256_new ()) == NULL))
    {
      close (fd);
      fd = -1;
    }
  j->rc = fd < 0 ? -1
                 : layer_unpack (fd, what, j->dirfd, j->limits, j->diff_id, tee.hash ? &tee : NULL,
                                 &j->result, &j->err);
  /* A blob that does not match its digest explains any unpack error. */
  if (tee.hash)
    {
      struct error mismatch = { 0 };
      struct digest got;
      sha256_final (tee.hash, &got);
      if (blob_verify (d, j->desc->size, &got, tee.bytes, &mismatch) < 0)
        {
          j->err = mismatch;
          j->rc = -1;
        }
    }
  if (tee.fd >= 0)
    close (tee.fd);
  if (tee.hash)
    sha256_free (tee.hash);
  return NULL;
}

/* While layers unpack, push what is already written to disk in the
 * background, so that the one sync that makes them complete finds little
 * left: it overlaps disk writes with inflating and file creation. */
struct flusher
{
  int fd;
  bool stop;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  pthread_t thread;
};

static void *
flusher_main (void *arg)
{
  struct flusher *f = arg;
  pthread_setname_np (pthread_self (), "flush");
  pthread_mutex_lock (&f->lock);
  while (!f->stop)
    {
      pthread_mutex_unlock (&f->lock);
      syncfs (f->fd);
      pthread_mutex_lock (&f->lock);
      struct timespec ts;
      clock_gettime (CLOCK_REALTIME, &ts);
      ts.tv_nsec += 50 * 1000000L;
      if (ts.tv_nsec >= 1000000000L)
        {
          ts.tv_sec++;
          ts.tv_nsec -= 1000000000L;
        }
      if (!f->stop)
        pthread_cond_timedwait (&f->cond, &f->lock, &ts);
    }
  pthread_mutex_unlock (&f->lock);
  return NULL;
}

static void
flusher_stop (struct flusher *f)
{
  pthread_mutex_lock (&f->lock);
  f->stop = true;
  pthread_cond_signal (&f->cond);
  pthread_mutex_unlock (&f->lock);
  pthread_join (f->thread, NULL);
}

static void
discard_tmp (struct store *s, struct layer_job *j)
{
  struct error ignored;
  if (j->blob_tmp[0])
    store_blob_abort (s, j->blob_tmp);
  j->blob_tmp[0] = '\0';
  if (j->dirfd >= 0)
    close (j->dirfd);
  j->dirfd = -1;
  if (j->tmp[0])
    remove_tree_at (s->layersfd, j->tmp, &ignored);
  j->tmp[0] = '\0';
  layer_unpacked_clear (&j->result);
}

int
image_unpack_layers (struct store *s, const struct layer_source *src, const struct manifest *m,
                     const struct image_config *c, const struct layer_limits *limits,
                     struct image_stats *stats, struct error *err)
{
  if (m->n_layers != c->n_diff_ids)
    return error_setx (err, EINVAL, "image: the manifest lists %zu layers, the config %zu diff_ids",
                       m->n_layers, c->n_diff_ids);
  size_t n = m->n_layers;
  struct layer_job *jobs = calloc (n ? n : 1, sizeof *jobs);
  if (jobs == NULL)
    return error_set (err, ENOMEM, "image");
  memset (stats, 0, sizeof *stats);
  stats->layers = n;
  int ret = -1;
  size_t started = 0;
  struct flusher flusher = { .fd = s->layersfd, .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
  bool flushing = false;
  for (size_t i = 0; i < n; i++)
    {
      struct layer_job *j = &jobs[i];
      j->store = s;
      j->desc = &m->layers[i];
      j->diff_id = &c->diff_ids[i];
      j->limits = limits;
      j->fd = -1;
      j->dirfd = -1;
      bool dup = false;
      for (size_t k = 0; k < i; k++)
        dup |= digest_equal (jobs[k].diff_id, j->diff_id);
      if (dup || store_has_layer (s, j->diff_id))
        continue;
      snprintf (j->tmp, sizeof j->tmp, ".tmp-%s-%d", j->diff_id->hex, (int) getpid ());
      if (mkdirat (s->layersfd, j->tmp, 0755) < 0
          || (j->dirfd = openat (s->layersfd, j->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        {
          error_set (err, errno, "layer cache: create `%s`", j->tmp);
          goto done;
        }
      j->copy = !store_has_blob (s, &j->desc->digest);
      j->fd = j->copy ? src->open (src->ctx, j->desc, err) : store_open_blob (s, &j->desc->digest, err);
      if (j->fd < 0)
        goto done;
      /* Independent in overlay form: every layer unpacks at once. */
      int r = pthread_create (&j->thread, NULL, layer_job_main, j);
      if (r != 0)
        {
          error_set (err, r, "layer cache: start an unpack thread");
          goto done;
        }
      started = i + 1;
    }
  flushing = started > 0 && pthread_create (&flusher.thread, NULL, flusher_main, &flusher) == 0;
  /* The source's own work (a download) runs here while the threads read;
   * its failure is the cause of theirs, unless it failed because one of
   * them stopped reading (EPIPE): then that one's error is the cause. */
  ret = src->pump ? src->pump (src->ctx, err) : 0;
done:
  if (ret < 0 && src->abort)
    src->abort (src->ctx);
  for (size_t i = 0; i < started; i++)
    if (jobs[i].tmp[0])
      pthread_join (jobs[i].thread, NULL);
  bool blame_jobs = ret == 0 || err->code == EPIPE;
  for (size_t i = 0; blame_jobs && i < n; i++)
    if (jobs[i].tmp[0] && jobs[i].rc < 0)
      {
        *err = jobs[i].err;
        ret = -1;
        break;
      }
  /* Hard links into lower layers, bottom up, now that all are there. */
  for (size_t i = 0; ret == 0 && i < n; i++)
    {
      if (!jobs[i].tmp[0] || jobs[i].result.n_links == 0)
        continue;
      int lowers[i ? i : 1];
      size_t nl = 0;
      for (size_t k = i; k-- > 0;)
        {
          char path[PATH_MAX + 80];
          lowers[nl] = jobs[k].tmp[0] ? dup (jobs[k].dirfd)
                                      : open (store_layer_path (s, jobs[k].diff_id, path, sizeof path),
                                              O_RDONLY | O_DIRECTORY | O_CLOEXEC);
          if (lowers[nl] >= 0)
            nl++;
        }
      char what[DIGEST_WHAT_MAX];
      digest_what ("layer", &jobs[i].desc->digest, what);
      ret = layer_link_from_lowers (jobs[i].dirfd, what, &jobs[i].result, lowers, nl, err);
      for (size_t k = 0; k < nl; k++)
        close (lowers[k]);
    }
  /* One sync for all files, then the layers become visible. The flusher
   * stops after it: a sync of its own may be under way, and both wait on
   * the same writeback. */
  if (ret == 0 && started > 0 && syncfs (s->layersfd) < 0)
    ret = error_set (err, errno, "layer cache: sync");
  if (flushing)
    flusher_stop (&flusher);
  for (size_t i = 0; i < n; i++)
    {
      struct layer_job *j = &jobs[i];
      if (j->fd >= 0)
        close (j->fd);
      if (!j->tmp[0])
        continue;
      if (ret == 0)
        {
          stats->layers_unpacked++;
          stats->bytes_unpacked += j->result.tar_bytes;
          if (j->blob_tmp[0] && store_blob_commit (s, j->blob_tmp, &j->desc->digest, err) < 0)
            ret = -1;
          j->blob_tmp[0] = '\0';
          if (renameat (s->layersfd, j->tmp, s->layersfd, j->diff_id->hex) == 0)
            j->tmp[0] = '\0';
          else if (errno != EEXIST && errno != ENOTEMPTY)
            ret = error_set (err, errno, "layer cache: rename `%s`", j->tmp);
        }
      discard_tmp (s, j);
    }
  free (jobs);
  return ret;
}

/* ---- loading images ----------------------------------------------------- */

static int
load_doc (struct store *s, const struct descriptor *d, char **json, size_t *len, struct error *err)
{
  return store_read_blob (s, &d->digest, d->size, MANIFEST_MAX_BYTES, json, len, err);
}

/* Follow an index to this platform's manifest; both must be in the store. */
static int
resolve_manifest (struct store *s, const struct descriptor *top, struct descriptor *out,
                  struct error *err)
{
  cleanup_free char *json = NULL;
  size_t len;
  enum doc_kind kind;
  char what[DIGEST_WHAT_MAX];
  digest_what ("manifest", &top->digest, what);
  if (load_doc (s, top, &json, &len, err) < 0 || doc_kind (json, len, what, &kind, NULL, err) < 0)
    return -1;
  if (kind == DOC_MANIFEST)
    {
      *out = *top;
      return 0;
    }
  return index_pick_platform (json, len, what, "linux", oci_arch (), out, err);
}

static int
descriptor_from_json (json_t *j, struct descriptor *d, struct error *err)
{
  const char *digest = json_string_value (json_object_get (j, "digest"));
  const char *mt = json_string_value (json_object_get (j, "mediaType"));
  if (digest == NULL || digest_parse (digest, &d->digest, err) < 0)
    return digest ? -1 : error_setx (err, EINVAL, "index entry without a digest");
  snprintf (d->media_type, sizeof d->media_type, "%s", mt ? mt : "");
  json_t *size = json_object_get (j, "size");
  d->size = json_is_integer (size) ? json_integer_value (size) : -1;
  return 0;
}

static int copy_blob (struct store *s, int src_blobs, const struct descriptor *d, struct error *err);

/* The manifest and config behind top (an index is followed to this
 * platform's manifest, md). With src_blobs >= 0, each document is first
 * copied in from that layout (import); its layer blobs are not. */
static int
load_image (struct store *s, int src_blobs, const struct descriptor *top, struct descriptor *md,
            struct manifest *m, struct image_config *c, struct error *err)
{
  cleanup_free char *mjson = NULL, *cjson = NULL;
  size_t mlen, clen;
  char what[DIGEST_WHAT_MAX];
  if (copy_blob (s, src_blobs, top, err) < 0 || resolve_manifest (s, top, md, err) < 0
      || copy_blob (s, src_blobs, md, err) < 0 || load_doc (s, md, &mjson, &mlen, err) < 0)
    return -1;
  digest_what ("manifest", &md->digest, what);
  if (manifest_parse (mjson, mlen, what, m, err) < 0)
    return -1;
  digest_what ("config", &m->config.digest, what);
  if (copy_blob (s, src_blobs, &m->config, err) < 0 || load_doc (s, &m->config, &cjson, &clen, err) < 0
      || config_parse (cjson, clen, what, c, err) < 0)
    {
      manifest_clear (m);
      return -1;
    }
  return 0;
}

int
image_load (struct store *s, json_t *desc, struct manifest *m, struct image_config *c,
            struct error *err)
{
  struct descriptor top, md;
  if (descriptor_from_json (desc, &top, err) < 0)
    return -1;
  return load_image (s, -1, &top, &md, m, c, err);
}

/* ---- import ------------------------------------------------------------- */

/* With src_blobs >= 0, copy blob d in from that layout unless the store
 * has it already. */
static int
copy_blob (struct store *s, int src_blobs, const struct descriptor *d, struct error *err)
{
  if (src_blobs < 0 || store_has_blob (s, &d->digest))
    return 0;
  char dstr[DIGEST_STR_MAX];
  cleanup_close int fd = openat (src_blobs, d->digest.hex, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return error_set (err, errno, "blob %s", digest_str (&d->digest, dstr));
  return store_put_blob (s, fd, &d->digest, d->size, err);
}

static int
tag_image (json_t *index, const struct descriptor *top, const char *ref)
{
  char dstr[DIGEST_STR_MAX];
  digest_str (&top->digest, dstr);
  /* A tag names one image: move it. */
  json_t *manifests = json_object_get (index, "manifests");
  for (size_t i = json_array_size (manifests); i-- > 0;)
    {
      json_t *m = json_array_get (manifests, i);
      const char *name = json_string_value (json_object_get (json_object_get (m, "annotations"), REF_NAME_ANNOTATION));
      const char *d = json_string_value (json_object_get (m, "digest"));
      if ((ref && name && strcmp (name, ref) == 0) || (!ref && !name && d && strcmp (d, dstr) == 0))
        json_array_remove (manifests, i);
    }
  json_t *desc = json_pack ("{s:s, s:s, s:I}", "mediaType", top->media_type, "digest", dstr, "size",
                            (json_int_t) top->size);
  if (ref)
    json_object_set_new (desc, "annotations", json_pack ("{s:s}", REF_NAME_ANNOTATION, ref));
  return json_array_append_new (manifests, desc);
}

static int
layout_open (void *ctx, const struct descriptor *d, struct error *err)
{
  int fd = openat (*(int *) ctx, d->digest.hex, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    {
      char dstr[DIGEST_STR_MAX];
      return error_set (err, errno, "blob %s", digest_str (&d->digest, dstr));
    }
  return fd;
}

static int
import_layout (struct store *s, const char *dir, const char *tag, const struct layer_limits *limits,
               struct image_stats *stats, struct error *err)
{
  cleanup_close int dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0)
    return error_set (err, errno, "OCI layout `%s`", dir);
  cleanup_close int blobs = openat (dfd, "blobs/sha256", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  char text[MANIFEST_MAX_BYTES / 4];
  ssize_t n = read_file_at (dfd, "index.json", text, sizeof text, err);
  if (blobs < 0 || n < 0)
    return error_setx (err, EINVAL, "`%s` is not an OCI image layout (no index.json or blobs/sha256)", dir);
  json_error_t je;
  json_t *src = json_loadb (text, n, 0, &je);
  json_t *list = json_object_get (src, "manifests");
  size_t images = json_array_size (list);
  if (images == 0 || (tag && images > 1))
    {
      if (src == NULL)
        error_setx (err, EINVAL, "OCI layout `%s`: index.json: %s", dir, je.text);
      else if (images == 0)
        error_setx (err, EINVAL, "OCI layout `%s`: index.json has no manifests", dir);
      else
        error_setx (err, EINVAL, "OCI layout `%s` holds %zu images: import it without a name", dir, images);
      json_decref (src);
      return -1;
    }
  int ret = store_lock (s, err);
  json_t *index = ret == 0 ? store_load_index (s, err) : NULL;
  if (index == NULL)
    ret = -1;
  size_t i;
  json_t *m;
  memset (stats, 0, sizeof *stats);
  json_array_foreach (list, i, m)
    {
      struct descriptor top, md;
      struct manifest man;
      struct image_config cfg;
      struct image_stats one;
      if (ret < 0)
        break;
      const char *name = json_string_value (json_object_get (json_object_get (m, "annotations"), REF_NAME_ANNOTATION));
      if (descriptor_from_json (m, &top, err) < 0 || load_image (s, blobs, &top, &md, &man, &cfg, err) < 0)
        {
          ret = -1;
          break;
        }
      struct layer_source from_layout = { layout_open, NULL, NULL, &blobs };
      ret = image_unpack_layers (s, &from_layout, &man, &cfg, limits, &one, err);
      /* Layers already cached were not read: copy blobs the store lacks. */
      for (size_t k = 0; ret == 0 && k < man.n_layers; k++)
        ret = copy_blob (s, blobs, &man.layers[k], err);
      stats->layers += one.layers;
      stats->layers_unpacked += one.layers_unpacked;
      stats->bytes_unpacked += one.bytes_unpacked;
      manifest_clear (&man);
      config_clear (&cfg);
      if (ret == 0)
        tag_image (index, &top, tag ? tag : name);
    }
  if (ret == 0)
    ret = store_save_index (s, index, err);
  json_decref (index);
  json_decref (src);
  store_unlock (s);
  return ret;
}

int
image_import (struct store *s, const char *path, const char *tag, const struct layer_limits *limits,
              struct image_stats *stats, struct error *err)
{
  struct stat st;
  if (stat (path, &st) < 0)
    return error_set (err, errno, "import `%s`", path);
  if (S_ISDIR (st.st_mode))
    return import_layout (s, path, tag, limits, stats, err);

  /* An oci-archive: unpack the layout with the same safe unpacker into a
   * temp dir in the store, then import that. */
  char tmp[PATH_MAX + 16];
  snprintf (tmp, sizeof tmp, "%s/.import-XXXXXX", s->root);
  if (mkdtemp (tmp) == NULL)
    return error_set (err, errno, "import `%s`: temp dir", path);
  int ret = -1;
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  cleanup_close int dirfd = open (tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct layer_unpacked u;
  char what[PATH_MAX + 32];
  snprintf (what, sizeof what, "oci-archive `%s`", path);
  /* The archive holds every blob: as large as a layer may expand to. */
  struct layer_limits archive_limits = { limits->max_bytes, 1000000 };
  if (fd < 0)
    error_set (err, errno, "import `%s`", path);
  else if (layer_unpack (fd, what, dirfd, &archive_limits, NULL, NULL, &u, err) == 0)
    {
      layer_unpacked_clear (&u);
      ret = import_layout (s, tmp, tag, limits, stats, err);
    }
  struct error ignored;
  remove_tree_at (AT_FDCWD, tmp, &ignored);
  return ret;
}

/* ---- pull ----------------------------------------------------------------- */

struct pull_source
{
  struct registry *r;
  struct blob_fetch *fetches;
  size_t n;
};

/* Each missing layer is a socket pair: the download writes one end, the
 * unpacker reads the other. */
static int
pull_open (void *ctx, const struct descriptor *d, struct error *err)
{
  struct pull_source *p = ctx;
  int sv[2];
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return error_set (err, errno, "socketpair");
  int buf = 4 << 20;
  setsockopt (sv[1], SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  p->fetches = realloc (p->fetches, (p->n + 1) * sizeof *p->fetches);
  p->fetches[p->n++] = (struct blob_fetch) { .desc = *d, .fd = sv[1] };
  return sv[0];
}

static int
pull_pump (void *ctx, struct error *err)
{
  struct pull_source *p = ctx;
  return registry_fetch_blobs (p->r, p->fetches, p->n, err);
}

static void
pull_abort (void *ctx)
{
  struct pull_source *p = ctx;
  for (size_t i = 0; i < p->n; i++)
    if (p->fetches[i].fd >= 0)
      {
        close (p->fetches[i].fd);
        p->fetches[i].fd = -1;
      }
}

/* GET a manifest or index, check it against the digest it was asked by
 * (when it was), store it, and describe it. */
static int
fetch_doc (struct store *s, struct registry *r, const char *reference, const struct digest *want,
           struct descriptor *out, enum doc_kind *kind, char **json, size_t *len, struct error *err)
{
  if (registry_get (r, "manifests", reference, MANIFEST_MAX_BYTES, json, len, err) < 0)
    return -1;
  if (sha256_of (*json, *len, &out->digest) < 0)
    return error_set (err, ENOMEM, "manifest");
  out->size = *len;
  char dstr[DIGEST_STR_MAX], what[DIGEST_STR_MAX + 16];
  if (want && !digest_equal (want, &out->digest))
    return error_setx (err, EINVAL, "registry: manifest %s: the registry sent content with digest %s",
                       digest_str (want, dstr), digest_str (&out->digest, what));
  digest_what ("manifest", &out->digest, what);
  if (doc_kind (*json, *len, what, kind, out->media_type, err) < 0)
    return -1;
  return store_put_data (s, *json, *len, &out->digest, err);
}

int
image_pull (struct store *s, const char *refstr, const struct registry_opts *opts,
            const struct layer_limits *limits, struct image_stats *stats, struct error *err)
{
  struct registry_ref ref;
  struct registry *r = NULL;
  if (registry_ref_parse (refstr, &ref, err) < 0 || registry_open (&ref, opts, &r, err) < 0)
    return -1;
  cleanup_free char *top_json = NULL, *man_json = NULL, *cfg_json = NULL;
  size_t top_len, man_len, cfg_len;
  struct descriptor top, md;
  struct digest want;
  struct manifest m = { 0 };
  struct image_config c = { 0 };
  struct pull_source src = { r, NULL, 0 };
  int ret = -1;
  char what[DIGEST_WHAT_MAX], dstr[DIGEST_STR_MAX];
  memset (stats, 0, sizeof *stats);
  if (ref.by_digest)
    digest_parse (ref.reference, &want, err);
  enum doc_kind kind;
  if (fetch_doc (s, r, ref.reference, ref.by_digest ? &want : NULL, &top, &kind, &top_json, &top_len, err) < 0)
    goto done;
  md = top;
  digest_what ("manifest", &top.digest, what);
  if (kind == DOC_INDEX)
    {
      struct descriptor pick;
      enum doc_kind pick_kind;
      if (index_pick_platform (top_json, top_len, what, "linux", oci_arch (), &pick, err) < 0
          || fetch_doc (s, r, digest_str (&pick.digest, dstr), &pick.digest, &md, &pick_kind, &man_json,
                        &man_len, err) < 0)
        goto done;
    }
  else
    {
      man_json = steal_pointer (&top_json);
      man_len = top_len;
    }
  digest_what ("manifest", &md.digest, what);
  if (manifest_parse (man_json, man_len, what, &m, err) < 0)
    goto done;
  if (!store_has_blob (s, &m.config.digest))
    {
      if (m.config.size > MANIFEST_MAX_BYTES)
        {
          error_setx (err, EFBIG, "config %s: %lld bytes is too large", digest_str (&m.config.digest, dstr),
                      (long long) m.config.size);
          goto done;
        }
      if (registry_get (r, "blobs", digest_str (&m.config.digest, dstr), MANIFEST_MAX_BYTES, &cfg_json,
                        &cfg_len, err) < 0
          || store_put_data (s, cfg_json, cfg_len, &m.config.digest, err) < 0)
        goto done;
      free (cfg_json);
      cfg_json = NULL;
    }
  if (store_read_blob (s, &m.config.digest, m.config.size, MANIFEST_MAX_BYTES, &cfg_json, &cfg_len, err) < 0)
    goto done;
  digest_what ("config", &m.config.digest, what);
  if (config_parse (cfg_json, cfg_len, what, &c, err) < 0)
    goto done;
  struct layer_source ls = { pull_open, pull_pump, pull_abort, &src };
  if (image_unpack_layers (s, &ls, &m, &c, limits, stats, err) < 0)
    goto done;
  if (store_lock (s, err) < 0)
    goto done;
  json_t *index = store_load_index (s, err);
  if (index)
    {
      tag_image (index, &top, refstr);
      ret = store_save_index (s, index, err);
      json_decref (index);
    }
  store_unlock (s);
done:
  pull_abort (&src);
  free (src.fetches);
  manifest_clear (&m);
  config_clear (&c);
  registry_close (r);
  return ret;
}

/* ---- the rootfs for runtime/ -------------------------------------------- */

int
image_rootfs (struct store *s, const char *ref, struct image_rootfs *out, struct error *err)
{
  memset (out, 0, sizeof *out);
  json_t *index = store_load_index (s, err);
  if (index == NULL)
    return -1;
  json_t *desc = store_find_ref (index, ref);
  struct manifest m;
  int ret = -1;
  if (desc == NULL)
    error_setx (err, ENOENT, "image `%s` is not in the store `%s` (agentd image import or agentd pull)", ref, s->root);
  else if (image_load (s, desc, &m, &out->config, err) == 0)
    {
      out->lowers = calloc (m.n_layers + 1, sizeof *out->lowers);
      ret = 0;
      for (size_t i = m.n_layers; ret == 0 && i-- > 0;)
        {
          const struct digest *d = &out->config.diff_ids[i];
          char path[PATH_MAX + 80], dstr[DIGEST_STR_MAX];
          if (!store_has_layer (s, d))
            ret = error_setx (err, ENOENT, "image `%s`: layer %s is not unpacked", ref, digest_str (d, dstr));
          else
            out->lowers[out->n_lowers++] = strdup (store_layer_path (s, d, path, sizeof path));
        }
      manifest_clear (&m);
    }
  json_decref (index);
  if (ret < 0)
    image_rootfs_clear (out);
  return ret;
}

void
image_rootfs_clear (struct image_rootfs *r)
{
  for (size_t i = 0; i < r->n_lowers; i++)
    free (r->lowers[i]);
  free (r->lowers);
  config_clear (&r->config);
  memset (r, 0, sizeof *r);
}

/* Fields 3 and 4 (the ids) of name's line in /etc/passwd or /etc/group of
 * the image's top-most layer that has the file. */
static int
lookup_db (const struct image_rootfs *r, const char *file, const char *name, long *f3, long *f4)
{
  for (size_t i = 0; i < r->n_lowers; i++)
    {
      cleanup_close int dirfd = open (r->lowers[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      int fd = dirfd < 0 ? -1 : open_beneath (dirfd, file, O_RDONLY | O_NOFOLLOW, true);
      if (fd < 0)
        continue;
      cleanup_fclose FILE *f = fdopen (fd, "r");
      if (f == NULL)
        {
          close (fd);
          return -1;
        }
      char line[1024];
      size_t nl = strlen (name);
      while (fgets (line, sizeof line, f))
        {
          if (strncmp (line, name, nl) != 0 || line[nl] != ':')
            continue;
          char *p3 = strchr (line + nl + 1, ':');
          char *p4 = p3 ? strchr (p3 + 1, ':') : NULL;
          *f3 = p3 ? strtol (p3 + 1, NULL, 10) : -1;
          *f4 = p4 ? strtol (p4 + 1, NULL, 10) : -1;
          return *f3 >= 0 ? 0 : -1;
        }
      return -1;
    }
  return -1;
}

int
image_lookup_user (const struct image_rootfs *r, const char *spec, uid_t *uid, gid_t *gid,
                   struct error *err)
{
  char user[256];
  snprintf (user, sizeof user, "%s", spec);
  char *group = strchr (user, ':');
  if (group)
    *group++ = '\0';
  char *end;
  long u = strtol (user, &end, 10), g = -1, unused;
  if (!*user || *end != '\0' || u < 0)
    {
      if (lookup_db (r, "etc/passwd", user, &u, &g) < 0)
        return error_setx (err, ENOENT, "user `%s` is not in the image's /etc/passwd", user);
    }
  else
    g = u;
  if (group)
    {
      g = strtol (group, &end, 10);
      if ((!*group || *end != '\0' || g < 0) && lookup_db (r, "etc/group", group, &g, &unused) < 0)
        return error_setx (err, ENOENT, "group `%s` is not in the image's /etc/group", group);
    }
  *uid = u;
  *gid = g >= 0 ? g : u;
  return 0;
}

/* ---- rm and gc ---------------------------------------------------------- */

int
image_remove (struct store *s, const char *ref, struct error *err)
{
  if (store_lock (s, err) < 0)
    return -1;
  json_t *index = store_load_index (s, err);
  int ret = -1;
  if (index)
    {
      json_t *manifests = json_object_get (index, "manifests");
      size_t removed = 0;
      for (size_t i = json_array_size (manifests); i-- > 0;)
        {
          json_t *m = json_array_get (manifests, i);
          const char *name = json_string_value (json_object_get (json_object_get (m, "annotations"), REF_NAME_ANNOTATION));
          const char *d = json_string_value (json_object_get (m, "digest"));
          if ((name && strcmp (name, ref) == 0) || (d && strcmp (d, ref) == 0))
            {
              json_array_remove (manifests, i);
              removed++;
            }
        }
      ret = removed ? store_save_index (s, index, err)
                    : error_setx (err, ENOENT, "image `%s` is not in the store `%s`", ref, s->root);
      json_decref (index);
    }
  store_unlock (s);
  return ret;
}

struct marks
{
  char (*hex)[65];
  size_t n, cap;
};

static void
mark (struct marks *mk, const struct digest *d)
{
  if (mk->n == mk->cap)
    {
      mk->cap = mk->cap ? 2 * mk->cap : 64;
      mk->hex = realloc (mk->hex, mk->cap * sizeof *mk->hex);
    }
  memcpy (mk->hex[mk->n++], d->hex, 65);
}

static bool
marked (const struct marks *mk, const char *name)
{
  for (size_t i = 0; i < mk->n; i++)
    if (strcmp (mk->hex[i], name) == 0)
      return true;
  return false;
}

/* Remove what no tagged image uses; temp leftovers of a crashed import too. */
static int
sweep (int dirfd, const struct marks *mk, size_t *removed, struct error *err)
{
  int dup_fd = dup (dirfd);
  cleanup_closedir DIR *d = dup_fd >= 0 ? fdopendir (dup_fd) : NULL;
  if (d == NULL)
    return error_set (err, errno, "gc: read directory");
  rewinddir (d);
  struct dirent *de;
  while ((de = readdir (d)) != NULL)
    {
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0 || marked (mk, de->d_name))
        continue;
      if (remove_tree_at (dirfd, de->d_name, err) < 0)
        return -1;
      (*removed)++;
    }
  return 0;
}

int
image_gc (struct store *s, struct gc_stats *stats, struct error *err)
{
  memset (stats, 0, sizeof *stats);
  if (store_lock (s, err) < 0)
    return -1;
  struct marks blobs = { 0 }, layers = { 0 };
  json_t *index = store_load_index (s, err);
  int ret = index ? 0 : -1;
  size_t i;
  json_t *desc;
  json_array_foreach (index ? json_object_get (index, "manifests") : NULL, i, desc)
    {
      struct descriptor top, md;
      struct manifest m;
      struct image_config c;
      if (descriptor_from_json (desc, &top, err) < 0 || load_image (s, -1, &top, &md, &m, &c, err) < 0)
        {
          ret = error_prefix (err, "gc: an image in index.json is damaged; nothing removed");
          break;
        }
      mark (&blobs, &top.digest);
      mark (&blobs, &md.digest);
      mark (&blobs, &m.config.digest);
      for (size_t k = 0; k < m.n_layers; k++)
        mark (&blobs, &m.layers[k].digest);
      for (size_t k = 0; k < c.n_diff_ids; k++)
        mark (&layers, &c.diff_ids[k]);
      manifest_clear (&m);
      config_clear (&c);
    }
  if (ret == 0)
    ret = sweep (s->layersfd, &layers, &stats->layers_removed, err);
  if (ret == 0)
    ret = sweep (s->blobsfd, &blobs, &stats->blobs_removed, err);
  free (blobs.hex);
  free (layers.hex);
  json_decref (index);
  store_unlock (s);
  return ret;
}
