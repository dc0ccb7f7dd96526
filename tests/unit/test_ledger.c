/* control/ledger.c: a batch stored once (a replay bills nothing), usage as
 * differences of cumulative counters (a CPU counter that goes back starts
 * a new run), gaps refused unless the node says they are lost, credits
 * that alert and stop, and rates.yaml. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../control/ledger.h"
#include "scratch_dir.h"

static struct ledger *
open_ledger (void)
{
  char path[600];
  snprintf (path, sizeof path, "%s/ledger.sqlite", dir);
  struct ledger *l = NULL;
  struct error err = { 0 };
  assert_int_equal (ledger_open (path, false, &l, &err), 0);
  return l;
}

/* Records seq first..first+n-1, one a second, one workload whose CPU
 * grows by cpu_step µs a second from cpu0, 100 MB resident. */
static void
make_batch (struct msg_usage_batch *b, struct msg_usage_record *recs,
            struct msg_usage_sample *samples, uint64_t first, size_t n, uint64_t cpu0,
            uint64_t cpu_step)
{
  for (size_t i = 0; i < n; i++)
    {
      samples[i] = (struct msg_usage_sample){ .id = (char *) "shop.main.web",
                                              .version = 1,
                                              .cpu_usec = cpu0 + cpu_step * (i + 1),
                                              .memory_current = 100000000,
                                              .psi_cpu_us = 100 * (first + i) };
      recs[i] = (struct msg_usage_record){ .seq = first + i,
                                           .ts_ms = 1700000000000ull + (first + i) * 1000,
                                           .boot_id = (char *) "boot-a",
                                           .samples = &samples[i],
                                           .n_samples = 1 };
    }
  *b = (struct msg_usage_batch){ recs, n, 0 };
}

static struct usage_line
total (struct ledger *l)
{
  struct usage_query q = { .project = "shop" };
  struct usage_line *lines;
  size_t n;
  struct error err = { 0 };
  assert_int_equal (ledger_usage (l, &q, &lines, &n, &err), 0);
  assert_int_equal (n, 1);
  struct usage_line t = lines[0];
  free (lines);
  return t;
}

static void
test_replay_bills_nothing (void **s)
{
  (void) s;
  struct ledger *l = open_ledger ();
  struct rates r;
  rates_default (&r);
  struct msg_usage_record recs[10];
  struct msg_usage_sample smp[10];
  struct msg_usage_batch b;
  struct ingest_result res;
  struct error err = { 0 };
  make_batch (&b, recs, smp, 1, 10, 0, 500000); /* half a CPU */
  assert_int_equal (ledger_ingest (l, &r, "n1", &b, &res, &err), 0);
  assert_int_equal (res.acked, 10);
  assert_int_equal (res.stored, 10);
  ingest_result_clear (&res);
  struct usage_line t = total (l);
  assert_int_equal (t.seconds, 10);
  assert_int_equal (t.cpu_us, 5000000);
  assert_int_equal (t.memory_byte_s, 1000000000); /* 0.1 GB for 10 s */
  assert_int_equal (t.psi_us[0], 1000);           /* stalls add up like CPU */
  double expect = 5 * 0.00000772 + 1.0 * 0.00000386;
  assert_true (t.cost > expect * 0.999 && t.cost < expect * 1.001);

  /* The same batch again (a resend after a lost ack): nothing changes. */
  assert_int_equal (ledger_ingest (l, &r, "n1", &b, &res, &err), 0);
  assert_int_equal (res.stored, 0);
  assert_int_equal (res.duplicates, 10);
  assert_int_equal (res.acked, 10);
  ingest_result_clear (&res);
  struct usage_line t2 = total (l);
  assert_int_equal (t2.cpu_us, t.cpu_us);
  assert_int_equal (t2.seconds, t.seconds);

  /* Overlapping: 6..15 stores only 11..15. */
  make_batch (&b, recs, smp, 6, 10, 2500000, 500000);
  assert_int_equal (ledger_ingest (l, &r, "n1", &b, &res, &err), 0);
  assert_int_equal (res.stored, 5);
  assert_int_equal (res.acked, 15);
  ingest_result_clear (&res);
  assert_int_equal (total (l).cpu_us, 7500000);

  /* Another node's sequence numbers are its own. */
  make_batch (&b, recs, smp, 1, 3, 0, 1000000);
  assert_int_equal (ledger_ingest (l, &r, "n2", &b, &res, &err), 0);
  assert_int_equal (res.stored, 3);
  ingest_result_clear (&res);
  uint64_t acked;
  assert_int_equal (ledger_acked (l, "n1", &acked, &err), 0);
  assert_int_equal (acked, 15);
  ledger_close (l);
}

