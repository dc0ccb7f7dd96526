/* The part of libcurl the registry client uses, loaded with dlopen on the
 * first pull: agentd is linked statically (start time), and Debian's
 * libcurl exists only as a shared library with a long tail of shared
 * dependencies. */
#ifndef BUILDER_CURL_API_H
#define BUILDER_CURL_API_H

#include <curl/curl.h>

#include "../common/error.h"

struct curl_api
{
  CURLcode (*global_init) (long);
  CURL *(*easy_init) (void);
  CURLcode (*easy_setopt) (CURL *, CURLoption, ...);
  CURLcode (*easy_getinfo) (CURL *, CURLINFO, ...);
  CURLcode (*easy_perform) (CURL *);
  void (*easy_cleanup) (CURL *);
  const char *(*easy_strerror) (CURLcode);
  CURLM *(*multi_init) (void);
  CURLMcode (*multi_add_handle) (CURLM *, CURL *);
  CURLMcode (*multi_remove_handle) (CURLM *, CURL *);
  CURLMcode (*multi_perform) (CURLM *, int *);
  CURLMcode (*multi_poll) (CURLM *, struct curl_waitfd[], unsigned, int, int *);
  CURLMsg *(*multi_info_read) (CURLM *, int *);
  CURLMcode (*multi_cleanup) (CURLM *);
  CURLMcode (*multi_setopt) (CURLM *, CURLMoption, ...);
  struct curl_slist *(*slist_append) (struct curl_slist *, const char *);
  void (*slist_free_all) (struct curl_slist *);
};

/* Loaded once per process; NULL with err set when libcurl is missing. */
const struct curl_api *curl_api_load (struct error *err);

#endif
