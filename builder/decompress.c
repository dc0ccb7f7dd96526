#include "decompress.h"

#include <errno.h>
#include <isa-l/igzip_lib.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_d_forceIgnoreChecksum */
#include <zstd.h>

#include "../common/dlib.h"

#define IN_SIZE (256 * 1024)
#define IN_RING 8 /* input buffers in flight while the blob is copied */
#define CHUNK_SIZE (1024 * 1024)
/* Room for the inflate thread to work ahead through stretches of small files. */
#define QUEUE_LEN 16

struct chunk
{
  unsigned char *data;
  size_t len;
  uint64_t seq;      /* its place in the stream */
};

struct decomp
{
  int fd;
  char what[256];
  uint64_t max_out;
  enum compression comp;

  /* Producer side (the inflate thread). */
  unsigned char *in;  /* the input buffer being inflated: one of ring[] */
  size_t in_len, in_pos;
  bool in_eof;
  unsigned char *ring[IN_RING];
  struct inflate_state *gz;
  ZSTD_DStream *zs;
  bool stream_end;   /* the last frame/member ended */
  uint64_t total_out;
  struct sha256 *hash;

  /* The copy of the blob into the store, with its hash, is made by a
   * thread of its own, from the input buffers the inflate thread fills:
   * buffer in_teed % IN_RING is reused only once it is copied. */
  struct decomp_tee *tee;
  pthread_t tee_thread;
  bool tee_started;
  uint64_t in_read, in_teed;
  size_t ring_len[IN_RING];
  bool tee_stop;
  int tee_errno;      /* the copy failed: its write's errno */
  pthread_cond_t tee_cond;

  /* The queue between the two threads. */
  pthread_t thread;
  bool started;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct chunk queue[QUEUE_LEN];
  int head, count;
  uint64_t produced;  /* chunks made so far: the next one's seq */
  /* The diff-id hash takes chunks in order, by whichever thread has time:
   * the reader as it takes a chunk, or, ahead of it, the producer instead
   * of waiting on a full queue. A chunk is recycled only once hashed. */
  uint64_t hashed;    /* chunks hashed so far: the next one to hash */
  bool hashing;       /* a thread is hashing chunk `hashed` */
  unsigned char *spare[QUEUE_LEN + 2]; /* chunks the reader is done with, reused (no page faults) */
  int n_spare;
  bool done;          /* producer finished (end or error) */
  bool cancel;        /* consumer gave up */
  struct error perr;  /* producer's error, when done with one */
  bool failed;

  /* Consumer side. */
  struct chunk cur;
  size_t cur_pos;
};

/* ISA-L is loaded on first use: Debian ships it only as a shared library,
 * and agentd is linked statically because dynamic loading cost `agentd run`
 * 3-4 ms here. The table is filled once and never changes after. */
struct isal_api
{
  void (*inflate_init) (struct inflate_state *);
  int (*inflate) (struct inflate_state *);
  void (*inflate_reset) (struct inflate_state *);
};

static struct isal_api isal;
static pthread_once_t isal_once = PTHREAD_ONCE_INIT;
static char isal_error[256];

static void
isal_load (void)
{
  const struct dl_symbol syms[] = {
    { "isal_inflate_init", (void **) &isal.inflate_init },
    { "isal_inflate", (void **) &isal.inflate },
    { "isal_inflate_reset", (void **) &isal.inflate_reset },
  };
  if (dl_load ("libisal.so.2", "libisal2", syms, 3, isal_error, sizeof isal_error) < 0)
    isal.inflate = NULL;
}

enum compression
compression_detect (const unsigned char *head, size_t len)
{
  if (len >= 2 && head[0] == 0x1f && head[1] == 0x8b)
    return COMPRESSION_GZIP;
  if (len >= 4 && head[0] == 0x28 && head[1] == 0xb5 && head[2] == 0x2f && head[3] == 0xfd)
    return COMPRESSION_ZSTD;
  return COMPRESSION_NONE;
}

