/* agentd/config.c: agentd.yaml. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../agentd/config.h"

static int
parse (const char *text, struct agentd_config *c, struct error *err)
{
  return agentd_config_parse ("agentd.yaml", text, strlen (text), c, err);
}

static void
test_full (void **s)
{
  (void) s;
  struct agentd_config c;
  struct error err = { 0 };
  assert_int_equal (parse ("root: /srv/agentd\nsocket: /run/a.sock\nsubnet: 10.90.0.0/16\n"
                           "bridge: br-agent\nnetwork: off\nport_base: 30000\n"
                           "metrics: 127.0.0.1:9464\nlog_max: 16M\nallow_uids: [1000, 1001]\n"
                           "socket_group: deployers\ncontrol: 10.0.0.5:7070\nnode_id: node-1\n"
                           "token_file: /etc/agentd/token\njournal_max: 256M\njournal_sync: 5s\n",
                           &c, &err),
                    0);
  assert_string_equal (c.root, "/srv/agentd");
  assert_string_equal (c.socket, "/run/a.sock");
  assert_string_equal (c.bridge, "br-agent");
  assert_true (c.has_network);
  assert_int_equal (c.network, 0);
  assert_int_equal (c.port_base, 30000);
  assert_int_equal (c.log_max, 16u << 20);
  assert_int_equal (c.n_allow_uids, 2);
  assert_int_equal (c.allow_uids[1], 1001);
  assert_string_equal (c.socket_group, "deployers");
  assert_string_equal (c.control, "10.0.0.5:7070");
  assert_string_equal (c.node_id, "node-1");
  assert_string_equal (c.token_file, "/etc/agentd/token");
  assert_int_equal (c.journal_max, 256u << 20);
  assert_true (c.has_journal_sync);
  assert_int_equal (c.journal_sync, 5);
  agentd_config_clear (&c);
}

static void
test_hostile (void **s)
{
  (void) s;
  struct
  {
    const char *yaml, *want;
  } bad[] = {
    { "network: maybe\n", "line 1 column 10: network: `maybe`: expected true or false" },
    { "port_base: 0\n", "line 1 column 12: port_base" },
    { "allow_uids: 1000\n", "line 1 column 13: allow_uids: expected a list" },
    { "allow_uids: [root]\n", "line 1 column 14: allow_uids: numeric uids" },
    { "workers: 4\n", "line 1 column 1: unknown key `workers`" },
    { "root: &r /x\nsocket: *r\n", "anchors are not allowed in agentd.yaml" },
    { "root: {a: {b: c}}\n", "line 1 column 7: root: expected a single value" },
    { "allow_uids: [[1]]\n", "nested too deeply" },
    { "allow_uids: [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]\n", "at most 16" },
    { "journal_max: lots\n", "line 1 column 14: journal_max" },
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      struct agentd_config c;
      struct error err = { 0 };
      if (parse (bad[i].yaml, &c, &err) != -1)
        fail_msg ("accepted: %s", bad[i].yaml);
      if (strstr (err.msg, bad[i].want) == NULL)
        fail_msg ("`%s`: error `%s` lacks `%s`", bad[i].yaml, err.msg, bad[i].want);
    }
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_full),
    cmocka_unit_test (test_hostile),
  };
  return cmocka_run_group_tests_name ("agentd_config", tests, NULL, NULL);
}
