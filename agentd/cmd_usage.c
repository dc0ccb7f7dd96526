/* `agentd usage`: what the journal says each deployment used, priced at
 * the default per-second rates (DESIGN.md, "Metering"). This is the answer
 * a node gives without a control plane. */
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "journal.h"

#define PRICE_GB_SECOND 0.00000386
#define PRICE_CPU_SECOND 0.00000772

/* One run of one version: counters are cumulative from its start. */
struct run
{
  char id[80];
  uint64_t version;
  char boot[40];
  uint64_t first[3], last[3]; /* cpu_usec, net_rx, net_tx */
  double gb_seconds;
  uint64_t samples;
};

struct totals
{
  struct run *runs;
  size_t n, cap;
  uint64_t since_ms;
};

static struct run *
run_for (struct totals *t, const struct usage_sample *s, const char *boot, const uint64_t now[3])
{
  for (size_t i = t->n; i-- > 0;)
    {
      struct run *r = &t->runs[i];
      if (strcmp (r->id, s->id) == 0 && r->version == s->version && strcmp (r->boot, boot) == 0
          && now[0] >= r->last[0])
        return r;
    }
  /* A new version, a new boot, or a counter that went back (a restart):
   * a new run, whose counters start here. */
  if (t->n == t->cap)
    {
      size_t cap = t->cap ? t->cap * 2 : 64;
      struct run *g = realloc (t->runs, cap * sizeof *g);
      if (g == NULL)
        return NULL;
      t->runs = g;
      t->cap = cap;
    }
  struct run *r = &t->runs[t->n++];
  memset (r, 0, sizeof *r);
  snprintf (r->id, sizeof r->id, "%s", s->id);
  snprintf (r->boot, sizeof r->boot, "%s", boot);
  r->version = s->version;
  /* Counters count from the workload's start: unless the period cuts into
   * the run, its baseline is zero, so its first second is billed too. */
  if (t->since_ms)
    memcpy (r->first, now, sizeof r->first);
  return r;
}

static int
add_record (void *ctx, const struct journal_record *rec)
{
  struct totals *t = ctx;
  if (rec->ts_ms < t->since_ms)
    return 0;
  for (size_t i = 0; i < rec->n; i++)
    {
      const struct usage_sample *s = &rec->samples[i];
      const uint64_t now[3] = { s->cpu_usec, s->net_rx, s->net_tx };
      struct run *r = run_for (t, s, rec->boot_id, now);
      if (r == NULL)
        return -1;
      memcpy (r->last, now, sizeof r->last);
      r->gb_seconds += s->memory_current / 1e9; /* one record a second */
      r->samples++;
    }
  return 0;
}

struct sum
{
  const char *id;
  double cpu_s, gb_s;
  uint64_t rx, tx, seconds;
};

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
  struct totals t = { 0 };
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
          t.since_ms = ((uint64_t) time (NULL) - secs) * 1000;
          break;
        }
      case 'h':
        puts ("Usage: agentd usage [--root DIR] [--since SECONDS] [--json]\n\n"
              "What each deployment used, from this node's usage journal (sampled once a\n"
              "second): CPU-seconds, memory GB-seconds, network bytes, and the cost at the\n"
              "default rates ($0.00000772 per vCPU-second, $0.00000386 per GB-second).");
        return 0;
      default:
        fprintf (stderr, "agentd usage: unknown or incomplete option `%s`\n", argv[optind - 1]);
        return 2;
      }
  char dir[PATH_MAX];
  snprintf (dir, sizeof dir, "%s/journal", root);
  struct error err = { 0 };
  if (journal_read (dir, add_record, &t, &err) < 0)
    {
      fprintf (stderr, "agentd usage: %s\n", err.msg);
      return 1;
    }
  /* Runs summed per deployment. */
  struct sum *sums = calloc (t.n + 1, sizeof *sums);
  size_t ns = 0;
  for (size_t i = 0; sums && i < t.n; i++)
    {
      const struct run *r = &t.runs[i];
      size_t k = 0;
      while (k < ns && strcmp (sums[k].id, r->id) != 0)
        k++;
      if (k == ns)
        sums[ns++].id = r->id;
      sums[k].cpu_s += (r->last[0] - r->first[0]) / 1e6;
      sums[k].rx += r->last[1] - r->first[1];
      sums[k].tx += r->last[2] - r->first[2];
      sums[k].gb_s += r->gb_seconds;
      sums[k].seconds += r->samples;
    }
  json_t *arr = json_array ();
  if (!json)
    printf ("%-34s %8s %10s %12s %12s %12s %12s\n", "DEPLOYMENT", "SECONDS", "CPU-S", "MEM GB-S",
            "NET RX", "NET TX", "COST $");
  for (size_t k = 0; k < ns; k++)
    {
      const struct sum *x = &sums[k];
      double cost = x->cpu_s * PRICE_CPU_SECOND + x->gb_s * PRICE_GB_SECOND;
      if (json)
        json_array_append_new (arr, json_pack ("{s:s, s:I, s:f, s:f, s:I, s:I, s:f}", "deployment",
                                               x->id, "seconds", (json_int_t) x->seconds,
                                               "cpu_seconds", x->cpu_s, "memory_gb_seconds", x->gb_s,
                                               "net_rx_bytes", (json_int_t) x->rx, "net_tx_bytes",
                                               (json_int_t) x->tx, "cost_usd", cost));
      else
        printf ("%-34s %8" PRIu64 " %10.3f %12.3f %12" PRIu64 " %12" PRIu64 " %12.8f\n", x->id,
                x->seconds, x->cpu_s, x->gb_s, x->rx, x->tx, cost);
    }
  if (json)
    {
      json_dumpf (arr, stdout, JSON_COMPACT);
      putchar ('\n');
    }
  json_decref (arr);
  free (sums);
  free (t.runs);
  return 0;
}
