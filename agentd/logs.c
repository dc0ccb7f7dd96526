#include "logs.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/cleanup.h"

uint64_t
log_now_us (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

int
log_file_open (struct log_file *f, const char *dir, const char *name, uint64_t max_size,
               struct error *err)
{
  if (snprintf (f->path, sizeof f->path, "%s/%s.log", dir, name) >= (int) sizeof f->path)
    return error_setx (err, ENAMETOOLONG, "log path for `%s` is too long", name);
  f->fd = open (f->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (f->fd < 0)
    return error_set (err, errno, "open log `%s`", f->path);
  struct stat st;
  f->size = fstat (f->fd, &st) == 0 ? (uint64_t) st.st_size : 0;
  f->max_size = max_size;
  return 0;
}

void
log_file_close (struct log_file *f)
{
  if (f->fd >= 0)
    close (f->fd);
  f->fd = -1;
}

static int
log_rotate (struct log_file *f, struct error *err)
{
  char old[sizeof f->path + 2];
  snprintf (old, sizeof old, "%s.1", f->path);
  if (rename (f->path, old) < 0)
    return error_set (err, errno, "rotate log `%s`", f->path);
  close (f->fd);
  f->fd = open (f->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (f->fd < 0)
    return error_set (err, errno, "open log `%s`", f->path);
  f->size = 0;
  return 0;
}

int
log_file_append (struct log_file *f, uint64_t ts_us, enum log_stream s, const char *text,
                 size_t len, struct error *err)
{
  if (f->fd < 0)
    return 0;
  char head[40];
  int hn = snprintf (head, sizeof head, "%" PRIu64 " %c ", ts_us, "?oea"[s & 3]);
  /* Control characters other than tab would break the line format. */
  char line[LOG_LINE_MAX + 48];
  memcpy (line, head, (size_t) hn);
  size_t n = (size_t) hn;
  for (size_t i = 0; i < len && i < LOG_LINE_MAX; i++)
    line[n++] = (unsigned char) text[i] < 0x20 && text[i] != '\t' ? ' ' : text[i];
  line[n++] = '\n';
  if (f->max_size && f->size + n > f->max_size && log_rotate (f, err) < 0)
    return -1;
  if (write (f->fd, line, n) != (ssize_t) n)
    return error_set (err, errno, "write log `%s`", f->path);
  f->size += n;
  return 0;
}

static int
parse_records (char *buf, size_t len, struct log_record **out, size_t *n, size_t *cap)
{
  char *p = buf, *end = buf + len;
  while (p < end)
    {
      char *nl = memchr (p, '\n', (size_t) (end - p));
      if (nl == NULL)
        break; /* a torn last line */
      *nl = '\0';
      uint64_t ts;
      char kind;
      int off = 0;
      if (sscanf (p, "%" SCNu64 " %c %n", &ts, &kind, &off) == 2 && off > 0)
        {
          if (*n == *cap)
            {
              *cap = *cap ? *cap * 2 : 256;
              struct log_record *g = realloc (*out, *cap * sizeof **out);
              if (g == NULL)
                return -1;
              *out = g;
            }
          (*out)[*n] = (struct log_record){ ts, kind == 'o' ? LOG_STDOUT : kind == 'e' ? LOG_STDERR
                                                                                      : LOG_AGENTD,
                                            strdup (p + off) };
          (*n)++;
        }
      p = nl + 1;
    }
  return 0;
}

static char *
slurp (const char *path, size_t *len)
{
  cleanup_close int fd = open (path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat (fd, &st) < 0)
    return NULL;
  char *buf = malloc ((size_t) st.st_size + 1);
  if (buf == NULL)
    return NULL;
  ssize_t r = read (fd, buf, (size_t) st.st_size);
  *len = r > 0 ? (size_t) r : 0;
  return buf;
}

int
log_file_read (const char *path, uint64_t tail, struct log_record **out, size_t *n,
               struct error *err)
{
  *out = NULL;
  *n = 0;
  size_t cap = 0;
  char rotated[600];
  snprintf (rotated, sizeof rotated, "%s.1", path);
  const char *parts[2] = { rotated, path };
  for (int i = 0; i < 2; i++)
    {
      size_t len = 0;
      cleanup_free char *buf = slurp (parts[i], &len);
      if (buf && parse_records (buf, len, out, n, &cap) < 0)
        return error_set (err, ENOMEM, "read log `%s`", path);
    }
  if (tail && *n > tail)
    {
      size_t drop = *n - tail;
      for (size_t i = 0; i < drop; i++)
        free ((*out)[i].text);
      memmove (*out, *out + drop, tail * sizeof **out);
      *n = tail;
    }
  return 0;
}

void
log_records_free (struct log_record *r, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free (r[i].text);
  free (r);
}

int
log_pipe_open (struct log_pipe *p, const char *path, enum log_stream s, int *workload_fd,
               struct error *err)
{
  p->fd = -1;
  p->stream = s;
  p->partial_len = 0;
  snprintf (p->path, sizeof p->path, "%s", path);
  if (workload_fd)
    {
      unlink (path);
      if (mkfifo (path, 0600) < 0)
        return error_set (err, errno, "log fifo `%s`", path);
    }
  p->fd = open (path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (p->fd < 0)
    return error_set (err, errno, "open log fifo `%s`", path);
  if (workload_fd == NULL)
    return 0;
  /* Read-write: the workload is a reader too, so a write never meets a
   * pipe without readers (SIGPIPE) while agentd is away. */
  *workload_fd = open (path, O_RDWR | O_CLOEXEC);
  if (*workload_fd < 0)
    {
      int e = errno;
      close (p->fd);
      p->fd = -1;
      return error_set (err, e, "open log fifo `%s` for the workload", path);
    }
  fcntl (*workload_fd, F_SETPIPE_SZ, 1 << 20); /* best effort: room while agentd restarts */
  return 0;
}

void
log_pipe_close (struct log_pipe *p, int unlink_fifo)
{
  if (p->fd >= 0)
    close (p->fd);
  p->fd = -1;
  if (unlink_fifo && p->path[0])
    unlink (p->path);
}

int
log_pipe_drain (struct log_pipe *p, void (*line) (void *ctx, enum log_stream s, const char *text,
                                                  size_t len),
                void *ctx)
{
  char buf[65536];
  for (;;)
    {
      ssize_t n = read (p->fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return errno == EAGAIN ? 0 : -1;
      if (n == 0)
        return 0;
      for (ssize_t i = 0; i < n; i++)
        {
          if (buf[i] != '\n')
            p->partial[p->partial_len++] = buf[i];
          if (buf[i] == '\n' || p->partial_len == LOG_LINE_MAX)
            {
              line (ctx, p->stream, p->partial, p->partial_len);
              p->partial_len = 0;
            }
        }
    }
}
