/* deploy: the developer's CLI, a client of agentd's API socket. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/clock.h"
#include "../common/parse.h"
#include "client.h"
#include "config.h"
#include "mcp.h"
#include "names.h"

#define MAX_ARGS 256

struct globals
{
  const char *socket;
  bool json;
};

static int __attribute__ ((format (printf, 2, 3)))
failf (const char *cmd, const char *fmt, ...)
{
  fprintf (stderr, "deploy %s: ", cmd);
  va_list ap;
  va_start (ap, fmt);
  vfprintf (stderr, fmt, ap);
  va_end (ap);
  fputc ('\n', stderr);
  return 1;
}

static int
fail (const char *cmd, const struct error *err)
{
  return failf (cmd, "%s", err->msg);
}

struct scope
{
  char project[32], env[32];
};

static int
scope_resolve (struct scope *s, const char *project, const char *env, const char *cmd)
{
  struct deploy_config cfg;
  struct error err = { 0 };
  if (deploy_config_load ("deploy.yaml", &cfg, &err) < 0)
    return fail (cmd, &err);
  names_project (project ? project : cfg.project, NULL, s->project, sizeof s->project);
  names_env (env ? env : cfg.env, NULL, s->env, sizeof s->env);
  deploy_config_clear (&cfg);
  return 0;
}

/* ---- up ------------------------------------------------------------------- */

static void
up_usage (FILE *out)
{
  fputs ("Usage: deploy up [--image REF] [--project P] [--env E] [--service S] [--port N]\n"
         "                 [--env-var K=V]... [--memory SIZE] [--cpus N] [--pids N]\n"
         "                 [--restart never|on-failure|always] [--ttl DURATION]\n"
         "                 [--health-timeout DURATION] [--insecure-registry] [--detach]\n"
         "                 [--json] [-- CMD [ARG...]]\n"
         "\n"
         "Deploy an image as a service. Defaults come from deploy.yaml in the current\n"
         "directory when present; the project defaults to the directory's name, the\n"
         "environment to the git branch (main/master: production), the service to `web`,\n"
         "the command to the image's Entrypoint/Cmd. An image not in agentd's store is\n"
         "pulled first. Prints the deployment id, the time taken and, once the new\n"
         "version is healthy, where to reach it; the old version serves until then.\n"
         "  --detach   return once agentd has accepted the deploy\n"
         "  --ttl      tear the environment down after this long (e.g. 2h, 7d)\n"
         "  --health-timeout  how long the new version's port may take to accept\n"
         "             connections before the deploy fails (default 30s)\n",
         out);
}

static int
print_deploy_result (const struct globals *g, const struct scope *s, const char *service,
                     const struct msg_deploy_result *r, double t_sent)
{
  double secs = monotonic_seconds () - t_sent;
  if (g->json)
    {
      json_t *o = json_pack ("{s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:f, s:f, s:f, s:f, s:I, s:I}",
                             "id", r->id ?: "", "project", s->project, "env", s->env, "service",
                             service, "version", (json_int_t) r->version, "status",
                             r->status ?: "", "address", r->address ?: "", "url", r->url ?: "",
                             "pull_ms", r->pull_us / 1e3, "start_ms", r->start_us / 1e3,
                             "ready_ms", r->ready_us / 1e3, "total_ms", r->total_us / 1e3,
                             "exec_mono_ns", (json_int_t) r->exec_mono_ns, "sent_mono_ns",
                             (json_int_t) (t_sent * 1e9));
      json_dumpf (o, stdout, JSON_COMPACT);
      putchar ('\n');
      json_decref (o);
      return 0;
    }
  printf ("deployed %s version %llu in %.1f ms (%s)\n", r->id, (unsigned long long) r->version,
          secs * 1e3, r->status);
  if (r->url && r->url[0])
    printf ("  %s  (workload at %s)\n", r->url, r->address);
  else if (r->address && r->address[0])
    printf ("  workload at %s\n", r->address);
  return 0;
}

