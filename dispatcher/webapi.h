/*
 * webapi.h: the web console's JSON API (issue 12), served by http.c:
 * GET /api/whoami, GET /api/overview and POST /api/action. Every answer
 * is built from console requests sent to the engine as the session
 * token's principal (fbx_web.h), so the engine's own authorisation,
 * organisation scope and audit apply; JSON is written and read with
 * jansson. Internal to dispatcher/ (fuseboxd).
 */
#ifndef FBX_WEBAPI_H
#define FBX_WEBAPI_H

#include <stddef.h>

#include "fbx_web.h"
#include "metrics.h"

#define FBX_WEBAPI_BODY_MAX 4096 /* a POST body, bytes */
#define FBX_WEBAPI_TIMEOUT_MS 10000 /* the engine's answers, per call */
#define FBX_WEBAPI_ORGS_MAX 48 /* organisations one overview looks at */

/**
 * fbx_webapi_serve - answer one API request. path is the URL's path
 * ("/api/overview"); authorization the request's Authorization header
 * (NULL: none); body and len the POST body (at most
 * FBX_WEBAPI_BODY_MAX); snap the loop's latest metrics snapshot (NULL
 * when none yet: figures taken from it are left out). Any thread;
 * blocks while the engine answers.
 * @param[out] status the HTTP status.
 * @param[out] out a JSON document (malloc'd, NUL-terminated), always
 * written: an error is {"error": NAME, "message": TEXT}.
 */
void fbx_webapi_serve(fbx_webgate *g, const struct fbx_metrics *snap,
    const char *method, const char *path, const char *authorization,
    const char *body, size_t len, unsigned *status, char **out);

/**
 * fbx_webapi_allow - the methods an API path takes, as an Allow header
 * says them (a 405's), or NULL for a path the API does not have.
 */
const char *fbx_webapi_allow(const char *path);

/**
 * fbx_webapi_bearer - the token of an Authorization header of the
 * Bearer scheme (its name in any case, RFC 9110), or NULL.
 */
const char *fbx_webapi_bearer(const char *authorization);

#endif
