#include "parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int
parse_u64 (const char *s, uint64_t *out, const char **end)
{
  if (!isdigit ((unsigned char) *s))
    return -1;
  errno = 0;
  char *e;
  unsigned long long v = strtoull (s, &e, 10);
  if (errno == ERANGE)
    return -1;
  *out = v;
  *end = e;
  return 0;
}

int
parse_size (const char *s, int64_t *out, struct error *err)
{
  uint64_t v;
  const char *end;
  if (parse_u64 (s, &v, &end) < 0)
    return error_setx (err, EINVAL, "size `%s`: expected a number with an optional K, M or G suffix, like 256M", s);
  int shift = 0;
  switch (toupper ((unsigned char) *end))
    {
    case '\0': break;
    case 'K': shift = 10; end++; break;
    case 'M': shift = 20; end++; break;
    case 'G': shift = 30; end++; break;
    case 'T': shift = 40; end++; break;
    default:
      return error_setx (err, EINVAL, "size `%s`: unknown unit `%s` (use K, M, G or T)", s, end);
    }
  if (toupper ((unsigned char) *end) == 'B' || (shift && *end == 'i' && end[1] == 'B'))
    end += *end == 'i' ? 2 : 1;
  if (*end != '\0')
    return error_setx (err, EINVAL, "size `%s`: trailing `%s`", s, end);
  if (v == 0)
    return error_setx (err, EINVAL, "size `%s`: must be greater than zero", s);
  if (v > (uint64_t) INT64_MAX >> shift)
    return error_setx (err, ERANGE, "size `%s`: too large", s);
  *out = (int64_t) (v << shift);
  return 0;
}

int
parse_cpus (const char *s, int64_t *out, struct error *err)
{
  uint64_t whole;
  const char *end;
  if (parse_u64 (s, &whole, &end) < 0 || whole > 4096)
    return error_setx (err, EINVAL, "cpus `%s`: expected a number of CPUs like 0.5 or 2", s);
  uint64_t millis = whole * 1000;
  if (*end == '.')
    {
      end++;
      uint64_t scale = 100;
      if (!isdigit ((unsigned char) *end))
        return error_setx (err, EINVAL, "cpus `%s`: expected digits after the point", s);
      for (; isdigit ((unsigned char) *end); end++)
        {
          if (scale == 0)
            return error_setx (err, EINVAL, "cpus `%s`: at most three decimals (millicores)", s);
          millis += (*end - '0') * scale;
          scale /= 10;
        }
    }
  if (*end != '\0')
    return error_setx (err, EINVAL, "cpus `%s`: trailing `%s`", s, end);
  if (millis < 10)
    return error_setx (err, EINVAL, "cpus `%s`: the smallest quota is 0.01", s);
  *out = (int64_t) millis;
  return 0;
}

int
parse_count (const char *s, int64_t max, int64_t *out, struct error *err)
{
  uint64_t v;
  const char *end;
  if (parse_u64 (s, &v, &end) < 0 || *end != '\0')
    return error_setx (err, EINVAL, "`%s`: expected a positive whole number", s);
  if (v == 0 || v > (uint64_t) max)
    return error_setx (err, ERANGE, "`%s`: must be between 1 and %lld", s, (long long) max);
  *out = (int64_t) v;
  return 0;
}

int
parse_user (const char *s, uid_t *uid, gid_t *gid, struct error *err)
{
  uint64_t u, g;
  const char *end;
  if (parse_u64 (s, &u, &end) < 0 || u > UINT32_MAX - 1)
    return error_setx (err, EINVAL, "user `%s`: expected a numeric UID[:GID]", s);
  g = u;
  if (*end == ':')
    {
      if (parse_u64 (end + 1, &g, &end) < 0 || g > UINT32_MAX - 1)
        return error_setx (err, EINVAL, "user `%s`: expected a numeric GID after ':'", s);
    }
  if (*end != '\0')
    return error_setx (err, EINVAL, "user `%s`: expected a numeric UID[:GID]", s);
  *uid = (uid_t) u;
  *gid = (gid_t) g;
  return 0;
}

int
parse_duration (const char *s, uint64_t *out, struct error *err)
{
  char *end;
  errno = 0;
  unsigned long long v = strtoull (s, &end, 10);
  uint64_t unit = 1;
  if (end != s && end[0] && end[1] == '\0')
    switch (end[0])
      {
      case 's': unit = 1; end++; break;
      case 'm': unit = 60; end++; break;
      case 'h': unit = 3600; end++; break;
      case 'd': unit = 86400; end++; break;
      }
  if (end == s || *end || errno || !isdigit ((unsigned char) s[0]) || v == 0
      || v > 366ULL * 86400 / unit)
    return error_setx (err, EINVAL, "duration `%s`: expected e.g. 90s, 30m, 2h or 7d (at most a year)", s);
  *out = (uint64_t) v * unit;
  return 0;
}
