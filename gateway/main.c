/* SPDX-License-Identifier: MIT */
/* wgate: the command line, daemonizing, and the control thread's main loop. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ev.h>

#include "common/log.h"
#include "config/conf.h"
#include "crypto/aead.h"
#include "crypto/blake2s.h"
#include "gateway/busy_poll.h"
#include "gateway/cli_peer.h"
#include "gateway/conf_apply.h"
#include "gateway/device.h"
#include "gateway/metrics.h"
#include "gateway/notify.h"
#include "gateway/privs.h"

#define EXIT_USAGE 2

struct options {
	const char *ifname;
	unsigned n_workers;
	bool foreground;
	const char *uapi_dir;
	enum wgt_log_level log_level;
	enum wgt_log_format log_format;
	bool no_tun_offload, no_udp_gso, no_udp_gro;
	unsigned busy_poll_us;
	unsigned nap_us;
	const char *user;
	struct wgt_metrics_config metrics;
	const char *check_config;
	const char *config;
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: wgate [-f|--foreground] [--tun-threads N] [--log-level LEVEL]\n"
		"             [--log-format text|json] [--config FILE] INTERFACE\n"
		"       wgate --check-config FILE\n"
		"\n"
		"A multi-threaded WireGuard gateway with wireguard-go's command line: it\n"
		"creates the TUN device INTERFACE and the UAPI socket\n"
		"/var/run/wireguard/INTERFACE.sock, which `wg` configures.\n"
		"\n"
		"  -f, --foreground     stay in the foreground (default: daemonize once ready)\n"
		"      --config FILE    apply FILE (wg-quick format) at start; reload it on\n"
		"                       SIGHUP and when it changes\n"
		"      --tun-threads N  worker threads, each with its own TUN queue and UDP\n"
		"                       socket (1..%d, default: online CPUs)\n"
		"      --log-level L    error, warn, info (default) or debug\n"
		"      --log-format F   text (default) or json\n"
		"      --no-tun-offload plain packets on the TUN queues (no TSO/USO, no coalescing)\n"
		"      --no-udp-gso     one datagram per UDP send\n"
		"      --no-udp-gro     one datagram per UDP receive\n"
		"      --busy-poll-us N a worker receiving a stream keeps polling up to N us\n"
		"                       before it sleeps (0..%d, 0: off; default %d)\n"
		"      --nap-us N       else it naps up to 4 times N us before it sleeps\n"
		"                       on its sockets (0..%d, 0: off; default %d)\n"
		"      --user NAME      run as user NAME (and its groups) once the device is\n"
		"                       open; CAP_NET_ADMIN is kept, every other privilege goes\n"
		"      --metrics-listen ADDR:PORT  serve /metrics, /healthz and /readyz over HTTP\n"
		"                       (ADDR:PORT, [IPV6]:PORT, or :PORT for every address)\n"
		"      --metrics-peer-limit N  peers with series of their own (1..%u, default %u);\n"
		"                       the others count only in sums\n"
		"      --check-config FILE\n"
		"                       check FILE (wg-quick's format) and exit: each\n"
		"                       problem as FILE:LINE, status 0 if valid, else 1\n"
		"  -h, --help           this text\n"
		"      --version        the version\n",
		WGT_MAX_WORKERS, WGT_BUSY_POLL_MAX_US, WGT_BUSY_POLL_DEFAULT_US, WGT_NAP_MAX_US,
		WGT_NAP_DEFAULT_US, WGT_METRICS_PEER_LIMIT_MAX, WGT_METRICS_PEER_LIMIT_DEFAULT);
}

/* One line on stderr and exit status 2, as for any bad argument. */
static _Noreturn void __attribute__((format(printf, 1, 2))) bad_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "wgate: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see wgate --help)\n");
	exit(EXIT_USAGE);
}

static unsigned default_workers(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		return 1;
	return n > WGT_MAX_WORKERS ? WGT_MAX_WORKERS : (unsigned)n;
}

