#include "manifest.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

static const char *const layer_types[] = {
  "application/vnd.oci.image.layer.v1.tar",
  "application/vnd.oci.image.layer.v1.tar+gzip",
  "application/vnd.oci.image.layer.v1.tar+zstd",
  "application/vnd.oci.image.layer.nondistributable.v1.tar",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
  "application/vnd.docker.image.rootfs.diff.tar.gzip",
  "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
};

static const char *const config_types[] = {
  "application/vnd.oci.image.config.v1+json",
  "application/vnd.docker.container.image.v1+json",
};

static bool
one_of (const char *s, const char *const *list, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (strcmp (s, list[i]) == 0)
      return true;
  return false;
}

static json_t *
load (const char *json, size_t len, const char *what, struct error *err)
{
  if (len > MANIFEST_MAX_BYTES)
    {
      error_setx (err, EFBIG, "%s: %zu bytes is too large for a manifest", what, len);
      return NULL;
    }
  json_error_t je;
  json_t *root = json_loadb (json, len, JSON_REJECT_DUPLICATES, &je);
  if (root == NULL)
    error_setx (err, EINVAL, "%s: not valid JSON (line %d, column %d: %s)", what, je.line,
                je.column, je.text);
  else if (!json_is_object (root))
    {
      error_setx (err, EINVAL, "%s: not a JSON object", what);
      json_decref (root);
      root = NULL;
    }
  return root;
}

static int
descriptor_parse (json_t *j, const char *what, struct descriptor *out, struct error *err)
{
  const char *mt = json_string_value (json_object_get (j, "mediaType"));
  const char *digest = json_string_value (json_object_get (j, "digest"));
  json_t *size = json_object_get (j, "size");
  if (!json_is_object (j) || mt == NULL || digest == NULL || !json_is_integer (size)
      || json_integer_value (size) < 0)
    return error_setx (err, EINVAL, "%s: a descriptor lacks mediaType, digest or size", what);
  if (strlen (mt) >= sizeof out->media_type)
    return error_setx (err, EINVAL, "%s: media type too long", what);
  strcpy (out->media_type, mt);
  out->size = json_integer_value (size);
  if (digest_parse (digest, &out->digest, err) < 0)
    return error_prefix (err, "%s", what);
  return 0;
}

int
doc_kind (const char *json, size_t len, const char *what, enum doc_kind *out, char media_type[128],
          struct error *err)
{
  json_t *root = load (json, len, what, err);
  if (root == NULL)
    return -1;
  const char *mt = json_string_value (json_object_get (root, "mediaType"));
  int ret = 0;
  if (mt ? strcmp (mt, MT_OCI_INDEX) == 0 || strcmp (mt, MT_DOCKER_LIST) == 0
         : json_is_array (json_object_get (root, "manifests")))
    *out = DOC_INDEX;
  else if (mt ? strcmp (mt, MT_OCI_MANIFEST) == 0 || strcmp (mt, MT_DOCKER_MANIFEST) == 0
              : json_is_array (json_object_get (root, "layers")))
    *out = DOC_MANIFEST;
  else
    ret = error_setx (err, EINVAL, "%s: unknown manifest media type `%s`", what, mt ? mt : "(none)");
  if (ret == 0 && media_type)
    snprintf (media_type, 128, "%s", mt ? mt : *out == DOC_INDEX ? MT_OCI_INDEX : MT_OCI_MANIFEST);
  json_decref (root);
  return ret;
}

const char *
oci_arch (void)
{
  struct utsname u;
  uname (&u);
  if (strcmp (u.machine, "x86_64") == 0)
    return "amd64";
  if (strcmp (u.machine, "aarch64") == 0)
    return "arm64";
  return "unknown";
}

int
index_pick_platform (const char *json, size_t len, const char *what, const char *os,
                     const char *arch, struct descriptor *out, struct error *err)
{
  json_t *root = load (json, len, what, err);
  if (root == NULL)
    return -1;
  json_t *ms = json_object_get (root, "manifests"), *m;
  size_t i;
  int ret = error_setx (err, ENOENT, "%s: no manifest for %s/%s", what, os, arch);
  json_array_foreach (ms, i, m)
    {
      json_t *p = json_object_get (m, "platform");
      const char *mos = json_string_value (json_object_get (p, "os"));
      const char *march = json_string_value (json_object_get (p, "architecture"));
      /* No platform at all: a single-image index, as umoci and skopeo write. */
      if ((p == NULL && json_array_size (ms) == 1)
          || (mos && march && strcmp (mos, os) == 0 && strcmp (march, arch) == 0))
        {
          ret = descriptor_parse (m, what, out, err);
          break;
        }
    }
  json_decref (root);
  return ret;
}

