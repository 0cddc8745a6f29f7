/*
 * rbkey_test.c: the rollback's "changed since" memory tells devices apart
 * by their exact organisation and device, even when every device falls
 * in the same hash bucket (issue 8: it used to key them by a 62-bit
 * hash, so a collision took one device for another).
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

/* every device collides */
static uint64_t
same_bucket(const char *org, const char *dev)
{
	(void)org;
	(void)dev;
	return 42;
}

static void
run(const char *what)
{
	struct fbxi_devtimes *dt = fbxi_devtimes_new();
	int64_t t = 0;
	char dev[32];

	CHECK(dt != NULL, "%s: new", what);
	if (dt == NULL)
		return;
	CHECK(fbxi_devtimes_note(dt, "org-001", "d1", 1, 100) == FBX_OK,
	    "%s: note", what);
	CHECK(fbxi_devtimes_note(dt, "org-001", "d1", 1, 50) == FBX_OK,
	    "%s: note older", what);
	CHECK(fbxi_devtimes_get(dt, "org-001", "d1", 1, &t) && t == 100,
	    "%s: d1 keeps the newest time, got %lld", what, (long long)t);
	CHECK(!fbxi_devtimes_get(dt, "org-001", "d2", 1, &t),
	    "%s: d2 was never changed", what);
	CHECK(!fbxi_devtimes_get(dt, "org-002", "d1", 1, &t),
	    "%s: another organisation's d1 was never changed", what);
	CHECK(!fbxi_devtimes_get(dt, "org-001", "d1", 2, &t),
	    "%s: another family was never changed", what);
	CHECK(fbxi_devtimes_note(dt, "org-001", "d2", 1, 7) == FBX_OK,
	    "%s: note d2", what);
	CHECK(fbxi_devtimes_get(dt, "org-001", "d2", 1, &t) && t == 7,
	    "%s: d2 has its own time, got %lld", what, (long long)t);
	CHECK(fbxi_devtimes_get(dt, "org-001", "d1", 1, &t) && t == 100,
	    "%s: d1 unchanged by d2, got %lld", what, (long long)t);
	/* many devices in one bucket */
	for (int i = 0; i < 1000; i++) {
		snprintf(dev, sizeof(dev), "dev-%04d", i);
		CHECK(fbxi_devtimes_note(dt, "org-001", dev, 1, 1000 + i) ==
		        FBX_OK,
		    "%s: note %s", what, dev);
	}
	for (int i = 0; i < 1000; i++) {
		snprintf(dev, sizeof(dev), "dev-%04d", i);
		t = 0;
		if (!fbxi_devtimes_get(dt, "org-001", dev, 1, &t) ||
		    t != 1000 + i)
			CHECK(0, "%s: %s has %lld", what, dev, (long long)t);
	}
	fbxi_devtimes_free(dt);
}

int
main(void)
{
	run("real hash");
	fbxi_devtimes_hash = same_bucket;
	run("one bucket");
	fbxi_devtimes_free(NULL);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
