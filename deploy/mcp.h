/* `deploy mcp`: the Model Context Protocol server through which AI coding
 * agents deploy, inspect and tear down (protocol revision 2025-11-25, also
 * 2025-06-18 and 2025-03-26), over stdio: newline-delimited JSON-RPC 2.0,
 * nothing but protocol messages on stdout. A client of agentd's API. */
#ifndef DEPLOY_MCP_H
#define DEPLOY_MCP_H

#include <stdio.h>

/* `deploy mcp [install ...]`; socket: where agentd is (NULL: default). */
int cmd_mcp (const char *socket, int argc, char **argv);

#endif