static int
cmd_up (const struct globals *g, int argc, char **argv)
{
  static const struct option opts[] = {
    { "image", required_argument, NULL, 'i' },   { "project", required_argument, NULL, 'P' },
    { "env", required_argument, NULL, 'E' },     { "service", required_argument, NULL, 'S' },
    { "port", required_argument, NULL, 'p' },    { "env-var", required_argument, NULL, 'e' },
    { "memory", required_argument, NULL, 'm' },  { "cpus", required_argument, NULL, 'c' },
    { "pids", required_argument, NULL, 'n' },    { "restart", required_argument, NULL, 'r' },
    { "ttl", required_argument, NULL, 't' },     { "insecure-registry", no_argument, NULL, 'k' },
    { "detach", no_argument, NULL, 'd' },        { "json", no_argument, NULL, 'j' },
    { "health-timeout", required_argument, NULL, 'H' },
    { "help", no_argument, NULL, 'h' },          { 0 },
  };
  struct globals gl = *g;
  struct deploy_config cfg;
  struct error err = { 0 };
  if (deploy_config_load ("deploy.yaml", &cfg, &err) < 0)
    return fail ("up", &err);
  struct msg_deploy m = { 0 };
  const char *project = NULL, *env = NULL;
  char *envv[MAX_ARGS + CONFIG_MAX_ITEMS + 1] = { 0 };
  size_t nenv = 0;
  for (size_t i = 0; cfg.envv[i]; i++)
    envv[nenv++] = cfg.envv[i];
  bool detach = false;
  int opt, ret = 1;
  optind = 1;
  opterr = 0;
  m.image = cfg.image;
  m.service = cfg.service;
  m.port = cfg.port;
  m.memory_bytes = cfg.memory;
  m.cpu_millis = cfg.cpu_millis;
  m.pids = cfg.pids;
  m.restart = cfg.restart;
  m.ttl_seconds = cfg.ttl_seconds;
  while ((opt = getopt_long (argc, argv, "+h", opts, NULL)) != -1)
    {
      int64_t v;
      int r = 0;
      switch (opt)
        {
        case 'i': m.image = optarg; break;
        case 'P': project = optarg; break;
        case 'E': env = optarg; break;
        case 'S': m.service = optarg; break;
        case 'p': r = parse_count (optarg, 65535, &v, &err); m.port = (uint64_t) v; break;
        case 'e':
          if (strchr (optarg, '=') == NULL || optarg[0] == '=' || nenv == MAX_ARGS)
            r = error_setx (&err, EINVAL, "--env-var `%s`: expected K=V", optarg);
          else
            envv[nenv++] = optarg;
          break;
        case 'm': r = parse_size (optarg, &v, &err); m.memory_bytes = (uint64_t) v; break;
        case 'c': r = parse_cpus (optarg, &v, &err); m.cpu_millis = (uint64_t) v; break;
        case 'n': r = parse_count (optarg, 4194304, &v, &err); m.pids = (uint64_t) v; break;
        case 'r': m.restart = optarg; break;
        case 't': r = parse_duration (optarg, &m.ttl_seconds, &err); break;
        case 'k': m.insecure_registry = 1; break;
        case 'H': r = parse_duration (optarg, &m.health_timeout_s, &err); break;
        case 'd': detach = true; break;
        case 'j': gl.json = true; break;
        case 'h': up_usage (stdout); deploy_config_clear (&cfg); return 0;
        default:
          deploy_config_clear (&cfg);
          return failf ("up", "unknown or incomplete option `%s` (see `deploy up --help`)", argv[optind - 1]);
        }
      if (r < 0)
        {
          deploy_config_clear (&cfg);
          return fail ("up", &err);
        }
    }
  struct scope s;
  if (scope_resolve (&s, project, env, "up") != 0)
    {
      deploy_config_clear (&cfg);
      return 1;
    }
  m.project = s.project;
  m.env = s.env;
  if (m.service == NULL)
    m.service = "web";
  m.envv = envv;
  if (optind < argc)
    m.argv = argv + optind;
  else if (cfg.command[0])
    m.argv = cfg.command;
  if (m.image == NULL)
    {
      deploy_config_clear (&cfg);
      return failf ("up", "%s", "no image: give --image REF or `image:` in deploy.yaml");
    }

  struct client c;
  uint32_t id;
  double t0 = monotonic_seconds ();
  if (client_connect (&c, client_socket_path (gl.socket), &err) < 0
      || client_send (&c, MSG_DEPLOY, &m, &id, &err) < 0)
    {
      deploy_config_clear (&cfg);
      return fail ("up", &err);
    }
  for (;;)
    {
      union client_reply r;
      uint8_t type;
      bool more;
      if (client_recv (&c, id, &type, &r, &more, &err) < 0)
        {
          fail ("up", &err);
          break;
        }
      if (type == MSG_PROGRESS)
        {
          if (!gl.json && isatty (2) && r.progress.message)
            fprintf (stderr, "  %s: %s\n", r.progress.phase, r.progress.message);
          bool accepted = r.progress.phase && strcmp (r.progress.phase, "accepted") == 0;
          proto_msg_clear (type, &r);
          if (detach && accepted)
            {
              if (!gl.json)
                printf ("deploy of %s.%s.%s accepted\n", s.project, s.env, m.service);
              ret = 0;
              break;
            }
          continue;
        }
      if (type == MSG_DEPLOY_RESULT)
        ret = print_deploy_result (&gl, &s, m.service, &r.deploy, t0);
      proto_msg_clear (type, &r);
      break;
    }
  client_close (&c);
  deploy_config_clear (&cfg);
  return ret;
}

