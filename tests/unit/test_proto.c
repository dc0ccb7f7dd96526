/* proto/: frame header, field codec, messages, framing; test vectors from
 * PROTOCOL.md and hostile input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../proto/messages.h"

static size_t
unhex (const char *hex, uint8_t *out)
{
  size_t n = 0;
  while (*hex)
    {
      if (*hex == ' ')
        {
          hex++;
          continue;
        }
      unsigned v;
      sscanf (hex, "%2x", &v);
      out[n++] = (uint8_t) v;
      hex += 2;
    }
  return n;
}

static void
test_header_vectors (void **s)
{
  (void) s;
  uint8_t want[64], got[PROTO_HEADER_SIZE];
  unhex ("41 44 01 60 00 00 00 00 00 00 00 07 00 00 00 00", want);
  proto_header_encode (&(struct proto_header){ .type = MSG_STATUS, .request_id = 7 }, got);
  assert_memory_equal (got, want, PROTO_HEADER_SIZE);

  struct error err = { 0 };
  struct proto_header h;
  unhex ("41 44 01 01 00 01 00 00 00 00 00 07 00 00 00 05", want);
  assert_int_equal (proto_header_decode (want, &h, &err), 0);
  assert_int_equal (h.type, MSG_ERROR);
  assert_int_equal (h.flags, PROTO_F_REPLY);
  assert_int_equal (h.request_id, 7);
  assert_int_equal (h.length, 5);

  unhex ("58 44 01 01 00 01 00 00 00 00 00 07 00 00 00 05", want);
  assert_int_equal (proto_header_decode (want, &h, &err), -1);
  assert_non_null (strstr (err.msg, "bad magic"));
  unhex ("41 44 02 01 00 01 00 00 00 00 00 07 00 00 00 05", want);
  assert_int_equal (proto_header_decode (want, &h, &err), -1);
  assert_non_null (strstr (err.msg, "version 2"));
  unhex ("41 44 01 01 00 01 00 00 00 00 00 07 00 10 00 01", want);
  assert_int_equal (proto_header_decode (want, &h, &err), -1);
  assert_int_equal (err.code, EMSGSIZE);
  /* Exactly the limit is fine. */
  unhex ("41 44 01 01 00 01 00 00 00 00 00 07 00 10 00 00", want);
  assert_int_equal (proto_header_decode (want, &h, &err), 0);
}

static void
test_error_vector (void **s)
{
  (void) s;
  struct error err = { 0 };
  struct proto_buf b = { 0 };
  struct msg_error e = { .code = PROTO_E_UNKNOWN_TYPE, .message = "x" };
  assert_int_equal (proto_encode (MSG_ERROR, &e, &b, &err), 0);
  uint8_t want[8];
  size_t n = unhex ("08 02 12 01 78", want);
  assert_int_equal (b.len, n);
  assert_memory_equal (b.data, want, n);
  struct msg_error d;
  assert_int_equal (proto_decode (MSG_ERROR, b.data, b.len, &d, &err), 0);
  assert_int_equal (d.code, 2);
  assert_string_equal (d.message, "x");
  proto_msg_clear (MSG_ERROR, &d);
  proto_buf_free (&b);
}

static void
test_varints (void **s)
{
  (void) s;
  uint64_t vals[] = { 0, 1, 127, 128, 300, 16383, 16384, UINT32_MAX, UINT64_MAX };
  for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
    {
      uint8_t buf[10];
      size_t n = proto_varint_encode (vals[i], buf);
      uint64_t v = 0;
      assert_int_equal (proto_varint_decode (buf, n, &v), n);
      assert_true (v == vals[i]);
      if (n > 1)
        assert_int_equal (proto_varint_decode (buf, n - 1, &v), 0); /* truncated */
    }
  uint8_t v300[10];
  assert_int_equal (proto_varint_encode (300, v300), 2);
  assert_int_equal (v300[0], 0xac);
  assert_int_equal (v300[1], 0x02);
  /* 11 bytes, and 10 bytes holding more than 64 bits: both rejected. */
  uint8_t longv[11];
  memset (longv, 0x80, 10);
  longv[10] = 0;
  uint64_t v;
  assert_int_equal (proto_varint_decode (longv, 11, &v), 0);
  memset (longv, 0xff, 9);
  longv[9] = 0x02;
  assert_int_equal (proto_varint_decode (longv, 10, &v), 0);
}

