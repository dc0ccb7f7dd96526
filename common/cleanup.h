/* Scope-bound cleanup, so that early returns cannot leak (STYLE.md). */
#ifndef COMMON_CLEANUP_H
#define COMMON_CLEANUP_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void
cleanup_free_fn (void *p)
{
  free (*(void **) p);
}

static inline void
cleanup_close_fn (int *fd)
{
  if (*fd >= 0)
    {
      int saved = errno;
      close (*fd);
      errno = saved;
    }
}

static inline void
cleanup_fclose_fn (FILE **f)
{
  if (*f != NULL)
    fclose (*f);
}

static inline void
cleanup_closedir_fn (DIR **d)
{
  if (*d != NULL)
    closedir (*d);
}

#define cleanup_free __attribute__ ((cleanup (cleanup_free_fn)))
#define cleanup_close __attribute__ ((cleanup (cleanup_close_fn)))
#define cleanup_fclose __attribute__ ((cleanup (cleanup_fclose_fn)))
#define cleanup_closedir __attribute__ ((cleanup (cleanup_closedir_fn)))

/* Hand ownership on: return the value and disarm the cleanup. */
#define steal_pointer(pp)                                                     \
  ({                                                                          \
    __typeof__ (*(pp)) steal_tmp_ = *(pp);                                    \
    *(pp) = NULL;                                                             \
    steal_tmp_;                                                               \
  })

static inline int
steal_fd (int *fd)
{
  int v = *fd;
  *fd = -1;
  return v;
}

#endif
