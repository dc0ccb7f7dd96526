/* builder/layer.c and builder/decompress.c: the unpacker against good and
 * hostile tar streams, plain, gzip and zstd. Runs as root (ownership,
 * whiteout device nodes, trusted.* xattrs); skips otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cmocka.h>

#include "scratch_dir.h"
#include "tar_maker.h"
#include "../../builder/layer.h"

static const struct layer_limits limits = { 1ULL << 30, 100000 };

/* Unpack fd into dir/name (created); returns the unpacker's result. */
static int
unpack_into (int fd, const char *name, struct layer_unpacked *u, struct error *err)
{
  char path[PATH_MAX];
  snprintf (path, sizeof path, "%s/%s", dir, name);
  mkdir (path, 0755);
  int dfd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int r = layer_unpack (fd, "layer test", dfd, &limits, NULL, NULL, u, err);
  close (dfd);
  return r;
}

static char *
at (const char *layer, const char *rel)
{
  static char path[PATH_MAX];
  snprintf (path, sizeof path, "%s/%s/%s", dir, layer, rel);
  return path;
}

static void
skip_unless_root (void)
{
  if (geteuid () != 0)
    {
      fprintf (stderr, "# skipped: needs root (ownership, whiteout device nodes, trusted.* xattrs)\n");
      skip ();
    }
}

static void
test_clean_path (void **s)
{
  (void) s;
  char out[PATH_MAX];
  struct error err = { 0 };
  assert_int_equal (layer_clean_path ("./a//b/./c/", out, sizeof out, &err), 0);
  assert_string_equal (out, "a/b/c");
  assert_int_equal (layer_clean_path ("/", out, sizeof out, &err), 0);
  assert_string_equal (out, "");
  assert_int_equal (layer_clean_path ("./", out, sizeof out, &err), 0);
  assert_string_equal (out, "");
  assert_int_equal (layer_clean_path ("a/../../etc", out, sizeof out, &err), -1);
  assert_non_null (strstr (err.msg, "`..` escapes"));
  assert_int_equal (layer_clean_path ("/etc/passwd", out, sizeof out, &err), -1);
  assert_non_null (strstr (err.msg, "absolute"));
  assert_int_equal (layer_clean_path ("a/..b/c..", out, sizeof out, &err), 0);
  assert_string_equal (out, "a/..b/c..");
}

static void
good_layer (struct tar_maker *t)
{
  tar_add (t, "./", AE_IFDIR, 0755, NULL, NULL, 0);
  tar_add (t, "etc/", AE_IFDIR, 0755, NULL, NULL, 0);
  tar_add (t, "etc/hosts", AE_IFREG, 0644, "127.0.0.1 localhost\n", NULL, 0);
  tar_add (t, "etc/hosts.link", AE_IFREG, 0644, NULL, "etc/hosts", 1);
  tar_add (t, "bin/sudo", AE_IFREG, 04755, "#!/bin/sh\n", NULL, 0); /* parent dir implied */
  tar_add (t, "bin/sh", AE_IFLNK, 0777, NULL, "/bin/busybox", 0);
  /* A 300-character path: past ustar's 100 and 155, so pax records it. */
  char lp[320] = "deep";
  for (int i = 0; i < 5; i++)
    strcat (lp, "/nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn");
  tar_add (t, lp, AE_IFREG, 0600, "long", NULL, 0);
  struct archive_entry *e = tar_entry ("bin/ping", AE_IFREG, 0755, "ping", NULL, 0);
  /* A file capability (cap_net_raw+ep) and a user xattr survive. */
  static const unsigned char cap[] = { 0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00,
                                       0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                       0x00, 0x00, 0x00, 0x00 };
  archive_entry_xattr_add_entry (e, "security.capability", cap, sizeof cap);
  archive_entry_xattr_add_entry (e, "user.origin", "test", 4);
  tar_write (t, e, "ping");
}