static int
tee_write (struct decomp_tee *t, const unsigned char *buf, size_t n)
{
  sha256_update (t->hash, buf, n);
  t->bytes += n;
  for (size_t off = 0; off < n;)
    {
      ssize_t w = write (t->fd, buf + off, n - off);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        return -1;
      off += w;
    }
  return 0;
}

static void *
tee_main (void *arg)
{
  struct decomp *d = arg;
  pthread_setname_np (pthread_self (), "copy");
  pthread_mutex_lock (&d->lock);
  for (;;)
    {
      while (d->in_teed == d->in_read && !d->tee_stop)
        pthread_cond_wait (&d->tee_cond, &d->lock);
      if (d->in_teed == d->in_read)
        break;
      int slot = d->in_teed % IN_RING;
      bool failed = d->tee_errno != 0;
      pthread_mutex_unlock (&d->lock);
      int r = failed ? 0 : tee_write (d->tee, d->ring[slot], d->ring_len[slot]);
      pthread_mutex_lock (&d->lock);
      if (r < 0)
        d->tee_errno = errno;
      d->in_teed++;
      pthread_cond_broadcast (&d->tee_cond);
    }
  pthread_mutex_unlock (&d->lock);
  return NULL;
}

/* Wait until the copy has all that was read; then stop its thread. */
static void
tee_drain (struct decomp *d)
{
  if (!d->tee_started)
    return;
  pthread_mutex_lock (&d->lock);
  d->tee_stop = true;
  pthread_cond_broadcast (&d->tee_cond);
  pthread_mutex_unlock (&d->lock);
  pthread_join (d->tee_thread, NULL);
  d->tee_started = false;
}

static int
fill_input (struct decomp *d, struct error *err)
{
  if (d->in_pos < d->in_len || d->in_eof)
    return 0;
  int slot = d->in_read % IN_RING;
  if (d->tee_started)
    {
      pthread_mutex_lock (&d->lock);
      while (d->in_read - d->in_teed >= IN_RING)
        pthread_cond_wait (&d->tee_cond, &d->lock);
      int copy_errno = d->tee_errno;
      pthread_mutex_unlock (&d->lock);
      if (copy_errno)
        return error_set (err, copy_errno, "%s: copy into the store", d->what);
    }
  ssize_t n;
  do
    n = read (d->fd, d->ring[slot], IN_SIZE);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return error_set (err, errno, "%s: read", d->what);
  d->in = d->ring[slot];
  d->in_len = n;
  d->in_pos = 0;
  d->in_eof = n == 0;
  if (d->tee_started && n > 0)
    {
      pthread_mutex_lock (&d->lock);
      d->ring_len[slot] = n;
      d->in_read++;
      pthread_cond_broadcast (&d->tee_cond);
      pthread_mutex_unlock (&d->lock);
    }
  return 0;
}

static bool
rest_is_zero (struct decomp *d)
{
  for (size_t i = d->in_pos; i < d->in_len; i++)
    if (d->in[i] != 0)
      return false;
  return true;
}

/* The queued chunk to hash next, when no one is at it (lock held). */
static bool
hash_ready (struct decomp *d, struct chunk *out)
{
  if (d->hashing)
    return false;
  for (int i = 0; i < d->count; i++)
    if (d->queue[(d->head + i) % QUEUE_LEN].seq == d->hashed)
      {
        *out = d->queue[(d->head + i) % QUEUE_LEN];
        return true;
      }
  return false;
}

/* Hash chunk c, the next in order; the lock is held before and after. */
static void
hash_chunk (struct decomp *d, const struct chunk *c)
{
  d->hashing = true;
  pthread_mutex_unlock (&d->lock);
  sha256_update (d->hash, c->data, c->len);
  pthread_mutex_lock (&d->lock);
  d->hashing = false;
  d->hashed++;
  pthread_cond_broadcast (&d->cond);
}

