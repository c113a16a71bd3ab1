/* SPDX-License-Identifier: MIT */
/* Prometheus /metrics, /healthz and /readyz over libmicrohttpd; rendering on the control thread. */
#include "gateway/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <microhttpd.h>

#include "common/endpoint.h"
#include "common/log.h"
#include "gateway/device.h"
#include "gateway/health.h"
#include "gateway/metrics_pvt.h"

#define MAX_CONNECTIONS 16
#define MAX_QUEUED 16                            /* requests waiting for the control thread */
#define CONNECTION_TIMEOUT_S 10
#define RENDER_WAIT_NS (10 * WGT_NSEC_PER_SEC)   /* a request gives up on the control thread */
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

enum req_kind { REQ_METRICS, REQ_READYZ };

/* A request handed from a connection thread to the control thread (under m->mu). */
struct request {
	struct request *next;
	enum req_kind kind;
	bool done;          /* the control thread answered: status and body are set */
	bool abandoned;     /* the waiter gave up: whoever holds it last frees it */
	unsigned status;
	struct wgt_metrics_body *body;  /* NULL: none */
};

struct wgt_metrics {
	struct wgt_device *dev;
	const char *listen;         /* as given, for messages */
	int fd;                     /* the listening socket until the server takes it */
	struct MHD_Daemon *mhd;
	ev_async async;
	ev_timer chunk;             /* 0 s: the next chunk of a render */
	struct wgt_metrics_render r;
	struct request *active;     /* being rendered */

	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct request *queue;      /* waiting, oldest first */
	unsigned queued;
	bool stopping;
#ifdef WGT_TEST_HOOKS
#endif
};

static void complete(struct wgt_metrics *m, struct request *req, unsigned status,
		     struct wgt_metrics_body *body)
{
	pthread_mutex_lock(&m->mu);
	if (req->abandoned) {
		wgt_metrics_body_free(body);
		free(req);
	} else {
		req->status = body ? status : 500;
		req->body = body;
		req->done = true;
		pthread_cond_broadcast(&m->cond);
	}
	pthread_mutex_unlock(&m->mu);
}

static void readyz(struct wgt_metrics *m, struct request *req)
{
	struct wgt_device *dev = m->dev;
	struct wgt_text b = { 0 }, *parts[1] = { &b };
	bool ready = dev->up && dev->identity.has_identity && dev->listen_port;

	if (ready) {
		wgt_text_puts(&b, "ready\n");
	} else {
		wgt_text_puts(&b, "not ready:");
		if (!dev->up)
			wgt_text_puts(&b, " interface down;");
		if (!dev->identity.has_identity)
			wgt_text_puts(&b, " no private key;");
		if (!dev->listen_port)
			wgt_text_puts(&b, " no bound UDP port;");
		wgt_text_puts(&b, "\n");
	}
	complete(m, req, ready ? 200 : 503, wgt_metrics_body_take(parts, 1));
}

/* Control thread: takes the next queued request, if idle. */
static void next_request(struct wgt_metrics *m)
{
	struct request *req;

	while (!m->active) {
		pthread_mutex_lock(&m->mu);
		/* A request its waiter gave up on is not worth a render. */
		while ((req = m->queue) && req->abandoned) {
			m->queue = req->next;
			m->queued--;
			free(req);
		}
		if (req) {
			m->queue = req->next;
			m->queued--;
		}
		pthread_mutex_unlock(&m->mu);
		if (!req)
			return;
		if (req->kind == REQ_READYZ) {
			readyz(m, req);
			continue;
		}
		m->active = req;
		wgt_metrics_render_begin(&m->r);
		ev_timer_set(&m->chunk, 0., 0.);
		ev_timer_start(m->dev->loop, &m->chunk);
	}
}

static void chunk_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct wgt_metrics *m = wgt_container_of(w, struct wgt_metrics, chunk);

	if (!m->active)
		return;
	if (!wgt_metrics_render_step(&m->r)) {
		/* More peers: give the loop back and go on in its next iteration. */
		ev_timer_set(&m->chunk, 0., 0.);
		ev_timer_start(loop, &m->chunk);
		return;
	}
	complete(m, m->active, 200, wgt_metrics_render_end(&m->r));
	m->active = NULL;
	next_request(m);
}

static void async_cb(struct ev_loop *loop, ev_async *w, int revents)
{
	next_request(wgt_container_of(w, struct wgt_metrics, async));
}

/* ---- HTTP, connection threads ---- */

/* Connection thread. Sends body (which the response then owns) with status. */
static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
			     struct wgt_metrics_body *body, const char *type)
{
	struct MHD_IoVec iov[1 + WGT_METRICS_FAM_COUNT];
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned n = 0;

