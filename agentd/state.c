/* Deployments survive an agentd restart: saved as JSON (temp file, fsync,
 * rename) whenever they change; at start-up the running workloads are
 * adopted again, the same processes, never restarted needlessly. */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/fsutil.h"
#include "daemon.h"

#define STATE_FILE "deployments.json"

static json_t *
strv_json (char **v)
{
  json_t *a = json_array ();
  for (char **p = v; p && *p; p++)
    json_array_append_new (a, json_string (*p));
  return a;
}

static json_t *
deployment_json (const struct deployment *dep)
{
  json_t *o = json_pack ("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:b, s:I, s:I, s:I, s:s, s:I}",
                         "project", dep->project, "env", dep->env, "service", dep->service,
                         "image", dep->spec.image, "port", (json_int_t) dep->spec.port,
                         "memory", (json_int_t) dep->spec.memory, "cpu_millis",
                         (json_int_t) dep->spec.cpu_millis, "pids", (json_int_t) dep->spec.pids,
                         "restart", restart_policy_name (dep->spec.restart), "insecure_registry",
                         dep->spec.insecure_registry, "next_version", (json_int_t) dep->next_version,
                         "host_port", (json_int_t) dep->host_port, "restarts",
                         (json_int_t) dep->restarts, "last_exit", dep->last_exit, "started_at",
                         (json_int_t) dep->started_at);
  if (o == NULL)
    return NULL;
  if (dep->spec.argv)
    json_object_set_new (o, "argv", strv_json (dep->spec.argv));
  json_object_set_new (o, "envv", strv_json (dep->spec.envv));
  const struct instance *in = dep->current;
  if (in && in->state == INST_RUNNING && in->c)
    json_object_set_new (o, "instance",
                         json_pack ("{s:s, s:s, s:I, s:I, s:I, s:I}", "id", in->id, "rt_name",
                                    in->rt_name, "version",
                                    (json_int_t) in->version,
                                    "pid", (json_int_t) in->pid, "start_time",
                                    (json_int_t) in->start_time, "addr",
                                    (json_int_t) in->net.addr));
  /* Draining versions are adopted too, so that a restart mid-switch does
   * not leave them running unseen. */
  json_t *old = json_array ();
  for (size_t i = 0; i < sizeof dep->draining / sizeof dep->draining[0]; i++)
    if (dep->draining[i] && dep->draining[i]->c)
      json_array_append_new (old, json_pack ("{s:s, s:s, s:I, s:I, s:I}", "id", dep->draining[i]->id,
                                             "rt_name", dep->draining[i]->rt_name, "version",
                                             (json_int_t) dep->draining[i]->version, "pid",
                                             (json_int_t) dep->draining[i]->pid, "start_time",
                                             (json_int_t) dep->draining[i]->start_time));
  json_object_set_new (o, "draining", old);
  if (dep->restart_at)
    json_object_set_new (o, "restart_pending", json_true ());
  return o;
}

static char *
state_render (struct daemon *d, struct error *err)
{
  json_t *root = json_object (), *deps = json_array (), *envs = json_array ();
  json_object_set_new (root, "version", json_integer (1));
  for (struct deployment *dep = d->deployments; dep; dep = dep->link)
    if (dep->spec.image) /* a first deploy that never came up has no spec to keep */
      json_array_append_new (deps, deployment_json (dep));
  for (struct environment *e = d->envs; e; e = e->link)
    json_array_append_new (envs, json_pack ("{s:s, s:s, s:I, s:I}", "project", e->project, "env",
                                            e->env, "ttl_seconds", (json_int_t) e->ttl_seconds,
                                            "expires_at", (json_int_t) e->expires_at));
  json_object_set_new (root, "deployments", deps);
  json_object_set_new (root, "environments", envs);
  char *text = json_dumps (root, JSON_INDENT (1));
  json_decref (root);
  if (text == NULL)
    error_set (err, ENOMEM, "encode state");
  return text;
}

int
state_save (struct daemon *d, struct error *err)
{
  char *text = state_render (d, err);
  if (text == NULL)
    return -1;
  int r = write_file_atomic (d->state_dir, STATE_FILE, text, strlen (text), 0600, err);
  free (text);
  if (r == 0)
    d->dirty = false;
  return r;
}

/* The writer thread: the fsync of a state file with hundreds of
 * deployments takes milliseconds, which the loop must not wait for. Only
 * the newest pending text is written; each write is whole (temp + fsync +
 * rename), so the file is always one consistent state. */