/* ---- ps ------------------------------------------------------------------- */

/* One request, one final reply of the expected type. */
static int
call (const struct globals *g, const char *cmd, uint8_t type, const void *req,
      union client_reply *r)
{
  struct client c;
  struct error err = { 0 };
  uint32_t id;
  uint8_t got;
  bool more;
  if (client_connect (&c, client_socket_path (g->socket), &err) < 0
      || client_send (&c, type, req, &id, &err) < 0 || client_recv (&c, id, &got, r, &more, &err) < 0)
    {
      client_close (&c);
      return fail (cmd, &err);
    }
  client_close (&c);
  return 0;
}

static bool
want_help (int argc, char **argv, const char *text)
{
  for (int i = 1; i < argc; i++)
    if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0)
      {
        fputs (text, stdout);
        return true;
      }
  return false;
}

/* --project/--env/--json and up to one positional, shared by the small
 * commands; each allows its own few more (letters in `extra`: f n t for
 * logs, s for usage). */
struct common_args
{
  const char *project, *env, *positional;
  bool json;
  uint64_t tail, since;
  bool follow, timestamps;
};

static int
parse_common (const char *cmd, int argc, char **argv, struct common_args *a, const char *extra)
{
  static const struct option opts[] = {
    { "project", required_argument, NULL, 'P' }, { "env", required_argument, NULL, 'E' },
    { "json", no_argument, NULL, 'j' },          { "follow", no_argument, NULL, 'f' },
    { "tail", required_argument, NULL, 'n' },    { "timestamps", no_argument, NULL, 't' },
    { "since", required_argument, NULL, 's' },   { 0 },
  };
  int opt;
  optind = 1;
  opterr = 0;
  while ((opt = getopt_long (argc, argv, strchr (extra, 'f') ? "fn:t" : "", opts, NULL)) != -1)
    {
      struct error err = { 0 };
      int64_t v;
      if (strchr ("fnts", opt) && !strchr (extra, opt))
        {
          const struct option *o = opts;
          while (o->val != opt)
            o++;
          return failf (cmd, "--%s is not an option of this command (see `deploy %s --help`)", o->name, cmd);
        }
      switch (opt)
        {
        case 'P': a->project = optarg; break;
        case 'E': a->env = optarg; break;
        case 'j': a->json = true; break;
        case 'f': a->follow = true; break;
        case 't': a->timestamps = true; break;
        case 'n':
          if (parse_count (optarg, 1000000, &v, &err) < 0)
            return fail (cmd, &err);
          a->tail = (uint64_t) v;
          break;
        case 's':
          if (parse_duration (optarg, &a->since, &err) < 0)
            return fail (cmd, &err);
          break;
        default:
          fprintf (stderr, "deploy %s: unknown or incomplete option `%s` (see `deploy %s --help`)\n",
                   cmd, argv[optind - 1], cmd);
          return 1;
        }
    }
  if (optind < argc)
    a->positional = argv[optind++];
  if (optind < argc)
    return failf (cmd, "unexpected argument `%s`", argv[optind]);
  return 0;
}

