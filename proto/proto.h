/* proto/: the binary wire protocol between deploy, agentd and the control
 * plane (PROTOCOL.md is its spec). Pure encode/decode over buffers, plus a
 * framing helper for non-blocking sockets; no I/O policy of its own.
 *
 *   frame    = 16-byte header + payload (typed fields, skippable)
 *   messages = C structs described by tables (messages.h); one generic
 *              codec encodes and decodes them all
 */
#ifndef PROTO_H
#define PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/error.h"

#define PROTO_MAGIC0 0x41 /* 'A' */
#define PROTO_MAGIC1 0x44 /* 'D' */
#define PROTO_VERSION 1
#define PROTO_HEADER_SIZE 16
#define PROTO_MAX_PAYLOAD (1u << 20)

/* Where agentd serves its API unless told otherwise. */
#define PROTO_DEFAULT_SOCKET "/run/agentd/agentd.sock"

/* Header flags. */
#define PROTO_F_REPLY 0x0001 /* an answer to the request with the same id */
#define PROTO_F_MORE 0x0002  /* more frames follow for this request */

struct proto_header
{
  uint8_t version;
  uint8_t type;
  uint16_t flags;
  uint32_t request_id;
  uint32_t length; /* payload bytes */
};

void proto_header_encode (const struct proto_header *h, uint8_t out[PROTO_HEADER_SIZE]);
/* Checks magic, version and length limit; err says which is wrong. */
int proto_header_decode (const uint8_t in[PROTO_HEADER_SIZE], struct proto_header *h,
                         struct error *err);

/* A growable output buffer. Allocation failure is sticky (oom) and checked
 * once at the end, so encoders need no error path per field. */
struct proto_buf
{
  uint8_t *data;
  size_t len, cap;
  bool oom;
};

void proto_buf_free (struct proto_buf *b);
void proto_buf_reset (struct proto_buf *b);
void proto_buf_append (struct proto_buf *b, const void *p, size_t n);

/* Field keys are varint(number << 3 | wire type). */
enum proto_wire
{
  PROTO_WIRE_VARINT = 0,
  PROTO_WIRE_BYTES = 2,
};

void proto_put_varint (struct proto_buf *b, uint32_t field, uint64_t v);
void proto_put_bytes (struct proto_buf *b, uint32_t field, const void *p, size_t n);

/* Raw varint helpers, also used by the metering journal. */
size_t proto_varint_encode (uint64_t v, uint8_t out[10]);
/* Returns bytes consumed, or 0 when truncated or longer than 10 bytes. */
size_t proto_varint_decode (const uint8_t *p, size_t n, uint64_t *v);

struct proto_field
{
  uint32_t number;
  enum proto_wire wire;
  uint64_t u64;       /* varint */
  const uint8_t *ptr; /* bytes */
  size_t len;
};

struct proto_reader
{
  const uint8_t *p;
  size_t len, pos;
};

/* 1: a field, 0: the end, -1: malformed (truncated, bad wire type). */
int proto_next (struct proto_reader *r, struct proto_field *f, struct error *err);

/* Framing over a non-blocking socket: bytes in, whole frames out; frames
 * out queued and flushed as the socket accepts them. */
struct proto_conn
{
  int fd;
  uint8_t *in;
  size_t in_len, in_cap, in_consumed;
  struct proto_buf out;
  size_t out_pos;
};

struct proto_frame
{
  struct proto_header h;
  const uint8_t *payload; /* valid until the next proto_conn_* call */
};

void proto_conn_init (struct proto_conn *c, int fd);
void proto_conn_free (struct proto_conn *c);
/* Read what the socket has. 1: read something or nothing yet (EAGAIN),
 * 0: the peer closed, -1: error. */
int proto_conn_read (struct proto_conn *c, struct error *err);
/* 1: a whole frame, 0: need more bytes, -1: the header is bad (framing is
 * lost: answer with an error and close). */
int proto_conn_next (struct proto_conn *c, struct proto_frame *f, struct error *err);
/* Queue one frame. */
int proto_conn_queue (struct proto_conn *c, uint8_t type, uint16_t flags, uint32_t request_id,
                      const struct proto_buf *payload, struct error *err);
/* Write what the socket takes. 1: bytes remain queued, 0: all sent, -1. */
int proto_conn_flush (struct proto_conn *c, struct error *err);
/* Blocking sockets (clients): wait for the next whole frame. 0: peer closed. */
int proto_conn_recv (struct proto_conn *c, struct proto_frame *f, struct error *err);

#endif
