/* SPDX-License-Identifier: MIT */
/* The privilege drop in a forked child, in a private netns: what is kept, what goes, what still works. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cap-ng.h>

#include "gateway/privs.h"
#include "io/rtnl.h"
#include "io/tun.h"
#include "io/udp.h"
#include "netns.h"

/* The child reports its first failed expectation here, the parent prints it. */
static int report_fd = -1;

static _Noreturn void __attribute__((format(printf, 1, 2))) child_fail(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0 && write(report_fd, buf, strlen(buf)) < 0)
		_exit(2);
	_exit(1);
}

#define EXPECT(cond, ...) do { if (!(cond)) child_fail(__VA_ARGS__); } while (0)

/* Runs fn in a forked child (the drop is for good) and fails the test with its report. */
static void run_child(void (*fn)(void *), void *arg)
{
	char msg[512] = "";
	int p[2], status = 0;
	ssize_t n;
	pid_t pid;

	ck_assert_int_eq(pipe(p), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(p[0]);
		report_fd = p[1];
		fn(arg);
		_exit(0);
	}
	close(p[1]);
	n = read(p[0], msg, sizeof(msg) - 1);
	msg[n > 0 ? n : 0] = '\0';
	close(p[0]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: %s (status 0x%x)",
		      msg[0] ? msg : "died", status);
}

static bool has_addr;

static int find_addr(void *arg, int family, const uint8_t *addr, uint8_t prefix)
{
	if (family == AF_INET && !memcmp(addr, arg, 4) && prefix == 24)
		has_addr = true;
	return 0;
}

/* Child: the sets after the drop, and the work a reload and `wg set` still do. */
static void expect_dropped(unsigned ifindex, const char *ifname, bool bind_service)
{
	uint8_t a[4] = { 10, 77, 0, 1 }, dst[4] = { 10, 78, 0, 0 };
	int fds4[2], fds6[2], fd;
	uint16_t port;
	unsigned mtu;

	EXPECT(capng_get_caps_process() == 0, "capng_get_caps_process");
	for (unsigned c = 0; c <= CAP_LAST_CAP; c++) {
		bool want = c == CAP_NET_ADMIN || (bind_service && c == CAP_NET_BIND_SERVICE);

		EXPECT(capng_have_capability(CAPNG_EFFECTIVE, c) == want, "effective cap %u: %d", c,
		       !want);
		EXPECT(capng_have_capability(CAPNG_PERMITTED, c) == want, "permitted cap %u", c);
		EXPECT(!capng_have_capability(CAPNG_INHERITABLE, c), "inheritable cap %u", c);
		EXPECT(capng_have_capability(CAPNG_BOUNDING_SET, c) == want, "bounding cap %u", c);
	}
	EXPECT(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1, "no_new_privs not set");
	/* What a reload applies: addresses, MTU, routes (rtnetlink, CAP_NET_ADMIN). */
	EXPECT(wgt_rtnl_addr_add(ifindex, AF_INET, a, 24) == 0, "address add after the drop");
	has_addr = false;
	EXPECT(wgt_rtnl_addr_list(ifindex, find_addr, a) == 0 && has_addr, "address not listed");
	EXPECT(wgt_rtnl_set_mtu(ifindex, 1380) == 0, "MTU after the drop");
	EXPECT(wgt_tun_get_mtu(ifname, &mtu) == 0 && mtu == 1380, "MTU is %u", mtu);
	EXPECT(wgt_rtnl_set_up(ifindex, true) == 0, "link up after the drop");
	EXPECT(wgt_rtnl_route_add(ifindex, AF_INET, dst, 16, RT_TABLE_MAIN) == 0, "route add");
	EXPECT(wgt_rtnl_route_del(ifindex, AF_INET, dst, 16, RT_TABLE_MAIN) == 0, "route del");
	EXPECT(wgt_rtnl_addr_del(ifindex, AF_INET, a, 24) == 0, "address del after the drop");
	/* What `wg set listen-port ... fwmark ...` does: new sockets with SO_MARK and forced buffers. */
	EXPECT(wgt_udp_open_dual(0, 0x42, 2, fds4, fds6, &port) == 0, "sockets with a fwmark");
	/* What is gone: namespaces (CAP_SYS_ADMIN). */
	EXPECT(unshare(CLONE_NEWNET) == -1 && errno == EPERM, "unshare still allowed");
	/* A port below 1024 only with CAP_NET_BIND_SERVICE kept. */
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	{
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(853) };
		int r = bind(fd, (struct sockaddr *)&sin, sizeof(sin));

		EXPECT(bind_service ? r == 0 : r == -1 && errno == EACCES, "bind to 853: %d", r);
	}
	close(fd);
}