static int
cmd_ps (const struct globals *g, int argc, char **argv)
{
  if (want_help (argc, argv,
                 "Usage: deploy ps [--project P] [--env E] [--json]\n\n"
                 "List deployments (all of them unless filtered), with state, version, pid,\n"
                 "restarts and where to reach each.\n"))
    return 0;
  struct common_args a = { .json = g->json };
  if (parse_common ("ps", argc, argv, &a, "") != 0)
    return 1;
  struct msg_list req = { (char *) a.project, (char *) a.env, NULL };
  union client_reply r;
  if (call (g, "ps", MSG_LIST, &req, &r) != 0)
    return 1;
  if (a.json)
    {
      json_t *arr = json_array ();
      for (size_t i = 0; i < r.list.n_deployments; i++)
        json_array_append_new (arr, client_deployment_json (&r.list.deployments[i]));
      json_dumpf (arr, stdout, JSON_COMPACT);
      putchar ('\n');
      json_decref (arr);
    }
  else
    {
      printf ("%-34s %-9s %-10s %7s %8s %-24s %s\n", "DEPLOYMENT", "VERSION", "STATE", "PID",
              "RESTARTS", "URL", "LAST EXIT");
      for (size_t i = 0; i < r.list.n_deployments; i++)
        {
          const struct msg_deployment_info *d = &r.list.deployments[i];
          printf ("%-34s %-9llu %-10s %7llu %8llu %-24s %s\n", d->id, (unsigned long long) d->version,
                  d->state, (unsigned long long) d->pid, (unsigned long long) d->restarts,
                  d->url && d->url[0] ? d->url : "-", d->last_exit && d->last_exit[0] ? d->last_exit : "-");
        }
    }
  proto_msg_clear (MSG_LIST_RESULT, &r);
  return 0;
}

