/* A blocking client of agentd's API socket (PROTOCOL.md). */
#ifndef DEPLOY_CLIENT_H
#define DEPLOY_CLIENT_H

#include <jansson.h>

#include "../proto/messages.h"

struct client
{
  struct proto_conn conn;
  uint32_t next_id;
  const char *path;
};

/* --socket, else $AGENTD_SOCKET, else agentd's default. */
const char *client_socket_path (const char *given);
int client_connect (struct client *c, const char *path, struct error *err);
void client_close (struct client *c);
/* Send one request; returns its id in *id. */
int client_send (struct client *c, uint8_t type, const void *msg, uint32_t *id, struct error *err);
/* The next reply frame for id, decoded into msg (which must fit any reply
 * type: use union client_reply). An ERROR reply becomes err and -1;
 * *more tells whether more frames follow. */
union client_reply
{
  struct msg_error error;
  struct msg_progress progress;
  struct msg_deploy_result deploy;
  struct msg_list_result list;
  struct msg_log_lines logs;
  struct msg_down_result down;
  struct msg_env_list_result envs;
  struct msg_status_result status;
  struct msg_usage_result usage;
};
int client_recv (struct client *c, uint32_t id, uint8_t *type, union client_reply *msg,
                 bool *more, struct error *err);

/* One deployment as JSON, as `deploy ps --json` and the MCP tools give it. */
json_t *client_deployment_json (const struct msg_deployment_info *i);
/* One usage row as JSON, priced at the default rates; *cost gets the price. */
json_t *client_usage_json (const struct msg_usage_row *u, double *cost);

#endif
