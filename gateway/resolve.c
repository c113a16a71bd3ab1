/* SPDX-License-Identifier: MIT */
/* Endpoint host names resolved by a thread of their own, retried with backoff. */
#include "gateway/resolve.h"

#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/compiler.h"
#include "common/log.h"

struct job {
	struct job *next;              /* request or done queue (under the lock) */
	struct job *all_prev, *all_next; /* control thread only: every live job */
	uint8_t key[32];
	char host[256];
	char label[64];
	uint16_t port;
	unsigned failures;
	bool cancelled;                /* under the lock */
	bool waiting;                  /* control thread: the retry timer runs */
	int gai;                       /* resolver thread, read after the done queue's lock */
	union wgt_sockaddr addr;
	ev_timer retry;
	struct wgt_resolver *r;
};

/* What the resolver thread shares; freed by whichever side lets go last. */
struct shared {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *req_head, *req_tail;
	struct job *done_head;
	bool stop;
	struct job *running;           /* the job in getaddrinfo(), NULL when idle */
	ev_async *async;               /* NULL once the control side is gone */
	struct ev_loop *loop;
	_Atomic unsigned refs;         /* R1: the last release frees (acq_rel) */
};

struct wgt_resolver {
	struct ev_loop *loop;
	struct shared *sh;
	pthread_t thread;
	ev_async async;
	wgt_resolver_done_fn done;
	void *arg;
	char ifname[32];
	struct job *all;
	size_t n_jobs;
};

static void job_free(struct job *j)
{
	explicit_bzero(j, sizeof(*j));
	free(j);
}

static void shared_put(struct shared *sh)
{
	/* R1: pairs with the other side's release, so the last one sees every write. */
	if (atomic_fetch_sub_explicit(&sh->refs, 1, memory_order_acq_rel) != 1)
		return;
	while (sh->done_head) {
		struct job *j = sh->done_head;

		sh->done_head = j->next;
		job_free(j);
	}
	pthread_mutex_destroy(&sh->lock);
	pthread_cond_destroy(&sh->cond);
	free(sh);
}

static void resolve(struct job *j)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_DGRAM,
		.ai_protocol = IPPROTO_UDP,
		.ai_flags = AI_NUMERICSERV,
	};
	struct addrinfo *res = NULL;
	char port[8];

	snprintf(port, sizeof(port), "%u", j->port);
	j->gai = getaddrinfo(j->host, port, &hints, &res);
	if (j->gai)
		return;
	/* As wg(8): the first IPv4 or IPv6 answer. */
	j->gai = EAI_NONAME;
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		if ((a->ai_family == AF_INET && a->ai_addrlen == sizeof(struct sockaddr_in)) ||
		    (a->ai_family == AF_INET6 && a->ai_addrlen == sizeof(struct sockaddr_in6))) {
			memset(&j->addr, 0, sizeof(j->addr));
			memcpy(&j->addr, a->ai_addr, a->ai_addrlen);
			j->gai = 0;
			break;
		}
	}
	freeaddrinfo(res);
}

/* The resolver thread: one blocking getaddrinfo() at a time. */
static void *thread_main(void *arg)
{
	struct shared *sh = arg;

	pthread_mutex_lock(&sh->lock);
	for (;;) {
		struct job *j;

		while (!sh->stop && !sh->req_head)
			pthread_cond_wait(&sh->cond, &sh->lock);
		if (sh->stop)
			break;
		j = sh->req_head;
		sh->req_head = j->next;
		if (!sh->req_head)
			sh->req_tail = NULL;
		sh->running = j;
		pthread_mutex_unlock(&sh->lock);
		resolve(j);
		pthread_mutex_lock(&sh->lock);
		sh->running = NULL;
		if (sh->stop) {
			job_free(j);
			break;
		}
		j->next = sh->done_head;
		sh->done_head = j;
		/* Under the lock: the control side clears async under it before stopping it. */
		ev_async_send(sh->loop, sh->async);
	}
	pthread_mutex_unlock(&sh->lock);
	shared_put(sh);
	return NULL;
}

static void unlink_job(struct wgt_resolver *r, struct job *j)
{
	if (j->all_prev)
		j->all_prev->all_next = j->all_next;
	else
		r->all = j->all_next;
	if (j->all_next)
		j->all_next->all_prev = j->all_prev;
	r->n_jobs--;
}

static void enqueue(struct wgt_resolver *r, struct job *j)
{
	struct shared *sh = r->sh;

	pthread_mutex_lock(&sh->lock);
	j->next = NULL;
	if (sh->req_tail)
		sh->req_tail->next = j;
	else
		sh->req_head = j;
	sh->req_tail = j;
	pthread_cond_signal(&sh->cond);
	pthread_mutex_unlock(&sh->lock);
}

static void retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct job *j = wgt_container_of(w, struct job, retry);

	(void)loop;
	(void)revents;
	j->waiting = false;
	enqueue(j->r, j);
}

double wgt_resolver_retry_delay(unsigned failures)
{
	double d = WGT_RESOLVE_FIRST_DELAY;

	if (failures > WGT_RESOLVE_RETRIES_FAST)
		return WGT_RESOLVE_SLOW_DELAY;
	for (unsigned i = 1; i < failures && d < WGT_RESOLVE_MAX_FAST_DELAY; i++)
		d *= 1.2;
	return d < WGT_RESOLVE_MAX_FAST_DELAY ? d : WGT_RESOLVE_MAX_FAST_DELAY;
}

