/*
 * err.c: messages and names for the fbx_err table. Both are generated from
 * the same X-macro so a code can never lack a message.
 */
#include "fbx_err.h"

const char *
fbx_strerror(int err)
{
	switch (err) {
#define FBX_ERR_MSG_(v, n, m)                                                \
	case v:                                                              \
		return m;
		FBX_ERRORS(FBX_ERR_MSG_)
#undef FBX_ERR_MSG_
	}
	return "unknown error";
}

const char *
fbx_errname(int err)
{
	switch (err) {
#define FBX_ERR_NAME_(v, n, m)                                               \
	case v:                                                              \
		return #n;
		FBX_ERRORS(FBX_ERR_NAME_)
#undef FBX_ERR_NAME_
	}
	return "UNKNOWN";
}
