/* The default seccomp profile: an allow-list modelled on Docker's default
 * (default action EPERM), kept as data so that the BPF we load and the OCI
 * JSON we hand to peers in bench/ come from one table. Compiling ~400 rules
 * costs milliseconds, so the BPF is compiled once and cached on disk. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/filter.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/fsutil.h"
#include "runtime.h"
#include "seccomp_internal.h"

static const char *const allowed[] = {
  "accept", "accept4", "access", "adjtimex", "alarm", "arch_prctl", "bind", "brk",
  "cachestat", "capget", "capset", "chdir", "chmod", "chown", "chroot",
  "clock_adjtime", "clock_getres", "clock_gettime", "clock_nanosleep", "close",
  "close_range", "connect", "copy_file_range", "creat", "dup", "dup2", "dup3",
  "epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_pwait2",
  "epoll_wait", "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group",
  "faccessat", "faccessat2", "fadvise64", "fallocate", "fanotify_mark", "fchdir",
  "fchmod", "fchmodat", "fchmodat2", "fchown", "fchownat", "fcntl", "fdatasync",
  "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat",
  "fstatfs", "fsync", "ftruncate", "futex", "futex_requeue", "futex_wait",
  "futex_waitv", "futex_wake", "futimesat", "getcpu", "getcwd", "getdents",
  "getdents64", "getegid", "geteuid", "getgid", "getgroups", "getitimer",
  "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
  "getrandom", "getresgid", "getresuid", "getrlimit", "get_robust_list",
  "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid",
  "gettimeofday", "getuid", "getxattr", "inotify_add_watch", "inotify_init",
  "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy",
  "io_getevents", "io_pgetevents", "ioprio_get", "ioprio_set", "io_setup",
  "io_submit", "io_uring_enter", "io_uring_register", "io_uring_setup", "kill",
  "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self",
  "lchown", "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr",
  "lremovexattr", "lseek", "lsetxattr", "lstat", "madvise", "map_shadow_stack",
  "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat",
  "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mprotect",
  "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedsend",
  "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync",
  "munlock", "munlockall", "munmap", "name_to_handle_at", "nanosleep",
  "newfstatat", "open", "openat", "openat2", "pause", "pidfd_getfd", "pidfd_open",
  "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect",
  "poll", "ppoll", "prctl", "pread64", "preadv", "preadv2", "prlimit64",
  "process_mrelease", "process_vm_readv", "process_vm_writev", "pselect6",
  "ptrace", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink",
  "readlinkat", "readv", "recvfrom", "recvmmsg", "recvmsg", "remap_file_pages",
  "removexattr", "rename", "renameat", "renameat2", "restart_syscall", "rmdir",
  "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
  "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_tgsigqueueinfo",
  "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
  "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval",
  "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler",
  "sched_yield", "seccomp", "select", "semctl", "semget", "semop", "semtimedop",
  "sendfile", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsuid", "setgid",
  "setgroups", "setitimer", "setpgid", "setpriority", "setregid", "setresgid",
  "setresuid", "setreuid", "setrlimit", "set_robust_list", "setsid", "setsockopt",
  "set_thread_area", "set_tid_address", "setuid", "setxattr", "shmat", "shmctl",
  "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd", "signalfd4",
  "socketpair", "splice", "stat", "statfs", "statx", "symlink", "symlinkat",
  "sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time",
  "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
  "timer_settime", "timerfd_create", "timerfd_gettime", "timerfd_settime", "times",
  "tkill", "truncate", "umask", "uname", "unlink", "unlinkat", "utime",
  "utimensat", "utimes", "vfork", "vmsplice", "wait4", "waitid", "write", "writev",
};

/* Namespace flags clone(2) may not carry: new namespaces need CAP_SYS_ADMIN,
 * which a workload does not have, and each one is kernel attack surface. */
#define CLONE_NS_FLAGS                                                        \
  (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID    \
   | CLONE_NEWNET | CLONE_NEWCGROUP)

/* Allowed with an argument condition, or answered with a fixed errno. */
const struct seccomp_rule seccomp_conditional[] = {
  /* clone3 passes flags in memory, where BPF cannot look: answer ENOSYS so
   * libcs fall back to clone, whose flags the next rule checks. */
  { "clone3", ENOSYS, 0, 0, 0 },
  { "clone", 0, SCMP_CMP_MASKED_EQ, CLONE_NS_FLAGS, 0 },
  { "socket", 0, SCMP_CMP_NE, AF_VSOCK, 0 },
  { "personality", 0, SCMP_CMP_EQ, 0x0, 0 },
  { "personality", 0, SCMP_CMP_EQ, 0x8, 0 },
  { "personality", 0, SCMP_CMP_EQ, 0x20000, 0 },
  { "personality", 0, SCMP_CMP_EQ, 0x20008, 0 },
  { "personality", 0, SCMP_CMP_EQ, 0xffffffff, 0 },
};
const size_t seccomp_n_conditional = sizeof seccomp_conditional / sizeof seccomp_conditional[0];

