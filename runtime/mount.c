/* The workload's root filesystem, set up in the child's new mount
 * namespace. Every path inside the root is resolved from a dirfd with
 * openat2(RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS) and mounted on through
 * /proc/self/fd, so a hostile rootfs cannot redirect a mount to the host. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/fsutil.h"
#include "child.h"

static const char *const masked_paths[] = {
  "proc/acpi", "proc/asound", "proc/kcore", "proc/keys", "proc/latency_stats",
  "proc/timer_list", "proc/timer_stats", "proc/sched_debug", "sys/firmware",
  "proc/scsi",
};

static const char *const readonly_paths[] = {
  "proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger",
};

static const struct
{
  const char *name;
  unsigned major, minor;
} devices[] = {
  { "null", 1, 3 }, { "zero", 1, 5 }, { "full", 1, 7 },
  { "random", 1, 8 }, { "urandom", 1, 9 }, { "tty", 5, 0 },
};

static int
open_in_root (int rootfd, const char *path, int flags, struct error *err)
{
  /* Mounts made inside the root (proc, dev) are crossed on purpose. */
  int fd = open_beneath (rootfd, path, flags, false);
  if (fd < 0)
    {
      int e = errno;
      error_set (err, e, "rootfs: open `/%s`%s", path,
                 e == ELOOP ? " (symlinks are not followed here)" : "");
      errno = e;
    }
  return fd;
}

static void
fd_path (char *buf, size_t cap, int fd)
{
  snprintf (buf, cap, "/proc/self/fd/%d", fd);
}

/* Mount a fresh filesystem of `fstype` at path under the root, creating the
 * directory when the image lacks it. */
static int
mount_fs_at (int rootfd, const char *path, const char *fstype, unsigned long flags,
             const char *data, struct error *err)
{
  if (mkdirat (rootfd, path, 0755) < 0 && errno != EEXIST)
    return error_set (err, errno, "rootfs: create `/%s`", path);
  cleanup_close int fd = open_in_root (rootfd, path, O_PATH | O_DIRECTORY, err);
  if (fd < 0)
    return -1;
  char target[64];
  fd_path (target, sizeof target, fd);
  if (mount (fstype, target, fstype, flags, data) < 0)
    return error_set (err, errno, "mount %s on `/%s`", fstype, path);
  return 0;
}

