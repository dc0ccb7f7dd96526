/* libFuzzer target for proto/: any bytes as a stream of frames, each
 * payload decoded as its type (and, for unknown types, as every known
 * type). Whatever decodes must encode and decode again to the same bytes.
 *   make fuzz   (FUZZ_SECONDS=N; make test runs it for a bounded time) */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../proto/messages.h"

static const uint8_t types[] = { MSG_ERROR,    MSG_DEPLOY,          MSG_PROGRESS,  MSG_DEPLOY_RESULT,
                                 MSG_LIST,     MSG_LIST_RESULT,     MSG_LOGS,      MSG_LOG_LINES,
                                 MSG_DOWN,     MSG_DOWN_RESULT,     MSG_ENV_LIST,  MSG_ENV_LIST_RESULT,
                                 MSG_STATUS,   MSG_STATUS_RESULT,   MSG_USAGE,     MSG_USAGE_RESULT };

static void
roundtrip (uint8_t type, const uint8_t *p, size_t n)
{
  _Alignas (max_align_t) unsigned char msg[512], again[512];
  struct error err = { 0 };
  if (proto_decode (type, p, n, msg, &err) < 0)
    return;
  struct proto_buf a = { 0 }, b = { 0 };
  if (proto_encode (type, msg, &a, &err) == 0 && proto_decode (type, a.data, a.len, again, &err) == 0)
    {
      if (proto_encode (type, again, &b, &err) != 0 || a.len != b.len
          || (a.len && memcmp (a.data, b.data, a.len) != 0))
        abort (); /* encode(decode(x)) is not a fixed point */
      proto_msg_clear (type, again);
    }
  proto_buf_free (&a);
  proto_buf_free (&b);
  proto_msg_clear (type, msg);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  size_t at = 0;
  while (size - at >= PROTO_HEADER_SIZE)
    {
      struct proto_header h;
      struct error err = { 0 };
      if (proto_header_decode (data + at, &h, &err) < 0)
        {
          /* Not a header: try the rest as a bare payload of every type. */
          for (size_t i = 0; i < sizeof types; i++)
            roundtrip (types[i], data + at, size - at);
          return 0;
        }
      at += PROTO_HEADER_SIZE;
      size_t n = h.length < size - at ? h.length : size - at;
      if (proto_msg_desc (h.type))
        roundtrip (h.type, data + at, n);
      at += n;
    }
  return 0;
}
