/* Usage totals per deployment, added up from the journal; priced at the
 * default rates (DESIGN.md, "Metering"). */
#ifndef AGENTD_USAGE_H
#define AGENTD_USAGE_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

#include "../common/prices.h"

struct usage_total
{
  char id[80]; /* deployment id */
  uint64_t seconds;
  double cpu_s, gb_s, disk_gb_s;
  uint64_t rx, tx;
};

/* Records from since_ms on (0: all). A version's counters count from its
 * start, so with since_ms == 0 its first second is billed too. */
int usage_totals (const char *journal_dir, uint64_t since_ms, struct usage_total **out, size_t *n,
                  struct error *err);
double usage_cost (const struct usage_total *t);

#endif