int
manifest_parse (const char *json, size_t len, const char *what, struct manifest *out,
                struct error *err)
{
  memset (out, 0, sizeof *out);
  json_t *root = load (json, len, what, err);
  if (root == NULL)
    return -1;
  int ret = -1;
  json_t *layers = json_object_get (root, "layers");
  if (json_integer_value (json_object_get (root, "schemaVersion")) != 2 || !json_is_array (layers))
    {
      error_setx (err, EINVAL, "%s: not a schema 2 image manifest", what);
      goto done;
    }
  if (descriptor_parse (json_object_get (root, "config"), what, &out->config, err) < 0)
    goto done;
  if (!one_of (out->config.media_type, config_types, sizeof config_types / sizeof config_types[0]))
    {
      error_setx (err, EINVAL, "%s: unknown config media type `%s`", what, out->config.media_type);
      goto done;
    }
  out->n_layers = json_array_size (layers);
  out->layers = calloc (out->n_layers ? out->n_layers : 1, sizeof *out->layers);
  for (size_t i = 0; i < out->n_layers; i++)
    {
      if (descriptor_parse (json_array_get (layers, i), what, &out->layers[i], err) < 0)
        goto done;
      if (!one_of (out->layers[i].media_type, layer_types, sizeof layer_types / sizeof layer_types[0]))
        {
          error_setx (err, EINVAL, "%s: layer %zu has unknown media type `%s`", what, i,
                      out->layers[i].media_type);
          goto done;
        }
    }
  ret = 0;
done:
  json_decref (root);
  if (ret < 0)
    manifest_clear (out);
  return ret;
}

static char **
string_array (json_t *a)
{
  if (!json_is_array (a))
    return NULL;
  char **v = calloc (json_array_size (a) + 1, sizeof *v);
  size_t i, n = 0;
  json_t *s;
  json_array_foreach (a, i, s)
    if (json_is_string (s))
      v[n++] = strdup (json_string_value (s));
  return v;
}

static void
free_strings (char **v)
{
  for (size_t i = 0; v && v[i]; i++)
    free (v[i]);
  free (v);
}

int
config_parse (const char *json, size_t len, const char *what, struct image_config *out,
              struct error *err)
{
  memset (out, 0, sizeof *out);
  json_t *root = load (json, len, what, err);
  if (root == NULL)
    return -1;
  int ret = -1;
  json_t *diff_ids = json_object_get (json_object_get (root, "rootfs"), "diff_ids");
  if (!json_is_array (diff_ids))
    {
      error_setx (err, EINVAL, "%s: no rootfs.diff_ids", what);
      goto done;
    }
  out->n_diff_ids = json_array_size (diff_ids);
  out->diff_ids = calloc (out->n_diff_ids ? out->n_diff_ids : 1, sizeof *out->diff_ids);
  for (size_t i = 0; i < out->n_diff_ids; i++)
    {
      const char *d = json_string_value (json_array_get (diff_ids, i));
      if (d == NULL || digest_parse (d, &out->diff_ids[i], err) < 0)
        {
          if (d == NULL)
            error_setx (err, EINVAL, "diff_id %zu is not a string", i);
          error_prefix (err, "%s", what);
          goto done;
        }
    }
  json_t *c = json_object_get (root, "config");
  out->env = string_array (json_object_get (c, "Env"));
  out->entrypoint = string_array (json_object_get (c, "Entrypoint"));
  out->cmd = string_array (json_object_get (c, "Cmd"));
  const char *wd = json_string_value (json_object_get (c, "WorkingDir"));
  const char *user = json_string_value (json_object_get (c, "User"));
  out->workdir = wd && *wd ? strdup (wd) : NULL;
  out->user = user && *user ? strdup (user) : NULL;
  ret = 0;
done:
  json_decref (root);
  if (ret < 0)
    config_clear (out);
  return ret;
}

void
manifest_clear (struct manifest *m)
{
  free (m->layers);
  memset (m, 0, sizeof *m);
}

void
config_clear (struct image_config *c)
{
  free_strings (c->env);
  free_strings (c->entrypoint);
  free_strings (c->cmd);
  free (c->workdir);
  free (c->user);
  free (c->diff_ids);
  memset (c, 0, sizeof *c);
}
