#include "loop.h"

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

int
loop_init (struct loop *l, struct error *err)
{
  l->stop = 0;
  l->epfd = epoll_create1 (EPOLL_CLOEXEC);
  if (l->epfd < 0)
    return error_set (err, errno, "epoll_create1");
  return 0;
}

void
loop_free (struct loop *l)
{
  if (l->epfd >= 0)
    close (l->epfd);
  l->epfd = -1;
}

int
loop_add (struct loop *l, int fd, uint32_t events, struct loop_handler *h, struct error *err)
{
  struct epoll_event ev = { .events = events, .data.ptr = h };
  if (epoll_ctl (l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
    return error_set (err, errno, "epoll add fd %d", fd);
  return 0;
}

int
loop_mod (struct loop *l, int fd, uint32_t events, struct loop_handler *h)
{
  struct epoll_event ev = { .events = events, .data.ptr = h };
  return epoll_ctl (l->epfd, EPOLL_CTL_MOD, fd, &ev);
}

void
loop_del (struct loop *l, int fd)
{
  epoll_ctl (l->epfd, EPOLL_CTL_DEL, fd, NULL);
}

int
loop_run_once (struct loop *l, int timeout_ms, struct error *err)
{
  struct epoll_event evs[64];
  int n = epoll_wait (l->epfd, evs, 64, timeout_ms);
  if (n < 0)
    {
      if (errno == EINTR)
        return 0;
      return error_set (err, errno, "epoll_wait");
    }
  for (int i = 0; i < n; i++)
    {
      struct loop_handler *h = evs[i].data.ptr;
      h->fn (h, evs[i].events);
    }
  return 0;
}
