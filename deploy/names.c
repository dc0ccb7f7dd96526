#include "names.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* [a-z0-9-_], at most 15: the shape agentd accepts for names. */
static void
sanitize (const char *in, char *out, size_t cap)
{
  size_t n = 0;
  for (const char *p = in; *p && n + 1 < cap && n < 15; p++)
    {
      char c = *p;
      if (c >= 'A' && c <= 'Z')
        c = (char) (c - 'A' + 'a');
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
        c = '-';
      if (n == 0 && c == '-')
        continue;
      out[n++] = c;
    }
  while (n > 0 && out[n - 1] == '-')
    n--;
  out[n] = '\0';
  if (n == 0)
    snprintf (out, cap, "default");
}

static bool
dir_or_cwd (const char *dir, char *out, size_t cap)
{
  if (dir)
    return (size_t) snprintf (out, cap, "%s", dir) < cap;
  return getcwd (out, cap) != NULL;
}

void
names_env (const char *given, const char *dir, char *out, size_t cap)
{
  char d[PATH_MAX];
  if (given)
    {
      snprintf (out, cap, "%s", given);
      return;
    }
  snprintf (out, cap, "production");
  if (!dir_or_cwd (dir, d, sizeof d))
    return;
  /* The HEAD of the repository holding d (it or a parent). */
  for (;;)
    {
      char path[PATH_MAX + 16], line[512];
      snprintf (path, sizeof path, "%s/.git/HEAD", d);
      FILE *f = fopen (path, "re");
      if (f)
        {
          bool got = fgets (line, sizeof line, f) != NULL;
          fclose (f);
          const char *prefix = "ref: refs/heads/";
          if (got && strncmp (line, prefix, strlen (prefix)) == 0)
            {
              char *branch = line + strlen (prefix);
              branch[strcspn (branch, "\n")] = '\0';
              if (strcmp (branch, "main") != 0 && strcmp (branch, "master") != 0)
                sanitize (branch, out, cap);
            }
          return; /* a detached HEAD stays production */
        }
      char *slash = strrchr (d, '/');
      if (slash == NULL || slash == d)
        return;
      *slash = '\0';
    }
}

void
names_project (const char *given, const char *dir, char *out, size_t cap)
{
  char d[PATH_MAX];
  if (given)
    {
      snprintf (out, cap, "%s", given);
      return;
    }
  const char *base = "default";
  if (dir_or_cwd (dir, d, sizeof d))
    {
      size_t n = strlen (d);
      while (n > 1 && d[n - 1] == '/')
        d[--n] = '\0';
      char *slash = strrchr (d, '/');
      base = slash && slash[1] ? slash + 1 : d;
    }
  sanitize (base, out, cap);
}
