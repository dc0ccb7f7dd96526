/* agentd/journal.c: records round-trip, sequence numbers continue across
 * opens, torn and corrupt tails are cut (and nothing valid is lost); and
 * agentd/usage.c's totals over a journal. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../agentd/journal.h"
#include "../../agentd/usage.h"
#include "scratch_dir.h"

struct seen
{
  uint64_t seqs[16];
  uint64_t cpu[16];
  size_t n, samples;
  char first_id[64];
  uint64_t first_psi_cpu, first_psi_io, first_disk;
};

static int
collect (void *ctx, const struct msg_usage_record *r)
{
  struct seen *s = ctx;
  if (s->n < 16)
    {
      s->seqs[s->n] = r->seq;
      s->cpu[s->n] = r->n_samples ? r->samples[r->n_samples - 1].cpu_usec : 0;
    }
  if (s->n == 0 && r->n_samples)
    {
      snprintf (s->first_id, sizeof s->first_id, "%s", r->samples[0].id);
      s->first_psi_cpu = r->samples[0].psi_cpu_us;
      s->first_psi_io = r->samples[0].psi_io_us;
      s->first_disk = r->samples[0].disk_bytes;
    }
  s->n++;
  s->samples += r->n_samples;
  return 0;
}

static void
append_three (struct journal *j)
{
  struct error err = { 0 };
  for (uint64_t i = 1; i <= 3; i++)
    {
      struct msg_usage_sample s[2] = {
        { (char *) "shop.production.web", 3, 1000 * i, 64u << 20, 70u << 20, 0, 4096 * i, 5, 100 * i, 200 * i, 8192, 11 * i, 0, 7 },
        { (char *) "shop.pr-7.api", 1, 1234567890123ull * i, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0 },
      };
      assert_int_equal (journal_append (j, 1700000000000ull + i * 1000, s, 2, &err), 0);
    }
  assert_int_equal (journal_sync (j, &err), 0);
}

/* A journal of three records, closed. */
static void
journal_of_three (void)
{
  struct error err = { 0 };
  struct journal *j;
  assert_int_equal (journal_open (dir, 0, &j, &err), 0);
  append_three (j);
  journal_close (j);
}

static char *
only_segment (char *out, size_t cap)
{
  snprintf (out, cap, "%s/seg-%016x.log", dir, 1);
  return out;
}

static void
test_roundtrip_and_seq (void **s)
{
  (void) s;
  struct error err = { 0 };
  struct journal *j;
  assert_int_equal (journal_open (dir, 0, &j, &err), 0);
  assert_int_equal (journal_next_seq (j), 1);
  append_three (j);
  journal_close (j);

  struct seen seen = { 0 };
  assert_int_equal (journal_read (dir, collect, &seen, &err), 0);
  assert_int_equal (seen.n, 3);
  assert_int_equal (seen.samples, 6);
  assert_int_equal (seen.seqs[2], 3);
  assert_true (seen.cpu[2] == 3 * 1234567890123ull);
  assert_string_equal (seen.first_id, "shop.production.web");
  assert_int_equal (seen.first_disk, 8192);
  assert_int_equal (seen.first_psi_cpu, 11);
  assert_int_equal (seen.first_psi_io, 7);

  assert_int_equal (journal_open (dir, 0, &j, &err), 0);
  assert_int_equal (journal_next_seq (j), 4);
  journal_close (j);
}

static void
test_torn_tail_cut (void **s)
{
  (void) s;
  struct error err = { 0 };
  struct journal *j;
  journal_of_three ();
  /* A crash mid-write: half a record at the end. */
  char path[256];
  int fd = open (only_segment (path, sizeof path), O_WRONLY | O_APPEND);
  assert_true (fd >= 0);
  assert_int_equal (write (fd, "\x40\x00\x00\x00\x12\x34", 6), 6);
  close (fd);
  struct stat before, after;
  stat (path, &before);
  assert_int_equal (journal_open (dir, 0, &j, &err), 0);
  stat (path, &after);
  assert_int_equal (before.st_size - after.st_size, 6);
  assert_int_equal (journal_next_seq (j), 4); /* the valid records all stay */
  append_three (j);
  journal_close (j);
  struct seen seen = { 0 };
  assert_int_equal (journal_read (dir, collect, &seen, &err), 0);
  assert_int_equal (seen.n, 6);
  assert_int_equal (seen.seqs[5], 6);
}

static void
test_corrupt_record_cut (void **s)
{
  (void) s;
  struct error err = { 0 };
  struct journal *j;
  journal_of_three ();
  /* Flip a byte inside the last record: its checksum no longer matches. */
  char path[256];
  struct stat st;
  stat (only_segment (path, sizeof path), &st);
  int fd = open (path, O_RDWR);
  char c;
  assert_int_equal (pread (fd, &c, 1, st.st_size - 3), 1);
  c ^= 0x5a;
  assert_int_equal (pwrite (fd, &c, 1, st.st_size - 3), 1);
  close (fd);
  assert_int_equal (journal_open (dir, 0, &j, &err), 0);
  assert_int_equal (journal_next_seq (j), 3);
  journal_close (j);
  struct seen seen = { 0 };
  assert_int_equal (journal_read (dir, collect, &seen, &err), 0);
  assert_int_equal (seen.n, 2);
}

struct taken
{
  uint64_t seqs[64];
  size_t n, limit;
};

static int
take (void *ctx, const struct msg_usage_record *r)
{
  struct taken *t = ctx;
  if (t->n < 64)
    t->seqs[t->n] = r->seq;
  t->n++;
  return t->limit && t->n == t->limit;
}

