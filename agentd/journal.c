#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/fsutil.h"
#include "../proto/proto.h"

/* A record: u32 payload length, u32 CRC-32C of the payload (both little
 * endian), then the payload: varint seq, varint ts_ms, varint length +
 * boot id, varint k (values per sample), varint n, and n samples (varint
 * length + id, then k varints: the version and the counters in the order
 * of SAMPLE_VALUES). A reader takes the values it knows and skips the
 * rest; values a record lacks are 0. */
#define RECORD_HEADER 8
#define RECORD_MAX (16u << 20)
#define SAMPLE_VALUES 13
#define SAMPLE_VALUES_MAX 64

/* A sample's values, in journal order. */
static void
sample_values (struct msg_usage_sample *s, uint64_t *v[SAMPLE_VALUES])
{
  uint64_t *f[SAMPLE_VALUES] = { &s->version,   &s->cpu_usec, &s->memory_current, &s->memory_peak,
                                 &s->io_read,   &s->io_write, &s->pids,           &s->net_rx,
                                 &s->net_tx,    &s->disk_bytes, &s->psi_cpu_us,   &s->psi_memory_us,
                                 &s->psi_io_us };
  memcpy (v, f, sizeof f);
}

struct journal
{
  char dir[512];
  int dirfd;
  int fd; /* the current segment, appended to */
  uint64_t seg_first, seg_bytes;
  uint64_t next_seq, total_bytes, max_bytes;
  uint64_t warned_at; /* the seq of the last "filling" warning */
  char boot_id[40];
  pthread_mutex_t lock; /* total_bytes, next_seq and segment removal: the uplink reads and releases */
};

/* CRC-32C (Castagnoli): the SSE4.2 instruction where the CPU has it (a
 * whole journal is checked at every start), else a byte table. */
static uint32_t crc_table[256];
static bool crc_hw;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void
crc_init (void)
{
  for (uint32_t i = 0; i < 256; i++)
    {
      uint32_t c = i;
      for (int k = 0; k < 8; k++)
        c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      crc_table[i] = c;
    }
#if defined(__x86_64__)
  crc_hw = __builtin_cpu_supports ("sse4.2");
#endif
}

#if defined(__x86_64__)
__attribute__ ((target ("sse4.2"))) static uint32_t
crc32c_hw (uint32_t c, const uint8_t *p, size_t n)
{
  for (; n >= 8; n -= 8, p += 8)
    {
      uint64_t v;
      memcpy (&v, p, 8);
      c = (uint32_t) __builtin_ia32_crc32di (c, v);
    }
  for (; n > 0; n--, p++)
    c = __builtin_ia32_crc32qi (c, *p);
  return c;
}
#endif

static uint32_t
crc32c (const uint8_t *p, size_t n)
{
  pthread_once (&crc_once, crc_init);
#if defined(__x86_64__)
  if (crc_hw)
    return ~crc32c_hw (~0u, p, n);
#endif
  uint32_t c = ~0u;
  for (size_t i = 0; i < n; i++)
    c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return ~c;
}

static void
put_u32 (uint8_t *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t) (v >> (8 * i));
}

