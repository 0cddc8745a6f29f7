/*
 * crypto_fail_test.c: an OpenSSL failure is an error, never an empty
 * approval token or an all-zero audit hash (issue 8). The failure is
 * injected through the engine's test hook fbxi_test_crypto_fail.
 */
#include <stdio.h>
#include <string.h>

#include "engine_int.h"

static int passed, failed;

#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		if (cond) {                                                  \
			passed++;                                            \
		} else {                                                     \
			failed++;                                            \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__,        \
			    __LINE__, #cond);                                \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
		}                                                            \
	} while (0)

int
main(void)
{
	struct fbx_command c;
	char tok[FBX_ID_MAX + 1], tok2[FBX_ID_MAX + 1];
	uint8_t rec[200], h[32], h2[32], zero[32];
	int rc;

	memset(&c, 0, sizeof(c));
	snprintf(c.org, sizeof(c.org), "org-001");
	c.type = FBX_CMD_LOCK;
	c.origin = FBX_ORIGIN_OPERATOR;
	c.target_kind = FBX_TARGET_ORG;
	memset(zero, 0, sizeof(zero));
	for (size_t i = 0; i < sizeof(rec); i++)
		rec[i] = (uint8_t)i;

	/* the approval token */
	rc = fbxi_approval_token(&c, tok, sizeof(tok));
	CHECK(rc == FBX_OK && strlen(tok) == 32, "token rc %d '%s'", rc, tok);
	fbxi_test_crypto_fail = 1;
	strcpy(tok2, "untouched");
	rc = fbxi_approval_token(&c, tok2, sizeof(tok2));
	CHECK(rc == FBX_ECRYPTO, "token with a failing digest: rc %d", rc);
	CHECK(strcmp(tok2, "untouched") == 0, "token written on failure: '%s'",
	    tok2);
	CHECK(fbxi_test_crypto_fail == 0, "the hook was not consumed");
	rc = fbxi_approval_token(&c, tok2, sizeof(tok2));
	CHECK(rc == FBX_OK && strcmp(tok, tok2) == 0,
	    "token after the failure: rc %d '%s'", rc, tok2);

	/* the audit hash */
	rc = fbxi_audit_hash(7, rec, sizeof(rec), h);
	CHECK(rc == FBX_OK && memcmp(h, zero, 32) != 0, "hash rc %d", rc);
	fbxi_test_crypto_fail = 1;
	memset(h2, 0xab, sizeof(h2));
	rc = fbxi_audit_hash(7, rec, sizeof(rec), h2);
	CHECK(rc == FBX_ECRYPTO, "hash with a failing digest: rc %d", rc);
	CHECK(h2[0] == 0xab && h2[31] == 0xab, "hash written on failure");
	rc = fbxi_audit_hash(7, rec, sizeof(rec), h2);
	CHECK(rc == FBX_OK && memcmp(h, h2, 32) == 0, "hash after: rc %d", rc);
	rc = fbxi_audit_hash(7, rec, 10, h2);
	CHECK(rc == FBX_EINVALID, "short record: rc %d", rc);

	CHECK(strcmp(fbx_errname(FBX_ECRYPTO), "CRYPTO") == 0, "name %s",
	    fbx_errname(FBX_ECRYPTO));
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
