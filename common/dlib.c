#include "dlib.h"

#include <dlfcn.h>
#include <stdio.h>

int
dl_load (const char *lib, const char *package, const struct dl_symbol *syms, size_t n, char *msg,
         size_t cap)
{
  void *h = dlopen (lib, RTLD_NOW | RTLD_LOCAL);
  if (h == NULL)
    {
      snprintf (msg, cap, "%s is needed (package %s): %s", lib, package, dlerror ());
      return -1;
    }
  for (size_t i = 0; i < n; i++)
    if ((*syms[i].slot = dlsym (h, syms[i].name)) == NULL)
      {
        snprintf (msg, cap, "%s lacks %s", lib, syms[i].name);
        return -1;
      }
  return 0;
}