static void
print_line (const struct msg_log_line *l, bool timestamps)
{
  if (timestamps)
    {
      time_t t = (time_t) (l->ts_us / 1000000);
      struct tm tm;
      gmtime_r (&t, &tm);
      char buf[32];
      strftime (buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
      printf ("%s.%06lluZ ", buf, (unsigned long long) (l->ts_us % 1000000));
    }
  if (l->stream == 3)
    printf ("[agentd] %s\n", l->text);
  else if (l->stream == 2 && timestamps)
    printf ("[stderr] %s\n", l->text);
  else
    printf ("%s\n", l->text);
}

static int
cmd_logs (const struct globals *g, int argc, char **argv)
{
  if (want_help (argc, argv,
                 "Usage: deploy logs [-f] [-n N] [-t] [--project P] [--env E] [SERVICE]\n\n"
                 "Print a service's stdout and stderr (and agentd's notes on it, marked\n"
                 "[agentd]), kept across versions, restarts and agentd restarts.\n"
                 "  -f, --follow       keep printing new lines until the service is removed\n"
                 "  -n, --tail N       only the last N lines\n"
                 "  -t, --timestamps   prefix each line with its UTC time and stream\n"))
    return 0;
  struct common_args a = { .json = g->json };
  if (parse_common ("logs", argc, argv, &a, "fnt") != 0)
    return 1;
  struct scope s;
  if (scope_resolve (&s, a.project, a.env, "logs") != 0)
    return 1;
  const char *service = a.positional ? a.positional : "web";
  struct msg_logs req = { s.project, s.env, (char *) service, a.tail, a.follow };
  struct client c;
  struct error err = { 0 };
  uint32_t id;
  if (client_connect (&c, client_socket_path (g->socket), &err) < 0
      || client_send (&c, MSG_LOGS, &req, &id, &err) < 0)
    return fail ("logs", &err);
  setvbuf (stdout, NULL, a.follow ? _IOLBF : _IOFBF, 0);
  int ret = 0;
  for (bool more = true; more;)
    {
      union client_reply r;
      uint8_t type;
      if (client_recv (&c, id, &type, &r, &more, &err) < 0)
        {
          ret = fail ("logs", &err);
          break;
        }
      for (size_t i = 0; i < r.logs.n_lines; i++)
        {
          if (a.json)
            {
              json_t *o = json_pack ("{s:I, s:s, s:s}", "ts_us", (json_int_t) r.logs.lines[i].ts_us,
                                     "stream", r.logs.lines[i].stream == 1   ? "stdout"
                                               : r.logs.lines[i].stream == 2 ? "stderr"
                                                                             : "agentd",
                                     "text", r.logs.lines[i].text ?: "");
              json_dumpf (o, stdout, JSON_COMPACT);
              putchar ('\n');
              json_decref (o);
            }
          else
            print_line (&r.logs.lines[i], a.timestamps);
        }
      proto_msg_clear (type, &r);
    }
  client_close (&c);
  return ret;
}

static int
cmd_down (const struct globals *g, int argc, char **argv)
{
  if (want_help (argc, argv,
                 "Usage: deploy down [SERVICE] [--env E] [--project P] [--json]\n\n"
                 "Stop and remove one service of the current environment, or with --env\n"
                 "and no SERVICE every service of that environment.\n"))
    return 0;
  struct common_args a = { .json = g->json };
  if (parse_common ("down", argc, argv, &a, "") != 0)
    return 1;
  if (a.positional == NULL && a.env == NULL)
    return failf ("down", "%s", "give a SERVICE, or --env E to remove a whole environment");
  struct scope s;
  if (scope_resolve (&s, a.project, a.env, "down") != 0)
    return 1;
  struct msg_down req = { s.project, s.env, (char *) a.positional };
  union client_reply r;
  if (call (g, "down", MSG_DOWN, &req, &r) != 0)
    return 1;
  if (a.json)
    {
      json_t *arr = json_array ();
      for (char **p = r.down.removed; p && *p; p++)
        json_array_append_new (arr, json_string (*p));
      json_t *o = json_pack ("{s:o}", "removed", arr);
      json_dumpf (o, stdout, JSON_COMPACT);
      putchar ('\n');
      json_decref (o);
    }
  else
    {
      size_t n = 0;
      for (char **p = r.down.removed; p && *p; p++, n++)
        printf ("removed %s\n", *p);
      if (n == 0)
        printf ("environment %s/%s had no services; removed\n", s.project, s.env);
    }
  proto_msg_clear (MSG_DOWN_RESULT, &r);
  return 0;
}

static int
cmd_env (const struct globals *g, int argc, char **argv)
{
  const char *help = "Usage: deploy env ls [--project P] [--json]\n\n"
                     "List environments: production and the preview environment of each branch,\n"
                     "with their services and time-to-live.\n";
  if (argc < 2 || strcmp (argv[1], "ls") != 0)
    {
      if (argc >= 2 && (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0))
        {
          fputs (help, stdout);
          return 0;
        }
      fputs (help, stderr);
      return 2;
    }
  if (want_help (argc - 1, argv + 1, help))
    return 0;
  struct common_args a = { .json = g->json };
  if (parse_common ("env ls", argc - 1, argv + 1, &a, "") != 0)
    return 1;
  struct msg_env_list req = { (char *) a.project };
  union client_reply r;
  if (call (g, "env ls", MSG_ENV_LIST, &req, &r) != 0)
    return 1;
  if (a.json)
    {
      json_t *arr = json_array ();
      for (size_t i = 0; i < r.envs.n_envs; i++)
        {
          const struct msg_env_info *e = &r.envs.envs[i];
          json_array_append_new (arr, json_pack ("{s:s, s:s, s:I, s:b, s:I, s:I}", "project",
                                                 e->project, "env", e->env, "services",
                                                 (json_int_t) e->services, "production",
                                                 (int) e->production, "ttl_seconds",
                                                 (json_int_t) e->ttl_seconds, "expires_at",
                                                 (json_int_t) e->expires_at));
        }
      json_dumpf (arr, stdout, JSON_COMPACT);
      putchar ('\n');
      json_decref (arr);
    }
  else
    {
      printf ("%-20s %-20s %8s %s\n", "PROJECT", "ENVIRONMENT", "SERVICES", "EXPIRES");
      for (size_t i = 0; i < r.envs.n_envs; i++)
        {
          const struct msg_env_info *e = &r.envs.envs[i];
          char exp[64] = "never";
          if (e->expires_at)
            {
              long left = (long) e->expires_at - (long) time (NULL);
              snprintf (exp, sizeof exp, "in %ld s (ttl %llu s)", left > 0 ? left : 0,
                        (unsigned long long) e->ttl_seconds);
            }
          printf ("%-20s %-20s %8llu %s\n", e->project, e->env, (unsigned long long) e->services, exp);
        }
    }
  proto_msg_clear (MSG_ENV_LIST_RESULT, &r);
  return 0;
}

static int
cmd_status (const struct globals *g, int argc, char **argv)
{
  if (want_help (argc, argv,
                 "Usage: deploy status [--json]\n\nagentd's own state: version, root, cgroup\n"
                 "version, network, uptime and how many deployments run.\n"))
    return 0;
  struct common_args a = { .json = g->json };
  if (parse_common ("status", argc, argv, &a, "") != 0)
    return 1;
  struct msg_status req = { 0 };
  union client_reply r;
  if (call (g, "status", MSG_STATUS, &req, &r) != 0)
    return 1;
  const struct msg_status_result *s = &r.status;
  if (a.json)
    {
      json_t *o = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "version",
                             s->version ?: "", "root", s->root ?: "", "cgroup", s->cgroup ?: "",
                             "bridge", s->bridge ?: "", "subnet", s->subnet ?: "", "pid",
                             (json_int_t) s->pid, "uptime_s", (json_int_t) s->uptime_s,
                             "deployments", (json_int_t) s->deployments, "running",
                             (json_int_t) s->running);
      json_dumpf (o, stdout, JSON_COMPACT);
      putchar ('\n');
      json_decref (o);
    }
  else
    printf ("agentd %s, pid %llu, up %llu s\nroot %s, cgroup %s, network %s %s\n"
            "deployments: %llu, running: %llu\n",
            s->version, (unsigned long long) s->pid, (unsigned long long) s->uptime_s, s->root,
            s->cgroup, s->bridge, s->subnet, (unsigned long long) s->deployments,
            (unsigned long long) s->running);
  proto_msg_clear (MSG_STATUS_RESULT, &r);
  return 0;
}