static void
check_good_layer (const char *name)
{
  struct stat st, st2;
  char buf[64];
  assert_int_equal (lstat (at (name, "etc/hosts"), &st), 0);
  assert_int_equal (st.st_mode & 07777, 0644);
  assert_int_equal (st.st_uid, 1000);
  assert_int_equal (lstat (at (name, "etc/hosts.link"), &st2), 0);
  assert_int_equal (st.st_ino, st2.st_ino); /* a hard link, not a copy */
  assert_int_equal (lstat (at (name, "bin/sudo"), &st), 0);
  assert_int_equal (st.st_mode & 07777, 04755); /* setuid kept after chown */
  assert_int_equal (readlink (at (name, "bin/sh"), buf, sizeof buf), 12);
  assert_memory_equal (buf, "/bin/busybox", 12);
  assert_int_equal (lstat (at (name, "bin/sh"), &st), 0);
  assert_int_equal (st.st_uid, 1000);
  char lp[320] = "deep";
  for (int i = 0; i < 5; i++)
    strcat (lp, "/nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn");
  assert_int_equal (lstat (at (name, lp), &st), 0);
  assert_int_equal (st.st_size, 4);
  assert_int_equal (getxattr (at (name, "bin/ping"), "user.origin", buf, sizeof buf), 4);
  assert_true (getxattr (at (name, "bin/ping"), "security.capability", buf, sizeof buf) > 0);
}

static void
test_good_layer_every_compression (void **s)
{
  (void) s;
  skip_unless_root ();
  const enum tar_filter filters[] = { TAR_PLAIN, TAR_GZIP, TAR_ZSTD };
  const char *names[] = { "plain", "gzip", "zstd" };
  struct digest first;
  for (int i = 0; i < 3; i++)
    {
      struct tar_maker t;
      tar_begin (&t, filters[i]);
      good_layer (&t);
      struct layer_unpacked u;
      struct error err = { 0 };
      if (unpack_into (tar_end_fd (&t), names[i], &u, &err) < 0)
        fail_msg ("%s: %s", names[i], err.msg);
      check_good_layer (names[i]);
      assert_int_equal (u.n_links, 0);
      /* The diff-id is over the tar stream, whatever compressed it. */
      if (i == 0)
        first = u.diff_id;
      else
        assert_string_equal (u.diff_id.hex, first.hex);
      layer_unpacked_clear (&u);
    }
}

static void
test_whiteouts_and_opaque_dirs (void **s)
{
  (void) s;
  skip_unless_root ();
  struct tar_maker t;
  tar_begin (&t, TAR_GZIP);
  tar_add (&t, "var/", AE_IFDIR, 0755, NULL, NULL, 0);
  tar_add (&t, "var/keep", AE_IFREG, 0644, "k", NULL, 0);
  tar_add (&t, "var/.wh..wh..opq", AE_IFREG, 0644, NULL, NULL, 0); /* after an entry of its dir */
  tar_add (&t, "etc/.wh.shadow", AE_IFREG, 0644, NULL, NULL, 0);
  struct layer_unpacked u;
  struct error err = { 0 };
  if (unpack_into (tar_end_fd (&t), "wh", &u, &err) < 0)
    fail_msg ("%s", err.msg);
  layer_unpacked_clear (&u);
  struct stat st;
  assert_int_equal (lstat (at ("wh", "etc/shadow"), &st), 0);
  assert_true (S_ISCHR (st.st_mode));
  assert_int_equal (st.st_rdev, makedev (0, 0));
  assert_int_equal (access (at ("wh", "etc/.wh.shadow"), F_OK), -1);
  char v[4];
  assert_int_equal (getxattr (at ("wh", "var"), "trusted.overlay.opaque", v, sizeof v), 1);
  assert_int_equal (v[0], 'y');
  assert_int_equal (access (at ("wh", "var/keep"), F_OK), 0); /* this layer's own entry stays */
  assert_int_equal (access (at ("wh", "var/.wh..wh..opq"), F_OK), -1);
}

/* Each hostile stream must fail with a message naming the entry, and must
 * not have written outside the layer directory. */
struct hostile
{
  const char *name;
  const char *want; /* in the error message */
};

static void
expect_failure (int fd, const char *layer, const char *want)
{
  struct layer_unpacked u;
  struct error err = { 0 };
  if (unpack_into (fd, layer, &u, &err) == 0)
    fail_msg ("%s: unpack succeeded", layer);
  if (strstr (err.msg, want) == NULL)
    fail_msg ("%s: error `%s` does not mention `%s`", layer, err.msg, want);
}

