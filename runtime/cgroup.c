#include "cgroup_backend.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/fsutil.h"

static const char *const v1_names[CG1_N] = {
  [CG1_MEMORY] = "memory", [CG1_PIDS] = "pids",   [CG1_CPU] = "cpu",
  [CG1_CPUACCT] = "cpuacct", [CG1_BLKIO] = "blkio",
};

static bool
has_word (const char *list, char sep, const char *word)
{
  size_t wl = strlen (word);
  for (const char *p = list; p && *p;)
    {
      const char *end = strchr (p, sep);
      size_t l = end ? (size_t) (end - p) : strlen (p);
      if (l == wl && strncmp (p, word, wl) == 0)
        return true;
      p = end ? end + 1 : NULL;
    }
  return false;
}

int
cgroup_host_parse (const char *mountinfo, struct cgroup_host *out, struct error *err)
{
  memset (out, 0, sizeof *out);
  const char *line = mountinfo;
  while (line && *line)
    {
      const char *eol = strchr (line, '\n');
      size_t len = eol ? (size_t) (eol - line) : strlen (line);
      char buf[4096];
      if (len >= sizeof buf)
        return error_setx (err, EINVAL, "mountinfo line too long");
      memcpy (buf, line, len);
      buf[len] = '\0';
      line = eol ? eol + 1 : NULL;

      /* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SRC SUPER */
      char *save = NULL;
      char *fields[5];
      char *tok = strtok_r (buf, " ", &save);
      int i;
      for (i = 0; i < 5 && tok; i++, tok = strtok_r (NULL, " ", &save))
        fields[i] = tok;
      if (i < 5)
        continue;
      while (tok && strcmp (tok, "-") != 0)
        tok = strtok_r (NULL, " ", &save);
      if (!tok)
        continue;
      char *fstype = strtok_r (NULL, " ", &save);
      char *source = strtok_r (NULL, " ", &save);
      char *super = strtok_r (NULL, " ", &save);
      if (!fstype || !source || !super)
        continue;
      const char *mnt = fields[4];
      if (strlen (mnt) >= PATH_MAX)
        continue;
      if (strcmp (fstype, "cgroup2") == 0 && out->v2_mount[0] == '\0')
        strcpy (out->v2_mount, mnt);
      else if (strcmp (fstype, "cgroup") == 0)
        for (int c = 0; c < CG1_N; c++)
          if (out->v1_mount[c][0] == '\0' && has_word (super, ',', v1_names[c]))
            strcpy (out->v1_mount[c], mnt);
    }
  return 0;
}

int
cgroup_host_select (const struct cgroup_host *host, const char *v2_controllers,
                    enum rt_cgroup_version *out, struct error *err)
{
  if (host->v2_mount[0] && v2_controllers && has_word (v2_controllers, ' ', "memory")
      && has_word (v2_controllers, ' ', "pids") && has_word (v2_controllers, ' ', "cpu"))
    {
      *out = RT_CGROUP_V2;
      return 0;
    }
  if (host->v1_mount[CG1_MEMORY][0] && host->v1_mount[CG1_PIDS][0])
    {
      *out = RT_CGROUP_V1;
      return 0;
    }
  return error_setx (err, ENOTSUP,
                     "no usable cgroup hierarchy: need cgroup2 with memory, pids "
                     "and cpu controllers, or v1 memory and pids controllers");
}

int
cgroup_parse_keyed (const char *text, const char *key, uint64_t *out)
{
  size_t kl = strlen (key);
  for (const char *p = text; p && *p;)
    {
      if (strncmp (p, key, kl) == 0 && p[kl] == ' ')
        {
          *out = strtoull (p + kl + 1, NULL, 10);
          return 0;
        }
      p = strchr (p, '\n');
      if (p)
        p++;
    }
  return -1;
}

int
cgroup_parse_psi_some (const char *text, uint64_t *out)
{
  if (strncmp (text, "some ", 5) != 0)
    return -1;
  const char *eol = strchr (text, '\n');
  const char *t = strstr (text, " total=");
  if (t == NULL || (eol && t > eol))
    return -1;
  *out = strtoull (t + 7, NULL, 10);
  return 0;
}

void
cgroup_parse_io_stat_v2 (const char *text, uint64_t *rd, uint64_t *wr)
{
  *rd = *wr = 0;
  for (const char *p = text; (p = strpbrk (p, "rw")) != NULL; p++)
    {
      if (strncmp (p, "rbytes=", 7) == 0 && (p == text || p[-1] == ' '))
        *rd += strtoull (p + 7, NULL, 10);
      else if (strncmp (p, "wbytes=", 7) == 0 && (p == text || p[-1] == ' '))
        *wr += strtoull (p + 7, NULL, 10);
    }
}

