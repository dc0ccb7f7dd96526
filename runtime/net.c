/* The workload's network namespace: loopback up, as programs expect
 * 127.0.0.1 to work. (Veths and addresses come with the daemon.) */
#include <errno.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "child.h"

int
child_loopback_up (struct error *err)
{
  cleanup_close int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return error_set (err, errno, "loopback: socket");
  struct ifreq ifr = { 0 };
  strcpy (ifr.ifr_name, "lo");
  if (ioctl (fd, SIOCGIFFLAGS, &ifr) < 0)
    return error_set (err, errno, "loopback: get flags");
  ifr.ifr_flags |= IFF_UP;
  if (ioctl (fd, SIOCSIFFLAGS, &ifr) < 0)
    return error_set (err, errno, "loopback: bring up");
  return 0;
}
