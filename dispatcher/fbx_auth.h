/*
 * fbx_auth.h: setting up who may use an engine (issue 10). `fuseboxd
 * init` creates the data directory, the server's CURVE key pair and the
 * first admin principal with its key; the daemon checks at start that
 * nobody else can write its directories or read its secret keys.
 */
#ifndef FBX_AUTH_H
#define FBX_AUTH_H

#include <stddef.h>
#include <stdio.h>

#include "fbx_err.h"

/**
 * fbx_auth_init - initialise data_dir: create it (0700) if missing, and
 * <data_dir>/keys/ (0700) holding server.key (the engine's key pair,
 * 0600), server.pub (its public key, 0644, for clients) and admin.key
 * (principal "admin": operator, every role, every organisation, 0600);
 * the admin principal is written to the store and audited (actor
 * "init"). Each of specs ("name/kind/roles/orgs": kind operator,
 * automation or gateway; roles viewer,operator,approver,breaker,admin,
 * all or "-"; orgs "*" or ids separated by ',') adds a principal the
 * same way with <keys>/<name>.key. Prints what it made to out.
 * @return FBX_OK; FBX_ESTATE (already initialised: server.key exists);
 * FBX_EINVALID (a bad spec, why filled); FBX_EFORBIDDEN (data_dir is
 * unsafe, why filled); FBX_EIO; store errors. store_url: NULL for the
 * LMDB store in data_dir, or the PostgreSQL URL the daemon is given.
 */
int fbx_auth_init(const char *data_dir, const char *store_url,
    const char *const *specs, size_t n, FILE *out, char *why, size_t wl);

/**
 * fbx_auth_check_dir - refuse a directory others could tamper with: one
 * that is world-writable (sticky or not: in /tmp anyone can take a
 * socket's name first) or owned by another user than the caller or
 * root.
 * @return FBX_OK; FBX_ENOT_FOUND; FBX_EFORBIDDEN (why filled).
 */
int fbx_auth_check_dir(const char *path, char *why, size_t wl);

#endif
