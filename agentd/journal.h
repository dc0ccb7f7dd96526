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
#include "../proto/messages.h"

#define JOURNAL_SEGMENT_BYTES (8u << 20)

struct journal;

/* Open (creating) the journal in dir; max_bytes bounds its size (the oldest
 * segments go first, loudly). What was cut is said on stderr. */
int journal_open (const char *dir, uint64_t max_bytes, struct journal **out, struct error *err);
void journal_close (struct journal *j);
/* The sequence number the next record gets (safe from any thread). */
uint64_t journal_next_seq (struct journal *j);
/* One record, one write. */
int journal_append (struct journal *j, uint64_t ts_ms, const struct msg_usage_sample *s, size_t n,
                    struct error *err);
int journal_sync (struct journal *j, struct error *err);
/* Delete the segments whose records are all at or below acked (the
 * control plane has them); safe from another thread than the appender. */
void journal_release (struct journal *j, uint64_t acked);

/* Where a reader (the uplink) stands: the next record it wants, and the
 * byte in its segment where it stopped, so a scan reads only new bytes. */
struct journal_cursor
{
  uint64_t next_seq;
  uint64_t seg_first, offset;
};

/* The records from c->next_seq on, in order, through fn, until fn returns
 * non-zero (after taking that record) or the journal ends; the cursor
 * advances past what fn took. The first record fn sees may be above
 * next_seq when older ones were dropped. */
int journal_scan (struct journal *j, struct journal_cursor *c,
                  int (*fn) (void *ctx, const struct msg_usage_record *r), void *ctx,
                  struct error *err);

/* Every valid record in order (stops at the first invalid one). */
int journal_read (const char *dir, int (*fn) (void *ctx, const struct msg_usage_record *r),
                  void *ctx, struct error *err);

#endif
