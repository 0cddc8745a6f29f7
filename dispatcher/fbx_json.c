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

/* ---- fbx_json_canonical: a scanner for the compact form ------------- */

#define CANON_DEPTH 16 /* deeper text goes through jansson */
#define CANON_KEYS 32  /* so do objects with more members */

struct canon {
	const unsigned char *p;
	int depth;
};

/* canon_string - a string as jansson writes it: UTF-8, no control
 * character, escapes only for the quote and the backslash. Sets *start
 * and *len to its bytes between the quotes (escapes included). */
static int
canon_string(struct canon *c, const unsigned char **start, size_t *len)
{
	const unsigned char *p = c->p;

	if (*p++ != '"')
		return 0;
	*start = p;
	for (;;) {
		if (*p == '"')
			break;
		if (*p == '\\') {
			if (p[1] != '"' && p[1] != '\\')
				return 0;
			p += 2;
		} else if (*p < 0x20) {
			return 0; /* and the end of the text */
		} else if (*p < 0x80) {
			p++; /* ASCII: most of every string, no length scan */
		} else {
			size_t l = utf8_len(p, strnlen((const char *)p, 4));
			if (l == 0)
				return 0;
			p += l;
		}
	}
	*len = (size_t)(p - *start);
	c->p = p + 1;
	return 1;
}

/* canon_number - an integer as jansson writes it: no fraction or
 * exponent, no leading zero or "-0", within 18 digits. */
static int
canon_number(struct canon *c)
{
	const unsigned char *p = c->p;
	size_t n = 0;
	int neg = *p == '-';

	if (neg)
		p++;
	if (*p == '0') {
		if (neg) /* jansson writes -0 as 0 */
			return 0;
		p++;
		n = 1;
	} else {
		while (*p >= '0' && *p <= '9' && n <= 18) {
			p++;
			n++;
		}
	}
	if (n == 0 || n > 18 || (*p >= '0' && *p <= '9') || *p == '.' ||
	    *p == 'e' || *p == 'E')
		return 0;
	c->p = p;
	return 1;
}

static int canon_value(struct canon *c);

static int
canon_object(struct canon *c)
{
	const unsigned char *ks[CANON_KEYS];
	size_t kl[CANON_KEYS], n = 0;

	c->p++;
	if (*c->p == '}') {
		c->p++;
		return 1;
	}
	for (;;) {
		const unsigned char *k;
		size_t l;

		if (n == CANON_KEYS || !canon_string(c, &k, &l))
			return 0;
		/* a repeated key would be dropped by jansson */
		for (size_t i = 0; i < n; i++)
			if (kl[i] == l && memcmp(ks[i], k, l) == 0)
				return 0;
		ks[n] = k;
		kl[n++] = l;
		if (*c->p++ != ':' || !canon_value(c))
			return 0;
		if (*c->p == '}') {
			c->p++;
			return 1;
		}
		if (*c->p++ != ',')
			return 0;
	}
}

static int
canon_array(struct canon *c)
{
	c->p++;
	if (*c->p == ']') {
		c->p++;
		return 1;
	}
	for (;;) {
		if (!canon_value(c))
			return 0;
		if (*c->p == ']') {
			c->p++;
			return 1;
		}
		if (*c->p++ != ',')
			return 0;
	}
}

static int
canon_value(struct canon *c)
{
	const unsigned char *s;
	size_t l;
	int ok;

	switch (*c->p) {
	case '{':
	case '[':
		if (++c->depth > CANON_DEPTH)
			return 0;
		ok = *c->p == '{' ? canon_object(c) : canon_array(c);
		c->depth--;
		return ok;
	case '"':
		return canon_string(c, &s, &l);
	case 't':
		return strncmp((const char *)c->p, "true", 4) == 0 &&
		    (c->p += 4, 1);
	case 'f':
		return strncmp((const char *)c->p, "false", 5) == 0 &&
		    (c->p += 5, 1);
	case 'n':
		return strncmp((const char *)c->p, "null", 4) == 0 &&
		    (c->p += 4, 1);
	default:
		return canon_number(c);
	}
}

int
fbx_json_canonical(const char *text)
{
	struct canon c = { (const unsigned char *)text, 0 };

	if (text == NULL || text[0] != '{')
		return 0;
	return canon_value(&c) && *c.p == '\0';
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
