/* The defaults for project and environment names, shared by the CLI and
 * the MCP server: the directory's name, and its git branch (main/master are
 * production), shaped as agentd accepts names (1-15 of [a-z0-9-_]). */
#ifndef DEPLOY_NAMES_H
#define DEPLOY_NAMES_H

#include <stddef.h>

/* given if not NULL, else from dir (NULL: the current directory). */
void names_project (const char *given, const char *dir, char *out, size_t cap);
void names_env (const char *given, const char *dir, char *out, size_t cap);

#endif
