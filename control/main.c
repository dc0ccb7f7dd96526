/* controld: the reference control plane (README.md, "Metering and
 * billing"): it takes agentd nodes' usage over the uplink, keeps the
 * ledger, bills per second against project credits, and answers queries. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/netaddr.h"
#include "../common/parse.h"
#include "ledger.h"
#include "server.h"

#define DEFAULT_LISTEN "127.0.0.1:7070"
#define DEFAULT_DB "ledger.sqlite"

static void
usage (FILE *out)
{
  fputs ("Usage: controld [serve] [--listen ADDR:PORT] [--db FILE] [--rates FILE] [--token-file F]\n"
         "       controld usage [--db FILE] [--project P] [--env E] [--service S] [--since T]\n"
         "                      [--by second|minute|hour] [--json]\n"
         "       controld credits add PROJECT DOLLARS [--db FILE]\n"
         "       controld credits [--db FILE] [--json]\n"
         "       controld events [--db FILE] [--json]\n\n"
         "The reference control plane: agentd nodes (agentd serve --control ADDR:PORT) stream\n"
         "their per-second usage to it; it stores it in an SQLite ledger (WAL), prices it,\n"
         "charges it to each project's credits, and stops a project's workloads when its\n"
         "credits run out.\n\n"
         "  --listen ADDR:PORT  where nodes connect (default " DEFAULT_LISTEN ")\n"
         "  --db FILE           the ledger (default ./" DEFAULT_DB ")\n"
         "  --rates FILE        prices and alert levels (YAML: memory_gb_second, vcpu_second,\n"
         "                      storage_gb_second, egress_gb in dollars; alert_thresholds, a\n"
         "                      list of percents; defaults 0.00000386, 0.00000772, 0.00000006,\n"
         "                      0.05, [50, 80, 100])\n"
         "  --token-file F      nodes must present this token in HELLO (required unless\n"
         "                      --listen is a loopback address)\n"
         "  --since T           a duration (90s, 15m, 2h, 7d) ago, or an ISO 8601 UTC time\n"
         "  --by UNIT           one row per second, minute or hour instead of per service\n",
         out);
}

struct opts
{
  const char *listen, *db, *rates, *token_file;
  const char *project, *env, *service, *since, *by;
  bool json;
};

static int
parse_opts (int argc, char **argv, struct opts *o)
{
  static const struct option longs[] = {
    { "listen", required_argument, NULL, 'l' },  { "db", required_argument, NULL, 'd' },
    { "rates", required_argument, NULL, 'r' },   { "token-file", required_argument, NULL, 't' },
    { "project", required_argument, NULL, 'p' }, { "env", required_argument, NULL, 'e' },
    { "service", required_argument, NULL, 's' }, { "since", required_argument, NULL, 'S' },
    { "by", required_argument, NULL, 'b' },      { "json", no_argument, NULL, 'j' },
    { "help", no_argument, NULL, 'h' },          { 0 },
  };
  *o = (struct opts){ .listen = DEFAULT_LISTEN, .db = DEFAULT_DB };
  optind = 1;
  int c;
  while ((c = getopt_long (argc, argv, "h", longs, NULL)) != -1)
    switch (c)
      {
      case 'l': o->listen = optarg; break;
      case 'd': o->db = optarg; break;
      case 'r': o->rates = optarg; break;
      case 't': o->token_file = optarg; break;
      case 'p': o->project = optarg; break;
      case 'e': o->env = optarg; break;
      case 's': o->service = optarg; break;
      case 'S': o->since = optarg; break;
      case 'b': o->by = optarg; break;
      case 'j': o->json = true; break;
      case 'h': usage (stdout); return 1;
      default: fprintf (stderr, "controld: see `controld --help`\n"); return 2;
      }
  return 0;
}

/* A failed ledger call: say why; the exit status. */
static int
failed (const struct error *err)
{
  fprintf (stderr, "controld: %s\n", err->msg);
  return 1;
}

static int
cmd_serve (const struct opts *o)
{
  struct server_config cfg = { 0 };
  struct error err = { 0 };
  snprintf (cfg.listen_text, sizeof cfg.listen_text, "%s", o->listen);
  rates_default (&cfg.rates);
  if (parse_hostport (o->listen, &cfg.listen, &err) < 0
      || (o->token_file && read_token_file (o->token_file, cfg.token, sizeof cfg.token, &err) < 0)
      || (o->rates && rates_load (o->rates, &cfg.rates, &err) < 0))
    return 1 + failed (&err);
  if (!is_loopback (&cfg.listen) && o->token_file == NULL)
    {
      fprintf (stderr, "controld: --listen %s is not a loopback address: give --token-file\n",
               o->listen);
      return 2;
    }
  struct ledger *l;
  if (ledger_open (o->db, false, &l, &err) < 0)
    return failed (&err);
  int r = server_run (&cfg, l, &err);
  ledger_close (l);
  return r < 0 ? failed (&err) : 0;
}

