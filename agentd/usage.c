#include "usage.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"

/* One run of one version: counters are cumulative from its start. */
struct run
{
  char id[80];
  uint64_t version;
  char boot[40];
  uint64_t first[3], last[3]; /* cpu_usec, net_rx, net_tx */
  double gb_seconds, disk_gb_seconds;
  uint64_t samples;
};

struct totals
{
  struct run *runs;
  size_t n, cap;
  uint64_t since_ms;
};

static struct run *
run_for (struct totals *t, const struct msg_usage_sample *s, const char *boot, const uint64_t now[3])
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
add_record (void *ctx, const struct msg_usage_record *rec)
{
  struct totals *t = ctx;
  if (rec->ts_ms < t->since_ms)
    return 0;
  for (size_t i = 0; i < rec->n_samples; i++)
    {
      const struct msg_usage_sample *s = &rec->samples[i];
      const uint64_t now[3] = { s->cpu_usec, s->net_rx, s->net_tx };
      struct run *r = run_for (t, s, rec->boot_id, now);
      if (r == NULL)
        return -1;
      /* CPU decides the run; the network counters only count up in one
       * (a lower reading bills nothing, as in the ledger). */
      r->last[0] = now[0];
      for (int k = 1; k < 3; k++)
        if (now[k] > r->last[k])
          r->last[k] = now[k];
      r->gb_seconds += s->memory_current / 1e9; /* one record a second */
      r->disk_gb_seconds += s->disk_bytes / 1e9;
      r->samples++;
    }
  return 0;
}

int
usage_totals (const char *journal_dir, uint64_t since_ms, struct usage_total **out, size_t *n,
              struct error *err)
{
  struct totals t = { .since_ms = since_ms };
  *out = NULL;
  *n = 0;
  if (journal_read (journal_dir, add_record, &t, err) < 0)
    return -1;
  /* Runs summed per deployment. */
  struct usage_total *sums = calloc (t.n + 1, sizeof *sums);
  if (sums == NULL)
    {
      free (t.runs);
      return error_set (err, ENOMEM, "usage totals");
    }
  size_t ns = 0;
  for (size_t i = 0; i < t.n; i++)
    {
      const struct run *r = &t.runs[i];
      size_t k = 0;
      while (k < ns && strcmp (sums[k].id, r->id) != 0)
        k++;
      if (k == ns)
        snprintf (sums[ns++].id, sizeof sums[0].id, "%s", r->id);
      sums[k].cpu_s += (r->last[0] - r->first[0]) / 1e6;
      sums[k].rx += r->last[1] - r->first[1];
      sums[k].tx += r->last[2] - r->first[2];
      sums[k].gb_s += r->gb_seconds;
      sums[k].disk_gb_s += r->disk_gb_seconds;
      sums[k].seconds += r->samples;
    }
  free (t.runs);
  *out = sums;
  *n = ns;
  return 0;
}

double
usage_cost (const struct usage_total *t)
{
  return t->cpu_s * PRICE_CPU_SECOND + t->gb_s * PRICE_GB_SECOND
         + t->disk_gb_s * PRICE_STORAGE_GB_SECOND + t->tx / 1e9 * PRICE_EGRESS_GB;
}
