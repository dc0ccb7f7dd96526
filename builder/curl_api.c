#include "curl_api.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "../common/dlib.h"

static struct curl_api api;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[256];

#define SYM(field, name) { name, (void **) &api.field }

static void
load (void)
{
  const struct dl_symbol syms[] = {
    SYM (global_init, "curl_global_init"),
    SYM (easy_init, "curl_easy_init"),
    SYM (easy_setopt, "curl_easy_setopt"),
    SYM (easy_getinfo, "curl_easy_getinfo"),
    SYM (easy_perform, "curl_easy_perform"),
    SYM (easy_cleanup, "curl_easy_cleanup"),
    SYM (easy_strerror, "curl_easy_strerror"),
    SYM (multi_init, "curl_multi_init"),
    SYM (multi_add_handle, "curl_multi_add_handle"),
    SYM (multi_remove_handle, "curl_multi_remove_handle"),
    SYM (multi_perform, "curl_multi_perform"),
    SYM (multi_poll, "curl_multi_poll"),
    SYM (multi_info_read, "curl_multi_info_read"),
    SYM (multi_cleanup, "curl_multi_cleanup"),
    SYM (multi_setopt, "curl_multi_setopt"),
    SYM (slist_append, "curl_slist_append"),
    SYM (slist_free_all, "curl_slist_free_all"),
  };
  if (dl_load ("libcurl.so.4", "libcurl4", syms, sizeof syms / sizeof syms[0], load_error,
               sizeof load_error) < 0)
    return;
  if (api.global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK)
    snprintf (load_error, sizeof load_error, "curl_global_init failed");
}

const struct curl_api *
curl_api_load (struct error *err)
{
  pthread_once (&once, load);
  if (load_error[0] || api.easy_init == NULL)
    {
      error_setx (err, ENOTSUP, "%s", load_error[0] ? load_error : "libcurl did not load");
      return NULL;
    }
  return &api;
}
