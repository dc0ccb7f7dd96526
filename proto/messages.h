/* The messages of the protocol (PROTOCOL.md, "Messages"), as C structs with
 * a field table each; proto_encode/proto_decode work for all of them.
 * Decoded strings are owned NUL-terminated copies; proto_msg_clear frees
 * them. An absent string is NULL, an absent number 0. */
#ifndef PROTO_MESSAGES_H
#define PROTO_MESSAGES_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

enum proto_type
{
  MSG_ERROR = 0x01,
  MSG_DEPLOY = 0x10,
  MSG_PROGRESS = 0x11,
  MSG_DEPLOY_RESULT = 0x12,
  MSG_LIST = 0x20,
  MSG_LIST_RESULT = 0x21,
  MSG_LOGS = 0x30,
  MSG_LOG_LINES = 0x31,
  MSG_DOWN = 0x40,
  MSG_DOWN_RESULT = 0x41,
  MSG_ENV_LIST = 0x50,
  MSG_ENV_LIST_RESULT = 0x51,
  MSG_STATUS = 0x60,
  MSG_STATUS_RESULT = 0x61,
  MSG_USAGE = 0x70,
  MSG_USAGE_RESULT = 0x71,
  /* The uplink: agentd -> control plane (PROTOCOL.md, "Uplink"). */
  MSG_HELLO = 0x80,
  MSG_HELLO_RESULT = 0x81,
  MSG_USAGE_BATCH = 0x82,
  MSG_USAGE_ACK = 0x83,
  MSG_STOP_PROJECT = 0x84,
  MSG_STOP_PROJECT_RESULT = 0x85,
  MSG_RESUME_PROJECT = 0x86,
};

/* Error codes carried by MSG_ERROR. */
enum proto_error_code
{
  PROTO_E_MALFORMED = 1,    /* the frame or payload could not be decoded */
  PROTO_E_UNKNOWN_TYPE = 2, /* no such request type */
  PROTO_E_INVALID = 3,      /* decoded, but a value is wrong (names the field) */
  PROTO_E_NOT_FOUND = 4,
  PROTO_E_FAILED = 5,       /* the operation ran and failed (the message says why) */
  PROTO_E_DENIED = 6,
  PROTO_E_TOO_LARGE = 7,
};

struct msg_error
{
  uint64_t code;
  char *message;
};

struct msg_deploy
{
  char *project, *env, *service, *image;
  char **argv;    /* NULL-terminated; NULL: the image's Entrypoint/Cmd */
  char **envv;    /* K=V, NULL-terminated */
  uint64_t port;  /* the service's TCP port inside the workload, 0: none */
  uint64_t memory_bytes, cpu_millis, pids;
  char *restart;  /* never | on-failure | always (default on-failure) */
  uint64_t ttl_seconds; /* 0: no expiry */
  uint64_t insecure_registry;
  uint64_t health_timeout_s; /* 0: 30 s */
};

struct msg_progress
{
  char *phase; /* pull | unpack | start | health */
  char *message;
  uint64_t done, total;
};

struct msg_deploy_result
{
  char *id;
  uint64_t version;
  char *status;  /* running | failed */
  char *address; /* ip:port in the workload's network namespace */
  char *url;     /* the stable host endpoint, e.g. http://127.0.0.1:PORT */
  uint64_t pull_us, start_us, ready_us, total_us;
  uint64_t exec_mono_ns; /* CLOCK_MONOTONIC when the workload exec'd */
};

struct msg_deployment_info
{
  char *id, *project, *env, *service, *image;
  char *state; /* starting | running | restarting | exited | failed */
  uint64_t version, pid, restarts;
  char *address, *url;
  char *last_exit;
  uint64_t started_at; /* unix seconds */
  uint64_t port, host_port;
  char *restart;
};

struct msg_list
{
  char *project, *env, *service;
};

struct msg_list_result
{
  struct msg_deployment_info *deployments;
  size_t n_deployments;
};