static void
test_hostile_paths (void **s)
{
  (void) s;
  skip_unless_root ();
  char outside[PATH_MAX];
  snprintf (outside, sizeof outside, "%s/outside", dir);
  mkdir (outside, 0755);
  struct tar_maker t;

  tar_begin (&t, TAR_PLAIN);
  tar_add (&t, "../escape", AE_IFREG, 0644, "x", NULL, 0);
  expect_failure (tar_end_fd (&t), "dotdot", "entry `../escape`: `..` escapes");

  tar_begin (&t, TAR_PLAIN);
  tar_add (&t, "/etc/agentd-test", AE_IFREG, 0644, "x", NULL, 0);
  expect_failure (tar_end_fd (&t), "absolute", "entry `/etc/agentd-test`: absolute paths");

  /* a -> OUTSIDE, then a/passwd: the write must not go through the link. */
  tar_begin (&t, TAR_PLAIN);
  tar_add (&t, "a", AE_IFLNK, 0777, NULL, outside, 0);
  tar_add (&t, "a/passwd", AE_IFREG, 0644, "pwned", NULL, 0);
  expect_failure (tar_end_fd (&t), "symlink-write", "entry `a/passwd`: its parent `a` is a symlink");
  char probe[PATH_MAX + 16];
  snprintf (probe, sizeof probe, "%s/passwd", outside);
  assert_int_equal (access (probe, F_OK), -1);

  /* A relative link climbing out, then a write below it. */
  tar_begin (&t, TAR_PLAIN);
  tar_add (&t, "up", AE_IFLNK, 0777, NULL, "../../..", 0);
  tar_add (&t, "up/tmp/pwned", AE_IFREG, 0644, "x", NULL, 0);
  expect_failure (tar_end_fd (&t), "symlink-up", "its parent `up/tmp` is a symlink");

  tar_begin (&t, TAR_PLAIN);
  tar_add (&t, "hl", AE_IFREG, 0644, NULL, "../../../etc/passwd", 1);
  expect_failure (tar_end_fd (&t), "hardlink-out", "hard link `hl`");

  tar_begin (&t, TAR_PLAIN);
  tar_add (&t, "hl2", AE_IFREG, 0644, NULL, "/etc/passwd", 1);
  expect_failure (tar_end_fd (&t), "hardlink-abs", "absolute paths");

  tar_begin (&t, TAR_PLAIN);
  tar_add (&t, ".", AE_IFLNK, 0777, NULL, "/", 0);
  expect_failure (tar_end_fd (&t), "symlink-dot", "only a directory may name the layer root");

  tar_begin (&t, TAR_PLAIN);
  tar_add (&t, "/", AE_IFLNK, 0777, NULL, "/etc", 0);
  expect_failure (tar_end_fd (&t), "symlink-root", "only a directory may name the layer root");

  tar_begin (&t, TAR_PLAIN);
  struct archive_entry *e = tar_entry ("dev/sda", AE_IFBLK, 0600, NULL, NULL, 0);
  archive_entry_set_rdev (e, makedev (8, 0));
  tar_write (&t, e, NULL);
  expect_failure (tar_end_fd (&t), "device", "entry `dev/sda`: device nodes are not allowed");

  tar_begin (&t, TAR_PLAIN);
  tar_add (&t, "etc/.wh.", AE_IFREG, 0644, NULL, NULL, 0);
  expect_failure (tar_end_fd (&t), "bare-wh", "entry `etc/.wh.`: not a valid whiteout");
}

static void
test_bombs_and_broken_streams (void **s)
{
  (void) s;
  skip_unless_root ();
  /* 64 MB of zeros compress to almost nothing: the cap stops it. */
  struct tar_maker t;
  tar_begin (&t, TAR_GZIP);
  struct archive_entry *e = tar_entry ("zeros", AE_IFREG, 0644, NULL, NULL, 0);
  archive_entry_set_size (e, 64 << 20);
  archive_write_header (t.a, e);
  archive_entry_free (e);
  static char zeros[1 << 20];
  for (int i = 0; i < 64; i++)
    archive_write_data (t.a, zeros, sizeof zeros);
  int fd = tar_end_fd (&t);
  struct layer_limits small = { 8 << 20, 100000 };
  char path[PATH_MAX];
  snprintf (path, sizeof path, "%s/bomb", dir);
  mkdir (path, 0755);
  int dfd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct layer_unpacked u;
  struct error err = { 0 };
  assert_int_equal (layer_unpack (fd, "layer bomb", dfd, &small, NULL, NULL, &u, &err), -1);
  assert_non_null (strstr (err.msg, "expands beyond the limit"));

  /* Too many entries. */
  tar_begin (&t, TAR_ZSTD);
  for (int i = 0; i < 50; i++)
    {
      char n[16];
      snprintf (n, sizeof n, "f%d", i);
      tar_add (&t, n, AE_IFREG, 0644, "x", NULL, 0);
    }
  struct layer_limits few = { 1 << 30, 10 };
  assert_int_equal (layer_unpack (tar_end_fd (&t), "layer many", dfd, &few, NULL, NULL, &u, &err), -1);
  assert_non_null (strstr (err.msg, "more than 10 entries"));
  close (dfd);

  /* A truncated gzip stream and corrupt zstd data. */
  tar_begin (&t, TAR_GZIP);
  good_layer (&t);
  fd = tar_end_fd (&t);
  off_t size = lseek (fd, 0, SEEK_END);
  assert_int_equal (ftruncate (fd, size / 2), 0);
  lseek (fd, 0, SEEK_SET);
  expect_failure (fd, "truncated", "gzip stream is truncated");

  tar_begin (&t, TAR_ZSTD);
  good_layer (&t);
  fd = tar_end_fd (&t);
  assert_int_equal (pwrite (fd, "garbage!", 8, 20), 8);
  expect_failure (fd, "corrupt-zstd", "zstd");
}

