/* Capabilities: Docker's 14 defaults and nothing else in any set. */
#include <errno.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <unistd.h>

#include "child.h"

const int rt_default_caps[] = {
  CAP_CHOWN,      CAP_DAC_OVERRIDE, CAP_FSETID,    CAP_FOWNER,     CAP_MKNOD,
  CAP_NET_RAW,    CAP_SETGID,       CAP_SETUID,    CAP_SETFCAP,    CAP_SETPCAP,
  CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT, CAP_KILL,  CAP_AUDIT_WRITE,
};
const size_t rt_n_default_caps = sizeof rt_default_caps / sizeof rt_default_caps[0];

cap_t
caps_default_new (struct error *err)
{
  cap_t caps = cap_init (); /* all sets empty */
  if (caps == NULL)
    {
      error_set (err, errno, "capabilities: cap_init");
      return NULL;
    }
  if (cap_set_flag (caps, CAP_EFFECTIVE, rt_n_default_caps, rt_default_caps, CAP_SET) < 0
      || cap_set_flag (caps, CAP_PERMITTED, rt_n_default_caps, rt_default_caps, CAP_SET) < 0)
    {
      error_set (err, errno, "capabilities: build default set");
      cap_free (caps);
      return NULL;
    }
  return caps;
}

static bool
is_default_cap (int cap)
{
  for (size_t i = 0; i < rt_n_default_caps; i++)
    if (rt_default_caps[i] == cap)
      return true;
  return false;
}

int
child_set_identity (const struct child_plan *plan, struct error *err)
{
  const struct rt_spec *spec = plan->spec;
  for (int cap = 0; cap <= CAP_LAST_CAP || CAP_IS_SUPPORTED (cap); cap++)
    if (!is_default_cap (cap) && cap_drop_bound (cap) < 0 && errno != EINVAL)
      return error_set (err, errno, "drop capability %d from the bounding set", cap);
  if (cap_reset_ambient () < 0 && errno != EINVAL)
    return error_set (err, errno, "clear ambient capabilities");

  /* Raw system calls: glibc's wrappers would try to change every thread of
   * the (multi-threaded) parent it believes this child still has, and wait
   * for them forever. */
  gid_t gid = spec->gid;
  if (syscall (SYS_setgroups, 1, &gid) < 0)
    return error_set (err, errno, "setgroups to [%u]", (unsigned) gid);
  if (syscall (SYS_setresgid, gid, gid, gid) < 0)
    return error_set (err, errno, "set gid %u", (unsigned) gid);
  if (syscall (SYS_setresuid, spec->uid, spec->uid, spec->uid) < 0)
    return error_set (err, errno, "set uid %u", (unsigned) spec->uid);
  /* A non-zero uid lost every effective and permitted capability in
   * setresuid; root keeps exactly the defaults, inheritable empty. */
  if (spec->uid == 0 && cap_set_proc (plan->caps) < 0)
    return error_set (err, errno, "set capabilities");
  return 0;
}
