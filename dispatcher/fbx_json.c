/*
 * fbx_json.c: shared helpers for the JSON the project writes with
 * jansson (issue 12 item 6); see fbx_json.h.
 */
#include <stdlib.h>
#include <string.h>

#include "fbx_json.h"

/* utf8_len - the length of the valid UTF-8 sequence at p (at most n
 * bytes), 0 when it is not one */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
	size_t len;
	unsigned cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf) {
		len = 2;
		cp = p[0] & 0x1f;
	} else if (p[0] >= 0xe0 && p[0] <= 0xef) {
		len = 3;
		cp = p[0] & 0x0f;
	} else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
		len = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

json_t *
fbx_json_str(const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)p), k = 0;
	json_t *v = json_stringn((const char *)p, n);
	char *fix;

	if (v != NULL)
		return v;
	/* not UTF-8: each bad byte becomes U+FFFD (3 bytes) */
	fix = malloc(n * 3 + 1);
	if (fix == NULL)
		return NULL;
	for (size_t i = 0; i < n;) {
		size_t l = utf8_len(p + i, n - i);
		if (l == 0) {
			memcpy(fix + k, "\xef\xbf\xbd", 3);
			k += 3;
			i++;
		} else {
			memcpy(fix + k, p + i, l);
			k += l;
			i += l;
		}
	}
	v = json_stringn(fix, k);
	free(fix);
	return v;
}

int
fbx_json_set(json_t *o, const char *key, json_t *v)
{
	return json_object_set_new(o, key, v != NULL ? v : json_null());
}

int
fbx_json_set_str(json_t *o, const char *key, const char *s)
{
	return fbx_json_set(o, key, fbx_json_str(s));
}

int
fbx_json_set_int(json_t *o, const char *key, long long v)
{
	return fbx_json_set(o, key, json_integer((json_int_t)v));
}

int
fbx_json_set_bool(json_t *o, const char *key, int v)
{
	return fbx_json_set(o, key, json_boolean(v));
}

json_t *
fbx_json_params(const char *text)
{
	json_t *v;

	if (text == NULL || text[0] == '\0')
		return json_object();
	v = json_loads(text, JSON_DECODE_ANY, NULL);
	/* not JSON (an audit call site that formatted a quote or a
	 * backslash into it): kept as a string, so the line stays valid
	 * and the record is not lost */
	return v != NULL ? v : fbx_json_str(text);
}
