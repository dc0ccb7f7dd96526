/* agentd/logs.c: stamped log files with rotation, and the fifo pipes. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../agentd/logs.h"
#include "scratch_dir.h"

static void
test_append_read_rotate (void **s)
{
  (void) s;
  struct error err = { 0 };
  struct log_file f = { .fd = -1 };
  assert_int_equal (log_file_open (&f, dir, "svc", 400, &err), 0);
  char line[32];
  for (int i = 0; i < 40; i++)
    {
      int n = snprintf (line, sizeof line, "line %d", i);
      assert_int_equal (log_file_append (&f, 1000 + (uint64_t) i, i % 2 ? LOG_STDERR : LOG_STDOUT,
                                         line, (size_t) n, &err),
                        0);
    }
  /* Control characters cannot break the format. */
  assert_int_equal (log_file_append (&f, 2000, LOG_AGENTD, "a\nb\rc", 5, &err), 0);
  assert_true (f.size <= 400);
  log_file_close (&f);

  struct log_record *r;
  size_t n;
  assert_int_equal (log_file_read (f.path, 0, &r, &n, &err), 0);
  /* Rotation keeps the current file and one older part: the newest lines. */
  assert_true (n > 10 && n <= 41);
  assert_string_equal (r[n - 1].text, "a b c");
  assert_int_equal (r[n - 1].stream, LOG_AGENTD);
  assert_string_equal (r[n - 2].text, "line 39");
  assert_int_equal (r[n - 2].stream, LOG_STDERR);
  assert_int_equal (r[n - 2].ts_us, 1039);
  for (size_t i = 1; i + 1 < n; i++)
    assert_true (r[i].ts_us == r[i - 1].ts_us + 1); /* in order, no gap */
  log_records_free (r, n);

  assert_int_equal (log_file_read (f.path, 3, &r, &n, &err), 0);
  assert_int_equal (n, 3);
  assert_string_equal (r[0].text, "line 38");
  log_records_free (r, n);
}

static void
collect (void *ctx, enum log_stream st, const char *text, size_t len)
{
  (void) st;
  char *out = ctx;
  strncat (out, text, len);
  strcat (out, "|");
}

static void
test_pipe_lines (void **s)
{
  (void) s;
  struct error err = { 0 };
  char path[128];
  snprintf (path, sizeof path, "%s/w.out", dir);
  struct log_pipe p;
  int wfd = -1;
  assert_int_equal (log_pipe_open (&p, path, LOG_STDOUT, &wfd, &err), 0);
  char got[LOG_LINE_MAX * 3] = "";
  assert_int_equal (write (wfd, "one\ntw", 6), 6);
  assert_int_equal (log_pipe_drain (&p, collect, got), 0);
  assert_string_equal (got, "one|");
  assert_int_equal (write (wfd, "o\n", 2), 2);
  assert_int_equal (log_pipe_drain (&p, collect, got), 0);
  assert_string_equal (got, "one|two|");

  /* The workload's end is a reader too: with agentd's end closed, a write
   * still succeeds (no SIGPIPE), and a reopened end reads it. */
  log_pipe_close (&p, 0);
  assert_int_equal (write (wfd, "while away\n", 11), 11);
  assert_int_equal (log_pipe_open (&p, path, LOG_STDOUT, NULL, &err), 0);
  got[0] = '\0';
  assert_int_equal (log_pipe_drain (&p, collect, got), 0);
  assert_string_equal (got, "while away|");

  /* A line longer than LOG_LINE_MAX is cut into pieces. */
  char big[LOG_LINE_MAX + 10];
  memset (big, 'x', sizeof big);
  big[sizeof big - 1] = '\n';
  assert_int_equal (write (wfd, big, sizeof big), (ssize_t) sizeof big);
  got[0] = '\0';
  assert_int_equal (log_pipe_drain (&p, collect, got), 0);
  assert_int_equal (strlen (got), LOG_LINE_MAX + 1 + 9 + 1);
  close (wfd);
  log_pipe_close (&p, 1);
  assert_int_equal (access (path, F_OK), -1);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown (test_append_read_rotate, scratch_setup, scratch_teardown),
    cmocka_unit_test_setup_teardown (test_pipe_lines, scratch_setup, scratch_teardown),
  };
  return cmocka_run_group_tests_name ("logs", tests, NULL, NULL);
}
