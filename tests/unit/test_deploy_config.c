/* deploy/config.c (and common/yamldoc.c under it): deploy.yaml, good and hostile. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../deploy/config.h"

static int
parse (const char *text, struct deploy_config *c, struct error *err)
{
  return deploy_config_parse ("deploy.yaml", text, strlen (text), c, err);
}

static void
test_full (void **s)
{
  (void) s;
  struct deploy_config c;
  struct error err = { 0 };
  const char *y = "# a comment\n"
                  "project: shop\n"
                  "environment: staging\n"
                  "service: api\n"
                  "image: 127.0.0.1:5000/shop/api:2\n"
                  "port: 8080\n"
                  "memory: 128M\n"
                  "cpus: 0.5\n"
                  "pids: 64\n"
                  "restart: always\n"
                  "ttl: 2h\n"
                  "env:\n"
                  "  MODE: prod\n"
                  "  EMPTY: \"\"\n"
                  "command: [\"httpd\", \"-f\", \"-p\", \"8080\"]\n";
  assert_int_equal (parse (y, &c, &err), 0);
  assert_string_equal (c.project, "shop");
  assert_string_equal (c.env, "staging");
  assert_string_equal (c.service, "api");
  assert_string_equal (c.image, "127.0.0.1:5000/shop/api:2");
  assert_int_equal (c.port, 8080);
  assert_int_equal (c.memory, 128u << 20);
  assert_int_equal (c.cpu_millis, 500);
  assert_int_equal (c.pids, 64);
  assert_string_equal (c.restart, "always");
  assert_int_equal (c.ttl_seconds, 7200);
  assert_string_equal (c.envv[0], "MODE=prod");
  assert_string_equal (c.envv[1], "EMPTY=");
  assert_null (c.envv[2]);
  assert_string_equal (c.command[0], "httpd");
  assert_string_equal (c.command[3], "8080");
  assert_null (c.command[4]);
  deploy_config_clear (&c);

  /* A command as one string runs through the shell; an empty file is fine. */
  assert_int_equal (parse ("command: echo hi && sleep 1\n", &c, &err), 0);
  assert_string_equal (c.command[0], "/bin/sh");
  assert_string_equal (c.command[2], "echo hi && sleep 1");
  deploy_config_clear (&c);
  assert_int_equal (parse ("", &c, &err), 0);
  assert_null (c.image);
}

static void
test_hostile (void **s)
{
  (void) s;
  struct
  {
    const char *yaml, *want;
  } bad[] = {
    { "port: eighty\n", "line 1 column 7: port: `eighty`: expected a positive whole number" },
    { "port: 70000\n", "line 1 column 7: port" },
    { "memory: lots\n", "line 1 column 9: memory" },
    { "ttl: forever\n", "line 1 column 6: ttl: duration" },
    { "image: busybox\nreplicas: 3\n", "line 2 column 1: unknown key `replicas`" },
    { "image: [a, b]\n", "line 1 column 8: image: expected a single value" },
    { "env:\n  A:\n    B: 1\n", "line 3 column 5: nested too deeply" },
    { "env: [A, B]\n", "line 1 column 6: env: expected a mapping" },
    { "command: {a: b}\n", "line 1 column 10: command: expected a list" },
    { "command: [[a]]\n", "line 1 column 11: nested too deeply" },
    { "command: &x [1, 2]\n", "line 1 column 10: anchors are not allowed" },
    { "image: *x\n", "line 1 column 8: aliases are not allowed" },
    { "- a\n- b\n", "line 1 column 1: expected a mapping" },
    { "image: a\n---\nimage: b\n", "line 2 column 1: only one YAML document" },
    { "image: \"unterminated\n", "line 2 column 1" },
    { "env:\n  \"A=B\": c\n", "line 2 column 3: env: names must be" },
    { "? [a]\n: b\n", "keys must be plain strings" },
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      struct deploy_config c;
      struct error err = { 0 };
      if (parse (bad[i].yaml, &c, &err) != -1)
        fail_msg ("accepted: %s", bad[i].yaml);
      if (strstr (err.msg, bad[i].want) == NULL)
        fail_msg ("`%s`: error `%s` lacks `%s`", bad[i].yaml, err.msg, bad[i].want);
      assert_null (c.image); /* nothing half-parsed is handed back */
    }
}

static void
test_billion_laughs (void **s)
{
  (void) s;
  /* The classic alias bomb stops at its first anchor, long before any
   * expansion could happen. */
  char y[4096];
  int n = snprintf (y, sizeof y, "command: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
  for (char c = 'b'; c <= 'i'; c++)
    n += snprintf (y + n, sizeof y - (size_t) n, "command: &%c [*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c,*%c]\n",
                   c, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1);
  struct deploy_config c;
  struct error err = { 0 };
  assert_int_equal (parse (y, &c, &err), -1);
  assert_non_null (strstr (err.msg, "anchors are not allowed"));
  /* Deep nesting does not recurse: 100,000 brackets are refused at once. */
  size_t deep = 100000;
  char *d = malloc (deep * 2 + 16);
  strcpy (d, "command: ");
  memset (d + 9, '[', deep);
  memset (d + 9 + deep, ']', deep);
  d[9 + 2 * deep] = '\0';
  assert_int_equal (parse (d, &c, &err), -1);
  assert_non_null (strstr (err.msg, "nested too deeply"));
  free (d);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_full),
    cmocka_unit_test (test_hostile),
    cmocka_unit_test (test_billion_laughs),
  };
  return cmocka_run_group_tests_name ("config", tests, NULL, NULL);
}
