/* Private to runtime/: a thread that runs one function (a clone3) from
 * inside the cgroups it was moved into ahead of need (spawner.c says why). */
#ifndef RUNTIME_SPAWNER_H
#define RUNTIME_SPAWNER_H

#include <sys/types.h>

#include "../common/error.h"

struct spawner;

/* Start the thread; returns once its tid is known (to be moved). */
int spawner_new (struct spawner **out, struct error *err);
pid_t spawner_tid (const struct spawner *s);
/* Run fn(arg) in the thread, wait for its result; the thread then ends. */
long spawner_run (struct spawner *s, long (*fn) (void *), void *arg);
/* End the thread (if it ran nothing) and join it. */
void spawner_free (struct spawner *s);

#endif
