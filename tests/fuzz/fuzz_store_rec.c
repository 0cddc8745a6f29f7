/*
 * fuzz_store_rec.c: libFuzzer target for the record decoders of
 * storage/ (delivery: store_dlv.c; device and org: store_dev.c; command
 * header and body: store_cmd.c). They are static, so this file includes
 * store.c and those files whole: the decoders run exactly as compiled
 * for the store, with no LMDB environment needed.
 * The first input byte picks the record; a record that decodes must
 * re-encode, and re-encoding must be a fixed point (for the command body
 * and the org record, which have one encoding, it must give back the
 * input itself). This is what a damaged data.mdb can feed the engine.
 */
#include "store.c"
#include "store_audit.c"
#include "store_cmd.c"
#include "store_dev.c"
#include "store_dlv.c"

#include "fuzz.h"

static void
fuzz_dlv(const uint8_t *p, size_t n)
{
	struct fbx_delivery a, b;
	uint8_t e1[DLV_REC_MAX], e2[DLV_REC_MAX];
	size_t l1, l2;
	MDB_val v = { n, (void *)p };

	memset(&a, 0, sizeof(a));
	if (dlv_decode(42, &v, &a) != FBX_OK)
		return;
	FUZZ_CHECK(a.id == 42 && a.nhist <= FBX_HIST_MAX);
	FUZZ_CHECK(dlv_encode(&a, 0, e1, sizeof(e1), &l1) == FBX_OK);
	v.mv_size = l1;
	v.mv_data = e1;
	memset(&b, 0, sizeof(b));
	FUZZ_CHECK(dlv_decode(42, &v, &b) == FBX_OK);
	FUZZ_CHECK(dlv_encode(&b, 0, e2, sizeof(e2), &l2) == FBX_OK);
	FUZZ_CHECK(fuzz_same(e1, l1, e2, l2));
	/* Padding must not change the record. */
	FUZZ_CHECK(dlv_encode(&b, l2 + DLV_PAD, e2, sizeof(e2), &l2) ==
	    FBX_OK);
	v.mv_size = l2;
	v.mv_data = e2;
	memset(&b, 0, sizeof(b));
	FUZZ_CHECK(dlv_decode(42, &v, &b) == FBX_OK);
	FUZZ_CHECK(b.state == a.state && b.nhist == a.nhist &&
	    b.updated_ms == a.updated_ms && strcmp(b.device, a.device) == 0);
}

static void
fuzz_dev(const uint8_t *p, size_t n)
{
	struct fbx_device a, b;
	uint8_t e1[DEV_REC_MAX], e2[DEV_REC_MAX];
	size_t klen, l1, l2;
	MDB_val k, v;

	if (n < 1)
		return;
	klen = p[0];
	if (klen > n - 1)
		return;
	k.mv_size = klen;
	k.mv_data = (void *)(p + 1);
	v.mv_size = n - 1 - klen;
	v.mv_data = (void *)(p + 1 + klen);
	if (dev_decode(&k, &v, &a) != FBX_OK)
		return;
	FUZZ_CHECK(a.org[0] != '\0' && a.id[0] != '\0');
	FUZZ_CHECK(dev_encode(&a, e1, sizeof(e1), &l1) == FBX_OK);
	FUZZ_CHECK(fuzz_same(e1, l1, v.mv_data, v.mv_size));
	v.mv_size = l1;
	v.mv_data = e1;
	FUZZ_CHECK(dev_decode(&k, &v, &b) == FBX_OK);
	FUZZ_CHECK(dev_encode(&b, e2, sizeof(e2), &l2) == FBX_OK);
	FUZZ_CHECK(fuzz_same(e1, l1, e2, l2));
}

