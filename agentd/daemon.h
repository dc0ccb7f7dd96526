/* agentd serve: the daemon's state, owned by its one loop thread. Slow work
 * (image pulls) runs in worker threads that hand results back through a
 * pipe, never touching this state. */
#ifndef AGENTD_DAEMON_H
#define AGENTD_DAEMON_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "../builder/image.h"
#include "../common/clock.h"
#include "../proto/messages.h"
#include "../runtime/runtime.h"
#include "journal.h"
#include "logs.h"
#include "loop.h"
#include "netns.h"
#include "uplink.h"

#define NET_POOL_SIZE 4

enum restart_policy
{
  RESTART_NEVER,
  RESTART_ON_FAILURE,
  RESTART_ALWAYS,
};

enum instance_state
{
  INST_STARTING, /* exec'd, waiting to be healthy */
  INST_RUNNING,  /* healthy; the current version */
  INST_DRAINING, /* replaced: finishing forwarded connections, then stopped */
  INST_EXITED,
};

struct deployment;
struct client;

/* What a deploy asks for: the spec of one version. */
struct dspec
{
  char *image;
  char **argv, **envv;
  uint16_t port;
  uint64_t memory, cpu_millis, pids;
  enum restart_policy restart;
  bool insecure_registry;
  uint64_t health_timeout_s;
};

/* One started version of a deployment. */
struct instance
{
  struct deployment *dep;
  uint16_t port; /* its spec's port, probed for health */
  uint64_t version;
  char id[80]; /* container id: <deployment id>-<version>-<nonce>, at most 64 */
  char rt_name[80]; /* its cgroup's name (rt_name), to adopt it again */
  enum instance_state state;
  struct rt_container *c;
  pid_t pid;
  uint64_t start_time;
  bool adopted;
  struct net_slot net;
  struct loop_handler pid_h;
  struct log_pipe out, err;
  struct loop_handler out_h, err_h;
  double started_mono;
  double health_deadline, next_probe;
  int probe_fd; /* a connect in flight, or -1 */
  int net_fd[2]; /* the host veth's tx_bytes (= its rx) and rx_bytes, kept open */
  uint64_t net_seen[2]; /* their highest reading: the counters never go back */
  uint64_t disk_bytes; /* its writable layer, measured every DISK_SAMPLE_S */
  double disk_at;
  struct loop_handler probe_h;
  bool probing; /* counted in daemon.probing */
  double drain_deadline;
  int forwarded; /* open forwarded connections */
  bool term_sent;
  double kill_at;
};

/* A deploy request still waiting for its outcome. */
struct pending
{
  struct client *client;
  uint32_t request_id;
  double t_request;          /* monotonic seconds */
  uint64_t pull_us, start_us;
  uint64_t exec_mono_ns;
};

struct deployment
{
  char id[72]; /* <project>.<env>.<service>, each 1-15 of [a-z0-9-_] */
  char *project, *env, *service;
  struct dspec spec;      /* of the serving version (restarts use it) */
  struct dspec next_spec; /* of the version being deployed, until it is healthy */
  bool has_next_spec;

  uint64_t next_version;
  uint16_t host_port; /* the stable 127.0.0.1 endpoint, 0: none */
  int listen_fd;
  struct loop_handler listen_h;

  struct instance *current; /* serving (or the last that ran) */
  struct instance *next;    /* starting, not yet healthy */
  struct instance *draining[4];
  uint64_t restarts, failures_in_row;
  double restart_at; /* 0: none scheduled */
  char last_exit[96];
  uint64_t started_at;
  struct pending *waiter;
  bool pulling;
  struct log_file log;
  struct daemon *d;
  struct deployment *link;
};

struct environment
{
  char *project, *env;
  uint64_t ttl_seconds, expires_at;
  struct environment *link;
};

#define IMAGE_CACHE_SIZE 8

struct image_cache
{
  char *ref;
  struct image_rootfs img;
  struct timespec mtime; /* of index.json when resolved */
  ino_t ino;
  uint64_t used;
};

struct state_writer
{
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  char *pending; /* the newest state text not yet written */
  const char *dir;
  bool stop, running;
};

struct daemon
{
  const char *root;
  const char *socket_path;
  char state_dir[512], log_dir[512], fifo_dir[512];
  struct loop loop;
  struct rt_runtime *rt;
  struct rt_seccomp *seccomp;
  struct net_config net;
  bool net_enabled;
  struct net_slot pool[NET_POOL_SIZE];
  int pool_n;
  double pool_retry_at;
  bool started_since_prepare;
  int probing; /* new versions waiting for their health check */
  uint8_t *addr_used; /* one byte per address of the subnet */
  uint32_t addr_cursor;
  uint16_t port_base;
  uint64_t log_max;
  uint64_t journal_max;
  uid_t allow_uid[16];
  int n_allow_uid;
  gid_t allow_gid;
  bool has_allow_gid;

  int listen_fd;
  struct loop_handler listen_h;
  int signal_fd;
  struct loop_handler signal_h;
  int timer_fd;
  struct loop_handler timer_h;
  int worker_fd[2]; /* pull results from worker threads */
  struct loop_handler worker_h;
  int metrics_fd;
  struct loop_handler metrics_h;

