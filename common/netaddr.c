#include "netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "fsutil.h"

int
parse_hostport (const char *s, struct sockaddr_in *out, struct error *err)
{
  char host[64], tail;
  unsigned port;
  memset (out, 0, sizeof *out);
  out->sin_family = AF_INET;
  if (sscanf (s, "%63[^:]:%u%c", host, &port, &tail) != 2 || port == 0 || port > 65535
      || inet_pton (AF_INET, strcmp (host, "localhost") == 0 ? "127.0.0.1" : host,
                    &out->sin_addr) != 1)
    return error_setx (err, EINVAL, "`%s`: expected ADDR:PORT such as 127.0.0.1:7070", s);
  out->sin_port = htons ((uint16_t) port);
  return 0;
}

bool
is_loopback (const struct sockaddr_in *sa)
{
  return (ntohl (sa->sin_addr.s_addr) >> 24) == 127;
}

int
read_token_file (const char *path, char *out, size_t cap, struct error *err)
{
  ssize_t n = read_file_at (AT_FDCWD, path, out, cap, err);
  if (n < 0)
    return error_prefix (err, "token file");
  out[strcspn (out, "\r\n")] = '\0';
  if (strlen (out) < TOKEN_MIN)
    return error_setx (err, EINVAL, "token file `%s`: holds no token of %d or more characters",
                       path, TOKEN_MIN);
  return 0;
}

bool
token_equal (const char *a, const char *b)
{
  size_t la = strlen (a), lb = strlen (b);
  unsigned char diff = la != lb;
  for (size_t i = 0; i < la; i++)
    diff |= (unsigned char) a[i] ^ (unsigned char) b[i % (lb ? lb : 1)];
  return diff == 0 && lb > 0;
}
