/* The usage journal (DESIGN.md, "Metering"): once a second agentd appends
 * one record holding every workload's cumulative counters. Records are
 * length-prefixed and checksummed, counters are varints, files are segments
 * named by their first sequence number; a torn or corrupt tail is cut at
 * open (and said), never skipped over. */
#ifndef AGENTD_JOURNAL_H
#define AGENTD_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

#define JOURNAL_SEGMENT_BYTES (8u << 20)

struct usage_sample
{
  const char *id; /* deployment id */
  uint64_t version;
  uint64_t cpu_usec, memory_current, memory_peak, io_read, io_write, pids, net_rx, net_tx;
};

struct journal_record
{
  uint64_t seq, ts_ms;
  char boot_id[40];
  struct usage_sample *samples;
  size_t n;
};

struct journal;

/* Open (creating) the journal in dir; max_bytes bounds its size (the oldest
 * segments go first, loudly). What was cut is said on stderr. */
int journal_open (const char *dir, uint64_t max_bytes, struct journal **out, struct error *err);
void journal_close (struct journal *j);
uint64_t journal_next_seq (const struct journal *j);
/* One record, one write. */
int journal_append (struct journal *j, uint64_t ts_ms, const struct usage_sample *s, size_t n,
                    struct error *err);
int journal_sync (struct journal *j, struct error *err);
/* Every valid record in order (stops at the first invalid one). */
int journal_read (const char *dir, int (*fn) (void *ctx, const struct journal_record *r),
                  void *ctx, struct error *err);

#endif
