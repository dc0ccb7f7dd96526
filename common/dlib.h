/* Shared libraries loaded on first use (ISA-L, libcurl, libmnl): agentd is linked
 * statically for start time, and Debian ships these only as .so files. */
#ifndef BUILDER_DLIB_H
#define BUILDER_DLIB_H

#include <stddef.h>

struct dl_symbol
{
  const char *name;
  void **slot; /* where the function's address goes */
};

/* dlopen lib and fill every slot; on failure, msg says what is missing and
 * `package` names what to install. */
int dl_load (const char *lib, const char *package, const struct dl_symbol *syms, size_t n,
             char *msg, size_t cap);

#endif