static int
setup_dev (int rootfd, bool userns, struct error *err)
{
  if (mount_fs_at (rootfd, "dev", "tmpfs", MS_NOSUID | MS_STRICTATIME,
                   "mode=755,size=65536k", err) < 0)
    return -1;
  cleanup_close int devfd = open_in_root (rootfd, "dev", O_PATH | O_DIRECTORY, err);
  if (devfd < 0)
    return -1;
  for (size_t i = 0; i < sizeof devices / sizeof devices[0]; i++)
    {
      const char *name = devices[i].name;
      if (!userns)
        {
          if (mknodat (devfd, name, S_IFCHR | 0666,
                       makedev (devices[i].major, devices[i].minor)) < 0)
            return error_set (err, errno, "mknod `/dev/%s`", name);
          continue;
        }
      /* In a user namespace mknod is refused: bind the host's node. */
      cleanup_close int fd = openat (devfd, name, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
      if (fd < 0)
        return error_set (err, errno, "create `/dev/%s`", name);
      char host[32], target[64];
      snprintf (host, sizeof host, "/dev/%s", name);
      fd_path (target, sizeof target, fd);
      if (mount (host, target, NULL, MS_BIND, NULL) < 0)
        return error_set (err, errno, "bind `%s` into the container", host);
    }
  static const char *const links[][2] = {
    { "pts/ptmx", "ptmx" }, { "/proc/self/fd", "fd" }, { "/proc/self/fd/0", "stdin" },
    { "/proc/self/fd/1", "stdout" }, { "/proc/self/fd/2", "stderr" },
  };
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
    if (symlinkat (links[i][0], devfd, links[i][1]) < 0)
      return error_set (err, errno, "symlink `/dev/%s`", links[i][1]);
  if (mount_fs_at (rootfd, "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
                   "newinstance,ptmxmode=0666,mode=0620", err) < 0
      || mount_fs_at (rootfd, "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                      "mode=1777,size=65536k", err) < 0
      || mount_fs_at (rootfd, "dev/mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                      NULL, err) < 0)
    return -1;
  return 0;
}

static int
mask_path (int rootfd, const char *path, struct error *err)
{
  cleanup_close int fd = open_in_root (rootfd, path, O_PATH, err);
  if (fd < 0)
    return errno == ENOENT ? 0 : -1;
  struct stat st;
  if (fstat (fd, &st) < 0)
    return error_set (err, errno, "stat `/%s`", path);
  char target[64];
  fd_path (target, sizeof target, fd);
  int r = S_ISDIR (st.st_mode)
              ? mount ("tmpfs", target, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                       "size=0")
              : mount ("/dev/null", target, NULL, MS_BIND, NULL);
  if (r < 0)
    return error_set (err, errno, "mask `/%s`", path);
  return 0;
}

/* A read-only bind of path onto itself, with the fd-based mount API. */
static int
make_readonly (int rootfd, const char *path, struct error *err)
{
  cleanup_close int fd = open_in_root (rootfd, path, O_PATH, err);
  if (fd < 0)
    return errno == ENOENT ? 0 : -1;
  cleanup_close int tree = open_tree (fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC
                                                  | AT_EMPTY_PATH | AT_RECURSIVE);
  if (tree < 0)
    return error_set (err, errno, "read-only `/%s`: open_tree", path);
  struct mount_attr attr = {
    .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
  };
  if (mount_setattr (tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0)
    return error_set (err, errno, "read-only `/%s`: mount_setattr", path);
  if (move_mount (tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    return error_set (err, errno, "read-only `/%s`: move_mount", path);
  return 0;
}

int
child_setup_rootfs (const struct child_plan *plan, struct error *err)
{
  const struct rt_spec *spec = plan->spec;
  /* Nothing we mount may propagate back to the host. */
  if (mount (NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
    return error_set (err, errno, "make mounts private");
  if (plan->overlay_opts)
    {
      if (mount ("overlay", plan->target, "overlay", 0, plan->overlay_opts) < 0)
        return error_set (err, errno, "mount overlay of %zu layers on `%s`",
                          spec->n_lowers, plan->target);
    }
  else if (mount (spec->rootfs, spec->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
    return error_set (err, errno, "bind rootfs `%s`", spec->rootfs);

  cleanup_close int rootfd = open (plan->target, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return error_set (err, errno, "open rootfs `%s`", plan->target);

  if (mount_fs_at (rootfd, "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL, err) < 0
      || mount_fs_at (rootfd, "sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                      NULL, err) < 0
      || setup_dev (rootfd, spec->userns, err) < 0)
    return -1;
  for (size_t i = 0; i < sizeof masked_paths / sizeof masked_paths[0]; i++)
    if (mask_path (rootfd, masked_paths[i], err) < 0)
      return -1;
  for (size_t i = 0; i < sizeof readonly_paths / sizeof readonly_paths[0]; i++)
    if (make_readonly (rootfd, readonly_paths[i], err) < 0)
      return -1;

  /* pivot_root(".", ".") stacks the old root on the new one; detaching it
   * leaves no path back to the host. */
  if (fchdir (rootfd) < 0)
    return error_set (err, errno, "chdir to rootfs");
  if (syscall (SYS_pivot_root, ".", ".") < 0)
    return error_set (err, errno, "pivot_root to `%s`", plan->target);
  if (umount2 (".", MNT_DETACH) < 0)
    return error_set (err, errno, "detach the old root");
  if (chdir ("/") < 0)
    return error_set (err, errno, "chdir /");
  return 0;
}
