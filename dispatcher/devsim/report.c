/*
 * report.c: the report: totals, the storm's answers per organisation,
 * devices locked, written as JSON at the end and with --report; the
 * delivery log.
 */
#include "sim.h"

void
sim_storm_report_lines(struct sim *s, FILE *f)
{
	struct storm *st = &s->storm;
	uint64_t sub = 0, adm = 0, held = 0, ref = 0;
	int64_t el;

	for (uint32_t o = 0; o < s->o.norgs; o++) {
		char name[FBX_ID_MAX + 1];
		const struct storm_org *so = &st->so[o];
		sub += so->submitted;
		adm += so->admitted;
		held += so->held;
		ref += so->refused;
		if (so->submitted == 0)
			continue;
		sim_org_name(o, name, sizeof(name));
		fprintf(f,
		    "storm_org=%s submitted=%" PRIu64 " admitted=%" PRIu64
		    " held=%" PRIu64 " refused=%" PRIu64,
		    name, so->submitted, so->admitted, so->held, so->refused);
		if (so->refused > 0) {
			int first = 1;
			fprintf(f, " refused_by=");
			for (int c = 0; c < 64; c++) {
				if (so->by_code[c] == 0)
					continue;
				fprintf(f, "%s%s:%" PRIu32, first ? "" : ",",
				    fbx_errname(c), so->by_code[c]);
				first = 0;
			}
		}
		fputc('\n', f);
	}
	el = st->started ? (st->finished ? st->end_ms : sim_mono_ms()) -
	        st->start_ms
	                 : 0;
	fprintf(f,
	    "storm_total submitted=%" PRIu64 " admitted=%" PRIu64
	    " held=%" PRIu64 " refused=%" PRIu64 " answered=%" PRIu32
	    " of=%" PRIu32 " retries=%" PRIu64 " duplicates=%" PRIu64
	    " moved=%" PRIu64 " elapsed_ms=%" PRId64
	    " per_s=%.0f reason=%s type=%s\n",
	    sub, adm, held, ref, st->done, st->n, st->retries,
	    st->duplicates, st->moved, el, el > 0 ? st->done * 1000.0 / (double)el : 0.0,
	    s->o.storm_reason, fbx_cmd_type_name(s->o.storm_type));
}
/* ------------------------------------------------------------------ */
/* report */

void
sim_write_report(struct sim *s, FILE *f, int devices)
{
	fprintf(f,
	    "deliveries_received=%" PRIu64 " distinct_ids=%" PRIu64
	    " duplicates=%" PRIu64 " dup_after_durable_success=%" PRIu64
	    " foreign=%" PRIu64 " results_sent=%" PRIu64
	    " results_acked=%" PRIu64 " succeeded=%" PRIu64 " failed=%" PRIu64
	    " offline=%" PRIu64 " results_refused=%" PRIu64 "\n",
	    s->t.received, s->t.distinct, s->t.duplicates, s->t.dup_after_ok,
	    s->t.foreign, s->t.results_sent, s->t.results_acked,
	    s->t.succeeded, s->t.failed, s->t.offline, s->t.results_refused);
	for (uint32_t o = 0; o < s->o.norgs; o++) {
		char name[FBX_ID_MAX + 1];
		const struct org_stats *os = &s->ostats[o];
		sim_org_name(o, name, sizeof(name));
		fprintf(f,
		    "org=%s devices=%" PRIu32 " received=%" PRIu64
		    " distinct=%" PRIu64 " succeeded=%" PRIu64
		    " failed=%" PRIu64 " locked=%" PRIu64 " unlocked=%" PRIu64
		    " locked_now=%" PRIu64 "\n",
		    name, s->org_count[o], os->received, os->distinct,
		    os->succeeded, os->failed, os->locked, os->unlocked,
		    os->locked_now);
	}
	if (s->storm.n > 0)
		sim_storm_report_lines(s, f);
	if (!devices)
		return;
	for (uint32_t g = 0; g < s->o.ndev; g++) {
		char on[FBX_ID_MAX + 1], dn[FBX_ID_MAX + 16];
		uint32_t o;
		if (s->dev_received[g] == 0)
			continue;
		o = dev_org(s, g);
		sim_org_name(o, on, sizeof(on));
		sim_dev_name(s, g, o, dn, sizeof(dn));
		fprintf(f, "%s %s %" PRIu32 " %" PRIu32 "\n", on, dn,
		    s->dev_distinct[g], s->dev_received[g]);
	}
}

int
sim_save_report(struct sim *s)
{
	char tmp[4096];
	FILE *f;

	if (s->o.report == NULL)
		return FBX_OK;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", s->o.report) >=
	    (int)sizeof(tmp))
		return FBX_EINVALID;
	f = fopen(tmp, "w");
	if (f == NULL) {
		sim_logm("cannot write %s: %s", tmp, strerror(errno));
		return FBX_EIO;
	}
	sim_write_report(s, f, s->o.report_devices);
	if (fflush(f) != 0 || ferror(f)) {
		sim_logm("cannot write %s: %s", tmp, strerror(errno));
		fclose(f);
		return FBX_EIO;
	}
	fclose(f);
	/* Rename, so a test polling the file never reads half a report. */
	if (rename(tmp, s->o.report) != 0) {
		sim_logm("cannot rename %s: %s", tmp, strerror(errno));
		return FBX_EIO;
	}
	return FBX_OK;
}

/* sim_dlog_flush - hand the delivery log's buffered lines to the file.
 * @return 0 or -1 (logged). */
int
sim_dlog_flush(struct sim *s)
{
	if (s->dlog == NULL)
		return 0;
	if (fflush(s->dlog) != 0 || ferror(s->dlog)) {
		sim_logm("cannot write %s: %s", s->o.delivery_log,
		    strerror(errno));
		return -1;
	}
	return 0;
}