static int
cmd_usage (const struct globals *g, int argc, char **argv)
{
  if (want_help (argc, argv,
                 "Usage: deploy usage [--project P] [--env E] [SERVICE] [--since DURATION] [--json]\n\n"
                 "What each service used, second by second: CPU-seconds, memory and storage\n"
                 "GB-seconds, network bytes, and the cost. agentd asks its control plane's\n"
                 "ledger when it has one (--control), else adds up its own usage journal at the\n"
                 "default rates ($0.00000772 per vCPU-second, $0.00000386 per memory GB-second,\n"
                 "$0.00000006 per storage GB-second, $0.05 per GB of egress). Filters default\n"
                 "to all projects and environments.\n"))
    return 0;
  struct common_args a = { .json = g->json };
  if (parse_common ("usage", argc, argv, &a, "s") != 0)
    return 1;
  struct msg_usage req = { (char *) a.project, (char *) a.env, (char *) a.positional, a.since };
  union client_reply r;
  if (call (g, "usage", MSG_USAGE, &req, &r) != 0)
    return 1;
  json_t *arr = json_array ();
  if (!a.json)
    printf ("%-34s %8s %10s %12s %12s %12s %12s %12s\n", "DEPLOYMENT", "SECONDS", "CPU-S",
            "MEM GB-S", "DISK GB-S", "NET RX", "NET TX", "COST $");
  for (size_t i = 0; i < r.usage.n_rows; i++)
    {
      const struct msg_usage_row *u = &r.usage.rows[i];
      double cost;
      json_t *row = client_usage_json (u, &cost);
      if (a.json)
        json_array_append_new (arr, row);
      else
        {
          printf ("%-34s %8llu %10.3f %12.3f %12.3f %12llu %12llu %12.8f\n", u->deployment,
                  (unsigned long long) u->seconds, u->cpu_us / 1e6, u->memory_byte_seconds / 1e9,
                  u->disk_byte_seconds / 1e9, (unsigned long long) u->net_rx,
                  (unsigned long long) u->net_tx, cost);
          json_decref (row);
        }
    }
  if (a.json)
    {
      json_dumpf (arr, stdout, JSON_COMPACT);
      putchar ('\n');
    }
  json_decref (arr);
  proto_msg_clear (MSG_USAGE_RESULT, &r);
  return 0;
}