static void
test_deploy_roundtrip (void **s)
{
  (void) s;
  struct error err = { 0 };
  char *argv[] = { "httpd", "-f", "-p", "8080", NULL };
  char *envv[] = { "A=1", "B=two", NULL };
  struct msg_deploy in = { .project = "shop", .env = "feature-x", .service = "web",
                           .image = "127.0.0.1:5000/web:1", .argv = argv, .envv = envv,
                           .port = 8080, .memory_bytes = 256u << 20, .cpu_millis = 500,
                           .restart = "always", .ttl_seconds = 3600 };
  struct proto_buf b = { 0 };
  assert_int_equal (proto_encode (MSG_DEPLOY, &in, &b, &err), 0);
  struct msg_deploy out;
  assert_int_equal (proto_decode (MSG_DEPLOY, b.data, b.len, &out, &err), 0);
  assert_string_equal (out.project, "shop");
  assert_string_equal (out.env, "feature-x");
  assert_string_equal (out.image, "127.0.0.1:5000/web:1");
  for (int i = 0; argv[i]; i++)
    assert_string_equal (out.argv[i], argv[i]);
  assert_null (out.argv[4]);
  assert_string_equal (out.envv[1], "B=two");
  assert_null (out.envv[2]);
  assert_int_equal (out.port, 8080);
  assert_int_equal (out.memory_bytes, 256u << 20);
  assert_int_equal (out.pids, 0);
  assert_string_equal (out.service, "web");
  assert_string_equal (out.restart, "always");
  proto_msg_clear (MSG_DEPLOY, &out);
  assert_null (out.project);
  proto_buf_free (&b);
}

static void
test_nested_lists (void **s)
{
  (void) s;
  struct error err = { 0 };
  struct msg_log_line lines[3] = { { 1, 1, "one" }, { 2, 2, "" }, { 3, 3, "three" } };
  struct msg_log_lines in = { .lines = lines, .n_lines = 3 };
  struct proto_buf b = { 0 };
  assert_int_equal (proto_encode (MSG_LOG_LINES, &in, &b, &err), 0);
  struct msg_log_lines out;
  assert_int_equal (proto_decode (MSG_LOG_LINES, b.data, b.len, &out, &err), 0);
  assert_int_equal (out.n_lines, 3);
  assert_string_equal (out.lines[0].text, "one");
  assert_int_equal (out.lines[1].stream, 2);
  assert_string_equal (out.lines[1].text, "");
  assert_int_equal (out.lines[2].ts_us, 3);
  proto_msg_clear (MSG_LOG_LINES, &out);

  /* Many items (the array grows by doubling). */
  struct msg_deployment_info many[100] = { 0 };
  for (int i = 0; i < 100; i++)
    many[i].pid = (uint64_t) i + 1;
  struct msg_list_result lr = { .deployments = many, .n_deployments = 100 };
  assert_int_equal (proto_encode (MSG_LIST_RESULT, &lr, &b, &err), 0);
  struct msg_list_result lo;
  assert_int_equal (proto_decode (MSG_LIST_RESULT, b.data, b.len, &lo, &err), 0);
  assert_int_equal (lo.n_deployments, 100);
  assert_int_equal (lo.deployments[99].pid, 100);
  proto_msg_clear (MSG_LIST_RESULT, &lo);
  proto_buf_free (&b);
}

/* Two levels of nesting (batch -> records -> samples), and the uplink's
 * trick: one-record batches encoded back to back decode as one batch. */
