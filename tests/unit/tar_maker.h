/* Build tar streams in memory for the unpacker's tests, hostile ones
 * included: each entry is (type, path, data or link target). */
#ifndef TESTS_TAR_MAKER_H
#define TESTS_TAR_MAKER_H

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct tar_maker
{
  struct archive *a;
  char *buf;
  size_t cap;
  size_t used;
};

enum tar_filter
{
  TAR_PLAIN,
  TAR_GZIP,
  TAR_ZSTD,
};

static void
tar_begin (struct tar_maker *t, enum tar_filter filter)
{
  t->cap = 64 << 20;
  t->buf = malloc (t->cap);
  t->used = 0;
  t->a = archive_write_new ();
  archive_write_set_format_pax_restricted (t->a);
  if (filter == TAR_GZIP)
    archive_write_add_filter_gzip (t->a);
  else if (filter == TAR_ZSTD)
    archive_write_add_filter_zstd (t->a);
  archive_write_set_bytes_in_last_block (t->a, 1);
  archive_write_open_memory (t->a, t->buf, t->cap, &t->used);
}

/* type: AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR; hardlink when link and
 * type == AE_IFREG. */
static struct archive_entry *
tar_entry (const char *path, mode_t type, mode_t mode, const char *data, const char *link,
           int hardlink)
{
  struct archive_entry *e = archive_entry_new ();
  archive_entry_set_pathname (e, path);
  archive_entry_set_filetype (e, type);
  archive_entry_set_perm (e, mode);
  archive_entry_set_uid (e, 1000);
  archive_entry_set_gid (e, 1000);
  archive_entry_set_mtime (e, 1700000000, 0);
  if (link && hardlink)
    archive_entry_set_hardlink (e, link);
  else if (link)
    archive_entry_set_symlink (e, link);
  archive_entry_set_size (e, data && !hardlink ? strlen (data) : 0);
  return e;
}

static void
tar_write (struct tar_maker *t, struct archive_entry *e, const char *data)
{
  archive_write_header (t->a, e);
  if (data && archive_entry_size (e) > 0)
    archive_write_data (t->a, data, strlen (data));
  archive_entry_free (e);
}

static void
tar_add (struct tar_maker *t, const char *path, mode_t type, mode_t mode, const char *data,
         const char *link, int hardlink)
{
  tar_write (t, tar_entry (path, type, mode, data, link, hardlink), data);
}

/* Finish and hand the stream over as a readable fd (a memfd). */
static int
tar_end_fd (struct tar_maker *t)
{
  archive_write_close (t->a);
  archive_write_free (t->a);
  int fd = memfd_create ("tar", MFD_CLOEXEC);
  if (write (fd, t->buf, t->used) != (ssize_t) t->used)
    abort ();
  lseek (fd, 0, SEEK_SET);
  free (t->buf);
  return fd;
}

#endif
