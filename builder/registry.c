#include "registry.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/cleanup.h"
#include "../common/clock.h"
#include "curl_api.h"

#define ACCEPT_MANIFESTS                                                      \
  "application/vnd.oci.image.index.v1+json, "                                 \
  "application/vnd.oci.image.manifest.v1+json, "                              \
  "application/vnd.docker.distribution.manifest.list.v2+json, "               \
  "application/vnd.docker.distribution.manifest.v2+json"

struct registry
{
  const struct curl_api *c;
  struct registry_ref ref;
  struct registry_opts opts;
  bool plain_http;
  char base[300];
  char *token;
  bool basic;
};

/* ---- references ----------------------------------------------------------- */

int
registry_ref_parse (const char *s, struct registry_ref *out, struct error *err)
{
  memset (out, 0, sizeof *out);
  const char *slash = strchr (s, '/');
  if (slash == NULL || slash == s)
    return error_setx (err, EINVAL, "image `%s`: give the registry too, e.g. 127.0.0.1:5000/%s", s, s);
  size_t hl = slash - s;
  if (hl >= sizeof out->host || memchr (s, '@', hl))
    return error_setx (err, EINVAL, "image `%s`: bad registry host", s);
  /* As Docker reads it: a host has a dot or a port, or is localhost. */
  if (!memchr (s, '.', hl) && !memchr (s, ':', hl) && !(hl == 9 && strncmp (s, "localhost", 9) == 0))
    return error_setx (err, EINVAL, "image `%s`: give the registry too, e.g. 127.0.0.1:5000/%s", s, s);
  memcpy (out->host, s, hl);
  const char *rest = slash + 1;
  const char *at = strchr (rest, '@');
  const char *colon = strrchr (rest, ':');
  size_t rl;
  if (at)
    {
      rl = at - rest;
      out->by_digest = true;
      snprintf (out->reference, sizeof out->reference, "%s", at + 1);
      if (strncmp (at + 1, "sha256:", 7) != 0 || strlen (at + 1) != 71
          || strspn (at + 8, "0123456789abcdef") != 64)
        return error_setx (err, EINVAL, "image `%s`: the digest must be sha256:<64 hex>", s);
    }
  else if (colon && !strchr (colon, '/'))
    {
      rl = colon - rest;
      snprintf (out->reference, sizeof out->reference, "%s", colon + 1);
    }
  else
    {
      rl = strlen (rest);
      strcpy (out->reference, "latest");
    }
  if (rl == 0 || rl >= sizeof out->repo || out->reference[0] == '\0')
    return error_setx (err, EINVAL, "image `%s`: empty repository or tag", s);
  memcpy (out->repo, rest, rl);
  if (strspn (out->repo, "abcdefghijklmnopqrstuvwxyz0123456789._-/") != rl)
    return error_setx (err, EINVAL, "image `%s`: repository names are lowercase [a-z0-9._-/]", s);
  if (!out->by_digest && strspn (out->reference, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
                             != strlen (out->reference))
    return error_setx (err, EINVAL, "image `%s`: bad tag `%s`", s, out->reference);
  return 0;
}

static bool
is_loopback (const char *host)
{
  char h[256];
  snprintf (h, sizeof h, "%s", host);
  char *p = h[0] == '[' ? strchr (h, ']') : strrchr (h, ':');
  if (p && h[0] == '[')
    p[1] = '\0';
  else if (p)
    *p = '\0';
  return strcmp (h, "127.0.0.1") == 0 || strcmp (h, "localhost") == 0 || strcmp (h, "[::1]") == 0;
}

/* ---- requests ------------------------------------------------------------- */

struct headers
{
  char www_authenticate[1024];
};

static size_t
header_cb (char *buf, size_t size, size_t n, void *arg)
{
  struct headers *h = arg;
  size_t len = size * n;
  if (len > 17 && strncasecmp (buf, "WWW-Authenticate:", 17) == 0)
    {
      size_t l = len - 17;
      if (l >= sizeof h->www_authenticate)
        l = sizeof h->www_authenticate - 1;
      memcpy (h->www_authenticate, buf + 17, l);
      h->www_authenticate[l] = '\0';
      h->www_authenticate[strcspn (h->www_authenticate, "\r\n")] = '\0';
    }
  return len;
}

static void
setup_handle (struct registry *r, CURL *h, const char *url, struct headers *hdr)
{
  const struct curl_api *c = r->c;
  const char *protocols = r->plain_http ? "http,https" : "https";
  c->easy_setopt (h, CURLOPT_URL, url);
  c->easy_setopt (h, CURLOPT_PROTOCOLS_STR, protocols);
  c->easy_setopt (h, CURLOPT_REDIR_PROTOCOLS_STR, protocols);
  c->easy_setopt (h, CURLOPT_FOLLOWLOCATION, 1L);
  c->easy_setopt (h, CURLOPT_MAXREDIRS, 5L);
  /* Credentials go to the registry host only, never where it redirects. */
  c->easy_setopt (h, CURLOPT_UNRESTRICTED_AUTH, 0L);
  c->easy_setopt (h, CURLOPT_NOSIGNAL, 1L);
  c->easy_setopt (h, CURLOPT_USERAGENT, "agentd/0.1");
  c->easy_setopt (h, CURLOPT_CONNECTTIMEOUT, r->opts.timeout_s);
  c->easy_setopt (h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  c->easy_setopt (h, CURLOPT_LOW_SPEED_TIME, r->opts.timeout_s);
  if (r->token)
    {
      c->easy_setopt (h, CURLOPT_HTTPAUTH, (long) CURLAUTH_BEARER);
      c->easy_setopt (h, CURLOPT_XOAUTH2_BEARER, r->token);
    }
  else if (r->basic)
    {
      c->easy_setopt (h, CURLOPT_HTTPAUTH, (long) CURLAUTH_BASIC);
      c->easy_setopt (h, CURLOPT_USERNAME, r->opts.username);
      c->easy_setopt (h, CURLOPT_PASSWORD, r->opts.password);
    }
  if (hdr)
    {
      c->easy_setopt (h, CURLOPT_HEADERFUNCTION, header_cb);
      c->easy_setopt (h, CURLOPT_HEADERDATA, hdr);
    }
}

struct membuf
{
  char *data;
  size_t len, max;
  bool too_big;
};

static size_t
mem_cb (char *buf, size_t size, size_t n, void *arg)
{
  struct membuf *m = arg;
  size_t len = size * n;
  if (m->len + len > m->max)
    {
      m->too_big = true;
      return 0;
    }
  char *p = realloc (m->data, m->len + len + 1);
  if (p == NULL)
    return 0;
  m->data = p;
  memcpy (m->data + m->len, buf, len);
  m->len += len;
  m->data[m->len] = '\0';
  return len;
}

static bool
transient (CURLcode rc, long code)
{
  return code >= 500 || code == 429 || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR
         || rc == CURLE_PARTIAL_FILE || rc == CURLE_GOT_NOTHING || rc == CURLE_HTTP2_STREAM;
}

static void
backoff (int attempt)
{
  /* 100 ms, 200 ms, 400 ms, ... with jitter, so retries do not march. */
  long ms = (100L << (attempt < 6 ? attempt : 6)) + rand () % 50;
  struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
  nanosleep (&ts, NULL);
}

/* key="value" out of a WWW-Authenticate challenge. */
static bool
challenge_param (const char *ch, const char *key, char *out, size_t cap)
{
  size_t kl = strlen (key);
  for (const char *p = ch; (p = strstr (p, key)) != NULL; p += kl)
    {
      if ((p != ch && p[-1] != ' ' && p[-1] != ',') || p[kl] != '=' || p[kl + 1] != '"')
        continue;
      const char *v = p + kl + 2, *end = strchr (v, '"');
      if (end == NULL || (size_t) (end - v) >= cap)
        return false;
      memcpy (out, v, end - v);
      out[end - v] = '\0';
      return true;
    }
  return false;
}

static int simple_get (struct registry *r, const char *url, const char *accept, size_t max,
                       struct membuf *body, long *code, struct headers *hdr, bool auth,
                       struct error *err);

/* Answer a 401: a Bearer challenge gets a token from its realm (with basic
 * credentials when we have them); a Basic challenge needs credentials. */
static int
authenticate (struct registry *r, const char *challenge, struct error *err)
{
  while (*challenge == ' ')
    challenge++;
  if (strncasecmp (challenge, "Basic", 5) == 0)
    {
      if (!r->opts.username)
        return error_setx (err, EACCES, "registry %s wants a username and password (--username, --password-file)",
                           r->ref.host);
      if (r->basic)
        return error_setx (err, EACCES, "registry %s refused the username and password", r->ref.host);
      r->basic = true;
      return 0;
    }
  char realm[512], service[256] = "", scope[512] = "";
  if (strncasecmp (challenge, "Bearer", 6) != 0 || !challenge_param (challenge, "realm", realm, sizeof realm))
    return error_setx (err, EACCES, "registry %s: unsupported authentication challenge `%.100s`", r->ref.host, challenge);
  if (r->token)
    return error_setx (err, EACCES, "registry %s refused our token for %s", r->ref.host, r->ref.repo);
  challenge_param (challenge, "service", service, sizeof service);
  challenge_param (challenge, "scope", scope, sizeof scope);
  if (scope[0] == '\0')
    snprintf (scope, sizeof scope, "repository:%s:pull", r->ref.repo);
  char url[2048];
  snprintf (url, sizeof url, "%s%sservice=%s&scope=%s", realm, strchr (realm, '?') ? "&" : "?", service, scope);
  if (strncmp (url, "https://", 8) != 0 && !(r->plain_http && strncmp (url, "http://", 7) == 0))
    return error_setx (err, EACCES, "registry %s: token realm `%s` is not https", r->ref.host, realm);
  struct membuf body = { .max = 1 << 20 };
  long code = 0;
  bool saved = r->basic;
  r->basic = r->opts.username != NULL;
  int rc = simple_get (r, url, NULL, body.max, &body, &code, NULL, true, err);
  r->basic = saved;
  if (rc < 0)
    {
      free (body.data);
      return error_prefix (err, "registry %s: token", r->ref.host);
    }
  json_t *j = code == 200 ? json_loadb (body.data ? body.data : "", body.len, 0, NULL) : NULL;
  const char *tok = json_string_value (json_object_get (j, "token"));
  if (tok == NULL)
    tok = json_string_value (json_object_get (j, "access_token"));
  if (tok)
    r->token = strdup (tok);
  json_decref (j);
  free (body.data);
  if (r->token == NULL)
    return error_setx (err, EACCES, "registry %s: the token server answered HTTP %ld without a token", r->ref.host, code);
  return 0;
}

/* One GET with retries on transient failures. With auth, a 401 is answered
 * once (token or basic) and the request repeated. */
static int
simple_get (struct registry *r, const char *url, const char *accept, size_t max, struct membuf *body,
            long *code, struct headers *hdr_out, bool auth, struct error *err)
{
  const struct curl_api *c = r->c;
  bool answered = false;
  for (int attempt = 0;; attempt++)
    {
      CURL *h = c->easy_init ();
      if (h == NULL)
        return error_set (err, ENOMEM, "curl");
      struct headers hdr = { "" };
      struct curl_slist *hl = NULL;
      char accept_hdr[512];
      if (accept)
        {
          snprintf (accept_hdr, sizeof accept_hdr, "Accept: %s", accept);
          hl = c->slist_append (NULL, accept_hdr);
          c->easy_setopt (h, CURLOPT_HTTPHEADER, hl);
        }
      setup_handle (r, h, url, &hdr);
      c->easy_setopt (h, CURLOPT_TIMEOUT, r->opts.timeout_s * 4);
      c->easy_setopt (h, CURLOPT_WRITEFUNCTION, mem_cb);
      c->easy_setopt (h, CURLOPT_WRITEDATA, body);
      free (body->data);
      body->data = NULL;
      body->len = 0;
      CURLcode rc = c->easy_perform (h);
      *code = 0;
      c->easy_getinfo (h, CURLINFO_RESPONSE_CODE, code);
      c->easy_cleanup (h);
      c->slist_free_all (hl);
      if (hdr_out)
        *hdr_out = hdr;
      if (body->too_big)
        return error_setx (err, EFBIG, "GET %s: larger than %zu bytes", url, max);
      if (rc == CURLE_OK && *code == 401 && auth && !answered && hdr.www_authenticate[0])
        {
          if (authenticate (r, hdr.www_authenticate, err) < 0)
            return -1;
          answered = true;
          attempt--;
          continue;
        }
      if (transient (rc, *code) && attempt + 1 < r->opts.max_tries)
        {
          backoff (attempt);
          continue;
        }
      if (rc != CURLE_OK)
        return error_setx (err, EIO, "GET %s: %s", url, c->easy_strerror (rc));
      return 0;
    }
}

int
registry_open (const struct registry_ref *ref, const struct registry_opts *opts, struct registry **out,
               struct error *err)
{
  const struct curl_api *c = curl_api_load (err);
  if (c == NULL)
    return -1;
  struct registry *r = calloc (1, sizeof *r);
  if (r == NULL)
    return error_set (err, ENOMEM, "registry");
  r->c = c;
  r->ref = *ref;
  r->opts = *opts;
  if (r->opts.timeout_s <= 0)
    r->opts.timeout_s = 30;
  if (r->opts.max_tries <= 0)
    r->opts.max_tries = 5;
  r->plain_http = opts->insecure || is_loopback (ref->host);
  snprintf (r->base, sizeof r->base, "%s://%s", r->plain_http ? "http" : "https", ref->host);
  *out = r;
  return 0;
}

void
registry_close (struct registry *r)
{
  if (r == NULL)
    return;
  free (r->token);
  free (r);
}

int
registry_get (struct registry *r, const char *kind, const char *ref, size_t max, char **body, size_t *len,
              struct error *err)
{
  char url[1024];
  snprintf (url, sizeof url, "%s/v2/%s/%s/%s", r->base, r->ref.repo, kind, ref);
  struct membuf b = { .max = max };
  long code = 0;
  if (simple_get (r, url, strcmp (kind, "manifests") == 0 ? ACCEPT_MANIFESTS : NULL, max, &b, &code, NULL,
                  true, err) < 0)
    {
      free (b.data);
      return error_prefix (err, "registry %s", r->ref.host);
    }
  if (code != 200)
    {
      char excerpt[160] = "";
      if (b.data)
        snprintf (excerpt, sizeof excerpt, ": %.150s", b.data);
      excerpt[strcspn (excerpt, "\r\n")] = '\0';
      free (b.data);
      if (code == 404)
        return error_setx (err, ENOENT, "registry %s: %s %s of %s not found (HTTP 404)%s", r->ref.host,
                           strcmp (kind, "blobs") == 0 ? "blob" : "manifest", ref, r->ref.repo, excerpt);
      if (code == 401 && r->basic)
        return error_setx (err, EACCES, "registry %s refused the username and password", r->ref.host);
      if (code == 401 || code == 403)
        return error_setx (err, EACCES, "registry %s: access to %s denied (HTTP %ld)", r->ref.host, r->ref.repo, code);
      return error_setx (err, EIO, "registry %s: GET %s answered HTTP %ld%s", r->ref.host, url, code, excerpt);
    }
  *body = b.data ? b.data : strdup ("");
  *len = b.len;
  return 0;
}

/* ---- parallel blob downloads ---------------------------------------------- */

struct fetch_ctx
{
  struct registry *r;
  struct blob_fetch *f;
  struct registry_progress *progress;
};

static size_t
blob_cb (char *buf, size_t size, size_t n, void *arg)
{
  struct fetch_ctx *x = arg;
  struct blob_fetch *f = x->f;
  size_t len = size * n, off = 0;
  if (f->skip > 0)
    {
      off = f->skip < len ? f->skip : len;
      f->skip -= off;
    }
  while (off < len)
    {
      /* A socket, not a pipe: a reader that gave up is EPIPE, not SIGPIPE. */
      ssize_t w = send (f->fd, buf + off, len - off, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        return 0;
      off += w;
      f->written += w;
      x->progress->bytes_done += w;
    }
  if (f->desc.size >= 0 && f->written > (uint64_t) f->desc.size)
    return 0; /* more than the descriptor says: stop now */
  return len;
}

/* The response's first bytes: a server that ignored our Range restarts at 0. */
static size_t
blob_header_cb (char *buf, size_t size, size_t n, void *arg)
{
  struct fetch_ctx *x = arg;
  size_t len = size * n;
  if (len > 9 && strncmp (buf, "HTTP/", 5) == 0)
    {
      const char *sp = strchr (buf, ' ');
      long code = sp ? strtol (sp + 1, NULL, 10) : 0;
      if (code == 200)
        x->f->skip = x->f->written;
    }
  return len;
}

static int
start_fetch (struct registry *r, CURLM *multi, struct fetch_ctx *x, struct error *err)
{
  struct blob_fetch *f = x->f;
  CURL *h = r->c->easy_init ();
  if (h == NULL)
    return error_set (err, ENOMEM, "curl");
  char url[1024], range[64], dstr[DIGEST_STR_MAX];
  snprintf (url, sizeof url, "%s/v2/%s/blobs/%s", r->base, r->ref.repo, digest_str (&f->desc.digest, dstr));
  setup_handle (r, h, url, NULL);
  r->c->easy_setopt (h, CURLOPT_FAILONERROR, 1L);
  r->c->easy_setopt (h, CURLOPT_WRITEFUNCTION, blob_cb);
  r->c->easy_setopt (h, CURLOPT_WRITEDATA, x);
  r->c->easy_setopt (h, CURLOPT_HEADERFUNCTION, blob_header_cb);
  r->c->easy_setopt (h, CURLOPT_HEADERDATA, x);
  r->c->easy_setopt (h, CURLOPT_PRIVATE, x);
  if (f->written > 0)
    {
      snprintf (range, sizeof range, "%llu-", (unsigned long long) f->written);
      r->c->easy_setopt (h, CURLOPT_RANGE, range);
    }
  f->handle = h;
  f->active = true;
  r->c->multi_add_handle (multi, h);
  return 0;
}

static void
finish_fetch (struct blob_fetch *f)
{
  if (f->fd >= 0)
    close (f->fd);
  f->fd = -1;
}

int
registry_fetch_blobs (struct registry *r, struct blob_fetch *f, size_t n, struct error *err)
{
  const struct curl_api *c = r->c;
  CURLM *multi = c->multi_init ();
  if (multi == NULL)
    return error_set (err, ENOMEM, "curl multi");
  struct fetch_ctx *xs = calloc (n ? n : 1, sizeof *xs);
  struct registry_progress progress = { .blobs_total = n };
  int ret = 0;
  for (size_t i = 0; i < n; i++)
    {
      xs[i] = (struct fetch_ctx) { r, &f[i], &progress };
      progress.bytes_total += f[i].desc.size > 0 ? f[i].desc.size : 0;
      if (start_fetch (r, multi, &xs[i], err) < 0)
        {
          ret = -1;
          break;
        }
    }
  double last_report = 0;
  size_t left = n;
  while (ret == 0 && left > 0)
    {
      int running = 0;
      c->multi_perform (multi, &running);
      CURLMsg *m;
      int q;
      while ((m = c->multi_info_read (multi, &q)) != NULL)
        {
          if (m->msg != CURLMSG_DONE)
            continue;
          struct fetch_ctx *x;
          c->easy_getinfo (m->easy_handle, CURLINFO_PRIVATE, (char **) &x);
          struct blob_fetch *bf = x->f;
          long code = 0;
          c->easy_getinfo (m->easy_handle, CURLINFO_RESPONSE_CODE, &code);
          CURLcode rc = m->data.result;
          c->multi_remove_handle (multi, m->easy_handle);
          c->easy_cleanup (m->easy_handle);
          bf->active = false;
          char dstr[DIGEST_STR_MAX];
          digest_str (&bf->desc.digest, dstr);
          if (rc == CURLE_OK && (bf->desc.size < 0 || bf->written == (uint64_t) bf->desc.size))
            {
              bf->done = true;
              progress.blobs_done++;
            }
          else if ((transient (rc, code) || (rc == CURLE_OK && bf->written < (uint64_t) bf->desc.size))
                   && ++bf->tries < r->opts.max_tries)
            {
              /* Resume where the bytes stopped, after a backoff with jitter. */
              bf->retry_at = monotonic_seconds () + (0.1 * (1 << bf->tries)) + (rand () % 50) / 1000.0;
              continue;
            }
          else
            {
              bf->failed = true;
              if (rc == CURLE_WRITE_ERROR && bf->written > (uint64_t) bf->desc.size)
                error_setx (&bf->err, EINVAL, "registry %s: blob %s is larger than its %lld bytes", r->ref.host,
                            dstr, (long long) bf->desc.size);
              else if (rc == CURLE_WRITE_ERROR)
                error_setx (&bf->err, EPIPE, "registry %s: blob %s: its unpacker stopped reading", r->ref.host, dstr);
              else if (code >= 400)
                error_setx (&bf->err, code == 404 ? ENOENT : EIO, "registry %s: blob %s: HTTP %ld", r->ref.host, dstr, code);
              else
                error_setx (&bf->err, EIO, "registry %s: blob %s after %d tries: %s (%llu of %lld bytes)",
                            r->ref.host, dstr, bf->tries, c->easy_strerror (rc), (unsigned long long) bf->written,
                            (long long) bf->desc.size);
              if (ret == 0)
                *err = bf->err;
              ret = -1;
            }
          finish_fetch (bf);
          left--;
        }
      double now = monotonic_seconds ();
      for (size_t i = 0; ret == 0 && i < n; i++)
        if (!f[i].active && !f[i].done && !f[i].failed && f[i].retry_at > 0 && now >= f[i].retry_at)
          {
            f[i].retry_at = 0;
            if (start_fetch (r, multi, &xs[i], err) < 0)
              ret = -1;
          }
      if (r->opts.progress && now - last_report > 0.25)
        {
          r->opts.progress (r->opts.progress_ctx, &progress);
          last_report = now;
        }
      if (left > 0 && ret == 0)
        c->multi_poll (multi, NULL, 0, 50, NULL);
    }
  if (r->opts.progress)
    r->opts.progress (r->opts.progress_ctx, &progress);
  for (size_t i = 0; i < n; i++)
    {
      if (f[i].active)
        {
          c->multi_remove_handle (multi, f[i].handle);
          c->easy_cleanup (f[i].handle);
          f[i].active = false;
        }
      finish_fetch (&f[i]);
    }
  c->multi_cleanup (multi);
  free (xs);
  return ret;
}