static void
usage (FILE *out)
{
  fputs ("Usage: deploy [--socket PATH] [--json] COMMAND [OPTIONS]\n"
         "\n"
         "Commands:\n"
         "  up        deploy an image as a service (zero downtime when replacing a version)\n"
         "  ps        list deployments\n"
         "  logs      print (or follow) a service's logs\n"
         "  down      remove a service, or a whole environment with --env\n"
         "  env ls    list environments (production and one per branch)\n"
         "  status    agentd's own state\n"
         "  usage     what each service used and cost, second by second\n"
         "  mcp       serve the MCP tools on stdio for AI agents (mcp install: client config)\n"
         "\n"
         "agentd is found at --socket PATH, else $AGENTD_SOCKET, else " PROTO_DEFAULT_SOCKET ".\n"
         "Run `deploy COMMAND --help` for a command's options.\n",
         out);
}

int
main (int argc, char **argv)
{
  struct globals g = { 0 };
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++)
    {
      if (strcmp (argv[i], "--json") == 0)
        g.json = true;
      else if (strcmp (argv[i], "--socket") == 0 && i + 1 < argc)
        g.socket = argv[++i];
      else if (strncmp (argv[i], "--socket=", 9) == 0)
        g.socket = argv[i] + 9;
      else if (strcmp (argv[i], "--help") == 0 || strcmp (argv[i], "-h") == 0)
        {
          usage (stdout);
          return 0;
        }
      else
        {
          fprintf (stderr, "deploy: unknown option `%s` (see `deploy --help`)\n", argv[i]);
          return 2;
        }
    }
  if (i >= argc)
    {
      usage (stderr);
      return 2;
    }
  const char *cmd = argv[i];
  int sub_argc = argc - i;
  char **sub_argv = argv + i;
  if (strcmp (cmd, "up") == 0)
    return cmd_up (&g, sub_argc, sub_argv);
  if (strcmp (cmd, "ps") == 0)
    return cmd_ps (&g, sub_argc, sub_argv);
  if (strcmp (cmd, "logs") == 0)
    return cmd_logs (&g, sub_argc, sub_argv);
  if (strcmp (cmd, "down") == 0)
    return cmd_down (&g, sub_argc, sub_argv);
  if (strcmp (cmd, "env") == 0)
    return cmd_env (&g, sub_argc, sub_argv);
  if (strcmp (cmd, "status") == 0)
    return cmd_status (&g, sub_argc, sub_argv);
  if (strcmp (cmd, "usage") == 0)
    return cmd_usage (&g, sub_argc, sub_argv);
  if (strcmp (cmd, "mcp") == 0)
    return cmd_mcp (g.socket, sub_argc, sub_argv);
  if (strcmp (cmd, "help") == 0)
    {
      usage (stdout);
      return 0;
    }
  fprintf (stderr, "deploy: unknown command `%s` (see `deploy --help`)\n", cmd);
  return 2;
}
