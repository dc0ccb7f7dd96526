#include "layer.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/fsutil.h"
#include "decompress.h"

#define WHITEOUT ".wh."
#define OPAQUE ".wh..wh..opq"

int
layer_clean_path (const char *in, char *out, size_t cap, struct error *err)
{
  /* "/" alone is the root (umoci writes it); anything else absolute is not. */
  if (in[0] == '/' && in[strspn (in, "/")] != '\0')
    return error_setx (err, EINVAL, "entry `%s`: absolute paths are not allowed", in);
  size_t o = 0;
  const char *p = in;
  while (*p)
    {
      const char *end = strchrnul (p, '/');
      size_t l = end - p;
      if (l == 2 && p[0] == '.' && p[1] == '.')
        return error_setx (err, EINVAL, "entry `%s`: `..` escapes the layer root", in);
      if (l > 0 && !(l == 1 && p[0] == '.'))
        {
          if (o + l + 2 > cap)
            return error_setx (err, ENAMETOOLONG, "entry `%.100s...`: path too long", in);
          if (o > 0)
            out[o++] = '/';
          memcpy (out + o, p, l);
          o += l;
        }
      p = *end ? end + 1 : end;
    }
  out[o] = '\0';
  return 0;
}


struct unpack
{
  const char *what;
  int rootfd;
  struct archive *ar;
  struct decomp *dc;
  struct error *err;
  unsigned char buf[2048]; /* the supplied tail of a short tar */
  /* The parent directory of the previous entry, reused while it repeats. */
  char parent[PATH_MAX];
  int parentfd;
  bool parent_sgid;  /* it is setgid: what is made in it takes its group */
  struct layer_unpacked *out;
  size_t links_cap;
  uid_t euid;        /* who new files belong to before any chown */
  gid_t egid;
  mode_t umask;      /* what open() and mkdir() take off a mode */
  uint64_t fed;      /* tar bytes given to libarchive */
  bool ended;        /* the stream ended and the missing tail was supplied */
  bool read_failed;  /* err holds the decompressor's error */
};

/* libarchive failed: the decompressor's own error, when it caused this,
 * says more than libarchive's echo of it. */
static int
archive_failure (struct unpack *u, const char *context)
{
  if (u->read_failed)
    return -1;
  return error_setx (u->err, EINVAL, "%s: %s%s", u->what, context, archive_error_string (u->ar));
}

static la_ssize_t
read_cb (struct archive *a, void *arg, const void **buf)
{
  struct unpack *u = arg;
  ssize_t n = decomp_next (u->dc, buf, u->err);
  if (n < 0)
    {
      u->read_failed = true;
      archive_set_error (a, u->err->code ? u->err->code : EIO, "%s", u->err->msg);
      return -1;
    }
  if (n == 0 && !u->ended)
    {
      /* Some writers (umoci 0.4 `insert`) end the tar without the last
       * entry's padding and the two zero blocks. Supply them: the diff-id
       * is still taken over the bytes actually received. */
      u->ended = true;
      n = (512 - u->fed % 512) % 512 + 1024;
      memset (u->buf, 0, n);
      *buf = u->buf;
    }
  u->fed += n;
  return n;
}

/* The parent may change after it was cached (the root's own entry
 * sets the root's mode): look it up again. */
static void
forget_parent (struct unpack *u)
{
  if (u->parentfd >= 0)
    close (u->parentfd);
  u->parentfd = -1;
}

/* The directory an entry goes in, created (with parents) when the tar has
 * no entry for it; never through a symlink. */
