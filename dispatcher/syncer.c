/*
 * syncer.c: the engine's commit syncer thread; see syncer.h.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

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
	int wake; /* eventfd: readable once a sync ended (fbxi_syncer_fd) */
};

/* wake_engine - a sync ended: wake the engine's poll, whose held
 * outputs may leave now. A counter that cannot take more (never in
 * practice) is readable already. */
static void
wake_engine(struct fbxi_syncer *s)
{
	uint64_t one = 1;

	if (write(s->wake, &one, sizeof(one)) < 0 && errno != EAGAIN)
		FBX_LOGW("syncer: waking the engine: %s", strerror(errno));
}

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
		wake_engine(s);
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
	/* a syncer started again after a store reopen may hold outputs
	 * that are durable already (up to durable): readable at once, so
	 * they leave on the next turn */
	s->wake = eventfd(durable > 0 ? 1 : 0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->wake < 0) {
		int e = errno;
		FBX_LOGE("syncer eventfd: %s", strerror(e));
		free(s);
		return e == ENOMEM ? FBX_ENOMEM : FBX_EIO;
	}
	if (pthread_mutex_init(&s->mu, NULL) != 0) {
		close(s->wake);
		free(s);
		return FBX_ENOMEM;
	}
	if (pthread_cond_init(&s->ask, NULL) != 0) {
		pthread_mutex_destroy(&s->mu);
		close(s->wake);
		free(s);
		return FBX_ENOMEM;
	}
	if (pthread_cond_init(&s->done, NULL) != 0) {
		pthread_cond_destroy(&s->ask);
		pthread_mutex_destroy(&s->mu);
		close(s->wake);
		free(s);
		return FBX_ENOMEM;
	}
	err = pthread_create(&s->thr, NULL, syncer_main, s);
	if (err != 0) {
		FBX_LOGE("syncer thread: %s", strerror(err));
		pthread_cond_destroy(&s->done);
		pthread_cond_destroy(&s->ask);
		pthread_mutex_destroy(&s->mu);
		close(s->wake);
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
fbxi_syncer_fd(const struct fbxi_syncer *s)
{
	return s->wake;
}

void
fbxi_syncer_woken(struct fbxi_syncer *s)
{
	uint64_t n;

	/* nonblocking: nothing to read is no error */
	while (read(s->wake, &n, sizeof(n)) < 0 && errno == EINTR)
		;
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
	close(s->wake);
	free(s);
	return durable;
}