/* Control thread: answers from the resolver thread. */
static void async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	struct wgt_resolver *r = wgt_container_of(w, struct wgt_resolver, async);
	struct job *list, *next;

	(void)revents;
	pthread_mutex_lock(&r->sh->lock);
	list = r->sh->done_head;
	r->sh->done_head = NULL;
	pthread_mutex_unlock(&r->sh->lock);
	for (struct job *j = list; j; j = next) {
		next = j->next;
		if (j->cancelled) {
			job_free(j);
			continue;
		}
		if (!j->gai) {
			if (j->failures)
				wgt_info("%s: peer %s: endpoint %s resolved after %u failed tries",
					 r->ifname, j->label, j->host, j->failures);
			unlink_job(r, j);
			r->done(r->arg, j->key, &j->addr);
			job_free(j);
			continue;
		}
		j->failures++;
		if (j->failures == 1 || j->failures == WGT_RESOLVE_RETRIES_FAST)
			wgt_warn("%s: peer %s: cannot resolve endpoint %s (%s): try %u, retrying%s",
				 r->ifname, j->label, j->host, gai_strerror(j->gai), j->failures,
				 j->failures == WGT_RESOLVE_RETRIES_FAST ? " every 60 s" : "");
		else
			wgt_dbg("%s: peer %s: cannot resolve endpoint %s (%s): try %u", r->ifname,
				j->label, j->host, gai_strerror(j->gai), j->failures);
		ev_timer_init(&j->retry, retry_cb, wgt_resolver_retry_delay(j->failures), 0.);
		ev_timer_start(loop, &j->retry);
		j->waiting = true;
	}
}

int wgt_resolver_new(struct ev_loop *loop, const char *ifname, wgt_resolver_done_fn done,
		     void *arg, struct wgt_resolver **ret)
{
	struct wgt_resolver *r = calloc(1, sizeof(*r));
	struct shared *sh = calloc(1, sizeof(*sh));
	sigset_t all, old;
	int e;

	if (!r || !sh) {
		free(r);
		free(sh);
		return -ENOMEM;
	}
	r->loop = loop;
	r->sh = sh;
	r->done = done;
	r->arg = arg;
	snprintf(r->ifname, sizeof(r->ifname), "%s", ifname);
	pthread_mutex_init(&sh->lock, NULL);
	pthread_cond_init(&sh->cond, NULL);
	sh->loop = loop;
	sh->async = &r->async;
	atomic_init(&sh->refs, 2);
	ev_async_init(&r->async, async_cb);
	ev_async_start(loop, &r->async);
	/* Signals (SIGHUP above all, whose default kills) belong to the control loop. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	e = pthread_create(&r->thread, NULL, thread_main, sh);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e) {
		ev_async_stop(loop, &r->async);
		pthread_mutex_destroy(&sh->lock);
		pthread_cond_destroy(&sh->cond);
		free(sh);
		free(r);
		return -e;
	}
	*ret = r;
	return 0;
}

/* Control thread. The job leaves `all`; it is freed now unless the thread holds it. */
static void cancel_job(struct wgt_resolver *r, struct job *j)
{
	struct shared *sh = r->sh;
	bool owned = false;

	unlink_job(r, j);
	if (j->waiting) {
		ev_timer_stop(r->loop, &j->retry);
		job_free(j);
		return;
	}
	pthread_mutex_lock(&sh->lock);
	/* Still in the request queue: take it out. */
	for (struct job **pp = &sh->req_head, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next) {
		if (*pp != j)
			continue;
		*pp = j->next;
		if (sh->req_tail == j)
			sh->req_tail = prev;
		owned = true;
		break;
	}
	if (!owned)
		j->cancelled = true;  /* running or done: freed when it comes back */
	pthread_mutex_unlock(&sh->lock);
	if (owned)
		job_free(j);
}

void wgt_resolver_free(struct wgt_resolver *r)
{
	struct shared *sh;
	bool running;

	if (!r)
		return;
	sh = r->sh;
	while (r->all)
		cancel_job(r, r->all);
	pthread_mutex_lock(&sh->lock);
	sh->stop = true;
	sh->async = NULL;
	running = sh->running;
	pthread_cond_signal(&sh->cond);
	pthread_mutex_unlock(&sh->lock);
	ev_async_stop(r->loop, &r->async);
	/* A getaddrinfo() may take its full timeout: never make the exit wait for it. */
	if (running)
		pthread_detach(r->thread);
	else
		pthread_join(r->thread, NULL);
	shared_put(sh);
	free(r);
}

static struct job *find(struct wgt_resolver *r, const uint8_t key[32])
{
	for (struct job *j = r->all; j; j = j->all_next)
		if (!memcmp(j->key, key, 32))
			return j;
	return NULL;
}

int wgt_resolver_add(struct wgt_resolver *r, const uint8_t key[32], const char *host,
		     uint16_t port, const char *label)
{
	struct job *j, *old = find(r, key);

	if (old)
		cancel_job(r, old);
	if (r->n_jobs >= WGT_RESOLVE_MAX_JOBS)
		return -ENOSPC;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	memcpy(j->key, key, 32);
	snprintf(j->host, sizeof(j->host), "%s", host);
	snprintf(j->label, sizeof(j->label), "%s", label);
	j->port = port;
	j->r = r;
	j->all_next = r->all;
	if (r->all)
		r->all->all_prev = j;
	r->all = j;
	r->n_jobs++;
	enqueue(r, j);
	return 0;
}

void wgt_resolver_cancel(struct wgt_resolver *r, const uint8_t key[32])
{
	struct job *j = r ? find(r, key) : NULL;

	if (j)
		cancel_job(r, j);
}

size_t wgt_resolver_pending(const struct wgt_resolver *r)
{
	return r ? r->n_jobs : 0;
}