/* A duration ago, or an ISO 8601 UTC time: unix milliseconds. */
static int
parse_since (const char *s, uint64_t *ms)
{
  struct tm tm = { 0 };
  const char *end = strptime (s, "%Y-%m-%dT%H:%M:%S", &tm);
  if (end && (*end == '\0' || strcmp (end, "Z") == 0))
    {
      *ms = (uint64_t) timegm (&tm) * 1000;
      return 0;
    }
  uint64_t secs;
  struct error err = { 0 };
  if (parse_duration (s, &secs, &err) < 0)
    {
      fprintf (stderr, "controld: --since `%s`: a duration (90s, 15m, 2h, 7d) or an ISO 8601 UTC "
                       "time (2026-01-31T12:00:00Z)\n", s);
      return -1;
    }
  uint64_t now = (uint64_t) time (NULL);
  *ms = (now > secs ? now - secs : 0) * 1000;
  return 0;
}

static int
open_existing (const struct opts *o, struct ledger **l)
{
  struct error err = { 0 };
  return ledger_open (o->db, true, l, &err) < 0 ? -failed (&err) : 0;
}

/* The rows as one JSON array on stdout (--json); either way arr is freed. */
static void
finish_json (json_t *arr, bool json)
{
  if (json)
    {
      json_dumpf (arr, stdout, JSON_COMPACT);
      putchar ('\n');
    }
  json_decref (arr);
}

static int
cmd_usage (const struct opts *o)
{
  struct usage_query q = { o->project, o->env, o->service, 0, 0 };
  if (o->since && parse_since (o->since, &q.since_ms) < 0)
    return 2;
  if (o->by)
    {
      const char *units[] = { "second", "minute", "hour" };
      const uint64_t secs[] = { 1, 60, 3600 };
      for (int i = 0; i < 3; i++)
        if (strcmp (o->by, units[i]) == 0)
          q.bucket_s = secs[i];
      if (q.bucket_s == 0)
        {
          fprintf (stderr, "controld: --by `%s`: second, minute or hour\n", o->by);
          return 2;
        }
    }
  struct ledger *l;
  if (open_existing (o, &l) < 0)
    return 1;
  struct usage_line *lines;
  size_t n;
  struct error err = { 0 };
  int r = ledger_usage (l, &q, &lines, &n, &err);
  ledger_close (l);
  if (r < 0)
    return failed (&err);
  json_t *arr = json_array ();
  if (!o->json)
    printf ("%-15s %-15s %-15s %s%8s %10s %12s %12s %12s %12s %12s\n", "PROJECT", "ENV", "SERVICE",
            q.bucket_s ? "TIME (UTC)           " : "", "SECONDS", "CPU-S", "MEM GB-S", "DISK GB-S",
            "NET RX", "NET TX", "COST $");
  double total = 0;
  for (size_t i = 0; i < n; i++)
    {
      const struct usage_line *u = &lines[i];
      total += u->cost;
      char when[32] = "";
      if (q.bucket_s)
        {
          time_t t = (time_t) u->bucket;
          struct tm tm;
          strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r (&t, &tm));
        }
      if (o->json)
        {
          json_t *row = json_pack ("{s:s, s:s, s:s, s:I, s:f, s:f, s:f, s:I, s:I, s:f}", "project",
                                   u->project, "environment", u->env, "service", u->service,
                                   "seconds", (json_int_t) u->seconds, "cpu_seconds",
                                   u->cpu_us / 1e6, "memory_gb_seconds", u->memory_byte_s / 1e9,
                                   "storage_gb_seconds", u->disk_byte_s / 1e9, "net_rx_bytes",
                                   (json_int_t) u->net_rx, "net_tx_bytes", (json_int_t) u->net_tx,
                                   "cost_usd", u->cost);
          if (q.bucket_s)
            json_object_set_new (row, "time", json_string (when));
          const char *psi[] = { "cpu_pressure_seconds", "memory_pressure_seconds",
                                "io_pressure_seconds" };
          for (int k = 0; k < 3; k++)
            json_object_set_new (row, psi[k], json_real (u->psi_us[k] / 1e6));
          json_array_append_new (arr, row);
        }
      else
        printf ("%-15s %-15s %-15s %s%s%8" PRIu64 " %10.3f %12.3f %12.3f %12" PRIu64 " %12" PRIu64
                " %12.8f\n",
                u->project, u->env, u->service, when, q.bucket_s ? " " : "", u->seconds,
                u->cpu_us / 1e6, u->memory_byte_s / 1e9, u->disk_byte_s / 1e9, u->net_rx,
                u->net_tx, u->cost);
    }
  finish_json (arr, o->json);
  if (!o->json)
    printf ("total $%.8f\n", total);
  free (lines);
  return 0;
}