static void
test_diff_id_mismatch (void **s)
{
  (void) s;
  skip_unless_root ();
  struct tar_maker t;
  tar_begin (&t, TAR_GZIP);
  good_layer (&t);
  struct digest wrong;
  memset (wrong.hex, 'a', 64);
  wrong.hex[64] = '\0';
  char path[PATH_MAX];
  snprintf (path, sizeof path, "%s/mismatch", dir);
  mkdir (path, 0755);
  int dfd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  struct layer_unpacked u;
  struct error err = { 0 };
  assert_int_equal (layer_unpack (tar_end_fd (&t), "layer x", dfd, &limits, &wrong, NULL, &u, &err), -1);
  assert_non_null (strstr (err.msg, "layer x: diff-id mismatch"));
  close (dfd);
}

static void
test_hardlink_into_lower_layer_is_copied (void **s)
{
  (void) s;
  skip_unless_root ();
  struct tar_maker t;
  tar_begin (&t, TAR_PLAIN);
  tar_add (&t, "usr/bin/python3.11", AE_IFREG, 0755, "interpreter", NULL, 0);
  struct layer_unpacked lower, upper;
  struct error err = { 0 };
  assert_int_equal (unpack_into (tar_end_fd (&t), "lower", &lower, &err), 0);
  tar_begin (&t, TAR_PLAIN);
  tar_add (&t, "usr/bin/python3", AE_IFREG, 0755, NULL, "usr/bin/python3.11", 1);
  tar_add (&t, "usr/bin/missing", AE_IFREG, 0755, NULL, "usr/bin/nowhere", 1);
  assert_int_equal (unpack_into (tar_end_fd (&t), "upper", &upper, &err), 0);
  assert_int_equal (upper.n_links, 2);
  int lowerfd = open (at ("lower", ""), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  int upperfd = open (at ("upper", ""), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  assert_int_equal (layer_link_from_lowers (upperfd, "layer up", &upper, &lowerfd, 1, &err), -1);
  assert_non_null (strstr (err.msg, "hard link `usr/bin/missing` -> `usr/bin/nowhere`"));
  char buf[32] = "";
  int fd = open (at ("upper", "usr/bin/python3"), O_RDONLY | O_CLOEXEC);
  assert_true (fd >= 0);
  assert_int_equal (read (fd, buf, sizeof buf), 11);
  assert_string_equal (buf, "interpreter");
  close (fd);
  close (lowerfd);
  close (upperfd);
  layer_unpacked_clear (&lower);
  layer_unpacked_clear (&upper);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test (test_clean_path),
    cmocka_unit_test_setup_teardown (test_good_layer_every_compression, scratch_setup, scratch_teardown),
    cmocka_unit_test_setup_teardown (test_whiteouts_and_opaque_dirs, scratch_setup, scratch_teardown),
    cmocka_unit_test_setup_teardown (test_hostile_paths, scratch_setup, scratch_teardown),
    cmocka_unit_test_setup_teardown (test_bombs_and_broken_streams, scratch_setup, scratch_teardown),
    cmocka_unit_test_setup_teardown (test_diff_id_mismatch, scratch_setup, scratch_teardown),
    cmocka_unit_test_setup_teardown (test_hardlink_into_lower_layer_is_copied, scratch_setup, scratch_teardown),
  };
  return cmocka_run_group_tests_name ("layer", tests, NULL, NULL);
}
