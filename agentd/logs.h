/* Workload logs: stdout and stderr reach agentd through named pipes the
 * workload holds open for reading and writing, so it never gets SIGPIPE and
 * its output waits in the pipe while agentd restarts. agentd stamps each
 * line and appends it to the deployment's log file, bounded by rotation. */
#ifndef AGENTD_LOGS_H
#define AGENTD_LOGS_H

#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

#define LOG_LINE_MAX 4096

enum log_stream
{
  LOG_STDOUT = 1,
  LOG_STDERR = 2,
  LOG_AGENTD = 3,
};

/* One deployment's log: dir/<name>.log and one rotated dir/<name>.log.1. */
struct log_file
{
  int fd;
  char path[512];
  uint64_t size, max_size;
};

int log_file_open (struct log_file *f, const char *dir, const char *name, uint64_t max_size,
                   struct error *err);
void log_file_close (struct log_file *f);
/* Append one stamped line (text without its newline). */
int log_file_append (struct log_file *f, uint64_t ts_us, enum log_stream s, const char *text,
                     size_t len, struct error *err);

struct log_record
{
  uint64_t ts_us;
  enum log_stream stream;
  char *text;
};

/* The last `tail` records (0: all) of the log and its rotated part. */
int log_file_read (const char *path, uint64_t tail, struct log_record **out, size_t *n,
                   struct error *err);
void log_records_free (struct log_record *r, size_t n);

/* One stream's pipe, as the daemon reads it. */
struct log_pipe
{
  int fd; /* read end, non-blocking */
  enum log_stream stream;
  char path[512];
  char partial[LOG_LINE_MAX];
  size_t partial_len;
};

/* Make the fifo at path (mode 0600, 1 MiB buffer) and open agentd's read
 * end; *workload_fd is the read-write end the workload gets as stdout or
 * stderr. With workload_fd == NULL an existing fifo is reopened (adoption). */
int log_pipe_open (struct log_pipe *p, const char *path, enum log_stream s, int *workload_fd,
                   struct error *err);
void log_pipe_close (struct log_pipe *p, int unlink_fifo);

/* Read what is there and call line() per complete line (and per
 * LOG_LINE_MAX bytes of a longer one). Returns 0, or -1 on a read error. */
int log_pipe_drain (struct log_pipe *p, void (*line) (void *ctx, enum log_stream s,
                                                      const char *text, size_t len),
                    void *ctx);

uint64_t log_now_us (void);

#endif
