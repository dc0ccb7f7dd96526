/* `agentd usage`: what the journal says each deployment used, priced at
 * the default per-second rates (DESIGN.md, "Metering"). This is the answer
 * a node gives without a control plane. */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "commands.h"
#include "usage.h"

int
cmd_usage (int argc, char **argv)
{
  static const struct option opts[] = { { "root", required_argument, NULL, 'R' },
                                        { "since", required_argument, NULL, 's' },
                                        { "json", no_argument, NULL, 'j' },
                                        { "help", no_argument, NULL, 'h' },
                                        { 0 } };
  const char *root = AGENTD_DEFAULT_ROOT;
  bool json = false;
  uint64_t since_ms = 0;
  int opt;
  opterr = 0;
  while ((opt = getopt_long (argc, argv, "h", opts, NULL)) != -1)
    switch (opt)
      {
      case 'R': root = optarg; break;
      case 'j': json = true; break;
      case 's':
        {
          char *end;
          unsigned long long secs = strtoull (optarg, &end, 10);
          if (*end || end == optarg)
            {
              fprintf (stderr, "agentd usage: --since `%s`: a number of seconds ago\n", optarg);
              return 2;
            }
          since_ms = ((uint64_t) time (NULL) - secs) * 1000;
          break;
        }
      case 'h':
        puts ("Usage: agentd usage [--root DIR] [--since SECONDS] [--json]\n\n"
              "What each deployment used, from this node's usage journal (sampled once a\n"
              "second): CPU-seconds, memory and storage GB-seconds, network bytes, and the\n"
              "cost at the default rates ($0.00000772 per vCPU-second, $0.00000386 per memory\n"
              "GB-second, $0.00000006 per storage GB-second, $0.05 per GB sent). With a\n"
              "control plane (serve --control), segments it has acknowledged are deleted:\n"
              "its ledger (controld usage) holds the whole bill.");
        return 0;
      default:
        fprintf (stderr, "agentd usage: unknown or incomplete option `%s`\n", argv[optind - 1]);
        return 2;
      }
  char dir[PATH_MAX];
  snprintf (dir, sizeof dir, "%s/journal", root);
  struct error err = { 0 };
  struct usage_total *sums;
  size_t ns;
  if (usage_totals (dir, since_ms, &sums, &ns, &err) < 0)
    {
      fprintf (stderr, "agentd usage: %s\n", err.msg);
      return 1;
    }
  json_t *arr = json_array ();
  if (!json)
    printf ("%-34s %8s %10s %12s %12s %12s %12s %12s\n", "DEPLOYMENT", "SECONDS", "CPU-S",
            "MEM GB-S", "DISK GB-S", "NET RX", "NET TX", "COST $");
  for (size_t k = 0; k < ns; k++)
    {
      const struct usage_total *x = &sums[k];
      if (json)
        json_array_append_new (arr, json_pack ("{s:s, s:I, s:f, s:f, s:f, s:I, s:I, s:f}",
                                               "deployment", x->id, "seconds",
                                               (json_int_t) x->seconds, "cpu_seconds", x->cpu_s,
                                               "memory_gb_seconds", x->gb_s, "storage_gb_seconds",
                                               x->disk_gb_s, "net_rx_bytes", (json_int_t) x->rx,
                                               "net_tx_bytes", (json_int_t) x->tx, "cost_usd",
                                               usage_cost (x)));
      else
        printf ("%-34s %8" PRIu64 " %10.3f %12.3f %12.3f %12" PRIu64 " %12" PRIu64 " %12.8f\n",
                x->id, x->seconds, x->cpu_s, x->gb_s, x->disk_gb_s, x->rx, x->tx, usage_cost (x));
    }
  if (json)
    {
      json_dumpf (arr, stdout, JSON_COMPACT);
      putchar ('\n');
    }
  json_decref (arr);
  free (sums);
  return 0;
}
