/* `agentd run`: one workload in the foreground, its exit status ours. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/fsutil.h"
#include "../builder/image.h"
#include "../runtime/runtime.h"
#include "commands.h"
#include "../common/parse.h"

#define MAX_LAYERS 128
#define MAX_ENV 1024

static void
run_usage (FILE *out)
{
  fputs ("Usage: agentd run (--rootfs DIR | --layer DIR... [--upper DIR] | --image REF) [OPTIONS] -- CMD [ARG...]\n"
         "\n"
         "Start CMD isolated in new pid, mount, uts, ipc, network and cgroup namespaces,\n"
         "wait for it, and exit with its status (128+N when killed by signal N).\n"
         "\n"
         "Root filesystem:\n"
         "  --rootfs DIR        one directory as the root (writes land in it)\n"
         "  --layer DIR         a read-only overlay layer; repeat, top layer first\n"
         "  --upper DIR         writable overlay upper dir (default: ephemeral, removed at exit)\n"
         "  --image REF         an image from the store (agentd image import): its layers, and\n"
         "                      its Env, Entrypoint, Cmd, WorkingDir and User as defaults;\n"
         "                      CMD, when given, replaces the image's Cmd\n"
         "Limits (always set):\n"
         "  --memory SIZE       memory limit, e.g. 256M, 1G           (default 256M)\n"
         "  --cpus N            CPU quota in CPUs, e.g. 0.5            (default 1)\n"
         "  --pids N            most processes at once                 (default 128)\n"
         "Process:\n"
         "  --env K=V           set an environment variable; repeatable\n"
         "  --hostname H        hostname                               (default: the name)\n"
         "  --user UID[:GID]    numeric user and group                 (default 0:0)\n"
         "  --cwd DIR           working directory inside the root      (default /)\n"
         "Other:\n"
         "  --name ID           container name: cgroup and state dir   (default run-PID)\n"
         "  --userns            map container root to host ids 100000-165535\n"
         "  --root DIR          agentd's state root                    (default " AGENTD_DEFAULT_ROOT ")\n"
         "  -h, --help          show this help\n",
         out);
}

static int
fail (const char *what, const struct error *err)
{
  fprintf (stderr, "agentd run: %s%s%s\n", what ? what : "", what ? ": " : "", err->msg);
  return 125;
}

struct run_options
{
  struct rt_spec spec;
  const char *lowers[MAX_LAYERS];
  char *env[MAX_ENV + 3];
  size_t n_env;
  const char *root;
  const char *name;
  const char *image;
  bool user_set;
  bool cwd_set;
  struct image_rootfs img;
  char **argv_img;
};

static void
env_set (struct run_options *o, char *kv)
{
  size_t klen = strchr (kv, '=') - kv + 1;
  for (size_t i = 0; i < o->n_env; i++)
    if (strncmp (o->env[i], kv, klen) == 0)
      {
        o->env[i] = kv;
        return;
      }
  o->env[o->n_env++] = kv;
}

/* PATH and HOME when neither the image nor --env gave them. */
static void
env_defaults (struct run_options *o)
{
  static char path_env[] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  static char home_root[] = "HOME=/root", home_other[] = "HOME=/";
  bool has_path = false, has_home = false;
  for (size_t i = 0; i < o->n_env; i++)
    {
      has_path |= strncmp (o->env[i], "PATH=", 5) == 0;
      has_home |= strncmp (o->env[i], "HOME=", 5) == 0;
    }
  if (!has_path)
    o->env[o->n_env++] = path_env;
  if (!has_home)
    o->env[o->n_env++] = o->spec.uid == 0 ? home_root : home_other;
  o->env[o->n_env] = NULL;
}