struct rt_seccomp
{
  struct sock_filter *insns;
  size_t n;
};

size_t
rt_seccomp_instructions (const struct rt_seccomp *sc)
{
  return sc->n;
}

const void *
seccomp_bpf (const struct rt_seccomp *sc, size_t *n)
{
  *n = sc->n;
  return sc->insns;
}

void
rt_seccomp_free (struct rt_seccomp *sc)
{
  if (sc == NULL)
    return;
  free (sc->insns);
  free (sc);
}

/* FNV-1a over everything that shapes the BPF, so a changed table, libseccomp
 * or architecture never loads a stale cache file. */
static uint64_t
profile_hash (void)
{
  uint64_t h = 1469598103934665603ULL;
#define MIX(p, len)                                                           \
  for (size_t i_ = 0; i_ < (len); i_++)                                       \
    h = (h ^ ((const unsigned char *) (p))[i_]) * 1099511628211ULL;
  for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
    MIX (allowed[i], strlen (allowed[i]) + 1);
  for (size_t i = 0; i < seccomp_n_conditional; i++)
    {
      const struct seccomp_rule *r = &seccomp_conditional[i];
      uint64_t fields[4] = { r->errno_ret, r->op, r->a, r->b };
      MIX (r->name, strlen (r->name) + 1);
      MIX (fields, sizeof fields);
    }
  const struct scmp_version *v = seccomp_version ();
  MIX (v, sizeof *v);
  uint32_t arch = seccomp_arch_native ();
  MIX (&arch, sizeof arch);
#undef MIX
  return h;
}

static int
add_rules (scmp_filter_ctx ctx, struct error *err)
{
  for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
    {
      int nr = seccomp_syscall_resolve_name (allowed[i]);
      if (nr == __NR_SCMP_ERROR)
        continue; /* not a syscall on this architecture */
      int r = seccomp_rule_add (ctx, SCMP_ACT_ALLOW, nr, 0);
      if (r < 0)
        return error_set (err, -r, "seccomp: allow `%s`", allowed[i]);
    }
  for (size_t i = 0; i < seccomp_n_conditional; i++)
    {
      const struct seccomp_rule *rule = &seccomp_conditional[i];
      int nr = seccomp_syscall_resolve_name (rule->name);
      if (nr == __NR_SCMP_ERROR)
        continue;
      int r;
      if (rule->errno_ret)
        r = seccomp_rule_add (ctx, SCMP_ACT_ERRNO (rule->errno_ret), nr, 0);
      else
        {
          /* For MASKED_EQ, a is the mask and b the value (as in OCI JSON). */
          struct scmp_arg_cmp cmp = { 0, rule->op, rule->a, rule->b };
          r = seccomp_rule_add_array (ctx, SCMP_ACT_ALLOW, nr, 1, &cmp);
        }
      if (r < 0)
        return error_set (err, -r, "seccomp: rule for `%s`", rule->name);
    }
  return 0;
}

/* Compile the table to BPF into fd (a file in the cache dir or a memfd). */
static int
compile_to_fd (int fd, struct error *err)
{
  scmp_filter_ctx ctx = seccomp_init (SCMP_ACT_ERRNO (EPERM));
  if (ctx == NULL)
    return error_setx (err, ENOMEM, "seccomp: init filter");
  int r = seccomp_attr_set (ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2); /* binary tree */
  if (r == 0)
    r = add_rules (ctx, err);
  else
    error_set (err, -r, "seccomp: set optimize attribute");
  if (r == 0 && (r = seccomp_export_bpf (ctx, fd)) < 0)
    error_set (err, -r, "seccomp: export BPF");
  seccomp_release (ctx);
  return r < 0 ? -1 : 0;
}

static int
load_from_fd (int fd, const char *what, struct rt_seccomp **out, struct error *err)
{
  struct stat st;
  if (fstat (fd, &st) < 0)
    return error_set (err, errno, "seccomp cache `%s`", what);
  size_t n = st.st_size / sizeof (struct sock_filter);
  if (st.st_size <= 0 || st.st_size % sizeof (struct sock_filter) != 0 || n > BPF_MAXINSNS)
    return error_setx (err, EINVAL, "seccomp cache `%s`: %lld bytes is not a BPF program",
                       what, (long long) st.st_size);
  cleanup_free struct sock_filter *insns = malloc (st.st_size);
  if (insns == NULL)
    return error_set (err, ENOMEM, "seccomp cache `%s`", what);
  if (pread (fd, insns, st.st_size, 0) != st.st_size)
    return error_setx (err, EIO, "seccomp cache `%s`: short read", what);
  struct rt_seccomp *sc = malloc (sizeof *sc);
  if (sc == NULL)
    return error_set (err, ENOMEM, "seccomp cache `%s`", what);
  sc->insns = steal_pointer (&insns);
  sc->n = n;
  *out = sc;
  return 0;
}

