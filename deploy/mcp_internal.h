/* Private to deploy/mcp*.c: the server's state and its entry points, shared
 * by the stdio (mcp.c) and Streamable HTTP (mcp_http.c) transports. */
#ifndef DEPLOY_MCP_INTERNAL_H
#define DEPLOY_MCP_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define MCP_LATEST "2025-11-25"
#define MCP_N_VERSIONS 3
extern const char *const mcp_versions[MCP_N_VERSIONS];

struct mcp
{
  const char *socket;
  json_t *tools;
  bool initialized;
  /* The transport: where messages go, and how a cancellation of the
   * request in progress is seen (an fd to poll, then a check). */
  void (*emit) (struct mcp *m, json_t *msg);
  int cancel_fd;
  bool (*is_cancelled) (struct mcp *m, json_t *id);
  void *transport;
  /* stdin, read by lines */
  char *in;
  size_t in_len, in_cap;
  bool eof;
  bool skipping; /* the rest of a refused, oversized line */
  json_t *queued; /* messages read while a tool call waited */
};

/* The tool definitions (mcp_tools.json), or NULL with a message. */
json_t *mcp_tools_load (void);
/* Handle one message (a JSON object or not): replies go through m->emit. */
void mcp_handle (struct mcp *m, json_t *msg);
/* `deploy mcp --listen ADDR:PORT [--token-file F]`. */
int mcp_serve_http (const char *socket, const char *listen, const char *token_file);

#endif