static void
test_scan_resumes_where_it_stopped (void **s)
{
  (void) s;
  struct error err = { 0 };
  struct journal *j;
  assert_int_equal (journal_open (dir, 0, &j, &err), 0);
  append_three (j);
  struct journal_cursor c = { .next_seq = 2 };
  struct taken t = { .limit = 1 };
  assert_int_equal (journal_scan (j, &c, take, &t, &err), 0);
  assert_int_equal (t.n, 1);
  assert_int_equal (t.seqs[0], 2); /* seq 1 passed over */
  assert_int_equal (c.next_seq, 3);
  t = (struct taken){ 0 };
  assert_int_equal (journal_scan (j, &c, take, &t, &err), 0);
  assert_int_equal (t.n, 1);
  assert_int_equal (t.seqs[0], 3);
  t = (struct taken){ 0 };
  assert_int_equal (journal_scan (j, &c, take, &t, &err), 0);
  assert_int_equal (t.n, 0); /* nothing new */
  append_three (j);
  assert_int_equal (journal_scan (j, &c, take, &t, &err), 0);
  assert_int_equal (t.n, 3);
  assert_int_equal (t.seqs[2], 6);
  journal_close (j);
}

/* Records of 2,000 samples (about 100 KB): a few fill a segment. */
static void
append_big (struct journal *j, int records)
{
  static struct msg_usage_sample big[2000];
  for (size_t i = 0; i < 2000; i++)
    big[i] = (struct msg_usage_sample){ .id = (char *) "shop.production.web", .version = 1,
                                        .cpu_usec = 123456789, .memory_current = 1 << 30 };
  struct error err = { 0 };
  for (int i = 0; i < records; i++)
    assert_int_equal (journal_append (j, 1700000000000ull, big, 2000, &err), 0);
}

static size_t
count_segments (void)
{
  size_t n = 0;
  DIR *d = opendir (dir);
  struct dirent *e;
  while ((e = readdir (d)) != NULL)
    n += strncmp (e->d_name, "seg-", 4) == 0;
  closedir (d);
  return n;
}

static void
test_release_and_bound (void **s)
{
  (void) s;
  struct error err = { 0 };
  struct journal *j;
  assert_int_equal (journal_open (dir, 0, &j, &err), 0);
  append_big (j, 400); /* about 26 MB: four segments */
  assert_int_equal (count_segments (), 4);
  journal_release (j, 10); /* inside the first segment: nothing goes */
  assert_int_equal (count_segments (), 4);
  journal_release (j, 399); /* all but the current segment acknowledged */
  assert_int_equal (count_segments (), 1);
  /* A reader behind the release sees the gap: its first record is later. */
  struct journal_cursor c = { .next_seq = 1 };
  struct taken t = { .limit = 1 };
  assert_int_equal (journal_scan (j, &c, take, &t, &err), 0);
  assert_true (t.seqs[0] > 100);
  journal_close (j);

  /* Bounded at 12 MB: the oldest segment is dropped (said on stderr). */
  assert_int_equal (journal_open (dir, 12u << 20, &j, &err), 0);
  append_big (j, 200);
  journal_close (j);
  struct seen seen = { 0 };
  assert_int_equal (journal_read (dir, collect, &seen, &err), 0);
  assert_true (seen.n < 400);
  assert_true (seen.seqs[0] > 400);
}

/* A restart (CPU counting from zero) starts a new run; a network counter
 * that reads lower for a while (its veth vanished) does not, and neither
 * bills the run twice nor goes negative. */
static void
test_usage_totals_runs (void **s)
{
  (void) s;
  struct error err = { 0 };
  struct journal *j;
  assert_int_equal (journal_open (dir, 0, &j, &err), 0);
  const uint64_t cpu[5] = { 1000000, 2000000, 3000000, 500000, 1500000 };
  const uint64_t net[5] = { 100, 200, 0, 50, 150 };
  for (int i = 0; i < 5; i++)
    {
      struct msg_usage_sample smp = { .id = (char *) "shop.main.web", .version = 1, .cpu_usec = cpu[i],
                                      .memory_current = 1000000000, .net_rx = net[i], .net_tx = net[i] };
      if (i == 2)
        smp.net_rx = smp.net_tx = 0;
      assert_int_equal (journal_append (j, 1700000000000ull + (uint64_t) i * 1000, &smp, 1, &err), 0);
    }
  journal_close (j);
  struct usage_total *t;
  size_t n;
  assert_int_equal (usage_totals (dir, 0, &t, &n, &err), 0);
  assert_int_equal (n, 1);
  /* Run 1: 3 s of CPU and 200 bytes (the 0 reading adds nothing); run 2
   * (restarted): 1.5 s and 150 bytes, counted from zero. */
  assert_true (t[0].cpu_s > 4.499 && t[0].cpu_s < 4.501);
  assert_int_equal (t[0].rx, 350);
  assert_int_equal (t[0].tx, 350);
  assert_int_equal (t[0].seconds, 5);
  free (t);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown (test_roundtrip_and_seq, scratch_setup, scratch_teardown),
    cmocka_unit_test_setup_teardown (test_torn_tail_cut, scratch_setup, scratch_teardown),
    cmocka_unit_test_setup_teardown (test_corrupt_record_cut, scratch_setup, scratch_teardown),
    cmocka_unit_test_setup_teardown (test_scan_resumes_where_it_stopped, scratch_setup,
                                     scratch_teardown),
    cmocka_unit_test_setup_teardown (test_release_and_bound, scratch_setup, scratch_teardown),
    cmocka_unit_test_setup_teardown (test_usage_totals_runs, scratch_setup, scratch_teardown),
  };
  return cmocka_run_group_tests_name ("journal", tests, NULL, NULL);
}
