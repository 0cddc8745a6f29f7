/*
 * keys.c: CurveZMQ key files (see fbx_keys.h). A key file is a few
 * "name = value" lines; a file that holds a secret key is created 0600
 * with O_EXCL and refused when group or others could read it, because a
 * copied secret key is a copied identity.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

#include "fbx_keys.h"

#define KEY_FILE_MAX 4096

static const char z85_chars[] =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    ".-:+=^!/*?&<>()[]{}@%$#";

static void
set_why(char *why, size_t wl, const char *fmt, const char *a, const char *b)
{
	if (why != NULL && wl > 0)
		snprintf(why, wl, fmt, a, b);
}

int
fbx_key_z85_valid(const char *s)
{
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= FBX_Z85_KEY_LEN || strchr(z85_chars, s[i]) == NULL)
			return 0;
	}
	return i == FBX_Z85_KEY_LEN;
}

int
fbx_key_generate(const char *name, struct fbx_key *out)
{
	struct fbx_key k;

	if (name == NULL || !fbx_id_valid(name) || out == NULL)
		return FBX_EINVALID;
	memset(&k, 0, sizeof(k));
	snprintf(k.name, sizeof(k.name), "%s", name);
	if (zmq_curve_keypair(k.public_z85, k.secret_z85) != 0)
		return FBX_ECRYPTO;
	*out = k;
	return FBX_OK;
}

int
fbx_key_write(const char *path, const struct fbx_key *k, int with_secret)
{
	char buf[512];
	int fd, n, rc = FBX_OK;

	if (path == NULL || k == NULL || !fbx_key_z85_valid(k->public_z85) ||
	    (with_secret && !fbx_key_z85_valid(k->secret_z85)) ||
	    (k->name[0] != '\0' && !fbx_id_valid(k->name)))
		return FBX_EINVALID;
	n = snprintf(buf, sizeof(buf),
	    "# fusebox CURVE key (Z85)%s\n"
	    "principal = %s\n"
	    "public-key = %s\n"
	    "%s%s%s",
	    with_secret ? ": SECRET, keep it mode 0600, never copy it" : "",
	    k->name, k->public_z85, with_secret ? "secret-key = " : "",
	    with_secret ? k->secret_z85 : "", with_secret ? "\n" : "");
	if (n < 0 || (size_t)n >= sizeof(buf))
		return FBX_EINVALID;
	/* a public key is no secret: others may read it to reach us */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == EEXIST ? FBX_EINVALID : FBX_EIO;
	if (fchmod(fd, with_secret ? 0600 : 0644) != 0 ||
	    write(fd, buf, (size_t)n) != n ||
	    fsync(fd) != 0)
		rc = FBX_EIO;
	if (close(fd) != 0)
		rc = FBX_EIO;
	if (rc != FBX_OK)
		unlink(path);
	return rc;
}

/* trim - strip blanks around s in place. @return s's first non-blank. */
static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' ||
	                    e[-1] == '\r'))
		*--e = '\0';
	return s;
}

int
fbx_key_read(const char *path, int need_secret, struct fbx_key *out,
    char *why, size_t wl)
{
	char buf[KEY_FILE_MAX + 1], *line, *save = NULL;
	struct fbx_key k;
	struct stat st;
	ssize_t got;
	size_t len = 0;
	int fd;

	if (path == NULL || out == NULL)
		return FBX_EINVALID;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		set_why(why, wl, "cannot open key file %s: %s", path,
		    strerror(errno));
		return errno == ENOENT ? FBX_ENOT_FOUND :
		    errno == EACCES    ? FBX_EFORBIDDEN :
					 FBX_EIO;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		set_why(why, wl, "key file %s: %s", path, "not a regular file");
		close(fd);
		return FBX_EMALFORMED;
	}
	while (len < KEY_FILE_MAX) {
		got = read(fd, buf + len, KEY_FILE_MAX - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			set_why(why, wl, "cannot read key file %s: %s", path,
			    strerror(errno));
			close(fd);
			return FBX_EIO;
		}
		if (got == 0)
			break;
		len += (size_t)got;
	}
	close(fd);
	buf[len] = '\0';
	memset(&k, 0, sizeof(k));
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char *eq, *name, *val;
		line = trim(line);
		if (line[0] == '#' || line[0] == '\0')
			continue;
		eq = strchr(line, '=');
		if (eq == NULL)
			goto malformed;
		*eq = '\0';
		name = trim(line);
		val = trim(eq + 1);
		if (strcmp(name, "principal") == 0) {
			if (val[0] != '\0' && !fbx_id_valid(val))
				goto malformed;
			snprintf(k.name, sizeof(k.name), "%s", val);
		} else if (strcmp(name, "public-key") == 0) {
			if (!fbx_key_z85_valid(val))
				goto malformed;
			memcpy(k.public_z85, val, FBX_Z85_KEY_LEN + 1);
		} else if (strcmp(name, "secret-key") == 0) {
			if (!fbx_key_z85_valid(val))
				goto malformed;
			memcpy(k.secret_z85, val, FBX_Z85_KEY_LEN + 1);
		}
	}
	if (k.public_z85[0] == '\0' ||
	    (need_secret && k.secret_z85[0] == '\0')) {
		set_why(why, wl, "key file %s: %s", path,
		    need_secret ? "no public-key and secret-key" :
				  "no public-key");
		return FBX_EMALFORMED;
	}
	if (k.secret_z85[0] != '\0') {
		/* a secret others can read is no longer a secret */
		if ((st.st_mode & 077) != 0) {
			set_why(why, wl,
			    "key file %s holds a secret key and is readable "
			    "or writable by group or others%s",
			    path, ": chmod 600 it (and consider it leaked)");
			return FBX_EFORBIDDEN;
		}
		if (st.st_uid != geteuid() && geteuid() != 0) {
			set_why(why, wl,
			    "key file %s holds a secret key and belongs to "
			    "another user%s",
			    path, "");
			return FBX_EFORBIDDEN;
		}
	}
	*out = k;
	return FBX_OK;
malformed:
	set_why(why, wl, "key file %s: %s", path, "not a fusebox key file");
	return FBX_EMALFORMED;
}

int
fbx_key_locate(const char *given, const char *envvar, const char *defname,
    char *out, size_t cap)
{
	const char *v = given, *home;
	int n;

	if (v == NULL || v[0] == '\0')
		v = envvar != NULL ? getenv(envvar) : NULL;
	if (v != NULL && v[0] != '\0') {
		n = snprintf(out, cap, "%s", v);
		return n < 0 || (size_t)n >= cap ? FBX_ETOOBIG : FBX_OK;
	}
	home = getenv("XDG_CONFIG_HOME");
	if (home != NULL && home[0] != '\0') {
		n = snprintf(out, cap, "%s/fusebox/%s", home, defname);
	} else {
		home = getenv("HOME");
		if (home == NULL || home[0] == '\0')
			return FBX_ENOT_FOUND;
		n = snprintf(out, cap, "%s/.config/fusebox/%s", home, defname);
	}
	return n < 0 || (size_t)n >= cap ? FBX_ETOOBIG : FBX_OK;
}
