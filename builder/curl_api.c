#include "curl_api.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

static struct curl_api api;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[256];

#define LOAD(field, name)                                                      \
  if ((*(void **) &api.field = dlsym (h, name)) == NULL)                       \
    {                                                                          \
      snprintf (load_error, sizeof load_error, "libcurl.so.4 lacks %s", name); \
      return;                                                                  \
    }

static void
load (void)
{
  void *h = dlopen ("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
  if (h == NULL)
    {
      snprintf (load_error, sizeof load_error, "pulling images needs libcurl (libcurl4): %s", dlerror ());
      return;
    }
  LOAD (global_init, "curl_global_init");
  LOAD (easy_init, "curl_easy_init");
  LOAD (easy_setopt, "curl_easy_setopt");
  LOAD (easy_getinfo, "curl_easy_getinfo");
  LOAD (easy_perform, "curl_easy_perform");
  LOAD (easy_cleanup, "curl_easy_cleanup");
  LOAD (easy_strerror, "curl_easy_strerror");
  LOAD (multi_init, "curl_multi_init");
  LOAD (multi_add_handle, "curl_multi_add_handle");
  LOAD (multi_remove_handle, "curl_multi_remove_handle");
  LOAD (multi_perform, "curl_multi_perform");
  LOAD (multi_poll, "curl_multi_poll");
  LOAD (multi_info_read, "curl_multi_info_read");
  LOAD (multi_cleanup, "curl_multi_cleanup");
  LOAD (multi_setopt, "curl_multi_setopt");
  LOAD (slist_append, "curl_slist_append");
  LOAD (slist_free_all, "curl_slist_free_all");
  if (api.global_init (CURL_GLOBAL_DEFAULT) != CURLE_OK)
    {
      snprintf (load_error, sizeof load_error, "curl_global_init failed");
      return;
    }
  load_error[0] = '\0';
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