static void
test_usage_batch (void **s)
{
  (void) s;
  struct error err = { 0 };
  struct msg_usage_sample smp[2] = {
    { .id = "shop.main.web", .version = 3, .cpu_usec = 1234567890123ull, .memory_current = 1 << 30 },
    { .id = "shop.pr-7.api", .version = 1, .net_tx = 42, .disk_bytes = 4096 },
  };
  struct msg_usage_record recs[2] = {
    { .seq = 7, .ts_ms = 1700000000000ull, .boot_id = "b", .samples = smp, .n_samples = 2 },
    { .seq = 8, .ts_ms = 1700000001000ull, .boot_id = "b", .samples = &smp[1], .n_samples = 1 },
  };
  struct proto_buf all = { 0 }, one = { 0 };
  for (int i = 0; i < 2; i++)
    {
      struct msg_usage_batch single = { &recs[i], 1, 0 };
      assert_int_equal (proto_encode (MSG_USAGE_BATCH, &single, &one, &err), 0);
      proto_buf_append (&all, one.data, one.len);
    }
  proto_put_varint (&all, 2, 5); /* lost_before */
  struct msg_usage_batch out;
  assert_int_equal (proto_decode (MSG_USAGE_BATCH, all.data, all.len, &out, &err), 0);
  assert_int_equal (out.n_records, 2);
  assert_int_equal (out.lost_before, 5);
  assert_int_equal (out.records[0].seq, 7);
  assert_int_equal (out.records[0].n_samples, 2);
  assert_true (out.records[0].samples[0].cpu_usec == 1234567890123ull);
  assert_string_equal (out.records[0].samples[1].id, "shop.pr-7.api");
  assert_int_equal (out.records[1].samples[0].disk_bytes, 4096);
  assert_string_equal (out.records[1].boot_id, "b");
  proto_msg_clear (MSG_USAGE_BATCH, &out);
  proto_buf_free (&all);
  proto_buf_free (&one);
}

static void
test_unknown_fields_skipped (void **s)
{
  (void) s;
  struct error err = { 0 };
  struct proto_buf b = { 0 };
  proto_put_varint (&b, 99, 12345);             /* a newer peer's number */
  proto_put_bytes (&b, 1, "p", 1);              /* project */
  proto_put_bytes (&b, 100, "ignored", 7);      /* a newer peer's string */
  proto_put_varint (&b, 7, 80);                 /* port */
  struct msg_deploy d;
  assert_int_equal (proto_decode (MSG_DEPLOY, b.data, b.len, &d, &err), 0);
  assert_string_equal (d.project, "p");
  assert_int_equal (d.port, 80);
  proto_msg_clear (MSG_DEPLOY, &d);
  proto_buf_free (&b);
}

static void
test_malformed_payloads (void **s)
{
  (void) s;
  struct error err = { 0 };
  struct msg_deploy d;
  uint8_t buf[64];
  struct
  {
    const char *hex, *want;
  } bad[] = {
    { "0a 05 61 62", "overrun" },            /* length beyond the payload */
    { "0a", "truncated length" },
    { "38", "truncated varint" },            /* port key, no value */
    { "0a 03 61 00 62", "NUL" },             /* project with a NUL byte */
    { "3a 02 61 62", "wrong wire type" },    /* port sent as bytes */
    { "50 01 0b 01", "unknown wire type" },  /* wire type 3 */
    { "00 01", "bad field number" },         /* field number 0 */
    { "ff ff ff ff ff ff ff ff ff ff 01", "truncated field key" },
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      size_t n = unhex (bad[i].hex, buf);
      err.msg[0] = '\0';
      if (proto_decode (MSG_DEPLOY, buf, n, &d, &err) != -1)
        fail_msg ("payload `%s` accepted", bad[i].hex);
      if (strstr (err.msg, bad[i].want) == NULL)
        fail_msg ("payload `%s`: error `%s` lacks `%s`", bad[i].hex, err.msg, bad[i].want);
    }
  assert_int_equal (proto_decode (0x7e, buf, 0, &d, &err), -1);
  assert_non_null (strstr (err.msg, "unknown message type 0x7e"));
  /* A nested message that is malformed names its place. */
  size_t n = unhex ("0a 02 0a 09", buf);
  struct msg_list_result lr;
  assert_int_equal (proto_decode (MSG_LIST_RESULT, buf, n, &lr, &err), -1);
  assert_non_null (strstr (err.msg, "deployments[0]"));
}

