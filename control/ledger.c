#include "ledger.h"

#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

static const char SCHEMA[]
    = "CREATE TABLE IF NOT EXISTS nodes (node TEXT PRIMARY KEY, acked_seq INTEGER NOT NULL,"
      "  boot TEXT, updated_ms INTEGER);"
      /* (node, boot, seq): every record stored once. */
      "CREATE TABLE IF NOT EXISTS records (node TEXT, boot TEXT, seq INTEGER, ts_ms INTEGER,"
      "  samples INTEGER, PRIMARY KEY (node, boot, seq)) WITHOUT ROWID;"
      /* The last counters of each run (a version on a boot of a node). */
      "CREATE TABLE IF NOT EXISTS runs (node TEXT, boot TEXT, deployment TEXT, version INTEGER,"
      "  ts_ms INTEGER, cpu_us INTEGER, net_rx INTEGER, net_tx INTEGER, psi_cpu_us INTEGER,"
      "  psi_mem_us INTEGER, psi_io_us INTEGER,"
      "  PRIMARY KEY (node, boot, deployment, version)) WITHOUT ROWID;"
      /* Per-second usage: one row per workload per record; ms is the time
       * it covers (a second, more after a gap in sampling). */
      "CREATE TABLE IF NOT EXISTS usage (node TEXT, seq INTEGER, ts_ms INTEGER, project TEXT,"
      "  env TEXT, service TEXT, version INTEGER, ms INTEGER, cpu_us INTEGER,"
      "  mem_byte_s INTEGER, disk_byte_s INTEGER, net_rx INTEGER, net_tx INTEGER, cost REAL,"
      "  psi_cpu_us INTEGER, psi_mem_us INTEGER, psi_io_us INTEGER);"
      "CREATE INDEX IF NOT EXISTS usage_by_service ON usage (project, env, service, ts_ms);"
      "CREATE TABLE IF NOT EXISTS projects (project TEXT PRIMARY KEY,"
      "  credited REAL NOT NULL DEFAULT 0, charged REAL NOT NULL DEFAULT 0,"
      "  limited INTEGER NOT NULL DEFAULT 0, alerted INTEGER NOT NULL DEFAULT 0,"
      "  stopped INTEGER NOT NULL DEFAULT 0);"
      "CREATE TABLE IF NOT EXISTS events (ts_ms INTEGER, kind TEXT, project TEXT, node TEXT,"
      "  text TEXT);";

enum stmt
{
  S_ACKED,
  S_SET_ACKED,
  S_RECORD,
  S_RUN_GET,
  S_RUN_PUT,
  S_USAGE,
  S_PROJECT_ENSURE,
  S_CHARGE,
  S_PROJECT_GET,
  S_PROJECT_MARK,
  S_EVENT,
  S_COUNT
};

static const char *const SQL[S_COUNT] = {
  [S_ACKED] = "SELECT acked_seq FROM nodes WHERE node = ?1",
  [S_SET_ACKED] = "INSERT INTO nodes (node, acked_seq, boot, updated_ms) VALUES (?1, ?2, ?3, ?4)"
                  " ON CONFLICT (node) DO UPDATE SET acked_seq = ?2, boot = ?3, updated_ms = ?4",
  [S_RECORD] = "INSERT OR IGNORE INTO records VALUES (?1, ?2, ?3, ?4, ?5)",
  [S_RUN_GET] = "SELECT ts_ms, cpu_us, net_rx, net_tx, psi_cpu_us, psi_mem_us, psi_io_us FROM runs"
                " WHERE node = ?1 AND boot = ?2 AND deployment = ?3 AND version = ?4",
  [S_RUN_PUT] = "INSERT OR REPLACE INTO runs VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
  [S_USAGE] = "INSERT INTO usage VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,"
              " ?15, ?16, ?17)",
  [S_PROJECT_ENSURE] = "INSERT OR IGNORE INTO projects (project) VALUES (?1)",
  [S_CHARGE] = "UPDATE projects SET charged = charged + ?2 WHERE project = ?1",
  [S_PROJECT_GET] = "SELECT credited, charged, limited, alerted, stopped FROM projects"
                    " WHERE project = ?1",
  [S_PROJECT_MARK] = "UPDATE projects SET alerted = ?2, stopped = ?3 WHERE project = ?1",
  [S_EVENT] = "INSERT INTO events VALUES (?1, ?2, ?3, ?4, ?5)",
};

