/* The uplink (DESIGN.md, "Metering"; PROTOCOL.md, "Uplink"): a thread that
 * streams the usage journal to the control plane over proto. HELLO (node
 * id, boot id, token) tells it where the control plane's ledger stands;
 * records after that go out in batches; each USAGE_ACK releases the
 * journal up to the acknowledged sequence. A lost connection is redialled
 * with backoff and jitter, and everything unacknowledged is sent again:
 * the control plane deduplicates by sequence, so nothing is lost or billed
 * twice. The loop thread talks to it through two queues. */
#ifndef AGENTD_UPLINK_H
#define AGENTD_UPLINK_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "../common/error.h"
#include "../proto/messages.h"
#include "journal.h"

struct uplink_config
{
  struct sockaddr_in addr;
  char addr_text[64];
  char node_id[64];
  char token[256];
};

/* What the uplink hands the loop thread. */
enum uplink_event_kind
{
  UPLINK_STOP_PROJECT, /* the control plane says: stop this project's workloads */
  UPLINK_USAGE_REPLY,  /* the answer to uplink_usage: a USAGE_RESULT or an ERROR */
  UPLINK_RESUME_PROJECT, /* its credits are back: take its deploys again */
};

struct uplink_event
{
  enum uplink_event_kind kind;
  uint32_t reqid;  /* STOP_PROJECT: the control plane's; USAGE_REPLY: the client's */
  uint64_t client; /* USAGE_REPLY: the asking client's serial */
  char project[32];
  uint8_t type; /* USAGE_REPLY: MSG_USAGE_RESULT or MSG_ERROR, decoded in msg */
  union
  {
    struct msg_usage_result usage;
    struct msg_error error;
  } msg;
};

struct uplink;

int uplink_start (const struct uplink_config *cfg, struct journal *j, struct uplink **out,
                  struct error *err);
/* Ends the thread (at once, whatever it waits on) and frees u. */
void uplink_stop (struct uplink *u);
/* Readable (an eventfd) when events wait for the loop thread. */
int uplink_event_fd (struct uplink *u);
/* 1: *ev filled (uplink_event_clear it after), 0: none left. */
int uplink_next_event (struct uplink *u, struct uplink_event *ev);
void uplink_event_clear (struct uplink_event *ev);
/* New records are in the journal. */
void uplink_notify (struct uplink *u);
/* Ask the control plane's ledger; the answer comes back as an event.
 * -1 (and err) when the control plane is not connected. */
int uplink_usage (struct uplink *u, uint64_t client, uint32_t reqid, const struct msg_usage *m,
                  struct error *err);
/* The uplink's figures for /metrics: delays from a batch's newest sample
 * to its acknowledgement, over the acks of the last minute. */
struct uplink_stats
{
  bool connected;
  uint64_t acked_seq, acks;
  double delay_p50_s, delay_p99_s, delay_max_s;
};
void uplink_stats (struct uplink *u, struct uplink_stats *out);
/* Report what a STOP_PROJECT stopped. */
void uplink_stopped (struct uplink *u, uint32_t reqid, const char *project, char **ids);

#endif
