/* The ledger (DESIGN.md, "Metering"): controld's SQLite database in WAL
 * mode. Usage records arrive per node in sequence order; each batch is one
 * transaction that stores the records, derives per-second usage from their
 * cumulative counters, prices it, charges it to the projects' credits and
 * moves the node's acknowledged sequence, so an ack is only ever sent for
 * what is durable, and a replay (a sequence at or below the ack) changes
 * nothing. */
#ifndef CONTROL_LEDGER_H
#define CONTROL_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"
#include "../proto/messages.h"

struct rates
{
  double memory_gb_second, vcpu_second, storage_gb_second, egress_gb; /* dollars */
  double thresholds[8]; /* fractions of the credits used that raise an alert */
  int n_thresholds;
};

/* The defaults of DESIGN.md and the metering issue. */
void rates_default (struct rates *r);
/* rates.yaml: memory_gb_second, vcpu_second, storage_gb_second, egress_gb
 * (dollars), alert_thresholds (a list of percents). */
int rates_load (const char *path, struct rates *r, struct error *err);

struct ledger;

int ledger_open (const char *path, bool readonly, struct ledger **out, struct error *err);
void ledger_close (struct ledger *l);

/* The node's highest contiguous sequence stored (0: none). */
int ledger_acked (struct ledger *l, const char *node, uint64_t *acked, struct error *err);
/* A node whose journal starts again at next_seq (it was lost): its ack
 * moves back to next_seq - 1, and an event says so. */
int ledger_journal_reset (struct ledger *l, const char *node, uint64_t next_seq, uint64_t *acked,
                          struct error *err);

/* What a batch did: the new ack, and the projects whose credits ran out
 * (newly or before) among those the batch charged: their workloads on
 * this node must stop. */
struct ingest_result
{
  uint64_t acked;
  uint64_t stored, duplicates;
  char **stop_projects; /* NULL-terminated */
};

int ledger_ingest (struct ledger *l, const struct rates *rates, const char *node,
                   const struct msg_usage_batch *b, struct ingest_result *out, struct error *err);
void ingest_result_clear (struct ingest_result *r);

/* Credits: amount (dollars) added to the project's balance. */
int ledger_credits_add (struct ledger *l, const char *project, double amount, struct error *err);
/* A line of history: alerts, stops, lost records (kind, project, text). */
int ledger_event (struct ledger *l, const char *kind, const char *project, const char *node,
                  const char *text, struct error *err);

struct usage_query
{
  const char *project, *env, *service;
  uint64_t since_ms; /* 0: all */
  uint64_t bucket_s; /* 0: one row per service; 1, 60, 3600: per second, minute, hour */
};

struct usage_line
{
  char project[32], env[32], service[32];
  uint64_t bucket;  /* unix seconds at the bucket's start (bucket_s != 0) */
  uint64_t seconds; /* workload-seconds billed */
  uint64_t cpu_us, memory_byte_s, disk_byte_s, net_rx, net_tx;
  uint64_t psi_us[3]; /* stalls on CPU, memory, I/O (cgroup v2) */
  double cost;
};

int ledger_usage (struct ledger *l, const struct usage_query *q, struct usage_line **out, size_t *n,
                  struct error *err);

struct credit_line
{
  char project[32];
  double credited, charged;
  bool limited, stopped;
};

int ledger_credits (struct ledger *l, struct credit_line **out, size_t *n, struct error *err);

/* The projects stopped for want of credits (NULL-terminated, strdup'ed). */
int ledger_stopped_projects (struct ledger *l, char ***out, struct error *err);

struct event_line
{
  uint64_t ts_ms;
  char kind[16], project[32], node[64], text[512];
};

/* Every event, oldest first. */
int ledger_events (struct ledger *l, struct event_line **out, size_t *n, struct error *err);

#endif
