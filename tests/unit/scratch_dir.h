/* A fresh scratch directory per test (cmocka setup/teardown pair), for the
 * unit tests that touch the filesystem. */
#ifndef TESTS_SCRATCH_DIR_H
#define TESTS_SCRATCH_DIR_H

#include <fcntl.h>
#include <stdlib.h>

#include "../../common/fsutil.h"

static char dir[64];

static int
scratch_setup (void **s)
{
  (void) s;
  memcpy (dir, "/tmp/agentd-unit-XXXXXX", sizeof "/tmp/agentd-unit-XXXXXX");
  return mkdtemp (dir) ? 0 : -1;
}

static int
scratch_teardown (void **s)
{
  (void) s;
  struct error err;
  return remove_tree_at (AT_FDCWD, dir, &err);
}

#endif
