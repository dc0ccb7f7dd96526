/* spawn_time: run several commands N times each, interleaved, and print
 * each run's wall time in microseconds, one line per command:
 *   spawn_time N ::: LABEL ARGV... ::: LABEL ARGV... ...
 *   -> "LABEL us us us ..."
 * stdin and stdout are /dev/null; stderr is kept, so failures explain
 * themselves. posix_spawn + waitpid around CLOCK_MONOTONIC: the harness adds the same
 * few tens of microseconds to every tool, far less than a shell loop. */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct cmd
{
  const char *label;
  char **argv;
  long *us;
};

static long
now_us (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

int
main (int argc, char **argv)
{
  if (argc < 5 || strcmp (argv[2], ":::") != 0)
    {
      fprintf (stderr, "usage: spawn_time N ::: LABEL ARGV... [::: LABEL ARGV...]...\n");
      return 2;
    }
  int n = atoi (argv[1]);
  struct cmd cmds[16];
  int ncmd = 0;
  for (int i = 2; i < argc && ncmd < 16; i++)
    if (strcmp (argv[i], ":::") == 0 && i + 2 < argc)
      {
        argv[i] = NULL; /* terminates the previous command's argv */
        cmds[ncmd].label = argv[i + 1];
        cmds[ncmd].argv = &argv[i + 2];
        cmds[ncmd].us = calloc (n, sizeof (long));
        ncmd++;
      }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init (&fa);
  posix_spawn_file_actions_addopen (&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen (&fa, 1, "/dev/null", O_WRONLY, 0);
  for (int r = 0; r < n; r++)
    for (int c = 0; c < ncmd; c++)
      {
        pid_t pid;
        int status;
        long t0 = now_us ();
        if (posix_spawnp (&pid, cmds[c].argv[0], &fa, NULL, cmds[c].argv, environ) != 0
            || waitpid (pid, &status, 0) < 0)
          {
            perror (cmds[c].argv[0]);
            return 1;
          }
        cmds[c].us[r] = now_us () - t0;
        if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
          {
            fprintf (stderr, "spawn_time: %s (run %d) failed with status %d\n", cmds[c].label, r + 1, status);
            return 1;
          }
      }
  for (int c = 0; c < ncmd; c++)
    {
      printf ("%s", cmds[c].label);
      for (int r = 0; r < n; r++)
        printf (" %ld", cmds[c].us[r]);
      printf ("\n");
    }
  return 0;
}