/* Inflate gzip members with ISA-L until out is full or the stream ends. */
static ssize_t
produce_gzip (struct decomp *d, unsigned char *out, size_t cap, struct error *err)
{
  struct inflate_state *s = d->gz;
  size_t produced = 0;
  while (produced < cap && !d->stream_end)
    {
      if (fill_input (d, err) < 0)
        return -1;
      if (s->block_state == ISAL_BLOCK_FINISH)
        {
          /* A member ended: another member, zero padding, or the end. */
          if (d->in_pos == d->in_len && d->in_eof)
            {
              d->stream_end = true;
              break;
            }
          if (d->in[d->in_pos] == 0x1f)
            {
              isal.inflate_reset (s);
              s->crc_flag = ISAL_GZIP;
            }
          else if (rest_is_zero (d))
            {
              d->in_pos = d->in_len;
              continue;
            }
          else
            return error_setx (err, EINVAL, "%s: trailing garbage after the gzip stream", d->what);
        }
      if (d->in_pos == d->in_len && d->in_eof)
        return error_setx (err, EPIPE, "%s: gzip stream is truncated", d->what);
      s->next_in = d->in + d->in_pos;
      s->avail_in = d->in_len - d->in_pos;
      s->next_out = out + produced;
      s->avail_out = cap - produced;
      int r = isal.inflate (s);
      d->in_pos = d->in_len - s->avail_in;
      produced = cap - s->avail_out;
      if (r < 0)
        return error_setx (err, EINVAL, "%s: corrupt gzip data (ISA-L error %d)", d->what, r);
    }
  return produced;
}

static ssize_t
produce_zstd (struct decomp *d, unsigned char *out, size_t cap, struct error *err)
{
  ZSTD_outBuffer ob = { out, cap, 0 };
  size_t last = 1;
  while (ob.pos < ob.size)
    {
      if (fill_input (d, err) < 0)
        return -1;
      if (d->in_pos == d->in_len && d->in_eof)
        {
          if (last != 0)
            return error_setx (err, EPIPE, "%s: zstd stream is truncated", d->what);
          d->stream_end = true;
          break;
        }
      ZSTD_inBuffer ib = { d->in, d->in_len, d->in_pos };
      last = ZSTD_decompressStream (d->zs, &ob, &ib);
      d->in_pos = ib.pos;
      if (ZSTD_isError (last))
        return error_setx (err, EINVAL, "%s: corrupt zstd data: %s", d->what, ZSTD_getErrorName (last));
    }
  return ob.pos;
}

static ssize_t
produce_plain (struct decomp *d, unsigned char *out, size_t cap, struct error *err)
{
  size_t produced = 0;
  while (produced < cap)
    {
      if (fill_input (d, err) < 0)
        return -1;
      if (d->in_pos == d->in_len)
        {
          d->stream_end = true;
          break;
        }
      size_t n = d->in_len - d->in_pos;
      if (n > cap - produced)
        n = cap - produced;
      memcpy (out + produced, d->in + d->in_pos, n);
      d->in_pos += n;
      produced += n;
    }
  return produced;
}

static ssize_t
produce (struct decomp *d, unsigned char *out, size_t cap, struct error *err)
{
  ssize_t n = d->comp == COMPRESSION_GZIP   ? produce_gzip (d, out, cap, err)
              : d->comp == COMPRESSION_ZSTD ? produce_zstd (d, out, cap, err)
                                            : produce_plain (d, out, cap, err);
  if (n > 0)
    {
      d->total_out += n;
      if (d->total_out > d->max_out)
        return error_setx (err, EFBIG, "%s: expands beyond the limit of %llu bytes", d->what,
                           (unsigned long long) d->max_out);

    }
  return n;
}