static void
test_too_many_items (void **s)
{
  (void) s;
  struct error err = { 0 };
  struct proto_buf b = { 0 };
  for (int i = 0; i < 65537; i++)
    proto_put_bytes (&b, 5, "", 0);
  struct msg_deploy d;
  assert_int_equal (proto_decode (MSG_DEPLOY, b.data, b.len, &d, &err), -1);
  assert_non_null (strstr (err.msg, "more than 65536"));
  proto_buf_free (&b);
}

static void
test_framing (void **s)
{
  (void) s;
  struct error err = { 0 };
  int sv[2];
  assert_int_equal (socketpair (AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  struct proto_conn a, b;
  proto_conn_init (&a, sv[0]);
  proto_conn_init (&b, sv[1]);
  struct proto_buf p = { 0 };
  struct msg_list l = { .project = "x" };
  assert_int_equal (proto_encode (MSG_LIST, &l, &p, &err), 0);
  for (uint32_t id = 1; id <= 3; id++)
    assert_int_equal (proto_conn_queue (&a, MSG_LIST, 0, id, &p, &err), 0);
  assert_int_equal (proto_conn_flush (&a, &err), 0);

  struct proto_frame f;
  assert_int_equal (proto_conn_next (&b, &f, &err), 0); /* nothing read yet */
  assert_int_equal (proto_conn_read (&b, &err), 1);
  for (uint32_t id = 1; id <= 3; id++)
    {
      assert_int_equal (proto_conn_next (&b, &f, &err), 1);
      assert_int_equal (f.h.request_id, id);
      struct msg_list d;
      assert_int_equal (proto_decode (f.h.type, f.payload, f.h.length, &d, &err), 0);
      assert_string_equal (d.project, "x");
      proto_msg_clear (MSG_LIST, &d);
    }
  assert_int_equal (proto_conn_next (&b, &f, &err), 0);

  /* A frame split across reads is put back together. */
  assert_int_equal (proto_conn_queue (&a, MSG_STATUS, 0, 9, NULL, &err), 0);
  assert_int_equal (write (sv[0], a.out.data + a.out_pos, 5), 5);
  assert_int_equal (proto_conn_read (&b, &err), 1);
  assert_int_equal (proto_conn_next (&b, &f, &err), 0);
  a.out_pos += 5;
  assert_int_equal (proto_conn_flush (&a, &err), 0);
  assert_int_equal (proto_conn_read (&b, &err), 1);
  assert_int_equal (proto_conn_next (&b, &f, &err), 1);
  assert_int_equal (f.h.request_id, 9);

  /* Garbage loses the framing. */
  assert_int_equal (write (sv[0], "GET / HTTP/1.0\r\n\r\n", 18), 18);
  assert_int_equal (proto_conn_read (&b, &err), 1);
  assert_int_equal (proto_conn_next (&b, &f, &err), -1);
  assert_non_null (strstr (err.msg, "bad magic"));

  close (sv[0]);
  close (sv[1]);
  proto_conn_free (&a);
  proto_conn_free (&b);
  proto_buf_free (&p);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_header_vectors),   cmocka_unit_test (test_error_vector),
    cmocka_unit_test (test_varints),          cmocka_unit_test (test_deploy_roundtrip),
    cmocka_unit_test (test_nested_lists),     cmocka_unit_test (test_unknown_fields_skipped),
    cmocka_unit_test (test_malformed_payloads), cmocka_unit_test (test_too_many_items),
    cmocka_unit_test (test_framing),          cmocka_unit_test (test_usage_batch),
  };
  return cmocka_run_group_tests_name ("proto", tests, NULL, NULL);
}