struct ledger
{
  sqlite3 *db;
  char path[512];
  sqlite3_stmt *st[S_COUNT];
};

void
rates_default (struct rates *r)
{
  *r = (struct rates){ .memory_gb_second = 0.00000386,
                       .vcpu_second = 0.00000772,
                       .storage_gb_second = 0.00000006,
                       .egress_gb = 0.05,
                       .thresholds = { 0.5, 0.8, 1.0 },
                       .n_thresholds = 3 };
}

static uint64_t
now_ms (void)
{
  struct timeval tv;
  gettimeofday (&tv, NULL);
  return (uint64_t) tv.tv_sec * 1000 + (uint64_t) tv.tv_usec / 1000;
}

static int
db_error (struct ledger *l, struct error *err, const char *what)
{
  return error_setx (err, EIO, "ledger `%s`: %s: %s", l->path, what, sqlite3_errmsg (l->db));
}

int
ledger_open (const char *path, bool readonly, struct ledger **out, struct error *err)
{
  struct ledger *l = calloc (1, sizeof *l);
  if (l == NULL)
    return error_set (err, ENOMEM, "ledger");
  snprintf (l->path, sizeof l->path, "%s", path);
  int flags = readonly ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  if (sqlite3_open_v2 (path, &l->db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
    {
      error_setx (err, ENOENT, "ledger `%s`: %s%s", path, sqlite3_errmsg (l->db),
                  readonly ? " (has controld run with this --db?)" : "");
      ledger_close (l);
      return -1;
    }
  sqlite3_busy_timeout (l->db, 5000);
  /* WAL and a full sync per commit: an acknowledged batch survives a
   * crash or a power cut. */
  if (sqlite3_exec (l->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL, NULL)
          != SQLITE_OK
      || sqlite3_exec (l->db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK)
    {
      db_error (l, err, "set up");
      ledger_close (l);
      return -1;
    }
  for (int i = 0; i < S_COUNT; i++)
    if (sqlite3_prepare_v2 (l->db, SQL[i], -1, &l->st[i], NULL) != SQLITE_OK)
      {
        db_error (l, err, "prepare");
        ledger_close (l);
        return -1;
      }
  *out = l;
  return 0;
}

void
ledger_close (struct ledger *l)
{
  if (l == NULL)
    return;
  for (int i = 0; i < S_COUNT; i++)
    sqlite3_finalize (l->st[i]);
  sqlite3_close (l->db);
  free (l);
}

/* Bind the arguments (a format of 't' text, 'i' integer, 'd' real) to a
 * prepared statement, reset first. */
static sqlite3_stmt *
bind (struct ledger *l, enum stmt s, const char *fmt, ...)
{
  sqlite3_stmt *st = l->st[s];
  sqlite3_reset (st);
  sqlite3_clear_bindings (st);
  va_list ap;
  va_start (ap, fmt);
  for (int i = 0; fmt[i]; i++)
    switch (fmt[i])
      {
      case 't':
        sqlite3_bind_text (st, i + 1, va_arg (ap, const char *), -1, SQLITE_TRANSIENT);
        break;
      case 'i':
        sqlite3_bind_int64 (st, i + 1, (sqlite3_int64) va_arg (ap, uint64_t));
        break;
      case 'd':
        sqlite3_bind_double (st, i + 1, va_arg (ap, double));
        break;
      }
  va_end (ap);
  return st;
}

static int
step_done (struct ledger *l, sqlite3_stmt *st, struct error *err)
{
  int r = sqlite3_step (st);
  sqlite3_reset (st);
  if (r != SQLITE_DONE && r != SQLITE_ROW)
    return db_error (l, err, sqlite3_sql (st));
  return 0;
}

int
ledger_acked (struct ledger *l, const char *node, uint64_t *acked, struct error *err)
{
  sqlite3_stmt *st = bind (l, S_ACKED, "t", node);
  int r = sqlite3_step (st);
  *acked = r == SQLITE_ROW ? (uint64_t) sqlite3_column_int64 (st, 0) : 0;
  sqlite3_reset (st);
  if (r != SQLITE_ROW && r != SQLITE_DONE)
    return db_error (l, err, "read the node's ack");
  return 0;
}

int
ledger_journal_reset (struct ledger *l, const char *node, uint64_t next_seq, uint64_t *acked,
                      struct error *err)
{
  char text[200];
  snprintf (text, sizeof text, "the node's journal starts again at record %llu (the ledger held "
                               "up to %llu): its sequence restarts there",
            (unsigned long long) next_seq, (unsigned long long) *acked);
  *acked = next_seq - 1;
  sqlite3_stmt *st = bind (l, S_SET_ACKED, "titi", node, *acked, "", now_ms ());
  if (step_done (l, st, err) < 0 || ledger_event (l, "reset", NULL, node, text, err) < 0)
    return -1;
  return 0;
}

int
ledger_event (struct ledger *l, const char *kind, const char *project, const char *node,
              const char *text, struct error *err)
{
  fprintf (stderr, "controld: %s%s%s: %s\n", kind, project ? " " : "", project ? project : "", text);
  return step_done (l, bind (l, S_EVENT, "itttt", now_ms (), kind, project, node, text), err);
}

/* "project.env.service" */
static bool
split_id (const char *id, char project[32], char env[32], char service[32])
{
  char tail;
  return sscanf (id, "%31[^.].%31[^.].%31[^.]%c", project, env, service, &tail) == 3;
}

/* What a batch costs each project: charged once per project per batch. */
struct touched
{
  struct
  {
    char name[32];
    double cost;
  } *projects;
  size_t n, cap;
};

static int
touch (struct touched *t, const char *project, double cost)
{
  size_t i = 0;
  while (i < t->n && strcmp (t->projects[i].name, project) != 0)
    i++;
  if (i == t->n)
    {
      if (t->n == t->cap)
        {
          size_t cap = t->cap ? t->cap * 2 : 8;
          void *g = realloc (t->projects, cap * sizeof *t->projects);
          if (g == NULL)
            return -1;
          t->projects = g;
          t->cap = cap;
        }
      snprintf (t->projects[t->n].name, sizeof t->projects[0].name, "%s", project);
      t->projects[t->n++].cost = 0;
    }
  t->projects[i].cost += cost;
  return 0;
}

/* One sample: its usage since the run's previous one (or since the run
 * began, when this is its first sample or its CPU counter went back: a
 * restart), priced, and its cost added to its project's for the batch.
 * A sample in the same millisecond as the one before (the last one, taken
 * as the workload exits) covers no time.
 * The other counters only count up within a run: one that reads lower
 * (a veth that vanished as the workload exited) bills nothing, and is
 * billed only once it passes its highest value again. */
static int
ingest_sample (struct ledger *l, const struct rates *rates, const char *node,
               const struct msg_usage_record *rec, const struct msg_usage_sample *s,
               struct touched *t, struct error *err)
{
  char project[32], env[32], service[32];
  if (s->id == NULL || !split_id (s->id, project, env, service))
    return 0; /* not a deployment's sample: nothing to bill to */
  const char *boot = rec->boot_id ? rec->boot_id : "";
  sqlite3_stmt *st = bind (l, S_RUN_GET, "ttti", node, boot, s->id, s->version);
  /* The counters that are differenced: CPU, network, pressure stalls. */
  uint64_t ms = 1000;
  uint64_t now[6] = { s->cpu_usec, s->net_rx, s->net_tx, s->psi_cpu_us, s->psi_memory_us, s->psi_io_us };
  uint64_t d[6], high[6]; /* the usage, and the counters the run keeps */
  memcpy (d, now, sizeof d);
  memcpy (high, now, sizeof high);
  if (sqlite3_step (st) == SQLITE_ROW && now[0] >= (uint64_t) sqlite3_column_int64 (st, 1))
    {
      uint64_t pts = (uint64_t) sqlite3_column_int64 (st, 0);
      ms = rec->ts_ms > pts ? rec->ts_ms - pts : 0;
      for (int i = 0; i < 6; i++)
        {
          uint64_t prev = (uint64_t) sqlite3_column_int64 (st, 1 + i);
          d[i] = now[i] > prev ? now[i] - prev : 0;
          high[i] = now[i] > prev ? now[i] : prev;
        }
    }
  sqlite3_reset (st);
  uint64_t cpu = d[0], rx = d[1], tx = d[2];
  uint64_t mem = (uint64_t) ((double) s->memory_current * ms / 1000.0);
  uint64_t disk = (uint64_t) ((double) s->disk_bytes * ms / 1000.0);
  double cost = cpu / 1e6 * rates->vcpu_second + mem / 1e9 * rates->memory_gb_second
                + disk / 1e9 * rates->storage_gb_second + tx / 1e9 * rates->egress_gb;
  if (step_done (l, bind (l, S_RUN_PUT, "tttiiiiiiii", node, boot, s->id, s->version, rec->ts_ms,
                          high[0], high[1], high[2], high[3], high[4], high[5]), err) < 0
      || step_done (l, bind (l, S_USAGE, "tiitttiiiiiiidiii", node, rec->seq, rec->ts_ms, project,
                             env, service, s->version, ms, cpu, mem, disk, rx, tx, cost, d[3], d[4],
                             d[5]), err) < 0)
    return -1;
  if (touch (t, project, cost) < 0)
    return error_set (err, ENOMEM, "ledger");
  return 0;
}

/* Credits: alerts at each threshold crossed, a stop at zero. */
static int
check_credits (struct ledger *l, const struct rates *rates, const char *node, const char *project,
               bool *stop, struct error *err)
{
  sqlite3_stmt *st = bind (l, S_PROJECT_GET, "t", project);
  *stop = false;
  if (sqlite3_step (st) != SQLITE_ROW)
    {
      sqlite3_reset (st);
      return 0;
    }
  double credited = sqlite3_column_double (st, 0), charged = sqlite3_column_double (st, 1);
  bool limited = sqlite3_column_int (st, 2) != 0;
  int alerted = sqlite3_column_int (st, 3);
  bool stopped = sqlite3_column_int (st, 4) != 0;
  sqlite3_reset (st);
  if (!limited)
    return 0; /* never given credits: not limited */
  double used = credited > 0 ? charged / credited : INFINITY;
  int level = alerted;
  while (level < rates->n_thresholds && used >= rates->thresholds[level])
    {
      char text[160];
      snprintf (text, sizeof text, "%.0f%% of the credits used ($%.6f of $%.6f)",
                rates->thresholds[level] * 100, charged, credited);
      if (ledger_event (l, "alert", project, node, text, err) < 0)
        return -1;
      level++;
    }
  if (!stopped && charged >= credited)
    {
      char text[160];
      snprintf (text, sizeof text, "credits exhausted ($%.6f of $%.6f): stopping its workloads",
                charged, credited);
      if (ledger_event (l, "stop", project, node, text, err) < 0)
        return -1;
      stopped = true;
    }
  if ((level != alerted || stopped) &&
      step_done (l, bind (l, S_PROJECT_MARK, "tii", project, (uint64_t) level, (uint64_t) stopped),
                 err) < 0)
    return -1;
  *stop = stopped;
  return 0;
}

static int
ingest (struct ledger *l, const struct rates *rates, const char *node,
        const struct msg_usage_batch *b, struct ingest_result *out, struct touched *t,
        struct error *err)
{
  uint64_t acked;
  if (ledger_acked (l, node, &acked, err) < 0)
    return -1;
  const char *boot = "";
  for (size_t i = 0; i < b->n_records; i++)
    {
      const struct msg_usage_record *rec = &b->records[i];
      if (rec->seq <= acked)
        {
          out->duplicates++;
          continue;
        }
      if (rec->seq != acked + 1)
        {
          /* A gap: only the node can say those records are gone. */
          if (b->lost_before == 0 || rec->seq > b->lost_before)
            break;
          char text[160];
          snprintf (text, sizeof text, "records %llu to %llu were dropped by the node's journal "
                                       "bound: their usage is lost",
                    (unsigned long long) acked + 1, (unsigned long long) rec->seq - 1);
          if (ledger_event (l, "lost", NULL, node, text, err) < 0)
            return -1;
        }
      boot = rec->boot_id ? rec->boot_id : "";
      if (step_done (l, bind (l, S_RECORD, "ttiii", node, boot, rec->seq, rec->ts_ms,
                              (uint64_t) rec->n_samples), err) < 0)
        return -1;
      for (size_t k = 0; k < rec->n_samples; k++)
        if (ingest_sample (l, rates, node, rec, &rec->samples[k], t, err) < 0)
          return -1;
      acked = rec->seq;
      out->stored++;
    }
  if (out->stored
      && step_done (l, bind (l, S_SET_ACKED, "titi", node, acked, boot, now_ms ()), err) < 0)
    return -1;
  out->acked = acked;
  size_t n_stop = 0;
  out->stop_projects = calloc (t->n + 1, sizeof (char *));
  if (out->stop_projects == NULL)
    return error_set (err, ENOMEM, "ledger");
  for (size_t i = 0; i < t->n; i++)
    {
      const char *project = t->projects[i].name;
      bool stop;
      if (step_done (l, bind (l, S_PROJECT_ENSURE, "t", project), err) < 0
          || step_done (l, bind (l, S_CHARGE, "td", project, t->projects[i].cost), err) < 0
          || check_credits (l, rates, node, project, &stop, err) < 0)
        return -1;
      if (stop && (out->stop_projects[n_stop] = strdup (project)) != NULL)
        n_stop++;
    }
  return 0;
}

int
ledger_ingest (struct ledger *l, const struct rates *rates, const char *node,
               const struct msg_usage_batch *b, struct ingest_result *out, struct error *err)
{
  memset (out, 0, sizeof *out);
  if (sqlite3_exec (l->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
    return db_error (l, err, "begin");
  struct touched t = { 0 };
  int r = ingest (l, rates, node, b, out, &t, err);
  free (t.projects);
  if (r == 0 && sqlite3_exec (l->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
    r = db_error (l, err, "commit");
  if (r < 0)
    {
      sqlite3_exec (l->db, "ROLLBACK", NULL, NULL, NULL);
      ingest_result_clear (out);
    }
  return r;
}

void
ingest_result_clear (struct ingest_result *r)
{
  for (char **p = r->stop_projects; p && *p; p++)
    free (*p);
  free (r->stop_projects);
  memset (r, 0, sizeof *r);
}

int
ledger_credits_add (struct ledger *l, const char *project, double amount, struct error *err)
{
  sqlite3_stmt *st;
  const char *sql = "INSERT INTO projects (project, credited, limited) VALUES (?1, ?2, 1)"
                    " ON CONFLICT (project) DO UPDATE SET credited = credited + ?2, limited = 1,"
                    " stopped = CASE WHEN charged < credited + ?2 THEN 0 ELSE stopped END,"
                    " alerted = 0";
  if (sqlite3_prepare_v2 (l->db, sql, -1, &st, NULL) != SQLITE_OK)
    return db_error (l, err, "credits");
  sqlite3_bind_text (st, 1, project, -1, SQLITE_TRANSIENT);
  sqlite3_bind_double (st, 2, amount);
  int r = sqlite3_step (st);
  sqlite3_finalize (st);
  if (r != SQLITE_DONE)
    return db_error (l, err, "credits");
  char text[96];
  snprintf (text, sizeof text, "$%.6f added", amount);
  return ledger_event (l, "credits", project, NULL, text, err);
}

/* Step a prepared query to its end, one array element a row (filled by
 * row, zeroed first); the statement is finalized. */
static int
collect_rows (struct ledger *l, sqlite3_stmt *st, size_t elem,
              void (*row) (sqlite3_stmt *st, void *item), void **out, size_t *n, const char *what,
              struct error *err)
{
  size_t cap = 16;
  char *items = malloc (cap * elem);
  int r = SQLITE_NOMEM;
  *n = 0;
  while (items && (r = sqlite3_step (st)) == SQLITE_ROW)
    {
      if (*n == cap)
        {
          char *g = realloc (items, (cap *= 2) * elem);
          if (g == NULL)
            {
              r = SQLITE_NOMEM;
              break;
            }
          items = g;
        }
      memset (items + *n * elem, 0, elem);
      row (st, items + (*n)++ * elem);
    }
  if (r != SQLITE_DONE)
    {
      db_error (l, err, what);
      free (items);
      items = NULL;
    }
  sqlite3_finalize (st);
  *out = items;
  return items ? 0 : -1;
}

static void
text_col (sqlite3_stmt *st, int col, char *out, size_t cap)
{
  const char *t = (const char *) sqlite3_column_text (st, col);
  snprintf (out, cap, "%s", t ? t : "");
}

static void
usage_row (sqlite3_stmt *st, void *item)
{
  struct usage_line *u = item;
  text_col (st, 0, u->project, sizeof u->project);
  text_col (st, 1, u->env, sizeof u->env);
  text_col (st, 2, u->service, sizeof u->service);
  u->bucket = (uint64_t) sqlite3_column_int64 (st, 3);
  u->seconds = ((uint64_t) sqlite3_column_int64 (st, 4) + 500) / 1000;
  uint64_t *f[] = { &u->cpu_us, &u->memory_byte_s, &u->disk_byte_s, &u->net_rx, &u->net_tx };
  for (int k = 0; k < 5; k++)
    *f[k] = (uint64_t) sqlite3_column_int64 (st, 5 + k);
  u->cost = sqlite3_column_double (st, 10);
  for (int k = 0; k < 3; k++)
    u->psi_us[k] = (uint64_t) sqlite3_column_int64 (st, 11 + k);
}

int
ledger_usage (struct ledger *l, const struct usage_query *q, struct usage_line **out, size_t *n,
              struct error *err)
{
  const char *sql
      = "SELECT project, env, service, CASE WHEN ?5 > 0 THEN ts_ms / 1000 / ?5 * ?5 ELSE 0 END"
        " AS bucket, SUM(ms), SUM(cpu_us), SUM(mem_byte_s), SUM(disk_byte_s), SUM(net_rx),"
        " SUM(net_tx), SUM(cost), SUM(psi_cpu_us), SUM(psi_mem_us), SUM(psi_io_us) FROM usage"
        " WHERE (?1 IS NULL OR project = ?1) AND (?2 IS NULL OR env = ?2)"
        " AND (?3 IS NULL OR service = ?3) AND ts_ms >= ?4"
        " GROUP BY project, env, service, bucket ORDER BY project, env, service, bucket";
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2 (l->db, sql, -1, &st, NULL) != SQLITE_OK)
    return db_error (l, err, "usage query");
  const char *filters[] = { q->project, q->env, q->service };
  for (int i = 0; i < 3; i++)
    if (filters[i])
      sqlite3_bind_text (st, i + 1, filters[i], -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64 (st, 4, (sqlite3_int64) q->since_ms);
  sqlite3_bind_int64 (st, 5, (sqlite3_int64) q->bucket_s);
  return collect_rows (l, st, sizeof **out, usage_row, (void **) out, n, "usage query", err);
}

static void
credit_row (sqlite3_stmt *st, void *item)
{
  struct credit_line *c = item;
  text_col (st, 0, c->project, sizeof c->project);
  c->credited = sqlite3_column_double (st, 1);
  c->charged = sqlite3_column_double (st, 2);
  c->limited = sqlite3_column_int (st, 3) != 0;
  c->stopped = sqlite3_column_int (st, 4) != 0;
}

int
ledger_credits (struct ledger *l, struct credit_line **out, size_t *n, struct error *err)
{
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2 (l->db,
                          "SELECT project, credited, charged, limited, stopped FROM projects"
                          " ORDER BY project",
                          -1, &st, NULL) != SQLITE_OK)
    return db_error (l, err, "credits query");
  return collect_rows (l, st, sizeof **out, credit_row, (void **) out, n, "credits query", err);
}

static void
event_row (sqlite3_stmt *st, void *item)
{
  struct event_line *e = item;
  e->ts_ms = (uint64_t) sqlite3_column_int64 (st, 0);
  text_col (st, 1, e->kind, sizeof e->kind);
  text_col (st, 2, e->project, sizeof e->project);
  text_col (st, 3, e->node, sizeof e->node);
  text_col (st, 4, e->text, sizeof e->text);
}

int
ledger_events (struct ledger *l, struct event_line **out, size_t *n, struct error *err)
{
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2 (l->db, "SELECT ts_ms, kind, project, node, text FROM events ORDER BY rowid",
                          -1, &st, NULL) != SQLITE_OK)
    return db_error (l, err, "events query");
  return collect_rows (l, st, sizeof **out, event_row, (void **) out, n, "events query", err);
}

int
ledger_stopped_projects (struct ledger *l, char ***out, struct error *err)
{
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2 (l->db, "SELECT project FROM projects WHERE stopped AND limited"
                                 " ORDER BY project", -1, &st, NULL) != SQLITE_OK)
    return db_error (l, err, "stopped projects");
  size_t n = 0, cap = 8;
  char **v = calloc (cap + 1, sizeof *v);
  while (v && sqlite3_step (st) == SQLITE_ROW)
    {
      if (n == cap)
        {
          char **g = realloc (v, ((cap *= 2) + 1) * sizeof *g);
          if (g == NULL)
            break;
          v = g;
        }
      if ((v[n] = strdup ((const char *) sqlite3_column_text (st, 0))) != NULL)
        v[++n] = NULL;
    }
  sqlite3_finalize (st);
  if (v == NULL)
    return error_set (err, ENOMEM, "stopped projects");
  *out = v;
  return 0;
}