static void *
writer_main (void *arg)
{
  struct state_writer *w = arg;
  pthread_mutex_lock (&w->lock);
  for (;;)
    {
      while (w->pending == NULL && !w->stop)
        pthread_cond_wait (&w->cond, &w->lock);
      if (w->pending == NULL)
        break;
      char *text = w->pending;
      w->pending = NULL;
      pthread_mutex_unlock (&w->lock);
      struct error err = { 0 };
      if (write_file_atomic (w->dir, STATE_FILE, text, strlen (text), 0600, &err) < 0)
        fprintf (stderr, "agentd: save state: %s\n", err.msg);
      free (text);
      pthread_mutex_lock (&w->lock);
    }
  pthread_mutex_unlock (&w->lock);
  return NULL;
}

int
state_writer_start (struct daemon *d, struct error *err)
{
  struct state_writer *w = &d->writer;
  w->dir = d->state_dir;
  pthread_mutex_init (&w->lock, NULL);
  pthread_cond_init (&w->cond, NULL);
  int e = pthread_create (&w->thread, NULL, writer_main, w);
  if (e != 0)
    return error_set (err, e, "state writer thread");
  w->running = true;
  return 0;
}

int
state_save_async (struct daemon *d, struct error *err)
{
  struct state_writer *w = &d->writer;
  if (!w->running)
    return state_save (d, err);
  char *text = state_render (d, err);
  if (text == NULL)
    return -1;
  pthread_mutex_lock (&w->lock);
  free (w->pending);
  w->pending = text;
  pthread_cond_signal (&w->cond);
  pthread_mutex_unlock (&w->lock);
  d->dirty = false;
  return 0;
}

void
state_writer_stop (struct daemon *d)
{
  struct state_writer *w = &d->writer;
  if (!w->running)
    return;
  pthread_mutex_lock (&w->lock);
  w->stop = true;
  pthread_cond_signal (&w->cond);
  pthread_mutex_unlock (&w->lock);
  pthread_join (w->thread, NULL); /* it writes what is pending first */
  w->running = false;
}

static char **
strv_from_json (json_t *a)
{
  if (!json_is_array (a))
    return NULL;
  size_t n = json_array_size (a);
  char **v = calloc (n + 1, sizeof *v);
  for (size_t i = 0; v && i < n; i++)
    v[i] = strdup (json_string_value (json_array_get (a, i)) ?: "");
  return v;
}

static void
adopt_draining (struct daemon *d, struct deployment *dep, json_t *list)
{
  size_t i;
  json_t *o;
  json_array_foreach (list, i, o)
  {
    json_int_t version = 0, pid = 0, start = 0;
    const char *id, *name;
    if (json_unpack (o, "{s:s, s:s, s:I, s:I, s:I}", "id", &id, "rt_name", &name, "version",
                     &version, "pid", &pid, "start_time", &start) < 0)
      continue;
    /* Adopted only to be stopped: it was being replaced. */
    struct instance *keep = dep->current;
    struct error err = { 0 };
    if (instance_adopt (d, dep, id, name, (uint64_t) version, (pid_t) pid, (uint64_t) start, 0,
                        &err) == 0)
      {
        struct instance *old = dep->current;
        dep->current = keep;
        old->state = INST_DRAINING;
        old->drain_deadline = monotonic_seconds ();
        for (size_t k = 0; k < sizeof dep->draining / sizeof dep->draining[0]; k++)
          if (dep->draining[k] == NULL)
            {
              dep->draining[k] = old;
              break;
            }
      }
  }
}