/* Option `name`'s argument: a decimal number from min to max, whole string, no sign; else exit 2. */
static unsigned option_unsigned(const char *name, const char *arg, unsigned long min,
				unsigned long max)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-' || v < min || v > max)
		bad_usage("%s: '%s' is not a number from %lu to %lu", name, arg, min, max);
	return (unsigned)v;
}

/* What the kernel's dev_valid_name() accepts. */
static bool ifname_valid(const char *name)
{
	if (!name[0] || strlen(name) >= IFNAMSIZ || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	for (; *name; name++)
		if (*name == '/' || *name == ':' || isspace((unsigned char)*name))
			return false;
	return true;
}

static void parse_args(int argc, char **argv, struct options *o)
{
	enum {
		OPT_THREADS = 256, OPT_VERSION, OPT_LOG_LEVEL, OPT_LOG_FORMAT, OPT_UAPI_DIR,
		OPT_NO_TUN_OFFLOAD, OPT_NO_UDP_GSO, OPT_NO_UDP_GRO, OPT_BUSY_POLL, OPT_NAP,
		OPT_USER, OPT_CONFIG,
		OPT_METRICS_LISTEN, OPT_METRICS_PEER_LIMIT,
		OPT_CHECK_CONFIG,
	};
	static const struct option longopts[] = {
		{ "foreground", no_argument, NULL, 'f' },
		{ "tun-threads", required_argument, NULL, OPT_THREADS },
		{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
		{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
		{ "uapi-dir", required_argument, NULL, OPT_UAPI_DIR },
		{ "no-tun-offload", no_argument, NULL, OPT_NO_TUN_OFFLOAD },
		{ "no-udp-gso", no_argument, NULL, OPT_NO_UDP_GSO },
		{ "no-udp-gro", no_argument, NULL, OPT_NO_UDP_GRO },
		{ "busy-poll-us", required_argument, NULL, OPT_BUSY_POLL },
		{ "nap-us", required_argument, NULL, OPT_NAP },
		{ "user", required_argument, NULL, OPT_USER },
		{ "metrics-listen", required_argument, NULL, OPT_METRICS_LISTEN },
		{ "metrics-peer-limit", required_argument, NULL, OPT_METRICS_PEER_LIMIT },
		{ "check-config", required_argument, NULL, OPT_CHECK_CONFIG },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ 0 },
	};
	const char *env = getenv("LOG_LEVEL");
	int c;

	memset(o, 0, sizeof(*o));
	o->n_workers = default_workers();
	o->busy_poll_us = WGT_BUSY_POLL_DEFAULT_US;
	o->nap_us = WGT_NAP_DEFAULT_US;
	o->metrics.peer_limit = WGT_METRICS_PEER_LIMIT_DEFAULT;
	o->log_level = WGT_LOG_INFO;
	/* wireguard-go reads LOG_LEVEL (verbose, error, silent); honour the same names. */
	if (env && !strcmp(env, "verbose"))
		o->log_level = WGT_LOG_DEBUG;
	else if (env && (!strcmp(env, "error") || !strcmp(env, "silent")))
		o->log_level = WGT_LOG_ERROR;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":fh", longopts, NULL)) != -1) {
		switch (c) {
		case 'f':
			o->foreground = true;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case OPT_VERSION:
#ifdef WGT_TEST_HOOKS
			printf("wgate v%s (test hooks)\n", WGT_VERSION);
#else
			printf("wgate v%s\n", WGT_VERSION);
#endif
			exit(0);
		case OPT_THREADS:
			o->n_workers = option_unsigned("--tun-threads", optarg, 1, WGT_MAX_WORKERS);
			break;
		case OPT_LOG_LEVEL:
			if (wgt_log_level_parse(optarg, &o->log_level))
				bad_usage("--log-level: unknown level '%s'", optarg);
			break;
		case OPT_LOG_FORMAT:
			if (!strcmp(optarg, "text"))
				o->log_format = WGT_LOG_TEXT;
			else if (!strcmp(optarg, "json"))
				o->log_format = WGT_LOG_JSON;
			else
				bad_usage("--log-format: unknown format '%s'", optarg);
			break;
		case OPT_UAPI_DIR:
			o->uapi_dir = optarg;
			break;
		case OPT_NO_TUN_OFFLOAD:
			o->no_tun_offload = true;
			break;
		case OPT_NO_UDP_GSO:
			o->no_udp_gso = true;
			break;
		case OPT_NO_UDP_GRO:
			o->no_udp_gro = true;
			break;
		case OPT_BUSY_POLL:
			o->busy_poll_us = option_unsigned("--busy-poll-us", optarg, 0,
							  WGT_BUSY_POLL_MAX_US);
			break;
		case OPT_NAP:
			o->nap_us = option_unsigned("--nap-us", optarg, 0, WGT_NAP_MAX_US);
			break;
		case OPT_USER:
			o->user = optarg;
			break;
		case OPT_METRICS_LISTEN: {
			union wgt_sockaddr a;

			if (wgt_metrics_parse_listen(optarg, &a))
				bad_usage("--metrics-listen: '%s' is not ADDR:PORT, [IPV6]:PORT or :PORT",
					  optarg);
			o->metrics.listen = optarg;
			break;
		}
		case OPT_METRICS_PEER_LIMIT:
			o->metrics.peer_limit = option_unsigned("--metrics-peer-limit", optarg, 1,
								WGT_METRICS_PEER_LIMIT_MAX);
			break;
		case OPT_CHECK_CONFIG:
			o->check_config = optarg;
			break;
		case OPT_CONFIG:
			o->config = optarg;
			break;
		case ':':
			bad_usage("option '%s' needs an argument", argv[optind - 1]);
		default:
			bad_usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (o->check_config) {
		if (optind < argc)
			bad_usage("unexpected argument '%s' after --check-config", argv[optind]);
		return;
	}
	if (optind >= argc)
		bad_usage("missing the interface name");
	if (optind + 1 < argc)
		bad_usage("unexpected argument '%s'", argv[optind + 1]);
	o->ifname = argv[optind];
	if (!ifname_valid(o->ifname))
		bad_usage("'%s' is not a valid interface name (1 to %d characters, no '/', ':' or "
			  "white space, not '.' or '..')", o->ifname, IFNAMSIZ - 1);
}

static void print_conf_problem(void *arg, enum wgt_conf_severity sev, const char *msg)
{
	fprintf(stderr, "%s\n", msg);
}

/*
 * --check-config: every problem on stderr as FILE:LINE (the parser never
 * quotes a key), one summary line on stdout when the file is valid. Needs
 * neither root nor an interface. Returns the exit status: 0 valid, 1 not.
 */
static int check_config(const char *path)
{
	struct wgt_conf *conf = NULL;

	if (wgt_conf_parse_file(path, print_conf_problem, NULL, &conf))
		return 1;
	printf("%s: ok (%zu peer%s)\n", path, conf->wg.n_peers, conf->wg.n_peers == 1 ? "" : "s");
	wgt_conf_free(conf);
	return 0;
}

/*
 * Threads do not survive fork(), so the daemon forks first and the parent
 * waits on a pipe until the child reports that the TUN device and the UAPI
 * socket are ready (one byte 0) or that it failed (its exit status).
 */
static int daemonize(int *ret_notify_fd)
{
	int p[2];
	pid_t pid;
	char status;

	if (pipe2(p, O_CLOEXEC) == -1)
		return -errno;
	pid = fork();
	if (pid == -1)
		return -errno;
	if (pid > 0) {
		close(p[1]);
		if (read(p[0], &status, 1) != 1)
			_exit(1);
		_exit(status);
	}
	close(p[0]);
	if (setsid() == -1)
		return -errno;
	*ret_notify_fd = p[1];
	return 0;
}

static void detach_stdio(void)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (fd == -1)
		return;
	dup2(fd, STDIN_FILENO);
	/* As wireguard-go: logs stay on the terminal only when LOG_LEVEL asks for them. */
	if (!getenv("LOG_LEVEL")) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
	}
	if (fd > STDERR_FILENO)
		close(fd);
}