/* body_encode - the command body as fbx_store_cmd_append writes it. */
static size_t
body_encode(const struct fbx_command *c, uint8_t *buf, size_t cap)
{
	struct wr w = { buf, buf + cap, 0 };

	wr_u8(&w, REC_V1);
	wr_le(&w, c->payload_len, 4);
	wr_bytes(&w, c->payload, c->payload_len);
	wr_le(&w, c->ndev_ids, 4);
	for (uint32_t i = 0; i < c->ndev_ids; i++)
		wr_str(&w, c->dev_ids[i], FBX_ID_MAX + 1);
	FUZZ_CHECK(!w.bad);
	return (size_t)(w.p - buf);
}

static void
fuzz_cmd(const uint8_t *p, size_t n)
{
	struct fbx_command a, b;
	static uint8_t e1[CMD_HDR_MAX], e2[CMD_HDR_MAX];
	uint8_t *body;
	uint32_t plen, ndev, plen2, ndev2;
	size_t hlen, l1, l2, blen;
	MDB_val v;

	if (n < 2)
		return;
	hlen = (size_t)p[0] | (size_t)p[1] << 8;
	if (hlen > n - 2)
		return;
	v.mv_size = hlen;
	v.mv_data = (void *)(p + 2);
	{
		/* the deferred cmd_org index's short read agrees with the
		 * full decode wherever that succeeds (it may accept more) */
		const char *org = NULL;
		size_t olen = 0;
		int64_t created = 0;
		int qrc = cmd_hdr_org(&v, &org, &olen, &created);
		if (cmd_hdr_decode(7, &v, &a, &plen, &ndev) != FBX_OK)
			return;
		FUZZ_CHECK(a.org[0] == '\0' ||
		    (qrc == 0 && olen == strlen(a.org) &&
		        memcmp(org, a.org, olen) == 0 &&
		        created == a.created_ms));
	}
	FUZZ_CHECK(a.payload == NULL && a.dev_ids == NULL);
	FUZZ_CHECK(plen <= FBX_PAYLOAD_MAX && ndev <= FBX_DEVICES_PER_CMD_MAX);
	FUZZ_CHECK(cmd_hdr_encode(&a, plen, ndev, e1, sizeof(e1), &l1) ==
	    FBX_OK);
	v.mv_size = l1;
	v.mv_data = e1;
	FUZZ_CHECK(cmd_hdr_decode(7, &v, &b, &plen2, &ndev2) == FBX_OK);
	FUZZ_CHECK(plen2 == plen && ndev2 == ndev);
	FUZZ_CHECK(cmd_hdr_encode(&b, plen2, ndev2, e2, sizeof(e2), &l2) ==
	    FBX_OK);
	FUZZ_CHECK(fuzz_same(e1, l1, e2, l2));

	v.mv_size = n - 2 - hlen;
	v.mv_data = (void *)(p + 2 + hlen);
	if (cmd_body_decode(&v, plen, ndev, &a) != FBX_OK) {
		FUZZ_CHECK(a.payload == NULL && a.dev_ids == NULL);
		return;
	}
	FUZZ_CHECK(a.payload_len == plen && a.ndev_ids == ndev);
	FUZZ_CHECK(cmd_body_size(&a) == v.mv_size);
	body = malloc(v.mv_size > 0 ? v.mv_size : 1);
	if (body != NULL) {
		blen = body_encode(&a, body, v.mv_size);
		FUZZ_CHECK(fuzz_same(body, blen, v.mv_data, v.mv_size));
		free(body);
	}
	fbx_command_clear(&a);
}

static void
fuzz_org(const uint8_t *p, size_t n)
{
	uint8_t e[ORG_REC_LEN];
	uint32_t count;
	int64_t created;
	MDB_val v = { n, (void *)p };

	if (org_decode(&v, &count, &created) != FBX_OK)
		return;
	org_encode(count, created, e);
	FUZZ_CHECK(fuzz_same(e, sizeof(e), p, n));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] & 3) {
	case 0:
		fuzz_dlv(data + 1, size - 1);
		break;
	case 1:
		fuzz_dev(data + 1, size - 1);
		break;
	case 2:
		fuzz_cmd(data + 1, size - 1);
		break;
	default:
		fuzz_org(data + 1, size - 1);
		break;
	}
	return 0;
}