void
cgroup_parse_blkio_v1 (const char *text, uint64_t *rd, uint64_t *wr)
{
  *rd = *wr = 0;
  for (const char *p = text; p && *p;)
    {
      unsigned maj, min;
      char op[16];
      unsigned long long v;
      if (sscanf (p, "%u:%u %15s %llu", &maj, &min, op, &v) == 4)
        {
          if (strcmp (op, "Read") == 0)
            *rd += v;
          else if (strcmp (op, "Write") == 0)
            *wr += v;
        }
      p = strchr (p, '\n');
      if (p)
        p++;
    }
}

int
cgroup_write_int (int dirfd, const char *path, const char *file, int64_t v,
                  struct error *err)
{
  char buf[32];
  int n = snprintf (buf, sizeof buf, "%" PRId64, v);
  if (write_file_at (dirfd, file, buf, n, err) < 0)
    return error_prefix (err, "cgroup `%s`", path);
  return 0;
}

int
cgroup_stat_read (struct cgroup *cg, enum cgroup_stat_file which, int dirfd,
                  const char *name, char *buf, size_t cap)
{
  if (cg->stat_fd[which] < 0)
    cg->stat_fd[which] = openat (dirfd, name, O_RDONLY | O_CLOEXEC);
  if (cg->stat_fd[which] < 0)
    return -1;
  return pread_all (cg->stat_fd[which], buf, cap) < 0 ? -1 : 0;
}

/* SIGKILL every pid listed in cgroup.procs until none is left. Processes
 * can fork between the read and the kill, so loop; a pid namespace's
 * processes also die with its init, which bounds this in practice. */
int
cgroup_kill_procs (int dirfd, const char *path, struct error *err)
{
  for (int round = 0; round < 100; round++)
    {
      char buf[65536];
      ssize_t n = read_file_at (dirfd, "cgroup.procs", buf, sizeof buf, err);
      if (n < 0)
        return error_prefix (err, "cgroup `%s`", path);
      if (n == 0)
        return 0;
      for (char *p = buf; *p;)
        {
          char *end;
          long pid = strtol (p, &end, 10);
          if (end == p)
            break;
          if (pid > 0)
            kill (pid, SIGKILL);
          p = end;
          while (*p == '\n')
            p++;
        }
      struct timespec ts = { 0, 1000000 };
      nanosleep (&ts, NULL);
    }
  return error_setx (err, EBUSY, "cgroup `%s`: processes keep appearing after SIGKILL", path);
}

int
cgroup_prepare (const struct cgroup_host *host, enum rt_cgroup_version v,
                const char *parent, struct error *err)
{
  return v == RT_CGROUP_V2 ? cgroup_v2_prepare (host, parent, err)
                           : cgroup_v1_prepare (host, parent, err);
}

int
cgroup_create (const struct cgroup_host *host, enum rt_cgroup_version v,
               const char *parent, const char *id, bool exists,
               const struct cgroup_limits *limits, struct cgroup **out, struct error *err)
{
  struct cgroup *cg = calloc (1, sizeof *cg);
  if (cg == NULL)
    return error_set (err, ENOMEM, "allocate cgroup");
  cg->version = v;
  for (int i = 0; i < CG1_N; i++)
    cg->dirfd[i] = cg->same_as[i] = -1;
  for (int i = 0; i < CGS_N; i++)
    cg->stat_fd[i] = -1;
  int r = v == RT_CGROUP_V2 ? cgroup_v2_create (cg, host, parent, id, exists, limits, err)
                            : cgroup_v1_create (cg, host, parent, id, exists, limits, err);
  if (r < 0)
    {
      struct error ignored;
      if (exists && limits == NULL)
        cgroup_forget (cg); /* an adoption that failed removes nothing */
      else
        cgroup_destroy (cg, &ignored);
      return -1;
    }
  *out = cg;
  return 0;
}

int
cgroup_clone_fd (const struct cgroup *cg)
{
  return cg->version == RT_CGROUP_V2 ? cg->dirfd[0] : -1;
}

int
cgroup_attach (struct cgroup *cg, pid_t pid, struct error *err)
{
  if (cg->version == RT_CGROUP_V2)
    return cgroup_write_int (cg->dirfd[0], cg->path[0], "cgroup.procs", pid, err);
  return cgroup_v1_attach (cg, pid, err);
}

int
cgroup_kill_all (struct cgroup *cg, struct error *err)
{
  return cg->version == RT_CGROUP_V2 ? cgroup_v2_kill_all (cg, err)
                                     : cgroup_v1_kill_all (cg, err);
}

int
cgroup_oom_kills (struct cgroup *cg, uint64_t *out, struct error *err)
{
  return cg->version == RT_CGROUP_V2 ? cgroup_v2_oom_kills (cg, out, err)
                                     : cgroup_v1_oom_kills (cg, out, err);
}

int
cgroup_usage (struct cgroup *cg, struct rt_usage *out, struct error *err)
{
  memset (out, 0, sizeof *out);
  return cg->version == RT_CGROUP_V2 ? cgroup_v2_usage (cg, out, err)
                                     : cgroup_v1_usage (cg, out, err);
}

/* rmdir fails with EBUSY while the last exiting tasks are being released;
 * neither version offers an event for "removable", so retry briefly. */
