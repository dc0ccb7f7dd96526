/* builder/store.c: blobs are verified before they land; tags in index.json. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "scratch_dir.h"
#include "../../builder/store.h"

static int
mem_fd (const char *data)
{
  int fd = memfd_create ("blob", MFD_CLOEXEC);
  if (write (fd, data, strlen (data)) != (ssize_t) strlen (data))
    return -1;
  lseek (fd, 0, SEEK_SET);
  return fd;
}

/* sha256("hello\n") */
#define HELLO "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"

static int
blob_files (void)
{
  char cmd[PATH_MAX];
  snprintf (cmd, sizeof cmd, "ls -A %s/blobs/sha256 | wc -l", dir);
  FILE *p = popen (cmd, "r");
  int n = -1;
  if (p && fscanf (p, "%d", &n) != 1)
    n = -1;
  if (p)
    pclose (p);
  return n;
}

static void
test_blobs_are_verified (void **s)
{
  (void) s;
  struct store *st;
  struct error err = { 0 };
  assert_int_equal (store_open (dir, &st, &err), 0);
  struct digest d;
  assert_int_equal (digest_parse (HELLO, &d, &err), 0);

  int fd = mem_fd ("hellO\n");
  assert_int_equal (store_put_blob (st, fd, &d, 6, &err), -1);
  assert_non_null (strstr (err.msg, "digest mismatch"));
  close (fd);
  fd = mem_fd ("hello\n");
  assert_int_equal (store_put_blob (st, fd, &d, 7, &err), -1);
  assert_non_null (strstr (err.msg, "truncated"));
  close (fd);
  fd = mem_fd ("hello\nand more");
  assert_int_equal (store_put_blob (st, fd, &d, 6, &err), -1);
  assert_non_null (strstr (err.msg, "larger than"));
  close (fd);
  assert_false (store_has_blob (st, &d));
  assert_int_equal (blob_files (), 0); /* no temp file left behind */

  fd = mem_fd ("hello\n");
  assert_int_equal (store_put_blob (st, fd, &d, 6, &err), 0);
  close (fd);
  assert_true (store_has_blob (st, &d));
  char *data;
  size_t len;
  assert_int_equal (store_read_blob (st, &d, 6, 1024, &data, &len, &err), 0);
  assert_int_equal (len, 6);
  free (data);
  store_close (st);
}

static void
test_index_tags (void **s)
{
  (void) s;
  struct store *st;
  struct error err = { 0 };
  assert_int_equal (store_open (dir, &st, &err), 0);
  json_t *index = store_load_index (st, &err);
  assert_non_null (index);
  json_array_append_new (json_object_get (index, "manifests"),
                         json_pack ("{s:s, s:s, s:i, s:{s:s}}", "mediaType", "application/vnd.oci.image.manifest.v1+json",
                                    "digest", HELLO, "size", 6, "annotations", REF_NAME_ANNOTATION, "app:v1"));
  assert_int_equal (store_save_index (st, index, &err), 0);
  json_decref (index);
  index = store_load_index (st, &err);
  assert_non_null (store_find_ref (index, "app:v1"));
  assert_non_null (store_find_ref (index, HELLO));
  assert_null (store_find_ref (index, "app:v2"));
  json_decref (index);
  char path[PATH_MAX];
  snprintf (path, sizeof path, "%s/oci-layout", dir);
  assert_int_equal (access (path, F_OK), 0);
  store_close (st);
}

int
main (void)
{
  const struct CMUnitTest tests[] = {
    cmocka_unit_test_setup_teardown (test_blobs_are_verified, scratch_setup, scratch_teardown),
    cmocka_unit_test_setup_teardown (test_index_tags, scratch_setup, scratch_teardown),
  };
  return cmocka_run_group_tests_name ("store", tests, NULL, NULL);
}