/* Returns -1 to exit with *status (help or a usage error). */
static int
parse_options (int argc, char **argv, struct run_options *o, int *status)
{
  static const struct option longopts[] = {
    { "rootfs", required_argument, NULL, 'r' }, { "layer", required_argument, NULL, 'l' },
    { "upper", required_argument, NULL, 'U' },  { "memory", required_argument, NULL, 'm' },
    { "cpus", required_argument, NULL, 'c' },   { "pids", required_argument, NULL, 'p' },
    { "env", required_argument, NULL, 'e' },    { "hostname", required_argument, NULL, 'H' },
    { "user", required_argument, NULL, 'u' },   { "cwd", required_argument, NULL, 'w' },
    { "name", required_argument, NULL, 'n' },   { "userns", no_argument, NULL, 'S' },
    { "root", required_argument, NULL, 'R' },   { "help", no_argument, NULL, 'h' },
    { "image", required_argument, NULL, 'i' },
    { 0 },
  };
  struct error err = { 0 };
  o->spec.memory_max = 256LL << 20;
  o->spec.cpu_millis = 1000;
  o->spec.pids_max = 128;
  o->root = AGENTD_DEFAULT_ROOT;
  *status = 125;

  int opt;
  opterr = 0;
  while ((opt = getopt_long (argc, argv, "+h", longopts, NULL)) != -1)
    {
      int r = 0;
      const char *what = NULL;
      switch (opt)
        {
        case 'r': o->spec.rootfs = optarg; break;
        case 'l':
          if (o->spec.n_lowers == MAX_LAYERS)
            r = error_setx (&err, E2BIG, "at most %d layers", MAX_LAYERS);
          else
            o->lowers[o->spec.n_lowers++] = optarg;
          what = "--layer";
          break;
        case 'U': o->spec.upper = optarg; break;
        case 'm': r = parse_size (optarg, &o->spec.memory_max, &err); what = "--memory"; break;
        case 'c': r = parse_cpus (optarg, &o->spec.cpu_millis, &err); what = "--cpus"; break;
        case 'p': r = parse_count (optarg, 4194304, &o->spec.pids_max, &err); what = "--pids"; break;
        case 'e':
          what = "--env";
          if (strchr (optarg, '=') == NULL || optarg[0] == '=')
            r = error_setx (&err, EINVAL, "`%s`: expected K=V", optarg);
          else if (o->n_env == MAX_ENV)
            r = error_setx (&err, E2BIG, "at most %d variables", MAX_ENV);
          else
            {
              env_set (o, optarg);
            }
          break;
        case 'H': o->spec.hostname = optarg; break;
        case 'u':
          r = parse_user (optarg, &o->spec.uid, &o->spec.gid, &err);
          what = "--user";
          o->user_set = true;
          break;
        case 'i': o->image = optarg; break;
        case 'w':
          what = "--cwd";
          if (optarg[0] != '/')
            r = error_setx (&err, EINVAL, "`%s`: must be an absolute path", optarg);
          o->spec.cwd = optarg;
          o->cwd_set = true;
          break;
        case 'n': o->name = optarg; break;
        case 'S':
          o->spec.userns = true;
          o->spec.userns_host_id = 100000;
          o->spec.userns_size = 65536;
          break;
        case 'R': o->root = optarg; break;
        case 'h':
          run_usage (stdout);
          *status = 0;
          return -1;
        default:
          fprintf (stderr, "agentd run: unknown or incomplete option `%s` (see `agentd run --help`)\n",
                   argv[optind - 1]);
          return -1;
        }
      if (r < 0)
        {
          fail (what, &err);
          return -1;
        }
    }
  if (optind >= argc && o->image == NULL)
    {
      fprintf (stderr, "agentd run: no command given (usage: agentd run --rootfs DIR -- CMD [ARG...])\n");
      return -1;
    }
  if ((o->spec.rootfs != NULL) + (o->spec.n_lowers > 0) + (o->image != NULL) != 1)
    {
      fprintf (stderr, "agentd run: give one of --rootfs DIR, --layer DIR... or --image REF\n");
      return -1;
    }
  if (o->spec.upper && o->spec.rootfs)
    {
      fprintf (stderr, "agentd run: --upper goes with --layer, not --rootfs\n");
      return -1;
    }
  o->spec.lowers = o->lowers;
  o->spec.argv = argv + optind;
  o->spec.envp = o->env;
  o->spec.stdio[0] = 0;
  o->spec.stdio[1] = 1;
  o->spec.stdio[2] = 2;
  return 0;
}

/* The image's layers and its config as defaults under the options given. */
static int
apply_image (struct run_options *o, char **cmd, struct error *err)
{
  struct store *s;
  if (store_open (o->root, &s, err) < 0)
    return -1;
  int r = image_rootfs (s, o->image, &o->img, err);
  store_close (s);
  if (r < 0)
    return -1;
  const struct image_config *c = &o->img.config;
  o->spec.lowers = (const char *const *) o->img.lowers;
  o->spec.n_lowers = o->img.n_lowers;
  if (!o->cwd_set && c->workdir)
    o->spec.cwd = c->workdir;
  if (!o->user_set && c->user
      && image_lookup_user (&o->img, c->user, &o->spec.uid, &o->spec.gid, err) < 0)
    return error_prefix (err, "image `%s`", o->image);
  /* The image's variables first; --env given on the command line wins. */
  char *given[MAX_ENV];
  size_t n_given = o->n_env;
  if (n_given)
    memcpy (given, o->env, n_given * sizeof *given);
  o->n_env = 0;
  for (size_t i = 0; c->env && c->env[i] && o->n_env < MAX_ENV; i++)
    if (strchr (c->env[i], '='))
      env_set (o, c->env[i]);
  for (size_t i = 0; i < n_given && o->n_env < MAX_ENV; i++)
    env_set (o, given[i]);
  /* Entrypoint, then the command line's CMD or the image's Cmd. */
  size_t ne = 0, nc = 0;
  while (c->entrypoint && c->entrypoint[ne])
    ne++;
  char **tail = cmd && cmd[0] ? cmd : c->cmd;
  while (tail && tail[nc])
    nc++;
  if (ne + nc == 0)
    return error_setx (err, EINVAL, "image `%s` has no Entrypoint or Cmd: give a command after --", o->image);
  o->argv_img = calloc (ne + nc + 1, sizeof *o->argv_img);
  if (ne)
    memcpy (o->argv_img, c->entrypoint, ne * sizeof (char *));
  if (nc)
    memcpy (o->argv_img + ne, tail, nc * sizeof (char *));
  o->spec.argv = o->argv_img;
  return 0;
}