int
rt_seccomp_default (const char *cache_dir, struct rt_seccomp **out, struct error *err)
{
  char name[64];
  snprintf (name, sizeof name, "seccomp-default-%016" PRIx64 ".bpf", profile_hash ());

  if (cache_dir != NULL)
    {
      cleanup_close int dirfd = open (cache_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (dirfd >= 0)
        {
          cleanup_close int fd = openat (dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
          if (fd >= 0)
            {
              if (load_from_fd (fd, name, out, err) == 0)
                return 0;
              /* A damaged cache is rebuilt below, not trusted. */
            }
          /* Compile into a temp file and rename it into place. */
          char tmp[sizeof name + 16];
          snprintf (tmp, sizeof tmp, ".%s.%d", name, (int) getpid ());
          cleanup_close int tfd = openat (dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
          if (tfd >= 0)
            {
              if (compile_to_fd (tfd, err) < 0 || fsync (tfd) < 0
                  || renameat (dirfd, tmp, dirfd, name) < 0)
                {
                  unlinkat (dirfd, tmp, 0);
                  return err->msg[0] ? -1 : error_set (err, errno, "seccomp cache `%s/%s`", cache_dir, name);
                }
              return load_from_fd (tfd, name, out, err);
            }
        }
    }
  /* No usable cache dir: compile in memory every time. */
  cleanup_close int mfd = memfd_create ("seccomp-bpf", MFD_CLOEXEC);
  if (mfd < 0)
    return error_set (err, errno, "seccomp: memfd_create");
  if (compile_to_fd (mfd, err) < 0)
    return -1;
  return load_from_fd (mfd, "memfd", out, err);
}

static const char *
oci_op (enum scmp_compare op)
{
  switch (op)
    {
    case SCMP_CMP_NE: return "SCMP_CMP_NE";
    case SCMP_CMP_EQ: return "SCMP_CMP_EQ";
    case SCMP_CMP_MASKED_EQ: return "SCMP_CMP_MASKED_EQ";
    default: return "SCMP_CMP_EQ";
    }
}

/* The filter we compile covers the native architecture only; so does the
 * OCI rendering, so that peers load the same filter. */
static const char *
oci_native_arch (void)
{
  switch (seccomp_arch_native ())
    {
    case SCMP_ARCH_X86_64: return "SCMP_ARCH_X86_64";
    case SCMP_ARCH_AARCH64: return "SCMP_ARCH_AARCH64";
    case SCMP_ARCH_PPC64LE: return "SCMP_ARCH_PPC64LE";
    case SCMP_ARCH_S390X: return "SCMP_ARCH_S390X";
    case SCMP_ARCH_RISCV64: return "SCMP_ARCH_RISCV64";
    default: return NULL;
    }
}

int
rt_seccomp_write_oci (FILE *out, struct error *err)
{
  const char *arch = oci_native_arch ();
  if (arch == NULL)
    return error_setx (err, ENOTSUP, "OCI seccomp profile: unknown native architecture %#x",
                       seccomp_arch_native ());
  fprintf (out, "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":%d,"
                "\"architectures\":[\"%s\"],"
                "\"syscalls\":[{\"action\":\"SCMP_ACT_ALLOW\",\"names\":[", EPERM, arch);
  bool first = true;
  for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
    {
      if (seccomp_syscall_resolve_name (allowed[i]) == __NR_SCMP_ERROR)
        continue;
      fprintf (out, "%s\"%s\"", first ? "" : ",", allowed[i]);
      first = false;
    }
  fputs ("]}", out);
  for (size_t i = 0; i < seccomp_n_conditional; i++)
    {
      const struct seccomp_rule *r = &seccomp_conditional[i];
      if (r->errno_ret)
        fprintf (out, ",{\"names\":[\"%s\"],\"action\":\"SCMP_ACT_ERRNO\",\"errnoRet\":%d}",
                 r->name, r->errno_ret);
      else
        fprintf (out, ",{\"names\":[\"%s\"],\"action\":\"SCMP_ACT_ALLOW\",\"args\":"
                      "[{\"index\":0,\"value\":%" PRIu64 ",\"valueTwo\":%" PRIu64 ",\"op\":\"%s\"}]}",
                 r->name, (uint64_t) r->a, (uint64_t) r->b, oci_op (r->op));
    }
  fputs ("]}\n", out);
  if (ferror (out))
    return error_set (err, EIO, "write OCI seccomp profile");
  return 0;
}