static int
remove_cgroup_dir (const char *path, struct error *err)
{
  for (int i = 0; i < 2000; i++)
    {
      if (rmdir (path) == 0 || errno == ENOENT)
        return 0;
      if (errno != EBUSY)
        break;
      struct timespec ts = { 0, 1000000 };
      nanosleep (&ts, NULL);
    }
  return error_set (err, errno, "remove cgroup `%s`", path);
}

/* The distinct directories a cgroup `name` has: one on v2, one per
 * distinct v1 mount (controllers mounted together share one). */
static int
cgroup_dirs (const struct cgroup_host *host, enum rt_cgroup_version v, const char *parent,
             const char *name, char out[CG1_N][PATH_MAX])
{
  int n = 0;
  for (int c = 0; c < (v == RT_CGROUP_V2 ? 1 : CG1_N); c++)
    {
      const char *mnt = v == RT_CGROUP_V2 ? host->v2_mount : host->v1_mount[c];
      if (mnt[0] == '\0')
        continue;
      if (snprintf (out[n], PATH_MAX, "%s/%s/%s", mnt, parent, name) >= PATH_MAX)
        continue; /* cgroup_create reports the long path */
      bool dup = false;
      for (int o = 0; o < n && !dup; o++)
        dup = strcmp (out[o], out[n]) == 0;
      if (!dup)
        n++;
    }
  return n;
}

int
cgroup_spare_make (const struct cgroup_host *host, enum rt_cgroup_version v, const char *parent,
                   const char *name, struct error *err)
{
  char dirs[CG1_N][PATH_MAX];
  int n = cgroup_dirs (host, v, parent, name, dirs);
  for (int i = 0; i < n; i++)
    if (mkdir (dirs[i], 0755) < 0)
      {
        int e = errno;
        cgroup_spare_remove (host, v, parent, name);
        return error_set (err, e, "create spare cgroup `%s`", dirs[i]);
      }
  return 0;
}

void
cgroup_spare_remove (const struct cgroup_host *host, enum rt_cgroup_version v, const char *parent,
                     const char *name)
{
  char dirs[CG1_N][PATH_MAX];
  int n = cgroup_dirs (host, v, parent, name, dirs);
  for (int i = 0; i < n; i++)
    rmdir (dirs[i]);
}

int
cgroup_list_children (const struct cgroup_host *host, enum rt_cgroup_version v, const char *parent,
                      void (*fn) (void *ctx, const char *name, bool busy), void *ctx,
                      struct error *err)
{
  char dirs[CG1_N][PATH_MAX];
  if (cgroup_dirs (host, v, parent, "", dirs) == 0)
    return 0;
  cleanup_closedir DIR *dir = opendir (dirs[0]);
  if (dir == NULL)
    return error_set (err, errno, "list cgroups in `%s`", dirs[0]);
  struct dirent *e;
  while ((e = readdir (dir)) != NULL)
    {
      if (e->d_type != DT_DIR || e->d_name[0] == '.')
        continue;
      char procs[PATH_MAX + 300], buf[16] = "";
      snprintf (procs, sizeof procs, "%s/%s/cgroup.procs", dirs[0], e->d_name);
      struct error ignored;
      bool busy = read_file_at (AT_FDCWD, procs, buf, sizeof buf, &ignored) != 0;
      fn (ctx, e->d_name, busy);
    }
  return 0;
}

int
cgroup_spare_attach_thread (const struct cgroup_host *host, const char *parent, const char *name,
                            pid_t tid, struct error *err)
{
  char dirs[CG1_N][PATH_MAX];
  int n = cgroup_dirs (host, RT_CGROUP_V1, parent, name, dirs);
  char buf[32];
  int len = snprintf (buf, sizeof buf, "%d", (int) tid);
  for (int i = 0; i < n; i++)
    {
      char path[PATH_MAX + 8];
      if (snprintf (path, sizeof path, "%s/tasks", dirs[i]) >= (int) sizeof path)
        return error_setx (err, ENAMETOOLONG, "cgroup path `%s` is too long", dirs[i]);
      if (write_file_at (AT_FDCWD, path, buf, (size_t) len, err) < 0)
        return -1;
    }
  return 0;
}

static void
cgroup_close_fds (struct cgroup *cg)
{
  for (int i = 0; i < CGS_N; i++)
    if (cg->stat_fd[i] >= 0)
      close (cg->stat_fd[i]);
  for (int i = 0; i < CG1_N; i++)
    if (cg->dirfd[i] >= 0)
      close (cg->dirfd[i]);
}

void
cgroup_forget (struct cgroup *cg)
{
  cgroup_close_fds (cg);
  free (cg);
}

int
cgroup_destroy (struct cgroup *cg, struct error *err)
{
  int ret = 0;
  cgroup_close_fds (cg);
  for (int i = 0; i < CG1_N; i++)
    if (cg->path[i][0] && cg->same_as[i] == i && remove_cgroup_dir (cg->path[i], err) < 0)
      ret = -1;
  free (cg);
  return ret;
}
