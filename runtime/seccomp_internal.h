/* Private to runtime/: the profile table and the loaded BPF program. */
#ifndef RUNTIME_SECCOMP_INTERNAL_H
#define RUNTIME_SECCOMP_INTERNAL_H

#include <seccomp.h>
#include <stddef.h>

#include "runtime.h"

/* A rule on argument 0 (op with operands a, b), or errno_ret != 0: answer
 * that errno. */
struct seccomp_rule
{
  const char *name;
  int errno_ret;
  enum scmp_compare op;
  scmp_datum_t a;
  scmp_datum_t b;
};

extern const struct seccomp_rule seccomp_conditional[];
extern const size_t seccomp_n_conditional;

/* The program to hand to seccomp(SECCOMP_SET_MODE_FILTER). */
const void *seccomp_bpf (const struct rt_seccomp *sc, size_t *n);

#endif
