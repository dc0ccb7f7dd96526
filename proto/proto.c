#include "proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void
proto_header_encode (const struct proto_header *h, uint8_t out[PROTO_HEADER_SIZE])
{
  out[0] = PROTO_MAGIC0;
  out[1] = PROTO_MAGIC1;
  out[2] = h->version ? h->version : PROTO_VERSION;
  out[3] = h->type;
  out[4] = h->flags >> 8;
  out[5] = h->flags;
  out[6] = out[7] = 0;
  for (int i = 0; i < 4; i++)
    {
      out[8 + i] = h->request_id >> (24 - 8 * i);
      out[12 + i] = h->length >> (24 - 8 * i);
    }
}

static uint32_t
be32 (const uint8_t *p)
{
  return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

int
proto_header_decode (const uint8_t in[PROTO_HEADER_SIZE], struct proto_header *h,
                     struct error *err)
{
  if (in[0] != PROTO_MAGIC0 || in[1] != PROTO_MAGIC1)
    return error_setx (err, EPROTO, "frame: bad magic 0x%02x%02x (not an agentd protocol peer)",
                       in[0], in[1]);
  if (in[2] != PROTO_VERSION)
    return error_setx (err, EPROTONOSUPPORT, "frame: protocol version %u (this side speaks %u)",
                       in[2], PROTO_VERSION);
  h->version = in[2];
  h->type = in[3];
  h->flags = (uint16_t) (in[4] << 8 | in[5]);
  h->request_id = be32 (in + 8);
  h->length = be32 (in + 12);
  if (h->length > PROTO_MAX_PAYLOAD)
    return error_setx (err, EMSGSIZE, "frame: payload of %u bytes exceeds the limit of %u",
                       h->length, PROTO_MAX_PAYLOAD);
  return 0;
}

void
proto_buf_free (struct proto_buf *b)
{
  free (b->data);
  *b = (struct proto_buf){ 0 };
}

void
proto_buf_reset (struct proto_buf *b)
{
  b->len = 0;
  b->oom = false;
}

static bool
buf_reserve (struct proto_buf *b, size_t n)
{
  if (b->oom)
    return false;
  if (b->len + n <= b->cap)
    return true;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + n)
    cap *= 2;
  uint8_t *d = realloc (b->data, cap);
  if (d == NULL)
    {
      b->oom = true;
      return false;
    }
  b->data = d;
  b->cap = cap;
  return true;
}

void
proto_buf_append (struct proto_buf *b, const void *p, size_t n)
{
  if (n == 0 || !buf_reserve (b, n))
    return;
  memcpy (b->data + b->len, p, n);
  b->len += n;
}

size_t
proto_varint_encode (uint64_t v, uint8_t out[10])
{
  size_t n = 0;
  while (v >= 0x80)
    {
      out[n++] = (uint8_t) (v | 0x80);
      v >>= 7;
    }
  out[n++] = (uint8_t) v;
  return n;
}

size_t
proto_varint_decode (const uint8_t *p, size_t n, uint64_t *v)
{
  uint64_t r = 0;
  for (size_t i = 0; i < n && i < 10; i++)
    {
      if (i == 9 && p[i] > 1)
        return 0; /* more than 64 bits */
      r |= (uint64_t) (p[i] & 0x7f) << (7 * i);
      if ((p[i] & 0x80) == 0)
        {
          *v = r;
          return i + 1;
        }
    }
  return 0;
}

static void
put_varint_raw (struct proto_buf *b, uint64_t v)
{
  uint8_t tmp[10];
  proto_buf_append (b, tmp, proto_varint_encode (v, tmp));
}

void
proto_put_varint (struct proto_buf *b, uint32_t field, uint64_t v)
{
  put_varint_raw (b, (uint64_t) field << 3 | PROTO_WIRE_VARINT);
  put_varint_raw (b, v);
}

void
proto_put_bytes (struct proto_buf *b, uint32_t field, const void *p, size_t n)
{
  put_varint_raw (b, (uint64_t) field << 3 | PROTO_WIRE_BYTES);
  put_varint_raw (b, n);
  proto_buf_append (b, p, n);
}

int
proto_next (struct proto_reader *r, struct proto_field *f, struct error *err)
{
  if (r->pos == r->len)
    return 0;
  uint64_t key;
  size_t k = proto_varint_decode (r->p + r->pos, r->len - r->pos, &key);
  if (k == 0)
    return error_setx (err, EBADMSG, "payload: truncated field key at byte %zu", r->pos);
  size_t at = r->pos;
  r->pos += k;
  if (key >> 3 == 0 || key >> 3 > UINT32_MAX)
    return error_setx (err, EBADMSG, "payload: bad field number %llu at byte %zu",
                       (unsigned long long) (key >> 3), at);
  f->number = (uint32_t) (key >> 3);
  f->wire = (enum proto_wire) (key & 7);
  switch (f->wire)
    {
    case PROTO_WIRE_VARINT:
      k = proto_varint_decode (r->p + r->pos, r->len - r->pos, &f->u64);
      if (k == 0)
        return error_setx (err, EBADMSG, "payload: field %u: truncated varint", f->number);
      r->pos += k;
      return 1;
    case PROTO_WIRE_BYTES:
      {
        uint64_t n;
        k = proto_varint_decode (r->p + r->pos, r->len - r->pos, &n);
        if (k == 0)
          return error_setx (err, EBADMSG, "payload: field %u: truncated length", f->number);
        r->pos += k;
        if (n > r->len - r->pos)
          return error_setx (err, EBADMSG, "payload: field %u: %llu bytes overrun the payload",
                             f->number, (unsigned long long) n);
        f->ptr = r->p + r->pos;
        f->len = (size_t) n;
        r->pos += (size_t) n;
        return 1;
      }
    }
  return error_setx (err, EBADMSG, "payload: field %u: unknown wire type %u", f->number,
                     (unsigned) f->wire);
}