static int
cmd_credits (const struct opts *o, int argc, char **argv)
{
  struct ledger *l;
  struct error err = { 0 };
  if (argc > 0 && strcmp (argv[0], "add") == 0)
    {
      char *end = NULL;
      double amount = argc == 3 ? strtod (argv[2], &end) : 0;
      if (argc != 3 || end == argv[2] || *end || !(amount > 0 && amount < 1e9))
        {
          fprintf (stderr, "controld: usage: controld credits add PROJECT DOLLARS (a positive "
                           "amount, e.g. 10 or 0.25)\n");
          return 2;
        }
      if (ledger_open (o->db, false, &l, &err) < 0)
        return failed (&err);
      int r = ledger_credits_add (l, argv[1], amount, &err);
      ledger_close (l);
      return r < 0 ? failed (&err) : 0;
    }
  if (argc > 0)
    {
      fprintf (stderr, "controld: credits: unknown argument `%s` (add PROJECT DOLLARS, or none "
                       "to list)\n", argv[0]);
      return 2;
    }
  if (open_existing (o, &l) < 0)
    return 1;
  struct credit_line *c;
  size_t n;
  int r = ledger_credits (l, &c, &n, &err);
  ledger_close (l);
  if (r < 0)
    return failed (&err);
  json_t *arr = json_array ();
  if (!o->json)
    printf ("%-15s %14s %14s %14s %s\n", "PROJECT", "CREDITED $", "CHARGED $", "BALANCE $", "STATE");
  for (size_t i = 0; i < n; i++)
    {
      const char *state = !c[i].limited ? "unlimited" : c[i].stopped ? "stopped" : "active";
      if (o->json)
        json_array_append_new (arr, json_pack ("{s:s, s:f, s:f, s:f, s:s}", "project", c[i].project,
                                               "credited_usd", c[i].credited, "charged_usd",
                                               c[i].charged, "balance_usd",
                                               c[i].credited - c[i].charged, "state", state));
      else
        printf ("%-15s %14.8f %14.8f %14.8f %s\n", c[i].project, c[i].credited, c[i].charged,
                c[i].credited - c[i].charged, state);
    }
  finish_json (arr, o->json);
  free (c);
  return 0;
}

static int
cmd_events (const struct opts *o)
{
  struct ledger *l;
  if (open_existing (o, &l) < 0)
    return 1;
  struct event_line *ev;
  size_t n;
  struct error err = { 0 };
  int r = ledger_events (l, &ev, &n, &err);
  ledger_close (l);
  if (r < 0)
    return failed (&err);
  json_t *arr = json_array ();
  for (size_t i = 0; i < n; i++)
    {
      time_t t = (time_t) (ev[i].ts_ms / 1000);
      struct tm tm;
      char when[32];
      strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r (&t, &tm));
      if (o->json)
        json_array_append_new (arr, json_pack ("{s:s, s:s, s:s, s:s, s:s}", "time", when, "kind",
                                               ev[i].kind, "project", ev[i].project, "node",
                                               ev[i].node, "text", ev[i].text));
      else
        printf ("%s %-8s %-15s %-15s %s\n", when, ev[i].kind, ev[i].project[0] ? ev[i].project : "-",
                ev[i].node[0] ? ev[i].node : "-", ev[i].text);
    }
  finish_json (arr, o->json);
  free (ev);
  return 0;
}

int
main (int argc, char **argv)
{
  const char *cmd = argc > 1 && argv[1][0] != '-' ? argv[1] : "serve";
  int shift = argc > 1 && argv[1][0] != '-' ? 1 : 0;
  struct opts o;
  int r = parse_opts (argc - shift, argv + shift, &o);
  if (r != 0)
    return r == 1 ? 0 : 2;
  int rest = argc - shift - optind;
  char **restv = argv + shift + optind;
  if (strcmp (cmd, "credits") == 0)
    return cmd_credits (&o, rest, restv);
  if (rest > 0)
    {
      fprintf (stderr, "controld: %s: unexpected argument `%s`\n", cmd, restv[0]);
      return 2;
    }
  if (strcmp (cmd, "serve") == 0)
    return cmd_serve (&o);
  if (strcmp (cmd, "usage") == 0)
    return cmd_usage (&o);
  if (strcmp (cmd, "events") == 0)
    return cmd_events (&o);
  fprintf (stderr, "controld: unknown command `%s` (serve, usage, credits, events; see "
                   "`controld --help`)\n", cmd);
  return 2;
}
