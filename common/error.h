/* One error type for the whole tree: a code (an errno value where one
 * applies) and a message that names the thing and the cause. */
#ifndef COMMON_ERROR_H
#define COMMON_ERROR_H

#include <stddef.h>

#define ERROR_MSG_MAX 512

struct error {
  int code;
  char msg[ERROR_MSG_MAX];
};

/* Record an error and return -1 so callers can `return error_set (...)`.
 * When code is an errno value its text is appended: "open `x`: No such file". */
int error_set (struct error *err, int code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

/* Same, without appending strerror(code). */
int error_setx (struct error *err, int code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

/* Prefix an existing message with context: "layer x: <old message>". */
int error_prefix (struct error *err, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

#endif