	if (!body) {
		/* Out of memory for the text: the status alone. */
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
		if (!resp)
			return MHD_NO;
		ret = MHD_queue_response(c, status == 200 ? 500 : status, resp);
		MHD_destroy_response(resp);
		return ret;
	}
	for (unsigned i = 0; body && i < body->n && n < 1 + WGT_METRICS_FAM_COUNT; i++)
		if (body->part[i].len)
			iov[n++] = (struct MHD_IoVec){ body->part[i].p, body->part[i].len };
	resp = MHD_create_response_from_iovec(iov, n, wgt_metrics_body_free, body);
	if (!resp) {
		wgt_metrics_body_free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(c, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned status, const char *text)
{
	struct wgt_text b = { 0 }, *parts[1] = { &b };

	wgt_text_puts(&b, text);
	return reply(c, status, wgt_metrics_body_take(parts, 1), "text/plain; charset=utf-8");
}

/* Connection thread. Queues a request for the control thread and waits for its answer. */
static enum MHD_Result ask_control(struct wgt_metrics *m, struct MHD_Connection *c,
				   enum req_kind kind)
{
	struct request *req = calloc(1, sizeof(*req));
	struct timespec deadline;
	struct request **pp;
	struct wgt_metrics_body *body;
	unsigned status;

	if (!req)
		return reply_text(c, 500, "out of memory\n");
	req->kind = kind;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += RENDER_WAIT_NS / WGT_NSEC_PER_SEC;
	pthread_mutex_lock(&m->mu);
	if (m->stopping || m->queued >= MAX_QUEUED) {
		pthread_mutex_unlock(&m->mu);
		free(req);
		return reply_text(c, 503, "busy\n");
	}
	for (pp = &m->queue; *pp; pp = &(*pp)->next)
		;
	*pp = req;
	m->queued++;
	ev_async_send(m->dev->loop, &m->async);
	/* wgt_metrics_stop() answers every waiter, so done comes, or the deadline. */
	while (!req->done)
		if (pthread_cond_timedwait(&m->cond, &m->mu, &deadline) == ETIMEDOUT)
			break;
	if (!req->done) {
		/* The control thread frees it when it gets to it (or at stop). */
		req->abandoned = true;
		pthread_mutex_unlock(&m->mu);
		return reply_text(c, 503, "control thread not responding\n");
	}
	pthread_mutex_unlock(&m->mu);
	status = req->status;
	body = req->body;
	free(req);
	if (!body)
		return reply_text(c, status, status == 503 ? "stopping\n" : "out of memory\n");
	return reply(c, status, body,
		     kind == REQ_METRICS && status == 200 ? CONTENT_TYPE : "text/plain; charset=utf-8");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **con_cls)
{
	struct wgt_metrics *m = cls;

	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply_text(c, 405, "method not allowed\n");
	if (!strcmp(url, "/metrics"))
		return ask_control(m, c, REQ_METRICS);
	if (!strcmp(url, "/readyz"))
		return ask_control(m, c, REQ_READYZ);
	if (!strcmp(url, "/healthz")) {
		struct wgt_text b = { 0 }, *parts[1] = { &b };
		char why[512];
		bool ok = wgt_health_check(m->dev, why, sizeof(why));

		if (ok)
			wgt_text_puts(&b, "ok\n");
		else
			wgt_text_printf(&b, "stuck: %s\n", why);

		return reply(c, ok ? 200 : 503, wgt_metrics_body_take(parts, 1), "text/plain; charset=utf-8");
	}
	return reply_text(c, 404, "not found: /metrics, /healthz and /readyz are\n");
}

/* ---- lifecycle ---- */

int wgt_metrics_parse_listen(const char *s, union wgt_sockaddr *ret)
{
	union wgt_sockaddr a;
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *port_text;
	unsigned long port;
	char *end;
	size_t n;

	memset(&a, 0, sizeof(a));
	colon = s[0] == '[' ? strstr(s, "]:") : strrchr(s, ':');
	if (!colon)
		return -EINVAL;
	port_text = colon + (s[0] == '[' ? 2 : 1);
	errno = 0;
	port = strtoul(port_text, &end, 10);
	if (errno || end == port_text || *end || port_text[0] == '-' || port < 1 || port > 65535)
		return -EINVAL;
	n = (size_t)(colon - s);
	if (s[0] == '[') {
		if (n - 1 >= sizeof(host))
			return -EINVAL;
		memcpy(host, s + 1, n - 1);
		host[n - 1] = 0;
		if (inet_pton(AF_INET6, host, &a.in6.sin6_addr) != 1)
			return -EINVAL;
		a.in6.sin6_family = AF_INET6;
		a.in6.sin6_port = htons((uint16_t)port);
	} else if (n) {
		if (n >= sizeof(host))
			return -EINVAL;
		memcpy(host, s, n);
		host[n] = 0;
		if (inet_pton(AF_INET, host, &a.in4.sin_addr) != 1)
			return -EINVAL;
		a.in4.sin_family = AF_INET;
		a.in4.sin_port = htons((uint16_t)port);
	} else {
		/* ":PORT": every address, v6 and v4; the port rides in the IPv4 slot. */
		a.in4.sin_family = AF_UNSPEC;
		a.in4.sin_port = htons((uint16_t)port);
	}
	*ret = a;
	return 0;
}

/* Control thread. A listening TCP socket on a (":PORT": IPv6 dual stack, else IPv4). */
static int open_listener(const union wgt_sockaddr *a, int *ret_fd)
{
	union wgt_sockaddr any;
	int one = 1, zero = 0, fd, r;

	if (a->sa.sa_family == AF_UNSPEC) {
		memset(&any, 0, sizeof(any));
		any.in6.sin6_family = AF_INET6;
		any.in6.sin6_port = a->in4.sin_port;
		any.in6.sin6_addr = in6addr_any;
		r = open_listener(&any, ret_fd);
		if (r != -EAFNOSUPPORT && r != -EADDRNOTAVAIL)
			return r;
		/* No IPv6 here: every IPv4 address. */
		memset(&any, 0, sizeof(any));
		any.in4.sin_family = AF_INET;
		any.in4.sin_port = a->in4.sin_port;
		return open_listener(&any, ret_fd);
	}
	fd = socket(a->sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd == -1)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == -1 ||
	    (a->sa.sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&a->in6.sin6_addr) &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) == -1) ||
	    bind(fd, &a->sa, wgt_sockaddr_len(a)) == -1 || listen(fd, 64) == -1) {
		r = -errno;
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

/*
 * Control thread, before privileges are dropped (a port below 1024 needs
 * them) and while no other thread runs: binds the socket, starts no thread.
 */
int wgt_metrics_create(struct wgt_device *dev, const struct wgt_metrics_config *cfg,
		       struct wgt_metrics **ret)
{
	struct wgt_metrics *m;
	union wgt_sockaddr a;
	pthread_condattr_t ca;
	int r;

	r = wgt_metrics_parse_listen(cfg->listen, &a);
	if (r) {
		wgt_err("--metrics-listen: '%s' is not ADDR:PORT, [ADDR]:PORT or :PORT", cfg->listen);
		return r;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->dev = dev;
	m->fd = -1;
	m->listen = cfg->listen;
	m->r.dev = dev;
	m->r.peer_limit = cfg->peer_limit;
	pthread_mutex_init(&m->mu, NULL);
	/* The waiters' deadlines are monotonic, as every clock of ours. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->cond, &ca);
	pthread_condattr_destroy(&ca);
	ev_async_init(&m->async, async_cb);
	ev_async_start(dev->loop, &m->async);
	ev_timer_init(&m->chunk, chunk_cb, 0., 0.);
	r = open_listener(&a, &m->fd);
	if (r) {
		wgt_err("cannot listen for metrics on %s: %s", cfg->listen, strerror(-r));
		wgt_metrics_stop(m);
		return r;
	}
	dev->metrics = m;
	*ret = m;
	return 0;
}

/* Control thread, once the workers run: the server's threads start serving. Returns 0 or -errno. */
int wgt_metrics_start(struct wgt_metrics *m)
{
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD;
	union wgt_sockaddr a;
	socklen_t len = sizeof(a);
	sigset_t all, old;
	int r;

	if (getsockname(m->fd, &a.sa, &len) == 0 && a.sa.sa_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* The server's threads take no signals: they all go to the control thread's loop. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	errno = 0;
	m->mhd = MHD_start_daemon(flags, 0, NULL, NULL, handle, m,
				  MHD_OPTION_LISTEN_SOCKET, m->fd,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S,
				  MHD_OPTION_END);
	r = errno ? -errno : -ENOMEM;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!m->mhd) {
		wgt_err("cannot start the metrics server on %s: %s", m->listen, strerror(-r));
		return r;
	}
	m->fd = -1;   /* the server's now, closed by MHD_stop_daemon() */
	wgt_info("%s: metrics on http://%s/metrics (and /healthz, /readyz), series for up to %u peers",
		 m->dev->ifname, m->listen, m->r.peer_limit);
	return 0;
}

void wgt_metrics_stop(struct wgt_metrics *m)
{
	struct request *req, *next;

	if (!m)
		return;
	/*
	 * Every waiter gets a 503 at once (a request nobody waits for any more
	 * is freed here); then the server can join the connection threads.
	 */
	pthread_mutex_lock(&m->mu);
	m->stopping = true;
	if (m->active) {
		m->active->next = m->queue;
		m->queue = m->active;
	}
	for (req = m->queue; req; req = next) {
		next = req->next;
		if (req->abandoned) {
			free(req);
		} else {
			req->status = 503;
			req->done = true;
		}
	}
	m->queue = NULL;
	m->active = NULL;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->mu);
	if (m->mhd)
		MHD_stop_daemon(m->mhd);
	if (m->fd >= 0)
		close(m->fd);
	wgt_metrics_render_discard(&m->r);
	ev_async_stop(m->dev->loop, &m->async);
	ev_timer_stop(m->dev->loop, &m->chunk);
	m->dev->metrics_cursor = NULL;
	m->dev->metrics = NULL;
	pthread_cond_destroy(&m->cond);
	pthread_mutex_destroy(&m->mu);
	free(m);
}

