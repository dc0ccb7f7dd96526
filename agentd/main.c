/* agentd: the node agent. This entry point dispatches subcommands. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

static void
usage (FILE *out)
{
  fputs ("Usage: agentd COMMAND [OPTIONS]\n"
         "\n"
         "Commands:\n"
         "  serve             the node daemon (the default with no command): deployments over\n"
         "                    the API socket, for `deploy` and the MCP endpoint\n"
         "  usage             what each deployment used, from this node's usage journal\n"
         "  run               start one isolated workload in the foreground (like `crun run`)\n"
         "  pull              pull an image from a registry into the local store\n"
         "  images            list the images in the local store\n"
         "  image             import, rm, gc: manage the local image store and layer cache\n"
         "  seccomp-profile   print the default seccomp profile as OCI runtime-spec JSON\n"
         "\n"
         "Run `agentd COMMAND --help` for a command's options.\n",
         out);
}

int
main (int argc, char **argv)
{
  if (argc < 2)
    return cmd_serve (argc, argv);
  const char *cmd = argv[1];
  if (strcmp (cmd, "--help") == 0 || strcmp (cmd, "-h") == 0 || strcmp (cmd, "help") == 0)
    {
      usage (stdout);
      return 0;
    }
  if (strcmp (cmd, "serve") == 0)
    return cmd_serve (argc - 1, argv + 1);
  if (strcmp (cmd, "usage") == 0)
    return cmd_usage (argc - 1, argv + 1);
  if (strcmp (cmd, "run") == 0)
    return cmd_run (argc - 1, argv + 1);
  if (strcmp (cmd, "pull") == 0)
    return cmd_pull (argc - 1, argv + 1);
  if (strcmp (cmd, "images") == 0)
    return cmd_images (argc - 1, argv + 1);
  if (strcmp (cmd, "image") == 0)
    return cmd_image (argc - 1, argv + 1);
  if (strcmp (cmd, "seccomp-profile") == 0)
    return cmd_seccomp_profile (argc - 1, argv + 1);
  fprintf (stderr, "agentd: unknown command `%s` (see `agentd --help`)\n", cmd);
  return 2;
}
