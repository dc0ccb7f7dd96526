/* A spawner: a thread parked inside a spare's v1 cgroups, so that the
 * child it clones is born there. v1 has no CLONE_INTO_CGROUP, and moving a
 * task into a v1 cgroup waits for an RCU grace period (the write lock of
 * cgroup_threadgroup_rwsem): measured here at 12-25 ms for one write to
 * cgroup.procs. A spare pays that move ahead of need, for its thread; the
 * container's start then pays nothing. The thread ends after its one clone,
 * before the workload has exec'd, so agentd never lingers in the cgroup. */
#include "spawner.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

struct spawner
{
  pthread_t thread;
  pid_t tid;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  enum
  {
    SP_STARTING,
    SP_IDLE,
    SP_JOB,
    SP_DONE,
    SP_QUIT
  } state;
  long (*fn) (void *);
  void *arg;
  long result;
};

static void *
spawner_main (void *p)
{
  struct spawner *s = p;
  pthread_mutex_lock (&s->lock);
  s->tid = (pid_t) syscall (SYS_gettid);
  s->state = SP_IDLE;
  pthread_cond_broadcast (&s->cond);
  while (s->state == SP_IDLE)
    pthread_cond_wait (&s->cond, &s->lock);
  if (s->state == SP_JOB)
    {
      pthread_mutex_unlock (&s->lock);
      long r = s->fn (s->arg); /* in a cloned child this never returns */
      pthread_mutex_lock (&s->lock);
      s->result = r;
      s->state = SP_DONE;
      pthread_cond_broadcast (&s->cond);
    }
  pthread_mutex_unlock (&s->lock);
  return NULL;
}

int
spawner_new (struct spawner **out, struct error *err)
{
  struct spawner *s = calloc (1, sizeof *s);
  if (s == NULL)
    return error_set (err, ENOMEM, "spawner");
  pthread_mutex_init (&s->lock, NULL);
  pthread_cond_init (&s->cond, NULL);
  /* A small stack: it only calls clone3 and, in the child, the set-up. */
  pthread_attr_t attr;
  pthread_attr_init (&attr);
  pthread_attr_setstacksize (&attr, 256 * 1024);
  int e = pthread_create (&s->thread, &attr, spawner_main, s);
  pthread_attr_destroy (&attr);
  if (e != 0)
    {
      free (s);
      return error_set (err, e, "spawner thread");
    }
  pthread_mutex_lock (&s->lock);
  while (s->state == SP_STARTING)
    pthread_cond_wait (&s->cond, &s->lock);
  pthread_mutex_unlock (&s->lock);
  *out = s;
  return 0;
}

pid_t
spawner_tid (const struct spawner *s)
{
  return s->tid;
}

long
spawner_run (struct spawner *s, long (*fn) (void *), void *arg)
{
  pthread_mutex_lock (&s->lock);
  s->fn = fn;
  s->arg = arg;
  s->state = SP_JOB;
  pthread_cond_broadcast (&s->cond);
  while (s->state != SP_DONE)
    pthread_cond_wait (&s->cond, &s->lock);
  long r = s->result;
  pthread_mutex_unlock (&s->lock);
  return r;
}

void
spawner_free (struct spawner *s)
{
  if (s == NULL)
    return;
  pthread_mutex_lock (&s->lock);
  if (s->state == SP_IDLE)
    s->state = SP_QUIT;
  pthread_cond_broadcast (&s->cond);
  pthread_mutex_unlock (&s->lock);
  pthread_join (s->thread, NULL);
  pthread_mutex_destroy (&s->lock);
  pthread_cond_destroy (&s->cond);
  free (s);
}