/* One batch from node n1 at the default rates. */
static void
ingest (struct ledger *l, struct msg_usage_batch *b)
{
  struct rates r;
  rates_default (&r);
  struct ingest_result res;
  struct error err = { 0 };
  assert_int_equal (ledger_ingest (l, &r, "n1", b, &res, &err), 0);
  ingest_result_clear (&res);
}

static void
test_counter_reset_is_a_new_run (void **s)
{
  (void) s;
  struct ledger *l = open_ledger ();
  struct msg_usage_record recs[4];
  struct msg_usage_sample smp[4];
  struct msg_usage_batch b;
  make_batch (&b, recs, smp, 1, 4, 0, 1000000);
  smp[2].cpu_usec = 300000; /* restarted: counts from zero again */
  smp[3].cpu_usec = 1300000;
  ingest (l, &b);
  /* 1 s + 1 s, then 0.3 s (the new run's first), then 1 s. */
  assert_int_equal (total (l).cpu_us, 3300000);
  ledger_close (l);
}

/* Only the CPU counter going back means a restart. A network counter that
 * drops (the veth vanished as the workload exited) or a sample in the same
 * millisecond as the one before is no new run: billing the run's whole
 * CPU again would charge it twice. */
static void
test_net_counter_drop_is_not_a_new_run (void **s)
{
  (void) s;
  struct ledger *l = open_ledger ();
  struct msg_usage_record recs[4];
  struct msg_usage_sample smp[4];
  struct msg_usage_batch b;
  make_batch (&b, recs, smp, 1, 4, 0, 1000000);
  for (int i = 0; i < 4; i++)
    smp[i].net_rx = smp[i].net_tx = 1000 * (i + 1);
  smp[2].net_rx = smp[2].net_tx = 0; /* unreadable for a moment */
  /* The last sample taken as the workload exits, in the same millisecond
   * as the tick before it: no time passed, but the same run. */
  recs[3].ts_ms = recs[2].ts_ms;
  ingest (l, &b);
  struct usage_line t = total (l);
  assert_int_equal (t.cpu_us, 4000000);
  assert_int_equal (t.net_tx, 4000); /* the drop and the way back bill nothing */
  assert_int_equal (t.net_rx, 4000);
  ledger_close (l);
}

static void
test_gaps (void **s)
{
  (void) s;
  struct ledger *l = open_ledger ();
  struct rates r;
  rates_default (&r);
  struct msg_usage_record recs[5];
  struct msg_usage_sample smp[5];
  struct msg_usage_batch b;
  struct ingest_result res;
  struct error err = { 0 };
  make_batch (&b, recs, smp, 3, 5, 0, 1000000);
  assert_int_equal (ledger_ingest (l, &r, "n1", &b, &res, &err), 0);
  assert_int_equal (res.stored, 0); /* 1 and 2 missing: nothing stored */
  assert_int_equal (res.acked, 0);
  ingest_result_clear (&res);
  b.lost_before = 3; /* the node's journal dropped them */
  assert_int_equal (ledger_ingest (l, &r, "n1", &b, &res, &err), 0);
  assert_int_equal (res.stored, 5);
  assert_int_equal (res.acked, 7);
  ingest_result_clear (&res);
  struct event_line *ev;
  size_t n;
  assert_int_equal (ledger_events (l, &ev, &n, &err), 0);
  assert_int_equal (n, 1);
  assert_string_equal (ev[0].kind, "lost");
  assert_non_null (strstr (ev[0].text, "records 1 to 2"));
  free (ev);
  ledger_close (l);
}