int main(int argc, char **argv)
{
	struct wgt_device_config cfg = { 0 };
	struct wgt_device *dev = NULL;
	struct wgt_privs_user user;
	struct wgt_metrics *metrics = NULL;
	struct wgt_conf *conf = NULL;
	uint8_t conf_digest[WGT_CONF_DIGEST_LEN];
	struct ev_loop *loop;
	struct options o;
	int notify_fd = -1;
	char status;
	int r;

	if (argc > 1 && !strcmp(argv[1], "peer"))
		return wgt_cli_peer_main(argc - 1, argv + 1);
	/* Before anything else: it may re-execute the process (crypto/aead_provider.c). */
	wgt_aead_tune_cpu_caps(argv);
	parse_args(argc, argv, &o);
	if (o.check_config)
		return check_config(o.check_config);
	wgt_log_setup(o.log_level, o.log_format);
	signal(SIGPIPE, SIG_IGN);
	r = o.user ? wgt_privs_lookup_user(o.user, &user) : 0;
	if (r) {
		wgt_err("--user %s: %s", o.user, r == -ENOENT ? "no such user" : strerror(-r));
		return 1;
	}
	if (!o.foreground) {
		r = daemonize(&notify_fd);
		if (r) {
			wgt_err("cannot daemonize: %s", strerror(-r));
			return 1;
		}
	}
	r = wgt_crypto_init();
	if (r) {
		wgt_err("cannot initialise OpenSSL: %s", strerror(-r));
		goto fail;
	}
	wgt_info("%s", wgt_aead_cpu_caps_note());
	/* Before the device exists: a bad file leaves nothing behind. */
	if (o.config && wgt_conf_load(o.config, print_conf_problem, NULL, &conf, conf_digest))
		goto fail;
	loop = ev_default_loop(EVFLAG_AUTO | EVFLAG_SIGNALFD);
	if (!loop) {
		wgt_err("cannot create the event loop");
		goto fail;
	}
	umask(0077);
	cfg.ifname = o.ifname;
	cfg.n_workers = o.n_workers;
	cfg.uapi_dir = o.uapi_dir;
	cfg.no_tun_offload = o.no_tun_offload;
	cfg.no_udp_gso = o.no_udp_gso;
	cfg.no_udp_gro = o.no_udp_gro;
	cfg.busy_poll_us = o.busy_poll_us;
	cfg.nap_us = o.nap_us;
	r = wgt_device_create(loop, &cfg, &dev);
	if (r || (o.metrics.listen && wgt_metrics_create(dev, &o.metrics, &metrics)))
		goto fail;
	/*
	 * Every descriptor that needs privileges is open, and no other thread runs
	 * yet. A port below 1024 the file asks for keeps its capability.
	 */
	r = wgt_privs_drop(o.user ? &user : NULL,
			   conf && (conf->wg.flags & WGT_UAPI_DEV_HAS_LISTEN_PORT) ?
			   conf->wg.listen_port : dev->listen_port);
	if (!r)
		r = wgt_device_start(dev);
	if (!r && metrics)
		r = wgt_metrics_start(metrics);
	/* After the drop: the file is applied, and reloaded, with what is left. */
	if (!r && conf) {
		r = wgt_conf_watch_start(dev, o.config, conf, conf_digest);
		conf = NULL;
	}
	if (r)
		goto fail;
	if (notify_fd >= 0) {
		status = 0;
		if (write(notify_fd, &status, 1) != 1)
			wgt_warn("cannot notify the parent process");
		close(notify_fd);
		detach_stdio();
	}
	wgt_notify_ready(dev);
	r = wgt_device_run(dev);
	wgt_notify_stopping(dev);
	wgt_metrics_stop(metrics);
	wgt_device_destroy(dev);
	wgt_info("%s: stopped", o.ifname);
	return r;
fail:
	wgt_metrics_stop(metrics);
	wgt_device_destroy(dev);
	wgt_conf_free(conf);
	if (notify_fd >= 0) {
		status = 1;
		if (write(notify_fd, &status, 1) != 1)
			_exit(1);
	}
	return 1;
}
