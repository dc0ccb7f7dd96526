/* The daemon's one event loop: epoll over fds whose owners embed a
 * handler (DESIGN.md: one loop thread owns all state). */
#ifndef AGENTD_LOOP_H
#define AGENTD_LOOP_H

#include <stdint.h>
#include <sys/epoll.h>

#include "../common/error.h"

struct loop_handler
{
  void (*fn) (struct loop_handler *h, uint32_t events);
};

struct loop
{
  int epfd;
  int stop;
};

int loop_init (struct loop *l, struct error *err);
void loop_free (struct loop *l);
int loop_add (struct loop *l, int fd, uint32_t events, struct loop_handler *h, struct error *err);
int loop_mod (struct loop *l, int fd, uint32_t events, struct loop_handler *h);
void loop_del (struct loop *l, int fd);
/* Wait up to timeout_ms (-1: forever) and run the handlers of ready fds. */
int loop_run_once (struct loop *l, int timeout_ms, struct error *err);

#endif