static void *
producer_main (void *arg)
{
  struct decomp *d = arg;
  pthread_setname_np (pthread_self (), "inflate");
  for (;;)
    {
      pthread_mutex_lock (&d->lock);
      struct chunk c = { d->n_spare ? d->spare[--d->n_spare] : NULL, 0, 0 };
      pthread_mutex_unlock (&d->lock);
      if (c.data == NULL)
        c.data = malloc (CHUNK_SIZE);
      struct error err = { 0 };
      ssize_t n = c.data ? produce (d, c.data, CHUNK_SIZE, &err) : error_set (&err, ENOMEM, "%s", d->what);
      pthread_mutex_lock (&d->lock);
      struct chunk h;
      while (d->count == QUEUE_LEN && !d->cancel)
        if (hash_ready (d, &h))
          hash_chunk (d, &h); /* ahead of the reader: take work off it */
        else
          pthread_cond_wait (&d->cond, &d->lock);
      bool stop = d->cancel || n <= 0;
      if (n < 0)
        {
          d->perr = err;
          d->failed = true;
        }
      if (!d->cancel && n > 0)
        {
          c.len = n;
          c.seq = d->produced++;
          d->queue[(d->head + d->count) % QUEUE_LEN] = c;
          d->count++;
          c.data = NULL;
        }
      if (stop || d->stream_end)
        d->done = true;
      pthread_cond_broadcast (&d->cond);
      pthread_mutex_unlock (&d->lock);
      free (c.data);
      if (stop || d->stream_end)
        return NULL;
    }
}

int
decomp_open (int fd, const char *what, uint64_t max_out, struct decomp_tee *tee,
             struct decomp **out, struct error *err)
{
  struct decomp *d = calloc (1, sizeof *d);
  if (d == NULL)
    {
      close (fd);
      return error_set (err, ENOMEM, "%s", what);
    }
  d->fd = fd;
  d->tee = tee;
  snprintf (d->what, sizeof d->what, "%s", what);
  d->max_out = max_out;
  pthread_mutex_init (&d->lock, NULL);
  pthread_cond_init (&d->cond, NULL);
  pthread_cond_init (&d->tee_cond, NULL);
  bool ok = (d->hash = sha256_new ()) != NULL;
  for (int i = 0; i < (tee ? IN_RING : 1); i++)
    ok &= (d->ring[i] = malloc (IN_SIZE)) != NULL;
  if (!ok)
    {
      decomp_free (d);
      return error_set (err, ENOMEM, "%s", what);
    }
  int r = tee ? pthread_create (&d->tee_thread, NULL, tee_main, d) : 0;
  if (r != 0)
    {
      decomp_free (d);
      return error_set (err, r, "%s: start the copy thread", what);
    }
  d->tee_started = tee != NULL;
  if (fill_input (d, err) < 0)
    {
      decomp_free (d);
      return -1;
    }
  d->comp = compression_detect (d->in, d->in_len);
  if (d->comp == COMPRESSION_GZIP)
    {
      pthread_once (&isal_once, isal_load);
      if (isal.inflate == NULL)
        {
          error_setx (err, ENOTSUP, "%s: %s", what, isal_error);
          decomp_free (d);
          return -1;
        }
      d->gz = malloc (sizeof *d->gz);
      if (d->gz)
        {
          isal.inflate_init (d->gz);
          d->gz->crc_flag = ISAL_GZIP;
        }
    }
  else if (d->comp == COMPRESSION_ZSTD && (d->zs = ZSTD_createDStream ()) != NULL)
    /* The frame checksum (XXH64) is redundant: the blob's digest and the
     * diff-id both cover every byte. */
    ZSTD_DCtx_setParameter (d->zs, ZSTD_d_forceIgnoreChecksum, ZSTD_d_ignoreChecksum);
  if ((d->comp == COMPRESSION_GZIP && d->gz == NULL) || (d->comp == COMPRESSION_ZSTD && d->zs == NULL))
    {
      decomp_free (d);
      return error_set (err, ENOMEM, "%s: decompressor", what);
    }
  r = pthread_create (&d->thread, NULL, producer_main, d);
  if (r != 0)
    {
      decomp_free (d);
      return error_set (err, r, "%s: start the inflate thread", what);
    }
  d->started = true;
  *out = d;
  return 0;
}