static int
parent_dir (struct unpack *u, const char *entry, const char *parent)
{
  if (u->parentfd >= 0 && strcmp (u->parent, parent) == 0)
    return u->parentfd;
  forget_parent (u);
  int fd = open_beneath (u->rootfd, parent, O_RDONLY | O_DIRECTORY, true);
  if (fd < 0 && errno == ENOENT)
    {
      /* Create the missing components one by one, each checked. */
      char sofar[PATH_MAX];
      size_t n = 0;
      for (const char *p = parent; *p;)
        {
          const char *end = strchrnul (p, '/');
          memcpy (sofar + n, p, end - p);
          n += end - p;
          sofar[n] = '\0';
          if (mkdirat (u->rootfd, sofar, 0755) < 0 && errno != EEXIST)
            return error_set (u->err, errno, "%s: entry `%s`: create parent `%s`", u->what, entry, sofar);
          sofar[n++] = '/';
          p = *end ? end + 1 : end;
        }
      fd = open_beneath (u->rootfd, parent, O_RDONLY | O_DIRECTORY, true);
    }
  if (fd < 0)
    {
      if (errno == ELOOP || errno == ENOTDIR || errno == EXDEV)
        return error_setx (u->err, EINVAL, "%s: entry `%s`: its parent `%s` is a symlink or not a directory "
                                           "(writing through links is not allowed)", u->what, entry, parent);
      return error_set (u->err, errno, "%s: entry `%s`: open parent `%s`", u->what, entry, parent);
    }
  struct stat st;
  if (fstat (fd, &st) < 0)
    {
      error_set (u->err, errno, "%s: entry `%s`: parent `%s`", u->what, entry, parent);
      close (fd);
      return -1;
    }
  snprintf (u->parent, sizeof u->parent, "%s", parent);
  u->parentfd = fd;
  u->parent_sgid = st.st_mode & S_ISGID;
  return fd;
}