/* Forward the signals a foreground runner should pass on, until the
 * workload exits. */
static int
supervise (struct rt_container *c, int sigfd, struct rt_exit *ex, struct error *err)
{
  struct pollfd fds[2] = { { rt_pidfd (c), POLLIN, 0 }, { sigfd, POLLIN, 0 } };
  for (;;)
    {
      if (poll (fds, 2, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          return error_set (err, errno, "poll");
        }
      if (fds[0].revents)
        return rt_wait (c, true, ex, err);
      struct signalfd_siginfo si;
      if (fds[1].revents && read (sigfd, &si, sizeof si) == sizeof si)
        {
          struct error ignored;
          rt_signal (c, si.ssi_signo, &ignored);
        }
    }
}

int
cmd_run (int argc, char **argv)
{
  struct run_options o = { 0 };
  int status;
  if (parse_options (argc, argv, &o, &status) < 0)
    return status;

  struct error err = { 0 };
  char state[PATH_MAX], cache[PATH_MAX], name[64];
  snprintf (state, sizeof state, "%s/run", o.root);
  snprintf (cache, sizeof cache, "%s/cache", o.root);
  if (o.name == NULL)
    {
      snprintf (name, sizeof name, "run-%d", (int) getpid ());
      o.name = name;
    }

  if (o.image && apply_image (&o, argv + optind, &err) < 0)
    {
      image_rootfs_clear (&o.img);
      free (o.argv_img);
      return fail (NULL, &err);
    }
  env_defaults (&o);
  struct rt_runtime *rt = NULL;
  if (rt_runtime_new (state, "agentd", &rt, &err) < 0)
    return fail (NULL, &err);
  struct rt_seccomp *sc = NULL;
  if (mkdir_p (cache, 0700, &err) < 0 || rt_seccomp_default (cache, &sc, &err) < 0)
    {
      rt_runtime_free (rt);
      return fail (NULL, &err);
    }
  o.spec.seccomp = sc;

  sigset_t fwd;
  sigemptyset (&fwd);
  for (int s = 0; s < 5; s++)
    sigaddset (&fwd, (int[]){ SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 }[s]);
  sigprocmask (SIG_BLOCK, &fwd, NULL);
  cleanup_close int sigfd = signalfd (-1, &fwd, SFD_CLOEXEC);

  struct rt_container *c = NULL;
  int ret = 125;
  if (rt_start (rt, o.name, &o.spec, &c, &err) < 0)
    fail (NULL, &err);
  else
    {
      struct rt_exit ex;
      if (supervise (c, sigfd, &ex, &err) < 0)
        fail (NULL, &err);
      else if (ex.signal)
        {
          if (ex.oom_killed)
            fprintf (stderr, "agentd run: `%s` was killed by the OOM killer (memory limit %lld bytes)\n",
                     o.spec.argv[0], (long long) o.spec.memory_max);
          ret = 128 + ex.signal;
        }
      else
        ret = ex.code;
      if (rt_destroy (c, &err) < 0)
        {
          fail ("teardown", &err);
          if (ret == 0)
            ret = 125;
        }
    }
  rt_seccomp_free (sc);
  rt_runtime_free (rt);
  image_rootfs_clear (&o.img);
  free (o.argv_img);
  return ret;
}

int
cmd_seccomp_profile (int argc, char **argv)
{
  if (argc > 1 && (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0))
    {
      puts ("Usage: agentd seccomp-profile\n\n"
            "Print the default seccomp allow-list that `agentd run` loads, as the\n"
            "linux.seccomp object of an OCI runtime-spec config.json.");
      return 0;
    }
  struct error err = { 0 };
  if (rt_seccomp_write_oci (stdout, &err) < 0)
    {
      fprintf (stderr, "agentd seccomp-profile: %s\n", err.msg);
      return 1;
    }
  return 0;
}
