/* GET /metrics on a 127.0.0.1 port: per-workload state and usage in the
 * Prometheus text format, for people and their dashboards. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "daemon.h"

static void
metric (FILE *f, const char *name, const struct deployment *dep, double v)
{
  fprintf (f, "%s{project=\"%s\",env=\"%s\",service=\"%s\"} %.6g\n", name, dep->project, dep->env,
           dep->service, v);
}

static char *
render (struct daemon *d, size_t *len)
{
  char *buf = NULL;
  FILE *f = open_memstream (&buf, len);
  if (f == NULL)
    return NULL;
  uint64_t n = 0, running = 0;
  for (struct deployment *dep = d->deployments; dep; dep = dep->link)
    {
      n++;
      running += dep->current && dep->current->state == INST_RUNNING;
    }
  fprintf (f, "# HELP agentd_deployments Deployments agentd manages.\n"
              "# TYPE agentd_deployments gauge\nagentd_deployments %llu\n"
              "# HELP agentd_running Deployments whose current version runs.\n"
              "# TYPE agentd_running gauge\nagentd_running %llu\n",
           (unsigned long long) n, (unsigned long long) running);
  fputs ("# TYPE agentd_workload_up gauge\n"
         "# TYPE agentd_workload_restarts_total counter\n"
         "# TYPE agentd_workload_cpu_seconds_total counter\n"
         "# TYPE agentd_workload_memory_bytes gauge\n"
         "# TYPE agentd_workload_memory_peak_bytes gauge\n"
         "# TYPE agentd_workload_pids gauge\n",
         f);
  for (struct deployment *dep = d->deployments; dep; dep = dep->link)
    {
      struct instance *in = dep->current;
      bool up = in && in->state == INST_RUNNING;
      metric (f, "agentd_workload_up", dep, up);
      metric (f, "agentd_workload_restarts_total", dep, (double) dep->restarts);
      struct rt_usage u;
      struct error ignored;
      if (up && in->c && rt_usage (in->c, &u, &ignored) == 0)
        {
          metric (f, "agentd_workload_cpu_seconds_total", dep, u.cpu_usec / 1e6);
          metric (f, "agentd_workload_memory_bytes", dep, (double) u.memory_current);
          metric (f, "agentd_workload_memory_peak_bytes", dep, (double) u.memory_peak);
          metric (f, "agentd_workload_pids", dep, (double) u.pids_current);
        }
    }
  if (d->journal)
    fprintf (f, "# HELP agentd_journal_records The last usage record's sequence number.\n"
                "# TYPE agentd_journal_records counter\nagentd_journal_records %llu\n",
             (unsigned long long) journal_next_seq (d->journal) - 1);
  if (d->uplink)
    {
      struct uplink_stats st;
      uplink_stats (d->uplink, &st);
      fprintf (f,
               "# HELP agentd_uplink_connected Whether the control plane is connected.\n"
               "# TYPE agentd_uplink_connected gauge\nagentd_uplink_connected %d\n"
               "# HELP agentd_uplink_acked_seq The highest journal record the control plane holds.\n"
               "# TYPE agentd_uplink_acked_seq gauge\nagentd_uplink_acked_seq %llu\n"
               "# HELP agentd_uplink_ack_delay_seconds From a sample to the control plane's durable ack, over the last minute.\n"
               "# TYPE agentd_uplink_ack_delay_seconds summary\n"
               "agentd_uplink_ack_delay_seconds{quantile=\"0.5\"} %.6f\n"
               "agentd_uplink_ack_delay_seconds{quantile=\"0.99\"} %.6f\n"
               "agentd_uplink_ack_delay_seconds{quantile=\"1\"} %.6f\n"
               "agentd_uplink_ack_delay_seconds_count %llu\n",
               st.connected, (unsigned long long) st.acked_seq, st.delay_p50_s, st.delay_p99_s,
               st.delay_max_s, (unsigned long long) st.acks);
    }
  fclose (f);
  return buf;
}

static void
respond (int fd, const char *status, const char *body, size_t len)
{
  char head[256];
  int n = snprintf (head, sizeof head,
                    "HTTP/1.1 %s\r\nContent-Type: text/plain; version=0.0.4\r\n"
                    "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                    status, len);
  if (write (fd, head, (size_t) n) == n)
    for (size_t off = 0; off < len;)
      {
        ssize_t w = write (fd, body + off, len - off);
        if (w <= 0)
          break;
        off += (size_t) w;
      }
}

void
metrics_accept (struct loop_handler *h, uint32_t events)
{
  (void) events;
  struct daemon *d = container_of (h, struct daemon, metrics_h);
  int fd = accept4 (d->metrics_fd, NULL, NULL, SOCK_CLOEXEC);
  if (fd < 0)
    return;
  /* One short request, answered at once; a slow client waits at most 1 s. */
  struct timeval tv = { 1, 0 };
  setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt (fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  char req[2048];
  ssize_t n = recv (fd, req, sizeof req - 1, 0);
  if (n <= 0)
    {
      close (fd);
      return;
    }
  req[n] = '\0';
  if (strncmp (req, "GET /metrics ", 13) == 0 || strncmp (req, "GET /metrics?", 13) == 0)
    {
      size_t len = 0;
      char *body = render (d, &len);
      if (body)
        respond (fd, "200 OK", body, len);
      else
        respond (fd, "500 Internal Server Error", "out of memory\n", 14);
      free (body);
    }
  else
    respond (fd, "404 Not Found", "only GET /metrics is served here\n", 33);
  close (fd);
}
