/*
 * syncer.c: the engine's commit syncer thread; see syncer.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "syncer.h"

struct fbxi_syncer {
	fbx_store *st;
	pthread_t thr;
	pthread_mutex_t mu;
	pthread_cond_t ask;  /* the engine asked, or stop */
	pthread_cond_t done; /* a sync ended */
	uint64_t asked;      /* highest ticket asked for */
	uint64_t durable;    /* highest ticket durable */
	uint64_t no_retry;   /* tickets up to this one had a failed sync */
	int failed;          /* error of a failed sync not yet taken: no
	                        sync starts until the engine took it and
	                        said which commits it covers */
	uint64_t failed_upto;
	int stop;
};

static void *
syncer_main(void *arg)
{
	struct fbxi_syncer *s = arg;

	(void)pthread_setname_np(pthread_self(), "fbx-sync");
	pthread_mutex_lock(&s->mu);
	for (;;) {
		uint64_t target;
		int rc;

		/* a ticket whose sync failed is never synced again on its
		 * own: only a later commit's ticket starts a sync */
		while (!s->stop &&
		    (s->failed != FBX_OK || s->asked <= s->durable ||
		        s->asked <= s->no_retry))
			pthread_cond_wait(&s->ask, &s->mu);
		if (s->stop && (s->failed != FBX_OK || s->asked <= s->durable ||
		                   s->asked <= s->no_retry))
			break;
		target = s->asked;
		pthread_mutex_unlock(&s->mu);
		rc = fbx_store_sync(s->st);
		pthread_mutex_lock(&s->mu);
		if (rc == FBX_OK) {
			if (target > s->durable)
				s->durable = target;
		} else {
			s->no_retry = target;
			s->failed = rc;
			s->failed_upto = target;
		}
		pthread_cond_broadcast(&s->done);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int
fbxi_syncer_start(fbx_store *st, uint64_t durable, uint64_t no_retry,
    struct fbxi_syncer **out)
{
	struct fbxi_syncer *s = calloc(1, sizeof(*s));
	int err;

	if (s == NULL)
		return FBX_ENOMEM;
	s->st = st;
	s->durable = s->asked = durable;
	s->no_retry = no_retry;
	if (pthread_mutex_init(&s->mu, NULL) != 0) {
		free(s);
		return FBX_ENOMEM;
	}
	if (pthread_cond_init(&s->ask, NULL) != 0) {
		pthread_mutex_destroy(&s->mu);
		free(s);
		return FBX_ENOMEM;
	}
	if (pthread_cond_init(&s->done, NULL) != 0) {
		pthread_cond_destroy(&s->ask);
		pthread_mutex_destroy(&s->mu);
		free(s);
		return FBX_ENOMEM;
	}
	err = pthread_create(&s->thr, NULL, syncer_main, s);
	if (err != 0) {
		FBX_LOGE("syncer thread: %s", strerror(err));
		pthread_cond_destroy(&s->done);
		pthread_cond_destroy(&s->ask);
		pthread_mutex_destroy(&s->mu);
		free(s);
		return FBX_EIO;
	}
	*out = s;
	return FBX_OK;
}

void
fbxi_syncer_ask(struct fbxi_syncer *s, uint64_t ticket)
{
	pthread_mutex_lock(&s->mu);
	if (ticket > s->asked) {
		s->asked = ticket;
		pthread_cond_signal(&s->ask);
	}
	pthread_mutex_unlock(&s->mu);
}

uint64_t
fbxi_syncer_done(struct fbxi_syncer *s, uint64_t cover, int *failed,
    uint64_t *failed_upto)
{
	uint64_t d;

	pthread_mutex_lock(&s->mu);
	d = s->durable;
	*failed = s->failed;
	*failed_upto = s->failed_upto;
	if (s->failed != FBX_OK) {
		/* every commit made so far may have had its meta page in
		 * the write-back that failed: only a later commit's sync
		 * covers them */
		if (cover > s->no_retry)
			s->no_retry = cover;
		s->failed = FBX_OK;
		pthread_cond_signal(&s->ask);
	}
	pthread_mutex_unlock(&s->mu);
	return d;
}

int
fbxi_syncer_wait(struct fbxi_syncer *s, uint64_t ticket, int ms)
{
	struct timespec until;
	int ok;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->mu);
	while (!s->stop && s->durable < ticket && s->failed == FBX_OK &&
	    s->no_retry < ticket &&
	    pthread_cond_timedwait(&s->done, &s->mu, &until) != ETIMEDOUT)
		;
	ok = s->durable >= ticket;
	pthread_mutex_unlock(&s->mu);
	return ok;
}

uint64_t
fbxi_syncer_stop(struct fbxi_syncer *s, uint64_t *no_retry)
{
	uint64_t durable;

	if (s == NULL)
		return 0;
	pthread_mutex_lock(&s->mu);
	s->stop = 1;
	pthread_cond_signal(&s->ask);
	pthread_mutex_unlock(&s->mu);
	pthread_join(s->thr, NULL);
	durable = s->durable;
	if (no_retry != NULL)
		*no_retry = s->no_retry;
	pthread_cond_destroy(&s->done);
	pthread_cond_destroy(&s->ask);
	pthread_mutex_destroy(&s->mu);
	free(s);
	return durable;
}
