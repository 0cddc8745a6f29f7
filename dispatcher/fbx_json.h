/*
 * fbx_json.h: the few helpers every JSON writer of the project shares
 * (issue 12 item 6). JSON is built and written by jansson; these only
 * make engine text safe to put in it.
 */
#ifndef FBX_JSON_H
#define FBX_JSON_H

#include <stddef.h>

#include <jansson.h>

/* fbx_json_str - a JSON string of s (NULL = ""). Text that is not valid
 * UTF-8 (jansson refuses it) has each bad byte replaced by U+FFFD, so a
 * member is never dropped. NULL only when out of memory. */
json_t *fbx_json_str(const char *s);

/* fbx_json_set - o[key] = v, taking v (a NULL v sets null); 0 or -1. */
int fbx_json_set(json_t *o, const char *key, json_t *v);

/* fbx_json_set_str - o[key] = fbx_json_str(s); 0 or -1. */
int fbx_json_set_str(json_t *o, const char *key, const char *s);

/* fbx_json_set_int - o[key] = v as a JSON integer; 0 or -1. */
int fbx_json_set_int(json_t *o, const char *key, long long v);

/* fbx_json_set_bool - o[key] = true or false; 0 or -1. */
int fbx_json_set_bool(json_t *o, const char *key, int v);

/* fbx_json_params - JSON text (an audit record's parameters) as a JSON
 * value: "" is {}; text that does not parse is kept as a string, so
 * nothing is lost and the output stays valid. */
json_t *fbx_json_params(const char *text);

/* fbx_json_canonical - 1 when text is one JSON object written exactly as
 * jansson writes it (json_dumps with JSON_COMPACT | JSON_PRESERVE_ORDER):
 * no whitespace, integers only, strings of UTF-8 with no escape but \"
 * and \\, no repeated key, at most 16 levels deep. Then parsing and
 * writing it again would give the same bytes, and callers may keep it as
 * it is; 0 says only "not known to be": go through jansson. */
int fbx_json_canonical(const char *text);

#endif