static uint32_t
get_u32 (const uint8_t *p)
{
  return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

static void
put_varint (struct proto_buf *b, uint64_t v)
{
  uint8_t tmp[10];
  proto_buf_append (b, tmp, proto_varint_encode (v, tmp));
}

static void
put_string (struct proto_buf *b, const char *s)
{
  size_t n = strlen (s);
  put_varint (b, n);
  proto_buf_append (b, s, n);
}

/* ---- decoding ------------------------------------------------------------------ */

struct cursor
{
  const uint8_t *p;
  size_t n, at;
  bool bad;
};

static uint64_t
get_varint (struct cursor *c)
{
  uint64_t v = 0;
  size_t k = c->bad ? 0 : proto_varint_decode (c->p + c->at, c->n - c->at, &v);
  if (k == 0)
    c->bad = true;
  c->at += k;
  return v;
}

static const char *
get_string (struct cursor *c, size_t *len)
{
  uint64_t n = get_varint (c);
  if (c->bad || n > c->n - c->at)
    {
      c->bad = true;
      return NULL;
    }
  const char *s = (const char *) c->p + c->at;
  c->at += (size_t) n;
  *len = (size_t) n;
  return s;
}


static void
record_clear (struct msg_usage_record *r)
{
  for (size_t i = 0; i < r->n_samples; i++)
    free (r->samples[i].id);
  free (r->samples);
  free (r->boot_id);
  memset (r, 0, sizeof *r);
}

static int
decode_payload (const uint8_t *p, size_t n, struct msg_usage_record *r)
{
  struct cursor c = { p, n, 0, false };
  memset (r, 0, sizeof *r);
  r->seq = get_varint (&c);
  r->ts_ms = get_varint (&c);
  size_t len = 0;
  const char *boot = get_string (&c, &len);
  if (boot)
    r->boot_id = strndup (boot, len);
  uint64_t k = get_varint (&c);
  uint64_t count = get_varint (&c);
  if (c.bad || count > n || k > SAMPLE_VALUES_MAX)
    {
      record_clear (r);
      return -1;
    }
  r->samples = calloc (count + 1, sizeof *r->samples);
  if (r->samples == NULL)
    return -1;
  for (uint64_t i = 0; i < count && !c.bad; i++)
    {
      struct msg_usage_sample *s = &r->samples[r->n_samples];
      const char *id = get_string (&c, &len);
      if (id == NULL)
        break;
      s->id = strndup (id, len);
      r->n_samples++;
      uint64_t *f[SAMPLE_VALUES];
      sample_values (s, f);
      for (uint64_t v = 0; v < k; v++)
        {
          uint64_t x = get_varint (&c);
          if (v < SAMPLE_VALUES)
            *f[v] = x;
        }
    }
  if (c.bad || c.at != n)
    {
      record_clear (r);
      return -1;
    }
  return 0;
}

/* Walk the records of one segment's bytes: the offset where the valid ones
 * end. fn (may be NULL) sees each; a non-zero return from it stops. */
static size_t
walk (const uint8_t *buf, size_t len, uint64_t *last_seq,
      int (*fn) (void *ctx, const struct msg_usage_record *r), void *ctx, int *stop)
{
  size_t at = 0;
  while (len - at >= RECORD_HEADER)
    {
      uint32_t n = get_u32 (buf + at), crc = get_u32 (buf + at + 4);
      if (n == 0 || n > RECORD_MAX || n > len - at - RECORD_HEADER
          || crc32c (buf + at + RECORD_HEADER, n) != crc)
        break;
      struct msg_usage_record r;
      if (decode_payload (buf + at + RECORD_HEADER, n, &r) < 0)
        break;
      *last_seq = r.seq;
      if (fn && (*stop = fn (ctx, &r)) != 0)
        {
          record_clear (&r);
          return at + RECORD_HEADER + n;
        }
      record_clear (&r);
      at += RECORD_HEADER + n;
    }
  return at;
}

static int
cmp_u64 (const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
  return x < y ? -1 : x > y;
}

/* The segments' first sequence numbers, sorted. */
static int
list_segments (int dirfd, uint64_t **out, size_t *n, struct error *err)
{
  int fd = openat (dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* not dup: that shares the read position */
  DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
  if (d == NULL)
    {
      if (fd >= 0)
        close (fd);
      return error_set (err, errno, "list journal segments");
    }
  size_t cap = 16;
  *n = 0;
  *out = malloc (cap * sizeof **out);
  struct dirent *e;
  while (*out && (e = readdir (d)) != NULL)
    {
      uint64_t first;
      char tail;
      if (sscanf (e->d_name, "seg-%16" SCNx64 ".log%c", &first, &tail) != 1)
        continue;
      if (*n == cap)
        {
          uint64_t *g = realloc (*out, (cap *= 2) * sizeof **out);
          if (g == NULL)
            break;
          *out = g;
        }
      (*out)[(*n)++] = first;
    }
  closedir (d);
  if (*out == NULL)
    return error_set (err, ENOMEM, "list journal segments");
  qsort (*out, *n, sizeof **out, cmp_u64);
  return 0;
}

/* A segment's bytes from offset on. */
static char *
read_segment (int dirfd, uint64_t first, uint64_t offset, size_t *len)
{
  char name[40];
  snprintf (name, sizeof name, "seg-%016" PRIx64 ".log", first);
  cleanup_close int fd = openat (dirfd, name, O_RDONLY | O_CLOEXEC);
  struct stat st;
  *len = 0;
  if (fd < 0 || fstat (fd, &st) < 0 || (uint64_t) st.st_size < offset)
    return NULL;
  size_t want = (size_t) ((uint64_t) st.st_size - offset);
  char *buf = malloc (want + 1);
  ssize_t r = buf ? pread (fd, buf, want, (off_t) offset) : -1;
  *len = r > 0 ? (size_t) r : 0;
  return buf;
}

/* journal_scan: records below next_seq are passed over. */
struct skip_ctx
{
  uint64_t next_seq;
  int (*fn) (void *ctx, const struct msg_usage_record *r);
  void *ctx;
};

static int
skip_old (void *ctx, const struct msg_usage_record *r)
{
  struct skip_ctx *sc = ctx;
  if (r->seq < sc->next_seq)
    return 0;
  sc->next_seq = r->seq + 1;
  return sc->fn (sc->ctx, r);
}

static int
open_segment (struct journal *j, uint64_t first, struct error *err)
{
  char name[40];
  snprintf (name, sizeof name, "seg-%016" PRIx64 ".log", first);
  if (j->fd >= 0)
    close (j->fd);
  j->fd = openat (j->dirfd, name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (j->fd < 0)
    return error_set (err, errno, "journal segment `%s/%s`", j->dir, name);
  struct stat st;
  j->seg_first = first;
  j->seg_bytes = fstat (j->fd, &st) == 0 ? (uint64_t) st.st_size : 0;
  fsync (j->dirfd); /* the new name is durable too */
  return 0;
}

int
journal_open (const char *dir, uint64_t max_bytes, struct journal **out, struct error *err)
{
  if (mkdir_p (dir, 0700, err) < 0)
    return -1;
  struct journal *j = calloc (1, sizeof *j);
  if (j == NULL)
    return error_set (err, ENOMEM, "journal");
  snprintf (j->dir, sizeof j->dir, "%s", dir);
  j->fd = -1;
  j->max_bytes = max_bytes;
  pthread_mutex_init (&j->lock, NULL);
  j->dirfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct error ignored;
  if (read_file_at (AT_FDCWD, "/proc/sys/kernel/random/boot_id", j->boot_id, sizeof j->boot_id,
                    &ignored) > 0)
    j->boot_id[strcspn (j->boot_id, "\n")] = '\0';
  uint64_t *segs = NULL;
  size_t n = 0;
  if (j->dirfd < 0 || list_segments (j->dirfd, &segs, &n, err) < 0)
    {
      if (j->dirfd < 0)
        error_set (err, errno, "journal `%s`", dir);
      journal_close (j);
      return -1;
    }
  uint64_t last_seq = 0;
  bool any = false;
  for (size_t i = 0; i < n; i++)
    {
      size_t len = 0;
      cleanup_free char *buf = read_segment (j->dirfd, segs[i], 0, &len);
      int stop = 0;
      uint64_t seq = last_seq;
      size_t good = buf ? walk ((const uint8_t *) buf, len, &seq, NULL, NULL, &stop) : 0;
      any |= good > 0;
      last_seq = seq;
      if (good < len)
        {
          char name[40];
          snprintf (name, sizeof name, "seg-%016" PRIx64 ".log", segs[i]);
          cleanup_close int fd = openat (j->dirfd, name, O_WRONLY | O_CLOEXEC);
          if (fd < 0 || ftruncate (fd, (off_t) good) < 0 || fsync (fd) < 0)
            {
              error_set (err, errno, "journal: cut `%s/%s`", dir, name);
              free (segs);
              journal_close (j);
              return -1;
            }
          fprintf (stderr, "agentd: journal: %s: cut a torn or corrupt tail at byte %zu (%zu bytes dropped)\n",
                   name, good, len - good);
        }
      j->total_bytes += good;
    }
  j->next_seq = any ? last_seq + 1 : 1;
  int r = open_segment (j, n ? segs[n - 1] : j->next_seq, err);
  free (segs);
  if (r < 0)
    {
      journal_close (j);
      return -1;
    }
  *out = j;
  return 0;
}

void
journal_close (struct journal *j)
{
  if (j == NULL)
    return;
  if (j->fd >= 0)
    close (j->fd);
  if (j->dirfd >= 0)
    close (j->dirfd);
  pthread_mutex_destroy (&j->lock);
  free (j);
}

uint64_t
journal_next_seq (struct journal *j)
{
  pthread_mutex_lock (&j->lock);
  uint64_t seq = j->next_seq;
  pthread_mutex_unlock (&j->lock);
  return seq;
}

/* Remove the oldest segments: quietly those whose every record is at or
 * below acked (the control plane holds them), loudly those the bound pushes
 * out (their usage is lost). The current segment stays. */
static void
drop_segments (struct journal *j, uint64_t incoming, uint64_t acked)
{
  pthread_mutex_lock (&j->lock);
  uint64_t *segs = NULL;
  size_t n = 0;
  struct error err = { 0 };
  if (list_segments (j->dirfd, &segs, &n, &err) < 0)
    {
      pthread_mutex_unlock (&j->lock);
      return;
    }
  for (size_t i = 0; i + 1 < n; i++)
    {
      bool acknowledged = segs[i + 1] <= acked + 1;
      bool over = j->max_bytes && j->total_bytes + incoming > j->max_bytes;
      if (!acknowledged && !over)
        break;
      char name[40];
      struct stat st;
      snprintf (name, sizeof name, "seg-%016" PRIx64 ".log", segs[i]);
      if (fstatat (j->dirfd, name, &st, 0) < 0 || unlinkat (j->dirfd, name, 0) < 0)
        continue;
      j->total_bytes -= (uint64_t) st.st_size < j->total_bytes ? (uint64_t) st.st_size : j->total_bytes;
      if (!acknowledged)
        fprintf (stderr, "agentd: journal FULL (bound %" PRIu64 " bytes): dropped %s, usage "
                         "not acknowledged by a control plane is lost\n",
                 j->max_bytes, name);
    }
  free (segs);
  pthread_mutex_unlock (&j->lock);
}

/* Keep the journal under its bound, and say so while it fills (above 80%,
 * at most once a minute). */
static void
enforce_bound (struct journal *j, uint64_t incoming)
{
  if (j->max_bytes == 0)
    return;
  pthread_mutex_lock (&j->lock);
  uint64_t total = j->total_bytes;
  pthread_mutex_unlock (&j->lock);
  if (total + incoming > j->max_bytes / 5 * 4 && j->next_seq >= j->warned_at + 60)
    {
      j->warned_at = j->next_seq;
      fprintf (stderr, "agentd: journal filling: %" PRIu64 " of %" PRIu64 " bytes hold usage no "
                       "control plane has acknowledged\n", total, j->max_bytes);
    }
  if (total + incoming > j->max_bytes)
    drop_segments (j, incoming, 0);
}

void
journal_release (struct journal *j, uint64_t acked)
{
  drop_segments (j, 0, acked);
}

int
journal_append (struct journal *j, uint64_t ts_ms, const struct msg_usage_sample *s, size_t n,
                struct error *err)
{
  struct proto_buf b = { 0 };
  uint8_t header[RECORD_HEADER] = { 0 };
  proto_buf_append (&b, header, sizeof header);
  put_varint (&b, j->next_seq);
  put_varint (&b, ts_ms);
  put_string (&b, j->boot_id);
  put_varint (&b, SAMPLE_VALUES);
  put_varint (&b, n);
  for (size_t i = 0; i < n; i++)
    {
      put_string (&b, s[i].id);
      struct msg_usage_sample copy = s[i];
      uint64_t *v[SAMPLE_VALUES];
      sample_values (&copy, v);
      for (size_t k = 0; k < SAMPLE_VALUES; k++)
        put_varint (&b, *v[k]);
    }
  if (b.oom || b.len - RECORD_HEADER > RECORD_MAX)
    {
      proto_buf_free (&b);
      return error_set (err, b.oom ? ENOMEM : EFBIG, "journal record");
    }
  put_u32 (b.data, (uint32_t) (b.len - RECORD_HEADER));
  put_u32 (b.data + 4, crc32c (b.data + RECORD_HEADER, b.len - RECORD_HEADER));
  enforce_bound (j, b.len);
  if (j->seg_bytes + b.len > JOURNAL_SEGMENT_BYTES && j->seg_bytes > 0
      && open_segment (j, j->next_seq, err) < 0)
    {
      proto_buf_free (&b);
      return -1;
    }
  ssize_t w = write (j->fd, b.data, b.len);
  if (w != (ssize_t) b.len)
    {
      int e = w < 0 ? errno : EIO;
      if (w > 0 && ftruncate (j->fd, (off_t) j->seg_bytes) < 0)
        e = errno; /* the next open cuts it anyway */
      proto_buf_free (&b);
      return error_set (err, e, "journal: append record %" PRIu64, j->next_seq);
    }
  j->seg_bytes += b.len;
  pthread_mutex_lock (&j->lock);
  j->total_bytes += b.len;
  j->next_seq++;
  pthread_mutex_unlock (&j->lock);
  proto_buf_free (&b);
  return 0;
}

int
journal_sync (struct journal *j, struct error *err)
{
  if (fdatasync (j->fd) < 0)
    return error_set (err, errno, "journal: sync");
  return 0;
}

int
journal_read (const char *dir, int (*fn) (void *ctx, const struct msg_usage_record *r), void *ctx,
              struct error *err)
{
  cleanup_close int dirfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0)
    return error_set (err, errno, "journal `%s`", dir);
  uint64_t *segs = NULL;
  size_t n = 0;
  if (list_segments (dirfd, &segs, &n, err) < 0)
    return -1;
  uint64_t seq = 0;
  int stop = 0;
  for (size_t i = 0; i < n && !stop; i++)
    {
      size_t len = 0;
      cleanup_free char *buf = read_segment (dirfd, segs[i], 0, &len);
      if (buf)
        walk ((const uint8_t *) buf, len, &seq, fn, ctx, &stop);
    }
  free (segs);
  return 0;
}

int
journal_scan (struct journal *j, struct journal_cursor *c,
              int (*fn) (void *ctx, const struct msg_usage_record *r), void *ctx, struct error *err)
{
  uint64_t *segs = NULL;
  size_t n = 0;
  if (list_segments (j->dirfd, &segs, &n, err) < 0)
    return -1;
  /* Resume where the cursor stands, or find the segment holding next_seq
   * (the oldest one when the journal no longer has it). */
  size_t k = 0;
  bool resume = false;
  for (size_t i = 0; i < n; i++)
    if (segs[i] == c->seg_first && c->offset > 0)
      {
        k = i;
        resume = true;
      }
  if (!resume)
    {
      for (size_t i = 0; i < n; i++)
        if (segs[i] <= c->next_seq)
          k = i;
      c->offset = 0;
    }
  int stop = 0;
  for (; k < n && !stop; k++)
    {
      size_t len = 0;
      if (c->seg_first != segs[k])
        c->offset = 0;
      c->seg_first = segs[k];
      cleanup_free char *buf = read_segment (j->dirfd, segs[k], c->offset, &len);
      if (buf == NULL)
        break;
      struct skip_ctx sc = { c->next_seq, fn, ctx };
      uint64_t seq = 0;
      size_t at = walk ((const uint8_t *) buf, len, &seq, skip_old, &sc, &stop);
      c->offset += at;
      c->next_seq = sc.next_seq;
      if (k + 1 < n && at < len && !stop)
        break; /* a bad record mid-journal: stop here, do not skip it */
    }
  free (segs);
  return 0;
}