void
proto_conn_init (struct proto_conn *c, int fd)
{
  *c = (struct proto_conn){ .fd = fd };
}

void
proto_conn_free (struct proto_conn *c)
{
  free (c->in);
  proto_buf_free (&c->out);
  c->in = NULL;
}

/* Drop the frames already handed out from the front of the input buffer. */
static void
compact_input (struct proto_conn *c)
{
  if (c->in_consumed == 0)
    return;
  memmove (c->in, c->in + c->in_consumed, c->in_len - c->in_consumed);
  c->in_len -= c->in_consumed;
  c->in_consumed = 0;
}

int
proto_conn_read (struct proto_conn *c, struct error *err)
{
  compact_input (c);
  if (c->in_cap - c->in_len < 64 * 1024)
    {
      size_t cap = c->in_cap ? c->in_cap * 2 : 64 * 1024;
      if (cap > PROTO_HEADER_SIZE + PROTO_MAX_PAYLOAD + 64 * 1024)
        cap = PROTO_HEADER_SIZE + PROTO_MAX_PAYLOAD + 64 * 1024;
      if (cap > c->in_cap)
        {
          uint8_t *p = realloc (c->in, cap);
          if (p == NULL)
            return error_set (err, ENOMEM, "connection buffer");
          c->in = p;
          c->in_cap = cap;
        }
    }
  if (c->in_len == c->in_cap)
    return 1; /* full: the caller consumes a frame first */
  ssize_t n = read (c->fd, c->in + c->in_len, c->in_cap - c->in_len);
  if (n < 0)
    {
      if (errno == EAGAIN || errno == EINTR)
        return 1;
      return error_set (err, errno, "read from peer");
    }
  if (n == 0)
    return 0;
  c->in_len += (size_t) n;
  return 1;
}

int
proto_conn_next (struct proto_conn *c, struct proto_frame *f, struct error *err)
{
  size_t avail = c->in_len - c->in_consumed;
  if (avail < PROTO_HEADER_SIZE)
    return 0;
  const uint8_t *p = c->in + c->in_consumed;
  if (proto_header_decode (p, &f->h, err) < 0)
    return -1;
  if (avail < PROTO_HEADER_SIZE + (size_t) f->h.length)
    return 0;
  f->payload = p + PROTO_HEADER_SIZE;
  c->in_consumed += PROTO_HEADER_SIZE + f->h.length;
  return 1;
}

int
proto_conn_queue (struct proto_conn *c, uint8_t type, uint16_t flags, uint32_t request_id,
                  const struct proto_buf *payload, struct error *err)
{
  size_t n = payload ? payload->len : 0;
  if (payload && payload->oom)
    return error_set (err, ENOMEM, "encode message type 0x%02x", type);
  if (n > PROTO_MAX_PAYLOAD)
    return error_setx (err, EMSGSIZE, "message type 0x%02x: %zu bytes exceed the frame limit",
                       type, n);
  if (c->out_pos == c->out.len)
    {
      proto_buf_reset (&c->out);
      c->out_pos = 0;
    }
  uint8_t hdr[PROTO_HEADER_SIZE];
  proto_header_encode (&(struct proto_header){ .type = type, .flags = flags,
                                               .request_id = request_id, .length = (uint32_t) n },
                       hdr);
  proto_buf_append (&c->out, hdr, sizeof hdr);
  if (n)
    proto_buf_append (&c->out, payload->data, n);
  if (c->out.oom)
    return error_set (err, ENOMEM, "queue frame");
  return 0;
}

int
proto_conn_flush (struct proto_conn *c, struct error *err)
{
  while (c->out_pos < c->out.len)
    {
      ssize_t n = send (c->fd, c->out.data + c->out_pos, c->out.len - c->out_pos, MSG_NOSIGNAL);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN)
            return 1;
          return error_set (err, errno, "write to peer");
        }
      c->out_pos += (size_t) n;
    }
  return 0;
}

int
proto_conn_recv (struct proto_conn *c, struct proto_frame *f, struct error *err)
{
  for (;;)
    {
      int r = proto_conn_next (c, f, err);
      if (r != 0)
        return r;
      r = proto_conn_read (c, err);
      if (r <= 0)
        return r;
    }
}
