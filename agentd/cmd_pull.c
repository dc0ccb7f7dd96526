/* agentd pull REF: from a registry into the local store and layer cache. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../builder/image.h"
#include "../builder/registry.h"
#include "../common/clock.h"
#include "../common/fsutil.h"
#include "commands.h"
#include "../common/parse.h"

static void
pull_usage (FILE *out)
{
  fputs ("Usage: agentd pull [OPTIONS] HOST[:PORT]/REPO[:TAG|@sha256:DIGEST]\n"
         "\n"
         "Pull an image into the local store; its layers download in parallel and\n"
         "unpack while they download. Layers already in the cache are not fetched.\n"
         "\n"
         "  --root DIR             agentd's root (default " AGENTD_DEFAULT_ROOT ")\n"
         "  --username USER        for registries that want basic auth or a token\n"
         "  --password-file FILE   the password, read from FILE (not from the command line)\n"
         "  --insecure-registry    allow plain http to a host that is not loopback\n"
         "  --timeout SECONDS      connect timeout and longest silence (default 30)\n"
         "  -h, --help             show this help\n",
         out);
}

static void
show_progress (void *ctx, const struct registry_progress *p)
{
  (void) ctx;
  fprintf (stderr, "\ragentd pull: %zu/%zu layers, %.1f/%.1f MB", p->blobs_done, p->blobs_total,
           p->bytes_done / 1e6, p->bytes_total / 1e6);
  if (p->blobs_done == p->blobs_total)
    fputc ('\n', stderr);
}

int
cmd_pull (int argc, char **argv)
{
  static const struct option longopts[] = {
    { "root", required_argument, NULL, 'R' },          { "username", required_argument, NULL, 'u' },
    { "password-file", required_argument, NULL, 'p' }, { "insecure-registry", no_argument, NULL, 'k' },
    { "timeout", required_argument, NULL, 't' },       { "help", no_argument, NULL, 'h' },
    { 0 },
  };
  const char *root = AGENTD_DEFAULT_ROOT, *password_file = NULL;
  struct registry_opts opts = { .timeout_s = 30 };
  struct error err = { 0 };
  int64_t timeout;
  int opt;
  opterr = 0;
  optind = 1;
  while ((opt = getopt_long (argc, argv, "h", longopts, NULL)) != -1)
    switch (opt)
      {
      case 'R': root = optarg; break;
      case 'u': opts.username = optarg; break;
      case 'p': password_file = optarg; break;
      case 'k': opts.insecure = true; break;
      case 't':
        if (parse_count (optarg, 3600, &timeout, &err) < 0)
          {
            fprintf (stderr, "agentd pull: --timeout: %s\n", err.msg);
            return 2;
          }
        opts.timeout_s = timeout;
        break;
      case 'h':
        pull_usage (stdout);
        return 0;
      default:
        fprintf (stderr, "agentd pull: unknown or incomplete option `%s` (see `agentd pull --help`)\n",
                 argv[optind - 1]);
        return 2;
      }
  if (optind + 1 != argc)
    {
      pull_usage (stderr);
      return 2;
    }
  char password[512];
  if (password_file)
    {
      ssize_t n = read_file_at (AT_FDCWD, password_file, password, sizeof password, &err);
      if (n < 0)
        {
          fprintf (stderr, "agentd pull: --password-file: %s\n", err.msg);
          return 1;
        }
      password[strcspn (password, "\r\n")] = '\0';
      opts.password = password;
    }
  if (isatty (STDERR_FILENO))
    opts.progress = show_progress;
  struct store *s;
  if (store_open (root, &s, &err) < 0)
    {
      fprintf (stderr, "agentd pull: %s\n", err.msg);
      return 1;
    }
  double t0 = monotonic_seconds ();
  struct image_stats st;
  int ret = 0;
  if (image_pull (s, argv[optind], &opts, &agentd_layer_limits, &st, &err) < 0)
    {
      fprintf (stderr, "agentd pull: %s\n", err.msg);
      ret = 1;
    }
  else
    {
      fprintf (stderr, "agentd pull: %s: %zu layers, %zu downloaded and unpacked (%.1f MB) in %.2f s\n",
               argv[optind], st.layers, st.layers_unpacked, st.bytes_unpacked / 1e6,
               monotonic_seconds () - t0);
    }
  store_close (s);
  return ret;
}
