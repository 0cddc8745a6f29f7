/*
 * enroll.c: the fleet enrolled through the console API, in batches.
 */
#include "sim.h"

/* ------------------------------------------------------------------ */
/* enrollment */

int
sim_enroll_fleet(struct sim *s)
{
	fbx_client *cli = NULL;
	struct fbx_device *devs = NULL;
	int rc;
	uint64_t created = 0, updated = 0;

	{
		char why[600] = "";
		struct fbx_client_opts co;
		memset(&co, 0, sizeof(co));
		co.key_file = s->o.key;
		co.server_key_file = s->o.server_key;
		co.why = why;
		co.whylen = sizeof(why);
		rc = fbx_client_open2(s->o.console_ep, 60000, &co, &cli);
		if (rc == FBX_ECONFIG)
			sim_logm("%s", why);
	}
	if (rc != FBX_OK) {
		sim_logm("console %s: %s", s->o.console_ep, fbx_strerror(rc));
		goto out;
	}
	/* a daemon started a moment ago may not have bound its socket yet:
	 * wait for it quietly, as fuseboxctl does (the retries below stay
	 * for an engine that is slow to answer) */
	for (int i = 0; i < 20 && !sim_stop &&
	     fbx_client_wait_ready(s->o.console_ep, 500) != FBX_OK;
	     i++)
		;
	devs = calloc(SIM_ENROLL_BATCH, sizeof(*devs));
	if (devs == NULL) {
		rc = FBX_ENOMEM;
		goto out;
	}
	for (uint32_t o = 0; o < s->o.norgs && !sim_stop; o++) {
		uint32_t done = 0;
		while (done < s->org_count[o] && !sim_stop) {
			struct fbx_console_req req;
			struct fbx_console_rep rep;
			uint32_t k = s->org_count[o] - done;
			int tries = 0;

			if (k > SIM_ENROLL_BATCH)
				k = SIM_ENROLL_BATCH;
			for (uint32_t i = 0; i < k; i++) {
				uint32_t g = s->org_start[o] + done + i;
				struct fbx_device *d = &devs[i];
				memset(d, 0, sizeof(*d));
				sim_org_name(o, d->org, sizeof(d->org));
				sim_dev_name(s, g, o, d->id, sizeof(d->id));
				d->platform = (uint8_t)sim_dev_platform(s, g);
				d->online = 1;
				snprintf(d->os_version, sizeof(d->os_version),
				    "%s", sim_dev_os(s, g, d->platform));
				d->ngroups = 1;
				snprintf(d->groups[0], sizeof(d->groups[0]),
				    "%s", sim_dev_group(s, g));
			}
			for (;;) {
				memset(&req, 0, sizeof(req));
				sim_org_name(o, req.org, sizeof(req.org));
				req.actor[0] = '\0'; /* the key's */
				req.kind = FBX_CREQ_ENROLL;
				req.u.enroll.devs = devs;
				req.u.enroll.n = k;
				rc = fbx_client_call(cli, &req, &rep);
				if (rc == FBX_OK && rep.err != FBX_OK) {
					rc = rep.err;
					sim_logm("enroll %s: %s: %s", req.org,
					    fbx_errname(rc), rep.errmsg);
					fbx_console_rep_free(&rep);
				} else if (rc == FBX_OK) {
					created += rep.u.enroll.created;
					updated += rep.u.enroll.updated;
					fbx_console_rep_free(&rep);
					break;
				}
				/* The engine may be starting or busy; an
				 * enrolment is an upsert, so retry. */
				if ((rc != FBX_ETIMEOUT &&
				        rc != FBX_EUNREACHABLE &&
				        rc != FBX_EBUSY) ||
				    ++tries > 30 || sim_stop) {
					sim_logm("enroll %s failed: %s", req.org,
					    fbx_strerror(rc));
					goto out;
				}
				if (tries == 1 || tries % 10 == 0)
					sim_logm("enroll %s: %s, retrying",
					    req.org, fbx_strerror(rc));
				usleep(500 * 1000);
			}
			done += k;
		}
	}
	if (!s->o.quiet)
		sim_logm("enrolled %" PRIu32 " devices in %" PRIu32
		     " organisations (created %" PRIu64 ", updated %" PRIu64
		     ")",
		    s->o.ndev, s->o.norgs, created, updated);
	rc = sim_stop ? FBX_ESHUTTING_DOWN : FBX_OK;
out:
	free(devs);
	fbx_client_close(cli);
	return rc;
}
