/* agentd image import|rm|gc and agentd images: the local image store. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../builder/image.h"
#include "../common/clock.h"
#include "commands.h"

const struct layer_limits agentd_layer_limits = {
  .max_bytes = 64ULL << 30,
  .max_entries = 4000000,
};

static void
image_usage (FILE *out)
{
  fputs ("Usage: agentd image COMMAND [--root DIR] ...\n"
         "\n"
         "  import PATH [--name REF]  import an OCI layout directory or an oci-archive tar,\n"
         "                            unpacking its layers into the layer cache\n"
         "  rm REF                    remove the image tagged REF (or with digest REF)\n"
         "  gc                        remove blobs and cached layers no image uses\n"
         "  ls                        list images (same as `agentd images`)\n"
         "\n"
         "  --root DIR                agentd's root (default " AGENTD_DEFAULT_ROOT ")\n",
         out);
}

/* Parse --root/--name/--help; leaves positional arguments in argv[optind..]. */
static int
image_options (int argc, char **argv, const char **root, const char **name, int *status)
{
  static const struct option longopts[] = {
    { "root", required_argument, NULL, 'R' },
    { "name", required_argument, NULL, 'n' },
    { "help", no_argument, NULL, 'h' },
    { 0 },
  };
  *root = AGENTD_DEFAULT_ROOT;
  int opt;
  opterr = 0;
  optind = 1;
  while ((opt = getopt_long (argc, argv, "h", longopts, NULL)) != -1)
    switch (opt)
      {
      case 'R': *root = optarg; break;
      case 'n':
        if (name == NULL)
          goto bad;
        *name = optarg;
        break;
      case 'h':
        image_usage (stdout);
        *status = 0;
        return -1;
      default:
      bad:
        fprintf (stderr, "agentd image: unknown or incomplete option `%s` (see `agentd image --help`)\n",
                 argv[optind - 1]);
        *status = 2;
        return -1;
      }
  return 0;
}

static int
fail (const char *cmd, const struct error *err)
{
  fprintf (stderr, "agentd %s: %s\n", cmd, err->msg);
  return 1;
}

static int
list_images (struct store *s)
{
  struct error err = { 0 };
  json_t *index = store_load_index (s, &err);
  if (index == NULL)
    return fail ("images", &err);
  printf ("%-40s %-19s %6s %10s\n", "REF", "DIGEST", "LAYERS", "SIZE");
  size_t i;
  json_t *desc;
  json_array_foreach (json_object_get (index, "manifests"), i, desc)
    {
      const char *name = json_string_value (json_object_get (json_object_get (desc, "annotations"), REF_NAME_ANNOTATION));
      const char *digest = json_string_value (json_object_get (desc, "digest"));
      struct manifest m;
      struct image_config c;
      if (image_load (s, desc, &m, &c, &err) < 0)
        {
          printf ("%-40s %-19.19s %6s %10s  (%s)\n", name ? name : "<none>", digest ? digest : "?", "?", "?", err.msg);
          continue;
        }
      uint64_t size = 0;
      for (size_t k = 0; k < m.n_layers; k++)
        size += m.layers[k].size;
      printf ("%-40s %-19.19s %6zu %8.1fMB\n", name ? name : "<none>", digest, m.n_layers, size / 1e6);
      manifest_clear (&m);
      config_clear (&c);
    }
  json_decref (index);
  return 0;
}

int
cmd_images (int argc, char **argv)
{
  const char *root;
  int status;
  if (image_options (argc, argv, &root, NULL, &status) < 0)
    return status;
  struct store *s;
  struct error err = { 0 };
  if (store_open (root, &s, &err) < 0)
    return fail ("images", &err);
  int ret = list_images (s);
  store_close (s);
  return ret;
}

int
cmd_image (int argc, char **argv)
{
  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)
    {
      image_usage (argc < 2 ? stderr : stdout);
      return argc < 2 ? 2 : 0;
    }
  const char *sub = argv[1];
  const char *root, *name = NULL;
  int status;
  if (image_options (argc - 1, argv + 1, &root, &name, &status) < 0)
    return status;
  int npos = argc - 1 - optind;
  char **pos = argv + 1 + optind;
  struct store *s;
  struct error err = { 0 };
  if (strcmp (sub, "import") != 0 && strcmp (sub, "rm") != 0 && strcmp (sub, "gc") != 0
      && strcmp (sub, "ls") != 0)
    {
      fprintf (stderr, "agentd image: unknown command `%s` (see `agentd image --help`)\n", sub);
      return 2;
    }
  int want = strcmp (sub, "import") == 0 || strcmp (sub, "rm") == 0 ? 1 : 0;
  if (npos != want)
    {
      fprintf (stderr, "agentd image %s: expected %s\n", sub, want ? (sub[0] == 'i' ? "one PATH" : "one REF") : "no arguments");
      return 2;
    }
  if (store_open (root, &s, &err) < 0)
    return fail (sub, &err);
  int ret = 0;
  if (strcmp (sub, "import") == 0)
    {
      struct image_stats st;
      double t0 = monotonic_seconds ();
      if (image_import (s, pos[0], name, &agentd_layer_limits, &st, &err) < 0)
        ret = fail ("image import", &err);
      else
        fprintf (stderr, "agentd image import: %s: %zu layers, %zu unpacked (%.1f MB) in %.2f s\n", pos[0],
                 st.layers, st.layers_unpacked, st.bytes_unpacked / 1e6, monotonic_seconds () - t0);
    }
  else if (strcmp (sub, "rm") == 0)
    {
      if (image_remove (s, pos[0], &err) < 0)
        ret = fail ("image rm", &err);
    }
  else if (strcmp (sub, "gc") == 0)
    {
      struct gc_stats st;
      if (image_gc (s, &st, &err) < 0)
        ret = fail ("image gc", &err);
      else
        printf ("removed %zu blobs and %zu layers\n", st.blobs_removed, st.layers_removed);
    }
  else
    ret = list_images (s);
  store_close (s);
  return ret;
}
