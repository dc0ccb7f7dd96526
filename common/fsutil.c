#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cleanup.h"

int
write_file_at (int dirfd, const char *name, const char *buf, size_t len,
               struct error *err)
{
  cleanup_close int fd = openat (dirfd, name, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return error_set (err, errno, "open `%s` for writing", name);
  ssize_t n = write (fd, buf, len);
  if (n < 0)
    return error_set (err, errno, "write `%.*s` to `%s`", (int) (len > 64 ? 64 : len), buf, name);
  if ((size_t) n != len)
    return error_setx (err, EIO, "short write to `%s`", name);
  return 0;
}

ssize_t
pread_all (int fd, char *buf, size_t cap)
{
  size_t off = 0;
  while (off + 1 < cap)
    {
      ssize_t n = pread (fd, buf + off, cap - 1 - off, off);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return -1;
      if (n == 0)
        break;
      off += n;
    }
  buf[off] = '\0';
  return off;
}

ssize_t
read_file_at (int dirfd, const char *name, char *buf, size_t cap, struct error *err)
{
  cleanup_close int fd = openat (dirfd, name, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return error_set (err, errno, "open `%s`", name);
  ssize_t n = pread_all (fd, buf, cap);
  if (n < 0)
    return error_set (err, errno, "read `%s`", name);
  return n;
}

int
write_file_atomic (const char *dir, const char *name, const void *data, size_t len,
                   mode_t mode, struct error *err)
{
  char tmp[PATH_MAX];
  char dst[PATH_MAX];
  if (snprintf (tmp, sizeof tmp, "%s/.%s.XXXXXX", dir, name) >= (int) sizeof tmp
      || snprintf (dst, sizeof dst, "%s/%s", dir, name) >= (int) sizeof dst)
    return error_setx (err, ENAMETOOLONG, "path `%s/%s` is too long", dir, name);
  cleanup_close int fd = mkostemp (tmp, O_CLOEXEC);
  if (fd < 0)
    return error_set (err, errno, "create temp file in `%s`", dir);
  const char *p = data;
  size_t left = len;
  while (left > 0)
    {
      ssize_t n = write (fd, p, left);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        {
          int e = errno;
          unlink (tmp);
          return error_set (err, e, "write `%s`", tmp);
        }
      p += n;
      left -= n;
    }
  if (fchmod (fd, mode) < 0 || fsync (fd) < 0 || rename (tmp, dst) < 0)
    {
      int e = errno;
      unlink (tmp);
      return error_set (err, e, "write `%s`", dst);
    }
  return 0;
}

int
remove_tree_at (int dirfd, const char *name, struct error *err)
{
  if (unlinkat (dirfd, name, 0) == 0 || errno == ENOENT)
    return 0;
  if (errno != EISDIR && errno != EPERM)
    return error_set (err, errno, "remove `%s`", name);

  cleanup_close int fd = openat (dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return error_set (err, errno, "open directory `%s`", name);
  int dupfd = dup (fd);
  if (dupfd < 0)
    return error_set (err, errno, "dup");
  cleanup_closedir DIR *d = fdopendir (dupfd);
  if (d == NULL)
    {
      close (dupfd);
      return error_set (err, errno, "read directory `%s`", name);
    }
  struct dirent *de;
  while ((de = readdir (d)) != NULL)
    {
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      if (remove_tree_at (fd, de->d_name, err) < 0)
        return error_prefix (err, "remove `%s`", name);
    }
  if (unlinkat (dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
    return error_set (err, errno, "remove directory `%s`", name);
  return 0;
}

uint64_t
tree_bytes_at (int atfd, const char *name)
{
  struct stat st;
  if (fstatat (atfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return 0;
  uint64_t bytes = (uint64_t) st.st_blocks * 512;
  if (!S_ISDIR (st.st_mode))
    return bytes;
  int fd = openat (atfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  cleanup_closedir DIR *d = fd >= 0 ? fdopendir (fd) : NULL;
  if (d == NULL)
    {
      if (fd >= 0)
        close (fd);
      return bytes;
    }
  struct dirent *de;
  while ((de = readdir (d)) != NULL)
    if (strcmp (de->d_name, ".") != 0 && strcmp (de->d_name, "..") != 0)
      bytes += tree_bytes_at (dirfd (d), de->d_name);
  return bytes;
}

int
mkdir_p (const char *path, mode_t mode, struct error *err)
{
  /* Usually the path or its parent exists: one syscall then. */
  if (mkdir (path, mode) == 0 || errno == EEXIST)
    return 0;
  if (errno != ENOENT)
    return error_set (err, errno, "mkdir `%s`", path);
  char buf[PATH_MAX];
  if (snprintf (buf, sizeof buf, "%s", path) >= (int) sizeof buf)
    return error_setx (err, ENAMETOOLONG, "path `%s` is too long", path);
  for (char *p = buf + 1; *p; p++)
    {
      if (*p != '/')
        continue;
      *p = '\0';
      if (mkdir (buf, mode) < 0 && errno != EEXIST)
        return error_set (err, errno, "mkdir `%s`", buf);
      *p = '/';
    }
  if (mkdir (buf, mode) < 0 && errno != EEXIST)
    return error_set (err, errno, "mkdir `%s`", buf);
  return 0;
}

int
open_beneath (int rootfd, const char *path, int flags, bool same_mount)
{
  struct open_how how = {
    .flags = flags | O_CLOEXEC,
    .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS
               | (same_mount ? RESOLVE_NO_XDEV : 0),
  };
  return syscall (SYS_openat2, rootfd, path[0] ? path : ".", &how, sizeof how);
}
