/* Private to runtime/: what the cloned child needs, all prepared by the
 * parent (the child of a possibly multi-threaded daemon must not allocate),
 * and the steps it runs between clone and exec. */
#ifndef RUNTIME_CHILD_H
#define RUNTIME_CHILD_H

#include <linux/filter.h>
#include <sys/capability.h>

#include "runtime.h"

struct cgroup;

struct child_plan
{
  const struct rt_spec *spec;
  const char *hostname;
  const char *target;       /* where the root filesystem is mounted */
  const char *overlay_opts; /* NULL: bind-mount spec->rootfs on itself */
  int err_fd;               /* write end of the error pipe (close-on-exec) */
  int sync_fd;              /* read end: wait for the parent, or -1 */
  struct sock_fprog prog;   /* seccomp program, len 0 for none */
  cap_t caps;               /* effective and permitted set for uid 0 */
  struct cgroup *cgroup;    /* v1: the child attaches itself ("0") */
  bool in_cgroup;           /* ...unless cloned from inside it (a spawner) */
};

/* mount.c: new root filesystem, /proc, /dev, /sys, masked and read-only
 * paths, pivot_root. */
int child_setup_rootfs (const struct child_plan *plan, struct error *err);

/* net.c */
int child_loopback_up (struct error *err);

/* caps.c */
cap_t caps_default_new (struct error *err);
/* Bounding set to the defaults, ambient cleared, then the uid/gid switch,
 * then (for uid 0) effective and permitted to the defaults. */
int child_set_identity (const struct child_plan *plan, struct error *err);

#endif