static void
test_credits_alert_then_stop (void **s)
{
  (void) s;
  struct ledger *l = open_ledger ();
  struct rates r;
  rates_default (&r);
  struct error err = { 0 };
  /* Each record costs 0.00000772 (a CPU-second) + 0.000000386 (0.1 GB-s). */
  assert_int_equal (ledger_credits_add (l, "shop", 0.00004, &err), 0);
  struct msg_usage_record recs[8];
  struct msg_usage_sample smp[8];
  struct msg_usage_batch b;
  struct ingest_result res;
  make_batch (&b, recs, smp, 1, 3, 0, 1000000); /* ~61% used */
  assert_int_equal (ledger_ingest (l, &r, "n1", &b, &res, &err), 0);
  assert_null (res.stop_projects[0]);
  ingest_result_clear (&res);
  make_batch (&b, recs, smp, 4, 3, 3000000, 1000000); /* ~122% used */
  assert_int_equal (ledger_ingest (l, &r, "n1", &b, &res, &err), 0);
  assert_non_null (res.stop_projects[0]);
  assert_string_equal (res.stop_projects[0], "shop");
  ingest_result_clear (&res);
  struct event_line *ev;
  size_t n;
  assert_int_equal (ledger_events (l, &ev, &n, &err), 0);
  const char *kinds[] = { "credits", "alert", "alert", "alert", "stop" };
  assert_int_equal (n, 5);
  for (size_t i = 0; i < n; i++)
    assert_string_equal (ev[i].kind, kinds[i]);
  free (ev);
  struct credit_line *c;
  assert_int_equal (ledger_credits (l, &c, &n, &err), 0);
  assert_int_equal (n, 1);
  assert_true (c[0].stopped && c[0].limited);
  free (c);
  /* More credits: active again. */
  assert_int_equal (ledger_credits_add (l, "shop", 1, &err), 0);
  assert_int_equal (ledger_credits (l, &c, &n, &err), 0);
  assert_false (c[0].stopped);
  free (c);
  ledger_close (l);
}

static void
test_rates_yaml (void **s)
{
  (void) s;
  char path[600];
  struct rates r;
  struct error err = { 0 };
  snprintf (path, sizeof path, "%s/rates.yaml", dir);
  FILE *f = fopen (path, "w");
  fputs ("vcpu_second: 0.00001\nalert_thresholds: [25, 90]\n", f);
  fclose (f);
  assert_int_equal (rates_load (path, &r, &err), 0);
  assert_true (r.vcpu_second == 0.00001);
  assert_true (r.memory_gb_second == 0.00000386); /* the default stays */
  assert_int_equal (r.n_thresholds, 2);
  assert_true (r.thresholds[1] == 0.9);
  const char *bad[] = { "vcpu_second: cheap\n", "alert_thresholds: [80, 50]\n", "vcpu: 1\n",
                        "egress_gb: -1\n" };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    {
      f = fopen (path, "w");
      fputs (bad[i], f);
      fclose (f);
      assert_int_equal (rates_load (path, &r, &err), -1);
      assert_non_null (strstr (err.msg, "rates.yaml"));
    }
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown (test_replay_bills_nothing, scratch_setup, scratch_teardown),
    cmocka_unit_test_setup_teardown (test_counter_reset_is_a_new_run, scratch_setup,
                                     scratch_teardown),
    cmocka_unit_test_setup_teardown (test_net_counter_drop_is_not_a_new_run, scratch_setup,
                                     scratch_teardown),
    cmocka_unit_test_setup_teardown (test_gaps, scratch_setup, scratch_teardown),
    cmocka_unit_test_setup_teardown (test_credits_alert_then_stop, scratch_setup,
                                     scratch_teardown),
    cmocka_unit_test_setup_teardown (test_rates_yaml, scratch_setup, scratch_teardown),
  };
  return cmocka_run_group_tests_name ("ledger", tests, NULL, NULL);
}
