/*
 * fbx_keys.h: CurveZMQ key files. Every party of fusebox (the daemon, each
 * operator, automation and gateway) is a principal with a key pair; its
 * name travels in the key file so a client knows whom it speaks for. Key
 * files are small text files: a secret one must be mode 0600 (nobody but
 * its owner may read it) or it is refused. No ZeroMQ type appears here.
 */
#ifndef FBX_KEYS_H
#define FBX_KEYS_H

#include <stddef.h>

#include "fbx_err.h"
#include "fbx_types.h"

#define FBX_Z85_KEY_LEN 40 /* a 32-byte key in Z85 */

struct fbx_key {
	char name[FBX_ID_MAX + 1];              /* principal; "" unknown */
	char public_z85[FBX_Z85_KEY_LEN + 1];
	char secret_z85[FBX_Z85_KEY_LEN + 1];   /* "" in a public file */
};

/**
 * fbx_key_generate - a fresh CURVE key pair for principal name.
 * @param[in] name the principal (an identifier); copied.
 * @param[out] out written only on success.
 * @return FBX_OK; FBX_EINVALID (bad name); FBX_ECRYPTO (libzmq has no
 * CURVE support or no randomness).
 */
int fbx_key_generate(const char *name, struct fbx_key *out);

/**
 * fbx_key_write - create path (it must not exist) holding the name, the
 * public key and, if with_secret, the secret key: mode 0600 with the
 * secret, 0644 without.
 * @return FBX_OK; FBX_EINVALID (path exists, or a key is not Z85);
 * FBX_EIO (cannot create or write; nothing is left half written).
 */
int fbx_key_write(const char *path, const struct fbx_key *k, int with_secret);

/**
 * fbx_key_read - read a key file. A file holding a secret key must not be
 * readable or writable by group or others, and must belong to the
 * calling user (or root).
 * @param[out] out written only on success.
 * @param[out] why one line on failure (may be NULL).
 * @return FBX_OK; FBX_ENOT_FOUND (no such file); FBX_EFORBIDDEN
 * (permissions too open, or another user's file); FBX_EMALFORMED (not a
 * key file, or need_secret and no secret key); FBX_EIO.
 */
int fbx_key_read(const char *path, int need_secret, struct fbx_key *out,
    char *why, size_t wl);

/**
 * fbx_key_locate - which key file to use: given if set, else the
 * environment variable envvar if set and non-empty, else
 * $XDG_CONFIG_HOME/fusebox/defname (default ~/.config/fusebox/defname).
 * @return FBX_OK and out; FBX_ETOOBIG (path over cap); FBX_ENOT_FOUND
 * (no HOME to build the default from).
 */
int fbx_key_locate(const char *given, const char *envvar, const char *defname,
    char *out, size_t cap);

/** fbx_key_z85_valid - 1 if s is a 40-character Z85 key, else 0. */
int fbx_key_z85_valid(const char *s);

#endif