static int
load_deployment (struct daemon *d, json_t *o, struct error *err)
{
  const char *project, *env, *service, *image, *restart, *last_exit = "";
  json_int_t port = 0, memory = 0, cpu = 0, pids = 0, next_version = 0, host_port = 0,
             restarts = 0, started_at = 0;
  int insecure = 0;
  if (json_unpack_ex (o, NULL, 0, "{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s, s?b, s:I, s:I, s?I, s?s, s?I}",
                      "project", &project, "env", &env, "service", &service, "image", &image,
                      "port", &port, "memory", &memory, "cpu_millis", &cpu, "pids", &pids,
                      "restart", &restart, "insecure_registry", &insecure, "next_version",
                      &next_version, "host_port", &host_port, "restarts", &restarts,
                      "last_exit", &last_exit, "started_at", &started_at) < 0)
    return error_setx (err, EINVAL, "a deployment entry lacks fields");
  struct deployment *dep = calloc (1, sizeof *dep);
  if (dep == NULL)
    return error_set (err, ENOMEM, "deployment");
  snprintf (dep->id, sizeof dep->id, "%s.%s.%s", project, env, service);
  dep->d = d;
  dep->project = strdup (project);
  dep->env = strdup (env);
  dep->service = strdup (service);
  dep->spec.image = strdup (image);
  dep->spec.argv = strv_from_json (json_object_get (o, "argv"));
  dep->spec.envv = strv_from_json (json_object_get (o, "envv"));
  dep->spec.port = (uint16_t) port;
  dep->spec.memory = (uint64_t) memory;
  dep->spec.cpu_millis = (uint64_t) cpu;
  dep->spec.pids = (uint64_t) pids;
  dep->spec.restart = strcmp (restart, "never") == 0    ? RESTART_NEVER
                 : strcmp (restart, "always") == 0 ? RESTART_ALWAYS
                                                   : RESTART_ON_FAILURE;
  dep->spec.insecure_registry = insecure;
  dep->next_version = (uint64_t) next_version;
  dep->host_port = (uint16_t) host_port;
  dep->restarts = (uint64_t) restarts;
  dep->started_at = (uint64_t) started_at;
  snprintf (dep->last_exit, sizeof dep->last_exit, "%s", last_exit);
  dep->listen_fd = -1;
  dep->log.fd = -1;
  dep->link = d->deployments;
  d->deployments = dep;
  environment_get (d, project, env, true);
  if (log_file_open (&dep->log, d->log_dir, dep->id, d->log_max, err) < 0)
    return -1;
  struct error lerr = { 0 };
  if (deployment_listen (d, dep, dep->spec.port, &lerr) < 0)
    fprintf (stderr, "agentd: %s: %s (retrying)\n", dep->id, lerr.msg);

  json_int_t version, pid, start, addr;
  const char *id, *name;
  json_t *in = json_object_get (o, "instance");
  if (in && json_unpack (in, "{s:s, s:s, s:I, s:I, s:I, s:I}", "id", &id, "rt_name", &name, "version",
                         &version, "pid", &pid, "start_time", &start, "addr", &addr) == 0)
    {
      struct error aerr = { 0 };
      if (instance_adopt (d, dep, id, name, (uint64_t) version, (pid_t) pid, (uint64_t) start,
                          (uint32_t) addr, &aerr) == 0)
        deployment_log (dep, LOG_AGENTD, "agentd restarted: adopted version %llu, pid %d",
                        (unsigned long long) version, (int) pid);
      else
        {
          deployment_log (dep, LOG_AGENTD, "agentd restarted: version %llu is gone (%s)",
                          (unsigned long long) version, aerr.msg);
          snprintf (dep->last_exit, sizeof dep->last_exit, "exited while agentd was away");
          if (dep->spec.restart != RESTART_NEVER)
            dep->restart_at = monotonic_seconds ();
        }
    }
  adopt_draining (d, dep, json_object_get (o, "draining"));
  if (json_is_true (json_object_get (o, "restart_pending")) && dep->current == NULL)
    dep->restart_at = monotonic_seconds ();
  return 0;
}

int
state_load (struct daemon *d, struct error *err)
{
  char path[600];
  snprintf (path, sizeof path, "%s/%s", d->state_dir, STATE_FILE);
  json_error_t jerr;
  json_t *root = json_load_file (path, 0, &jerr);
  if (root == NULL)
    {
      FILE *f = fopen (path, "re");
      if (f == NULL)
        return 0; /* first start */
      fclose (f);
      return error_setx (err, EINVAL, "state `%s`: line %d column %d: %s", path, jerr.line,
                         jerr.column, jerr.text);
    }
  size_t i;
  json_t *o;
  json_array_foreach (json_object_get (root, "environments"), i, o)
  {
    const char *project, *env;
    json_int_t ttl = 0, expires = 0;
    if (json_unpack (o, "{s:s, s:s, s:I, s:I}", "project", &project, "env", &env, "ttl_seconds",
                     &ttl, "expires_at", &expires) < 0)
      continue;
    struct environment *e = environment_get (d, project, env, true);
    if (e)
      {
        e->ttl_seconds = (uint64_t) ttl;
        e->expires_at = (uint64_t) expires;
      }
  }
  int ret = 0;
  json_array_foreach (json_object_get (root, "deployments"), i, o)
  {
    struct error derr = { 0 };
    if (load_deployment (d, o, &derr) < 0)
      {
        fprintf (stderr, "agentd: state `%s`: deployment %zu: %s\n", path, i, derr.msg);
        ret = -1;
      }
  }
  json_decref (root);
  if (ret < 0)
    return error_setx (err, EINVAL, "state `%s`: some deployments could not be restored", path);
  return 0;
}