struct drop_case {
	const char *user;          /* NULL: stay root */
	uint16_t port;
};

static void child_drop(void *arg)
{
	const struct drop_case *c = arg;
	struct wgt_privs_user user;
	char ifname[IFNAMSIZ];
	unsigned ifindex;
	int tun_fd;

	EXPECT(wgt_tun_open("wgtpv%d", 1, 0, &tun_fd, ifname) == 0, "TUN open as root");
	EXPECT(wgt_tun_get_ifindex(ifname, &ifindex) == 0, "ifindex");
	if (c->user)
		EXPECT(wgt_privs_lookup_user(c->user, &user) == 0, "no user %s", c->user);
	EXPECT(wgt_privs_drop(c->user ? &user : NULL, c->port) == 0, "wgt_privs_drop failed");
	if (c->user) {
		uid_t r, e, s;

		EXPECT(getresuid(&r, &e, &s) == 0 && r == user.uid && e == user.uid && s == user.uid,
		       "uids %u %u %u", (unsigned)r, (unsigned)e, (unsigned)s);
		EXPECT(getgid() == user.gid && getegid() == user.gid, "gid");
		EXPECT(setuid(0) == -1, "setuid(0) succeeded");
		EXPECT(open("/etc/shadow", O_RDONLY) == -1 && errno == EACCES, "/etc/shadow readable");
	}
	expect_dropped(ifindex, ifname, c->port && c->port < 1024);
}

START_TEST(test_drop_root)
{
	struct drop_case c = { .user = NULL, .port = 51820 };

	run_child(child_drop, &c);
}
END_TEST

START_TEST(test_drop_nobody)
{
	struct drop_case c = { .user = "nobody", .port = 0 };
	struct wgt_privs_user u;

	if (wgt_privs_lookup_user("nobody", &u))
		return;
	run_child(child_drop, &c);
}
END_TEST

START_TEST(test_drop_low_port)
{
	struct drop_case c = { .user = "nobody", .port = 53 };
	struct wgt_privs_user u;

	if (wgt_privs_lookup_user("nobody", &u))
		return;
	run_child(child_drop, &c);
}
END_TEST

START_TEST(test_lookup)
{
	struct wgt_privs_user u;

	ck_assert_int_eq(wgt_privs_lookup_user("root", &u), 0);
	ck_assert_uint_eq(u.uid, 0);
	ck_assert_int_eq(wgt_privs_lookup_user("no-such-user-wgt", &u), -ENOENT);
	ck_assert_int_eq(wgt_privs_lookup_user("", &u), -EINVAL);
}
END_TEST

#ifndef __SANITIZE_THREAD__
static void *sleeper(void *arg)
{
	pause();
	return NULL;
}

/* Capabilities are per thread: a second thread would keep them all, so the drop refuses. */
static void child_threads(void *arg)
{
	pthread_t t;

	EXPECT(pthread_create(&t, NULL, sleeper, NULL) == 0, "pthread_create");
	EXPECT(wgt_privs_drop(NULL, 0) == -EBUSY, "drop with two threads was not refused");
}
#endif

/* Not under ThreadSanitizer, whose runtime may start a thread of its own (privs.c). */
START_TEST(test_refuses_threads)
{
#ifndef __SANITIZE_THREAD__
	run_child(child_threads, NULL);
#endif
}
END_TEST

static Suite *privs_suite(void)
{
	Suite *s = suite_create("privs");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_lookup);
	tcase_add_test(tc, test_drop_root);
	tcase_add_test(tc, test_drop_nobody);
	tcase_add_test(tc, test_drop_low_port);
	tcase_add_test(tc, test_refuses_threads);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (unit_enter_netns("test_privs", "capabilities and a TUN device, a network namespace"))
		return 77;
	sr = srunner_create(privs_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
