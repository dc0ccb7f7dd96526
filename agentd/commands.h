#ifndef AGENTD_COMMANDS_H
#define AGENTD_COMMANDS_H

#define AGENTD_DEFAULT_ROOT "/var/lib/agentd"

int cmd_run (int argc, char **argv);
int cmd_seccomp_profile (int argc, char **argv);

#endif