/* Make room for a new entry: a later entry replaces an earlier one. */
static int
clear_name (struct unpack *u, int dirfd, const char *base, const char *entry, bool keep_dir)
{
  struct stat st;
  if (fstatat (dirfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : error_set (u->err, errno, "%s: entry `%s`", u->what, entry);
  if (S_ISDIR (st.st_mode))
    {
      if (keep_dir)
        return 1;
      return remove_tree_at (dirfd, base, u->err) < 0 ? error_prefix (u->err, "%s: entry `%s`", u->what, entry) : 0;
    }
  if (unlinkat (dirfd, base, 0) < 0)
    return error_set (u->err, errno, "%s: entry `%s`: replace", u->what, entry);
  return 0;
}

static int
apply_xattrs (struct unpack *u, int fd, struct archive_entry *e, const char *entry)
{
  const char *name;
  const void *value;
  size_t size;
  archive_entry_xattr_reset (e);
  while (archive_entry_xattr_next (e, &name, &value, &size) == ARCHIVE_OK)
    if (fsetxattr (fd, name, value, size, 0) < 0)
      return error_set (u->err, errno, "%s: entry `%s`: xattr `%s`", u->what, entry, name);
  return 0;
}

/* What an entry just made by us (fresh) lacks. It was made with our euid,
 * egid and the entry's mode less the umask, unless its parent is setgid
 * (then its group, and a directory's setgid bit, came from the parent).
 * Most entries are ours and mode-exact, and each syscall counts when a
 * layer has thousands of files. */
static bool
chown_needed (const struct unpack *u, struct archive_entry *e, bool fresh)
{
  return !fresh || u->parent_sgid || archive_entry_uid (e) != u->euid || archive_entry_gid (e) != u->egid;
}

static bool
chmod_needed (const struct unpack *u, struct archive_entry *e, bool fresh)
{
  mode_t mode = archive_entry_mode (e) & 07777;
  return chown_needed (u, e, fresh) || (mode & 07000) || (mode & u->umask);
}

/* Owner first: chown clears setuid/setgid bits that chmod then sets. */
static int
apply_meta (struct unpack *u, int fd, struct archive_entry *e, const char *entry, bool fresh)
{
  if (chown_needed (u, e, fresh) && fchown (fd, archive_entry_uid (e), archive_entry_gid (e)) < 0)
    return error_set (u->err, errno, "%s: entry `%s`: chown", u->what, entry);
  if (chmod_needed (u, e, fresh) && fchmod (fd, archive_entry_mode (e) & 07777) < 0)
    return error_set (u->err, errno, "%s: entry `%s`: chmod", u->what, entry);
  return apply_xattrs (u, fd, e, entry);
}

/* The process umask, without changing it (umask(2) would, for a moment). */
static mode_t
read_umask (void)
{
  char buf[2048];
  struct error ignored;
  if (read_file_at (AT_FDCWD, "/proc/self/status", buf, sizeof buf, &ignored) > 0)
    {
      const char *p = strstr (buf, "\nUmask:");
      if (p)
        return strtol (p + 8, NULL, 8) & 0777;
    }
  return 0777; /* unknown: always chmod */
}

static int
write_file (struct unpack *u, int dirfd, const char *base, struct archive_entry *e, const char *entry)
{
  const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  mode_t mode = archive_entry_mode (e) & 0777;
  cleanup_close int fd = openat (dirfd, base, flags, mode);
  /* A later entry replaces an earlier one of the same name. */
  if (fd < 0 && errno == EEXIST && clear_name (u, dirfd, base, entry, false) == 0)
    fd = openat (dirfd, base, flags, mode);
  if (fd < 0)
    return error_set (u->err, errno, "%s: entry `%s`: create", u->what, entry);
  const void *buf;
  size_t size;
  la_int64_t off, end = 0;
  int r;
  while ((r = archive_read_data_block (u->ar, &buf, &size, &off)) == ARCHIVE_OK)
    {
      const char *p = buf;
      if (off + (la_int64_t) size > end)
        end = off + size;
      while (size > 0)
        {
          ssize_t n = pwrite (fd, p, size, off);
          if (n < 0)
            return error_set (u->err, errno, "%s: entry `%s`: write", u->what, entry);
          p += n;
          off += n;
          size -= n;
        }
    }
  if (r != ARCHIVE_EOF)
    {
      char context[PATH_MAX + 16];
      snprintf (context, sizeof context, "entry `%s`: ", entry);
      return archive_failure (u, context);
    }
  /* A sparse file can end in a hole that no block covers. */
  if (end != archive_entry_size (e) && ftruncate (fd, archive_entry_size (e)) < 0)
    return error_set (u->err, errno, "%s: entry `%s`: truncate", u->what, entry);
  if (apply_meta (u, fd, e, entry, true) < 0)
    return -1;
  struct timespec ts[2] = { { archive_entry_mtime (e), archive_entry_mtime_nsec (e) },
                            { archive_entry_mtime (e), archive_entry_mtime_nsec (e) } };
  futimens (fd, ts);
  return 0;
}

static int
make_dir (struct unpack *u, int dirfd, const char *base, struct archive_entry *e, const char *entry)
{
  bool fresh = mkdirat (dirfd, base, archive_entry_mode (e) & 0777) == 0;
  if (!fresh)
    {
      /* There already: keep a directory (its metadata is set again),
       * replace anything else. */
      int r = errno == EEXIST ? clear_name (u, dirfd, base, entry, true)
                              : error_set (u->err, errno, "%s: entry `%s`: mkdir", u->what, entry);
      if (r < 0)
        return -1;
      if (r == 0 && mkdirat (dirfd, base, 0700) < 0)
        return error_set (u->err, errno, "%s: entry `%s`: mkdir", u->what, entry);
    }
  if (fresh && !chmod_needed (u, e, fresh) && archive_entry_xattr_count (e) == 0)
    return 0; /* made as the entry says */
  cleanup_close int fd = openat (dirfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return error_set (u->err, errno, "%s: entry `%s`: open", u->what, entry);
  return apply_meta (u, fd, e, entry, fresh);
}

static void
add_deferred_link (struct unpack *u, const char *path, const char *target)
{
  struct layer_unpacked *o = u->out;
  if (o->n_links == u->links_cap)
    {
      u->links_cap = u->links_cap ? 2 * u->links_cap : 16;
      o->links = realloc (o->links, u->links_cap * sizeof *o->links);
    }
  o->links[o->n_links].path = strdup (path);
  o->links[o->n_links].target = strdup (target);
  o->n_links++;
}

static int
make_hardlink (struct unpack *u, int dirfd, const char *base, const char *link, const char *entry)
{
  char target[PATH_MAX];
  if (layer_clean_path (link, target, sizeof target, u->err) < 0)
    return error_prefix (u->err, "%s: hard link `%s`", u->what, entry);
  if (target[0] == '\0')
    return error_setx (u->err, EINVAL, "%s: hard link `%s` points at the layer root", u->what, entry);
  cleanup_close int tfd = open_beneath (u->rootfd, target, O_PATH | O_NOFOLLOW, true);
  if (tfd < 0 && errno == ENOENT)
    {
      add_deferred_link (u, entry, target); /* in a lower layer, we hope */
      return 0;
    }
  if (tfd < 0)
    return error_set (u->err, errno, "%s: hard link `%s` -> `%s`", u->what, entry, target);
  if (linkat (tfd, "", dirfd, base, AT_EMPTY_PATH) < 0)
    return error_set (u->err, errno, "%s: hard link `%s` -> `%s`", u->what, entry, target);
  return 0;
}

static int
make_whiteout (struct unpack *u, int dirfd, const char *base, const char *entry)
{
  if (strcmp (base, OPAQUE) == 0)
    {
      /* Only marks the directory: it hides lower layers, never entries of
       * this layer, so where it stands in the tar does not matter. */
      if (fsetxattr (dirfd, "trusted.overlay.opaque", "y", 1, 0) < 0)
        return error_set (u->err, errno, "%s: entry `%s`: mark opaque", u->what, entry);
      return 0;
    }
  const char *name = base + strlen (WHITEOUT);
  if (name[0] == '\0' || strncmp (name, WHITEOUT, strlen (WHITEOUT)) == 0
      || strcmp (name, ".") == 0 || strcmp (name, "..") == 0)
    return error_setx (u->err, EINVAL, "%s: entry `%s`: not a valid whiteout", u->what, entry);
  if (clear_name (u, dirfd, name, entry, false) < 0)
    return -1;
  if (mknodat (dirfd, name, S_IFCHR | 0, makedev (0, 0)) < 0)
    return error_set (u->err, errno, "%s: entry `%s`: whiteout", u->what, entry);
  return 0;
}

static int
unpack_entry (struct unpack *u, struct archive_entry *e)
{
  const char *raw = archive_entry_pathname (e);
  if (raw == NULL)
    return error_setx (u->err, EINVAL, "%s: an entry has no name", u->what);
  char path[PATH_MAX];
  if (layer_clean_path (raw, path, sizeof path, u->err) < 0)
    return error_prefix (u->err, "%s", u->what);
  mode_t type = archive_entry_filetype (e);
  const char *hardlink = archive_entry_hardlink (e);

  if (path[0] == '\0')
    {
      /* "./" itself: the layer root's own metadata; anything else named
       * "." or "/" is an attempt to replace the root. */
      if (type != AE_IFDIR || hardlink)
        return error_setx (u->err, EINVAL, "%s: entry `%s`: only a directory may name the layer root", u->what, raw);
      forget_parent (u);
      return apply_meta (u, u->rootfd, e, raw, false);
    }
  char *slash = strrchr (path, '/');
  const char *base = slash ? slash + 1 : path;
  if (slash)
    *slash = '\0';
  int dirfd = parent_dir (u, raw, slash ? path : "");
  if (dirfd < 0)
    return -1;

  if (strncmp (base, WHITEOUT, strlen (WHITEOUT)) == 0)
    return make_whiteout (u, dirfd, base, raw);
  if (type == AE_IFDIR)
    {
      if (hardlink)
        return error_setx (u->err, EINVAL, "%s: entry `%s`: hard link to a directory", u->what, raw);
      return make_dir (u, dirfd, base, e, raw);
    }
  if (type == AE_IFREG && !hardlink)
    return write_file (u, dirfd, base, e, raw); /* replaces on EEXIST itself */
  if (clear_name (u, dirfd, base, raw, false) < 0)
    return -1;
  if (hardlink)
    return make_hardlink (u, dirfd, base, hardlink, raw);
  switch (type)
    {
    case AE_IFLNK:
      {
        /* The link is stored, never followed by us: its target may say
         * anything. */
        const char *target = archive_entry_symlink (e);
        if (target == NULL || symlinkat (target, dirfd, base) < 0)
          return error_set (u->err, target ? errno : EINVAL, "%s: entry `%s`: symlink", u->what, raw);
        if (chown_needed (u, e, true)
            && fchownat (dirfd, base, archive_entry_uid (e), archive_entry_gid (e), AT_SYMLINK_NOFOLLOW) < 0)
          return error_set (u->err, errno, "%s: entry `%s`: chown", u->what, raw);
        return 0;
      }
    case AE_IFIFO:
      {
        if (mkfifoat (dirfd, base, 0600) < 0)
          return error_set (u->err, errno, "%s: entry `%s`: mkfifo", u->what, raw);
        cleanup_close int fd = openat (dirfd, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || fchownat (fd, "", archive_entry_uid (e), archive_entry_gid (e), AT_EMPTY_PATH) < 0
            || fchmodat (dirfd, base, archive_entry_mode (e) & 07777, 0) < 0)
          return error_set (u->err, errno, "%s: entry `%s`: fifo metadata", u->what, raw);
        return 0;
      }
    case AE_IFCHR:
    case AE_IFBLK:
      return error_setx (u->err, EPERM, "%s: entry `%s`: device nodes are not allowed in layers", u->what, raw);
    default:
      return error_setx (u->err, EINVAL, "%s: entry `%s`: unsupported entry type %#o", u->what, raw,
                         (unsigned) type);
    }
}

int
layer_unpack (int fd, const char *what, int dirfd, const struct layer_limits *limits,
              const struct digest *expect_diff_id, struct decomp_tee *tee,
              struct layer_unpacked *out, struct error *err)
{
  memset (out, 0, sizeof *out);
  struct unpack *u = calloc (1, sizeof *u);
  if (u == NULL)
    {
      close (fd);
      return error_set (err, ENOMEM, "%s", what);
    }
  u->what = what;
  u->rootfd = dirfd;
  u->euid = geteuid ();
  u->egid = getegid ();
  u->umask = read_umask ();
  u->parentfd = -1;
  u->err = err;
  u->out = out;
  int ret = -1;
  if (decomp_open (fd, what, limits->max_bytes, tee, &u->dc, err) < 0)
    goto done;
  u->ar = archive_read_new ();
  if (u->ar == NULL)
    {
      error_set (err, ENOMEM, "%s", what);
      goto done;
    }
  archive_read_support_format_tar (u->ar);
  if (archive_read_open (u->ar, u, NULL, read_cb, NULL) != ARCHIVE_OK)
    {
      archive_failure (u, "");
      goto done;
    }
  struct archive_entry *e;
  int r;
  while ((r = archive_read_next_header (u->ar, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN)
    {
      if (++out->entries > limits->max_entries)
        {
          error_setx (err, EFBIG, "%s: more than %llu entries", what,
                      (unsigned long long) limits->max_entries);
          goto done;
        }
      if (unpack_entry (u, e) < 0)
        goto done;
    }
  if (r != ARCHIVE_EOF)
    {
      archive_failure (u, "not a valid tar stream: ");
      goto done;
    }
  if (decomp_finish (u->dc, &out->diff_id, &out->tar_bytes, err) < 0)
    goto done;
  if (expect_diff_id && !digest_equal (expect_diff_id, &out->diff_id))
    {
      char a[DIGEST_STR_MAX], b[DIGEST_STR_MAX];
      error_setx (err, EINVAL, "%s: diff-id mismatch: the config says %s, the content is %s", what,
                  digest_str (expect_diff_id, a), digest_str (&out->diff_id, b));
      goto done;
    }
  ret = 0;
done:
  if (u->ar)
    archive_read_free (u->ar);
  decomp_free (u->dc);
  forget_parent (u);
  free (u);
  if (ret < 0)
    layer_unpacked_clear (out);
  return ret;
}

/* Copy a regular file (content, owner, mode, xattrs) from one tree to another. */
static int
copy_file_from (int srcfd, int dstdir, const char *base, const char *what, const char *entry,
                struct error *err)
{
  struct stat st;
  if (fstat (srcfd, &st) < 0)
    return error_set (err, errno, "%s: hard link `%s`", what, entry);
  cleanup_close int fd = openat (dstdir, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return error_set (err, errno, "%s: hard link `%s`: create copy", what, entry);
  off_t left = st.st_size;
  while (left > 0)
    {
      ssize_t n = copy_file_range (srcfd, NULL, fd, NULL, left, 0);
      if (n <= 0)
        return error_set (err, n < 0 ? errno : EIO, "%s: hard link `%s`: copy", what, entry);
      left -= n;
    }
  char names[4096];
  ssize_t len = flistxattr (srcfd, names, sizeof names);
  for (ssize_t i = 0; len > 0 && i < len; i += strlen (names + i) + 1)
    {
      char value[4096];
      ssize_t vl = fgetxattr (srcfd, names + i, value, sizeof value);
      if (vl >= 0 && fsetxattr (fd, names + i, value, vl, 0) < 0)
        return error_set (err, errno, "%s: hard link `%s`: xattr", what, entry);
    }
  if (fchown (fd, st.st_uid, st.st_gid) < 0 || fchmod (fd, st.st_mode & 07777) < 0)
    return error_set (err, errno, "%s: hard link `%s`: metadata", what, entry);
  return 0;
}

int
layer_link_from_lowers (int dirfd, const char *what, const struct layer_unpacked *u,
                        const int *lower_dirfds, size_t n_lowers, struct error *err)
{
  for (size_t i = 0; i < u->n_links; i++)
    {
      const char *entry = u->links[i].path, *target = u->links[i].target;
      char path[PATH_MAX];
      snprintf (path, sizeof path, "%s", entry);
      char *slash = strrchr (path, '/');
      const char *base = slash ? slash + 1 : path;
      if (slash)
        *slash = '\0';
      cleanup_close int parent = open_beneath (dirfd, slash ? path : "", O_RDONLY | O_DIRECTORY, true);
      if (parent < 0)
        return error_set (err, errno, "%s: hard link `%s`: parent", what, entry);
      int found = 0;
      for (size_t l = 0; l < n_lowers && !found; l++)
        {
          cleanup_close int src = open_beneath (lower_dirfds[l], target, O_RDONLY | O_NOFOLLOW, true);
          if (src < 0 && errno == ENOENT)
            continue;
          struct stat st;
          if (src < 0 || fstat (src, &st) < 0 || !S_ISREG (st.st_mode))
            break; /* a whiteout, a symlink or a directory: not a file to link */
          if (copy_file_from (src, parent, base, what, entry, err) < 0)
            return -1;
          found = 1;
        }
      if (!found)
        return error_setx (err, ENOENT, "%s: hard link `%s` -> `%s`: no such file in this or any lower layer",
                           what, entry, target);
    }
  return 0;
}

void
layer_unpacked_clear (struct layer_unpacked *u)
{
  for (size_t i = 0; i < u->n_links; i++)
    {
      free (u->links[i].path);
      free (u->links[i].target);
    }
  free (u->links);
  u->links = NULL;
  u->n_links = 0;
}
