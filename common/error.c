#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int
error_vset (struct error *err, int code, int with_errno, const char *fmt, va_list ap)
{
  if (err == NULL)
    return -1;
  err->code = code;
  int n = vsnprintf (err->msg, sizeof err->msg, fmt, ap);
  if (with_errno && code > 0 && n >= 0 && (size_t) n < sizeof err->msg)
    snprintf (err->msg + n, sizeof err->msg - n, ": %s", strerror (code));
  return -1;
}

int
error_set (struct error *err, int code, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  error_vset (err, code, 1, fmt, ap);
  va_end (ap);
  return -1;
}

int
error_setx (struct error *err, int code, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  error_vset (err, code, 0, fmt, ap);
  va_end (ap);
  return -1;
}

int
error_prefix (struct error *err, const char *fmt, ...)
{
  if (err == NULL)
    return -1;
  char prefix[ERROR_MSG_MAX];
  char old[ERROR_MSG_MAX];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (prefix, sizeof prefix, fmt, ap);
  va_end (ap);
  memcpy (old, err->msg, sizeof old);
  if (snprintf (err->msg, sizeof err->msg, "%s: %s", prefix, old) >= (int) sizeof err->msg)
    memcpy (err->msg + sizeof err->msg - 4, "...", 4); /* a long message is cut, visibly */
  return -1;
}
