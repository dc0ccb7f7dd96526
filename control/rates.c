/* rates.yaml: the prices controld bills at, and the credit alert levels. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/yamldoc.h"
#include "ledger.h"

/* A non-negative decimal, at most max. */
static int
number (struct yaml_doc *y, const yaml_event_t *ev, const char *key, double max, double *out)
{
  const char *s = (const char *) ev->data.scalar.value;
  char *end;
  errno = 0;
  double v = ev->type == YAML_SCALAR_EVENT ? strtod (s, &end) : NAN;
  if (ev->type != YAML_SCALAR_EVENT || errno || end == s || *end || !(v >= 0 && v <= max))
    return yaml_doc_fail (y, ev, "%s: expected a number from 0 to %g", key, max);
  *out = v;
  return 0;
}

static int
threshold_item (struct yaml_doc *y, const yaml_event_t *ev, size_t n, void *ctx)
{
  struct rates *r = ctx;
  double pct = 0;
  if (number (y, ev, "alert_thresholds", 1000, &pct) < 0)
    return -1;
  if (n && pct / 100 <= r->thresholds[n - 1])
    return yaml_doc_fail (y, ev, "alert_thresholds: percents in increasing order");
  r->thresholds[n] = pct / 100;
  r->n_thresholds = (int) n + 1;
  return 0;
}

static int
thresholds (struct yaml_doc *y, struct rates *r)
{
  if (yaml_doc_expect (y, YAML_SEQUENCE_START_EVENT, "alert_thresholds",
                       "a list of percents, e.g. [50, 80, 100]") < 0)
    return -1;
  r->n_thresholds = 0;
  return yaml_doc_items (y, "alert_thresholds", "at most 8 percents",
                         sizeof r->thresholds / sizeof r->thresholds[0], threshold_item, r);
}

static int
on_key (struct yaml_doc *y, const char *key, const yaml_event_t *kev, void *ctx)
{
  struct rates *r = ctx;
  struct
  {
    const char *key;
    double *slot;
  } prices[] = {
    { "memory_gb_second", &r->memory_gb_second },
    { "vcpu_second", &r->vcpu_second },
    { "storage_gb_second", &r->storage_gb_second },
    { "egress_gb", &r->egress_gb },
  };
  for (size_t i = 0; i < sizeof prices / sizeof prices[0]; i++)
    if (strcmp (key, prices[i].key) == 0)
      {
        yaml_event_t ev;
        if (yaml_doc_next (y, &ev) < 0)
          return -1;
        int rc = number (y, &ev, key, 1000, prices[i].slot);
        yaml_event_delete (&ev);
        return rc;
      }
  if (strcmp (key, "alert_thresholds") == 0)
    return thresholds (y, r);
  return yaml_doc_fail (y, kev,
                        "unknown key `%s` (known: memory_gb_second, vcpu_second, "
                        "storage_gb_second, egress_gb, alert_thresholds)",
                        key);
}

int
rates_load (const char *path, struct rates *r, struct error *err)
{
  rates_default (r);
  return yaml_doc_load (path, false, 2, on_key, r, err);
}
