/*
 * fleet.c: the deterministic fleet model: organisation, name, platform,
 * group, OS and offline start of each device, from the seed alone, and a
 * device found by its name; the clocks and the log line.
 */
#include "sim.h"

int64_t
sim_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
sim_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* sim_mono_ns - CLOCK_MONOTONIC in ns: one clock for every process of the
 * machine, so the delivery logs of several simulators can be merged. */
int64_t
sim_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
sim_logm(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fusebox-devsim: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ------------------------------------------------------------------ */
/* fleet */

void
sim_org_name(uint32_t o, char *buf, size_t len)
{
	snprintf(buf, len, "org-%03" PRIu32, o + 1);
}

void
sim_dev_name(const struct sim *s, uint32_t g, uint32_t o, char *buf, size_t len)
{
	snprintf(buf, len, "org-%03" PRIu32 "-d%06" PRIu32, o + 1,
	    g - s->org_start[o]);
}

int
sim_dev_platform(const struct sim *s, uint32_t g)
{
	uint64_t p = h3(s->o.seed, g, 1) % 100;

	if (p < 60)
		return FBX_PLATFORM_ANDROID;
	if (p < 90)
		return FBX_PLATFORM_IOS;
	return FBX_PLATFORM_WINDOWS;
}

const char *
sim_dev_group(const struct sim *s, uint32_t g)
{
	static const char *const names[] = { "sales", "field", "office" };
	uint64_t h = h3(s->o.seed, g, 2);

	if (h % 100 < 5)
		return "verification";
	return names[(h / 100) % 3];
}

const char *
sim_dev_os(const struct sim *s, uint32_t g, int platform)
{
	static const char *const android[] = { "12", "13", "14", "14.1" };
	static const char *const ios[] = { "16.7.8", "17.4.1", "17.5",
		"17.6.1" };
	static const char *const windows[] = { "10.0.19045",
		"10.0.22631" };
	uint64_t h = h3(s->o.seed, g, 4);

	switch (platform) {
	case FBX_PLATFORM_ANDROID:
		return android[h % 4];
	case FBX_PLATFORM_IOS:
		return ios[h % 4];
	default:
		return windows[h % 2];
	}
}

/* sim_find_device - map (org, device) names from a delivery to a device
 * index. Names are parsed and re-formatted, so only exact fleet names
 * match. @return 0 and *g, or -1 for a device not in the fleet. */
int
sim_find_device(const struct sim *s, const char *org, const char *dev,
    uint32_t *g)
{
	char buf[FBX_ID_MAX + 16];
	unsigned long o, n;
	char *end;
	size_t ol;

	if (org == NULL || dev == NULL || strncmp(org, "org-", 4) != 0)
		return -1;
	if (org[4] < '0' || org[4] > '9')
		return -1;
	o = strtoul(org + 4, &end, 10);
	if (*end != '\0' || o == 0 || o > s->o.norgs)
		return -1;
	sim_org_name((uint32_t)(o - 1), buf, sizeof(buf));
	if (strcmp(buf, org) != 0)
		return -1;
	ol = strlen(org);
	if (strncmp(dev, org, ol) != 0 || dev[ol] != '-' ||
	    dev[ol + 1] != 'd' || dev[ol + 2] < '0' || dev[ol + 2] > '9')
		return -1;
	n = strtoul(dev + ol + 2, &end, 10);
	if (*end != '\0' || n >= s->org_count[o - 1])
		return -1;
	sim_dev_name(s, s->org_start[o - 1] + (uint32_t)n, (uint32_t)(o - 1), buf,
	    sizeof(buf));
	if (strcmp(buf, dev) != 0)
		return -1;
	*g = s->org_start[o - 1] + (uint32_t)n;
	return 0;
}

static int
cmp_due(const void *a, const void *b, void *arg)
{
	const int64_t *due = arg;
	int64_t x = due[*(const uint32_t *)a], y = due[*(const uint32_t *)b];

	return x < y ? -1 : x > y;
}

/* sim_fleet_init - lay out orgs and devices, mark the offline ones and plan
 * their single check-in. */
int
sim_fleet_init(struct sim *s)
{
	uint32_t n = s->o.ndev, m = s->o.norgs, first;
	int64_t *due = NULL;
	int rc = FBX_ENOMEM;

	s->org_start = calloc(m, sizeof(uint32_t));
	s->org_count = calloc(m, sizeof(uint32_t));
	s->ostats = calloc(m, sizeof(*s->ostats));
	s->dflags = calloc(n, 1);
	s->dev_distinct = calloc(n, sizeof(uint32_t));
	s->dev_received = calloc(n, sizeof(uint32_t));
	s->dlock = calloc(n, 1);
	if (!s->org_start || !s->org_count || !s->ostats || !s->dflags ||
	    !s->dev_distinct || !s->dev_received || !s->dlock)
		goto out;
	if (s->o.org_skew >= 0 && m > 1) {
		first = (uint32_t)llround(s->o.org_skew * n);
		if (first > n)
			first = n;
		s->org_count[0] = first;
		for (uint32_t i = 1; i < m; i++)
			s->org_count[i] = (n - first) / (m - 1) +
			    (i - 1 < (n - first) % (m - 1) ? 1 : 0);
	} else {
		for (uint32_t i = 0; i < m; i++)
			s->org_count[i] = n / m + (i < n % m ? 1 : 0);
	}
	for (uint32_t i = 1; i < m; i++)
		s->org_start[i] = s->org_start[i - 1] + s->org_count[i - 1];
	for (uint32_t g = 0; g < n; g++) {
		if (unit(h3(s->o.seed, g, 3)) < s->o.offline_ratio) {
			s->dflags[g] |= DEV_OFFLINE;
			s->noff++;
		}
	}
	if (s->noff > 0 && s->o.checkin_s > 0) {
		size_t k = 0;
		s->off_idx = malloc(s->noff * sizeof(uint32_t));
		due = malloc((size_t)n * sizeof(int64_t));
		s->off_due = malloc(s->noff * sizeof(int64_t));
		if (!s->off_idx || !due || !s->off_due)
			goto out;
		/* ~C s after start: uniformly within [0.75 C, 1.25 C]. */
		for (uint32_t g = 0; g < n; g++) {
			if (!(s->dflags[g] & DEV_OFFLINE))
				continue;
			due[g] = (int64_t)((0.75 + 0.5 * unit(h3(s->o.seed, g,
			                                      5))) *
			    s->o.checkin_s * 1000.0);
			s->off_idx[k++] = g;
		}
		qsort_r(s->off_idx, s->noff, sizeof(uint32_t), cmp_due, due);
		for (size_t i = 0; i < s->noff; i++)
			s->off_due[i] = due[s->off_idx[i]];
	}
	rc = FBX_OK;
out:
	free(due);
	return rc;
}
