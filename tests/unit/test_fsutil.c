/* common/fsutil.c and common/error.c. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "scratch_dir.h"

#include "../../common/error.h"
#include "../../common/fsutil.h"

static void
test_atomic_write_and_read (void **s)
{
  (void) s;
  struct error err = { 0 };
  assert_int_equal (write_file_atomic (dir, "f", "hello", 5, 0640, &err), 0);
  char path[PATH_MAX + 8], buf[16];
  snprintf (path, sizeof path, "%s/f", dir);
  assert_int_equal (read_file_at (AT_FDCWD, path, buf, sizeof buf, &err), 5);
  assert_string_equal (buf, "hello");
  struct stat st;
  assert_int_equal (stat (path, &st), 0);
  assert_int_equal (st.st_mode & 0777, 0640);
  /* No temp file is left beside it. */
  char cmd[PATH_MAX + 32];
  snprintf (cmd, sizeof cmd, "test $(ls -A %s | wc -l) = 1", dir);
  assert_int_equal (system (cmd), 0);
  assert_int_equal (write_file_atomic ("/nonexistent-dir", "f", "x", 1, 0600, &err), -1);
  assert_non_null (strstr (err.msg, "/nonexistent-dir"));
}

static void
test_remove_tree_does_not_follow_symlinks (void **s)
{
  (void) s;
  struct error err = { 0 };
  char outside[256], tree[256], cmd[2048];
  snprintf (outside, sizeof outside, "%s/outside", dir);
  snprintf (tree, sizeof tree, "%s/tree", dir);
  snprintf (cmd, sizeof cmd,
            "mkdir -p %1$s/keep %2$s/a/b && touch %1$s/keep/file %2$s/a/b/c && "
            "ln -s %1$s/keep %2$s/a/link && chmod 000 %2$s/a/b",
            outside, tree);
  assert_int_equal (system (cmd), 0);
  assert_int_equal (remove_tree_at (AT_FDCWD, tree, &err), 0);
  assert_int_equal (access (tree, F_OK), -1);
  snprintf (cmd, sizeof cmd, "%s/keep/file", outside);
  assert_int_equal (access (cmd, F_OK), 0);
  /* Missing is fine. */
  assert_int_equal (remove_tree_at (AT_FDCWD, tree, &err), 0);
}

static void
test_error_messages (void **s)
{
  (void) s;
  struct error err = { 0 };
  assert_int_equal (error_set (&err, ENOENT, "open `%s`", "x"), -1);
  assert_string_equal (err.msg, "open `x`: No such file or directory");
  assert_int_equal (err.code, ENOENT);
  error_prefix (&err, "layer %d", 3);
  assert_string_equal (err.msg, "layer 3: open `x`: No such file or directory");
  char longname[2000];
  memset (longname, 'a', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  error_setx (&err, EINVAL, "%s", longname);
  error_prefix (&err, "ctx");
  assert_int_equal (strlen (err.msg), ERROR_MSG_MAX - 1);
  assert_string_equal (err.msg + ERROR_MSG_MAX - 4, "...");
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown (test_atomic_write_and_read, scratch_setup, scratch_teardown),
    cmocka_unit_test_setup_teardown (test_remove_tree_does_not_follow_symlinks, scratch_setup, scratch_teardown),
    cmocka_unit_test (test_error_messages),
  };
  return cmocka_run_group_tests_name ("fsutil", tests, NULL, NULL);
}