  struct deployment *deployments;
  struct environment *envs;
  struct client *clients;
  double started_mono;
  bool dirty; /* state to save */
  struct deferred *deferred;
  struct fwd_conn *conns;
  struct state_writer writer;
  struct image_cache images[IMAGE_CACHE_SIZE];
  struct journal *journal; /* usage, one record a second */
  double next_sample;
  uint64_t journal_sync_s; /* fsync the journal every this many samples (0: never) */
  uint64_t samples;
  bool has_control;
  struct uplink_config control; /* --control: the uplink's settings */
  struct uplink *uplink;        /* running when has_control */
  struct loop_handler uplink_h;
  char credit_stops[64][16];    /* projects the control plane stopped: deploys refused */
  int n_credit_stops;
  uint64_t client_serial;       /* the last client's */
  uint64_t images_clock;
  /* The preparer thread (prepare.c). */
  pthread_t prep_thread;
  bool prep_running;
  int prep_req[2], prep_res[2];
  struct loop_handler prep_h;
  void *prep_ctx;
  int pool_pending; /* addresses handed to it, not yet back */
};


struct deferred
{
  void (*fn) (void *);
  void *p;
  struct deferred *next;
};

/* deployments.c */
int deploy_request (struct daemon *d, struct client *cl, uint32_t reqid, struct msg_deploy *m,
                    struct error *err);
/* A project the control plane stopped for want of credits (its index in
 * d->credit_stops), or -1. */
int credit_stop_index (struct daemon *d, const char *project);
struct deployment *deployment_find (struct daemon *d, const char *project, const char *env,
                                    const char *service);
int deployment_remove (struct daemon *d, struct deployment *dep, struct error *err);
void deployments_tick (struct daemon *d, double now);
void deployments_free_all (struct daemon *d);
void image_cache_clear (struct daemon *d);
struct info_buf
{
  char addr[32], url[64];
};
void deployment_info (const struct deployment *dep, struct info_buf *b,
                      struct msg_deployment_info *out);
void deployment_log (struct deployment *dep, enum log_stream s, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));
const char *restart_policy_name (enum restart_policy p);
int instance_adopt (struct daemon *d, struct deployment *dep, const char *id, const char *rt_name,
                    uint64_t version, pid_t pid, uint64_t start_time, uint32_t addr,
                    struct error *err);
void deployment_restart_now (struct daemon *d, struct deployment *dep);
void net_pool_fill (struct daemon *d);
void net_addr_release (struct daemon *d, uint32_t addr);

/* prepare.c */
int preparer_start (struct daemon *d, struct error *err);
/* Wire up addr (0: only top up the runtime's spares). */
void preparer_request (struct daemon *d, uint32_t addr);
void preparer_stop (struct daemon *d);
void worker_results (struct loop_handler *h, uint32_t events);
struct environment *environment_get (struct daemon *d, const char *project, const char *env,
                                     bool create);
void environment_drop_if_empty (struct daemon *d, struct environment *e);
int deployment_listen (struct daemon *d, struct deployment *dep, uint16_t port, struct error *err);
void dspec_clear (struct dspec *sp);

/* forward.c: the stable host endpoint, spliced to the current version. */
void forward_accept (struct loop_handler *h, uint32_t events);
/* The instance is going away: its connections stop counting on it. */
void forward_forget_instance (struct daemon *d, struct instance *in);

/* api.c */
struct client;
void api_accept (struct loop_handler *h, uint32_t events);
int client_reply (struct client *cl, uint8_t type, uint16_t flags, uint32_t reqid,
                  const void *msg);
int client_error (struct client *cl, uint32_t reqid, uint64_t code, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));
void client_log_line (struct daemon *d, struct deployment *dep, uint64_t ts, enum log_stream s,
                      const char *text, size_t len);
void clients_forget_deployment (struct daemon *d, struct deployment *dep);
/* Close the connection (freed after the current batch). */
void client_drop (struct client *cl);
/* What the uplink hands over: stop orders and usage answers. */
void uplink_events (struct loop_handler *h, uint32_t events);

/* meter.c: once a second, every running workload's counters into the
 * journal. */
void meter_sample (struct daemon *d, double now);
/* The last counters of an instance about to be torn down, so that its
 * final part-second is billed too. */
void meter_final (struct daemon *d, struct instance *in);
void meter_forget (struct instance *in);

/* state.c */
int state_save (struct daemon *d, struct error *err);
/* Hand the state to the writer thread (the loop goes on at once). */
int state_save_async (struct daemon *d, struct error *err);
int state_writer_start (struct daemon *d, struct error *err);
/* Write what is pending, then end the thread. */
void state_writer_stop (struct daemon *d);
int state_load (struct daemon *d, struct error *err);

/* metrics.c */
void metrics_accept (struct loop_handler *h, uint32_t events);

/* Deferred frees: an object must outlive the epoll batch that saw it. */
void daemon_defer_free (struct daemon *d, void (*fn) (void *), void *p);
void daemon_run_deferred (struct daemon *d);

#define container_of(ptr, type, member) ((type *) ((char *) (ptr) - offsetof (type, member)))

#endif
