/* Small fd-based file helpers shared by every part of the tree. */
#ifndef COMMON_FSUTIL_H
#define COMMON_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

/* Write all of buf to `name` under dirfd (O_WRONLY, no create): the shape of
 * every cgroup and /proc control-file write. */
int write_file_at (int dirfd, const char *name, const char *buf, size_t len,
                   struct error *err);

/* Read up to cap-1 bytes of `name` under dirfd into buf, NUL-terminated. */
ssize_t read_file_at (int dirfd, const char *name, char *buf, size_t cap,
                      struct error *err);

/* pread the whole small file behind fd from offset 0, NUL-terminated. */
ssize_t pread_all (int fd, char *buf, size_t cap);

/* Write data to dir/name through a temp file in the same directory and an
 * atomic rename, so a reader never sees a half-written file. */
int write_file_atomic (const char *dir, const char *name, const void *data,
                       size_t len, mode_t mode, struct error *err);

/* Remove `name` under dirfd and everything below it, without following
 * symlinks. A missing entry is not an error. */
int remove_tree_at (int dirfd, const char *name, struct error *err);

/* Bytes on disk (allocated blocks) of `name` under dirfd and everything
 * below it, without following symlinks; what cannot be read counts 0. */
uint64_t tree_bytes_at (int dirfd, const char *name);

/* openat2 of path inside rootfd as if rootfd were "/" (RESOLVE_IN_ROOT),
 * following no symlinks and no magic links; with same_mount, never leaving
 * rootfd's mount either. "" is rootfd itself. */
int open_beneath (int rootfd, const char *path, int flags, bool same_mount);

/* mkdir -p of an absolute or relative path, mode for new directories. */
int mkdir_p (const char *path, mode_t mode, struct error *err);

#endif