struct msg_logs
{
  char *project, *env, *service;
  uint64_t tail;   /* last N lines, 0: all kept */
  uint64_t follow; /* keep streaming new lines */
};

struct msg_log_line
{
  uint64_t ts_us;  /* unix microseconds */
  uint64_t stream; /* 1 stdout, 2 stderr, 3 agentd */
  char *text;
};

struct msg_log_lines
{
  struct msg_log_line *lines;
  size_t n_lines;
};

struct msg_down
{
  char *project, *env, *service; /* service NULL: the whole environment */
};

struct msg_down_result
{
  char **removed; /* ids */
};

struct msg_env_info
{
  char *project, *env;
  uint64_t services, production, ttl_seconds, expires_at;
};

struct msg_env_list
{
  char *project;
};

struct msg_env_list_result
{
  struct msg_env_info *envs;
  size_t n_envs;
};

struct msg_status
{
  uint64_t unused;
};

struct msg_status_result
{
  char *version, *root, *cgroup, *bridge, *subnet;
  uint64_t pid, uptime_s, deployments, running;
};

struct msg_usage
{
  char *project, *env, *service; /* filters */
  uint64_t since_s;              /* seconds ago, 0: all the journal holds */
};

struct msg_usage_row
{
  char *deployment;
  uint64_t seconds, cpu_us, memory_byte_seconds, net_rx, net_tx;
  uint64_t cost_nusd;         /* nano-dollars at the answering side's rates */
  uint64_t disk_byte_seconds; /* the writable layer */
};

struct msg_usage_result
{
  struct msg_usage_row *rows;
  size_t n_rows;
  char *source; /* "journal": this node's own; "control": its control plane's ledger */
};

/* One workload's cumulative counters at one second (the usage journal's
 * unit, DESIGN.md "Metering"). Counters count from the version's start. */
struct msg_usage_sample
{
  char *id; /* deployment id: <project>.<env>.<service> */
  uint64_t version;
  uint64_t cpu_usec, memory_current, memory_peak, io_read, io_write, pids, net_rx, net_tx;
  uint64_t disk_bytes; /* the writable layer */
  uint64_t psi_cpu_us, psi_memory_us, psi_io_us; /* cgroup v2 pressure stalls ("some") */
};

/* One second of one node: every running workload's sample. (node, boot_id,
 * seq) names it; seq grows by one per record on a node. */
struct msg_usage_record
{
  uint64_t seq, ts_ms;
  char *boot_id;
  struct msg_usage_sample *samples;
  size_t n_samples;
};

struct msg_hello
{
  char *node_id, *boot_id, *token;
  uint64_t version;  /* PROTO_VERSION */
  uint64_t next_seq; /* the sequence the node's next record gets */
};

struct msg_hello_result
{
  uint64_t acked_seq; /* the node's highest contiguous record stored, 0: none */
};

struct msg_usage_batch
{
  struct msg_usage_record *records; /* ascending, contiguous, from acked_seq + 1 */
  size_t n_records;
  uint64_t lost_before; /* the node no longer holds records below this (journal bound) */
};

struct msg_usage_ack
{
  uint64_t acked_seq;
};

struct msg_stop_project
{
  char *project, *reason;
};

struct msg_resume_project
{
  char *project;
};

struct msg_stop_project_result
{
  char *project;
  char **stopped; /* deployment ids */
};

struct proto_msg_desc;
/* The table for a message type, or NULL for a type this side does not know. */
const struct proto_msg_desc *proto_msg_desc (uint8_t type);
const char *proto_msg_name (uint8_t type);

int proto_encode (uint8_t type, const void *msg, struct proto_buf *out, struct error *err);
/* Unknown fields are skipped; a known field with the wrong wire type, a
 * string with a NUL byte, or a truncated field is an error naming it. */
int proto_decode (uint8_t type, const uint8_t *p, size_t n, void *msg, struct error *err);
void proto_msg_clear (uint8_t type, void *msg);

#endif