/* Next chunk from the queue; false at the end (check d->failed). */
static bool
next_chunk (struct decomp *d)
{
  pthread_mutex_lock (&d->lock);
  while (d->cur.data && d->hashed <= d->cur.seq) /* the producer is at it */
    pthread_cond_wait (&d->cond, &d->lock);
  if (d->cur.data && d->n_spare < (int) (sizeof d->spare / sizeof d->spare[0]))
    d->spare[d->n_spare++] = d->cur.data;
  else
    free (d->cur.data);
  d->cur = (struct chunk) { 0 };
  d->cur_pos = 0;
  while (d->count == 0 && !d->done)
    pthread_cond_wait (&d->cond, &d->lock);
  bool got = d->count > 0;
  if (got)
    {
      d->cur = d->queue[d->head];
      d->head = (d->head + 1) % QUEUE_LEN;
      d->count--;
      pthread_cond_broadcast (&d->cond);
      if (!d->hashing && d->hashed == d->cur.seq)
        hash_chunk (d, &d->cur);
    }
  pthread_mutex_unlock (&d->lock);
  return got;
}

ssize_t
decomp_next (struct decomp *d, const void **data, struct error *err)
{
  if (d->cur_pos == d->cur.len && !next_chunk (d))
    {
      if (d->failed)
        {
          *err = d->perr;
          return -1;
        }
      return 0;
    }
  size_t n = d->cur.len - d->cur_pos;
  *data = d->cur.data + d->cur_pos;
  d->cur_pos = d->cur.len;
  return n;
}

int
decomp_finish (struct decomp *d, struct digest *digest, uint64_t *size, struct error *err)
{
  while (next_chunk (d))
    ;
  if (d->failed)
    {
      *err = d->perr;
      return -1;
    }
  pthread_join (d->thread, NULL);
  d->started = false;
  /* The copied blob must be whole even where the stream ended early. */
  while (d->tee && !d->in_eof)
    {
      d->in_pos = d->in_len;
      if (fill_input (d, err) < 0)
        return -1;
      if (d->in_len > 0 && !(d->comp == COMPRESSION_NONE))
        return error_setx (err, EINVAL, "%s: trailing data after the compressed stream", d->what);
    }
  tee_drain (d);
  if (d->tee_errno)
    return error_set (err, d->tee_errno, "%s: copy into the store", d->what);
  sha256_final (d->hash, digest);
  *size = d->total_out;
  return 0;
}

void
decomp_free (struct decomp *d)
{
  if (d == NULL)
    return;
  if (d->started)
    {
      pthread_mutex_lock (&d->lock);
      d->cancel = true;
      pthread_cond_broadcast (&d->cond);
      pthread_mutex_unlock (&d->lock);
      pthread_join (d->thread, NULL);
    }
  /* A copy being made of the blob must see all of it, even when unpacking
   * stopped early: its digest then tells a damaged blob from a bad layer. */
  struct error ignored;
  while (d->tee_started && !d->in_eof)
    {
      d->in_pos = d->in_len;
      if (fill_input (d, &ignored) < 0)
        break;
    }
  tee_drain (d);
  for (int i = 0; i < d->count; i++)
    free (d->queue[(d->head + i) % QUEUE_LEN].data);
  for (int i = 0; i < d->n_spare; i++)
    free (d->spare[i]);
  free (d->cur.data);
  for (int i = 0; i < IN_RING; i++)
    free (d->ring[i]);
  free (d->gz);
  if (d->zs)
    ZSTD_freeDStream (d->zs);
  if (d->hash)
    sha256_free (d->hash);
  pthread_mutex_destroy (&d->lock);
  pthread_cond_destroy (&d->cond);
  pthread_cond_destroy (&d->tee_cond);
  close (d->fd);
  free (d);
}
