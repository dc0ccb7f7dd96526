#ifndef AGENTD_COMMANDS_H
#define AGENTD_COMMANDS_H

#include "../proto/proto.h"

#define AGENTD_DEFAULT_ROOT "/var/lib/agentd"
#define AGENTD_DEFAULT_SOCKET PROTO_DEFAULT_SOCKET
#define AGENTD_VERSION "0.4.0"

int cmd_run (int argc, char **argv);
int cmd_serve (int argc, char **argv);
int cmd_usage (int argc, char **argv);
int cmd_image (int argc, char **argv);
int cmd_images (int argc, char **argv);
int cmd_pull (int argc, char **argv);

struct layer_limits;
extern const struct layer_limits agentd_layer_limits;
int cmd_seccomp_profile (int argc, char **argv);

#endif
