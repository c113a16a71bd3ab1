/* SPDX-License-Identifier: MIT */
/* Check suite for the metrics endpoint: --metrics-listen parsing, label escaping, keys, the render. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/allowedips.h"
#include "gateway/device.h"
#include "gateway/metrics_pvt.h"

START_TEST(test_parse_listen)
{
	static const char *const bad[] = {
		"", "9586", "1.2.3.4", "1.2.3.4:", "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:-1",
		"1.2.3.4:80x", "[::1]", "[::1]80", "::1:80", "localhost:80", "[1.2.3.4]:80",
		"1.2.3:80",
	};
	union wgt_sockaddr a;
	char host[INET6_ADDRSTRLEN];

	ck_assert_int_eq(wgt_metrics_parse_listen("127.0.0.1:9586", &a), 0);
	ck_assert_int_eq(a.sa.sa_family, AF_INET);
	ck_assert_uint_eq(ntohs(a.in4.sin_port), 9586);
	ck_assert_str_eq(inet_ntop(AF_INET, &a.in4.sin_addr, host, sizeof(host)), "127.0.0.1");
	ck_assert_int_eq(wgt_metrics_parse_listen("[fd00::1]:65535", &a), 0);
	ck_assert_int_eq(a.sa.sa_family, AF_INET6);
	ck_assert_uint_eq(ntohs(a.in6.sin6_port), 65535);
	ck_assert_str_eq(inet_ntop(AF_INET6, &a.in6.sin6_addr, host, sizeof(host)), "fd00::1");
	ck_assert_int_eq(wgt_metrics_parse_listen(":1", &a), 0);
	ck_assert_int_eq(a.sa.sa_family, AF_UNSPEC);
	ck_assert_uint_eq(ntohs(a.in4.sin_port), 1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(wgt_metrics_parse_listen(bad[i], &a) == -EINVAL, "'%s' accepted", bad[i]);
}
END_TEST

START_TEST(test_label_escape_and_key)
{
	struct wgt_text t = { 0 };
	uint8_t key[WGT_KEY_LEN];
	char b64[45];

	wgt_text_label(&t, "a\"b\\c\nd");
	wgt_text_label(&t, "");
	wgt_text_label(&t, "\n");
	ck_assert_str_eq(t.p, "a\\\"b\\\\c\\nd\\n");
	wgt_text_free(&t);

	for (unsigned i = 0; i < WGT_KEY_LEN; i++)
		key[i] = (uint8_t)i;
	wgt_metrics_key_base64(key, b64);
	ck_assert_str_eq(b64, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
}
END_TEST

/* A device with one worker and n peers, just enough for the renderer. */
static struct wgt_device *fake_device(struct wgt_peer **peers, unsigned n)
{
	struct wgt_device *dev = calloc(1, sizeof(*dev));

	ck_assert_ptr_nonnull(dev);
	strcpy(dev->ifname, "wg\"0");
	dev->n_workers = 1;
	dev->workers = calloc(1, sizeof(*dev->workers));
	dev->allowedips = wgt_allowedips_new();
	ck_assert_ptr_nonnull(dev->workers);
	ck_assert_ptr_nonnull(dev->allowedips);
	atomic_store(&dev->workers[0].stats.rx_no_keypair, 7);
	dev->staged_drops = 3;
	/* Send errors: 9 on the worker (2 EAGAIN, 5 ENOBUFS), 4 on the control thread (1, 1). */
	atomic_store(&dev->workers[0].stats.tx_send_errors, 9);
	atomic_store(&dev->workers[0].stats.tx_send_eagain, 2);
	atomic_store(&dev->workers[0].stats.tx_send_enobufs, 5);
	dev->ctrl_send_errors = 4;
	dev->ctrl_send_eagain = 1;
	dev->ctrl_send_enobufs = 1;
	dev->peer_add_failures = 6;
	dev->n_sessions = 2;
	dev->session_alloc_failures = 5;
	for (unsigned i = 0; i < n; i++) {
		struct wgt_peer *p = aligned_alloc(64, WGT_ALIGN_UP(sizeof(*p), 64));
		uint8_t addr[4] = { 10, 0, 0, (uint8_t)(i + 1) };

		ck_assert_ptr_nonnull(p);
		memset(p, 0, sizeof(*p));
		p->pcpu = aligned_alloc(64, 2 * sizeof(p->pcpu[0]));
		ck_assert_ptr_nonnull(p->pcpu);
		memset(p->pcpu, 0, 2 * sizeof(p->pcpu[0]));
		p->dev = dev;
		memset(p->remote_static, (int)i + 1, WGT_KEY_LEN);
		atomic_store(&p->pcpu[0].rx_bytes, 1000 * (i + 1));
		atomic_store(&p->pcpu[1].rx_bytes, 148);    /* the control thread's slot */
		atomic_store(&p->pcpu[0].tx_bytes, 10 * (i + 1));
		p->last_handshake_ns = (1700000000 + i) * WGT_NSEC_PER_SEC + 999999999;
		ck_assert_int_eq(wgt_allowedips_insert(dev->allowedips, AF_INET, addr, 32, p), 0);
		p->list_prev = i ? peers[i - 1] : NULL;
		if (i)
			peers[i - 1]->list_next = p;
		else
			dev->peers_head = p;
		dev->peers_tail = p;
		peers[i] = p;
	}
	dev->n_peers = n;
	return dev;
}

static void fake_device_free(struct wgt_device *dev)
{
	for (struct wgt_peer *p = dev->peers_head, *next; p; p = next) {
		next = p->list_next;
		free(atomic_load(&p->name));
		free(p->pcpu);
		free(p);
	}
	wgt_allowedips_free(dev->allowedips);
	free(dev->workers);
	free(dev);
}

/* Renders to one string, as the connection would send it. */
static char *render(struct wgt_device *dev, unsigned limit)
{
	struct wgt_metrics_render r = { .dev = dev, .peer_limit = limit };
	struct wgt_metrics_body *body;
	struct wgt_text out = { 0 };

	wgt_metrics_render_begin(&r);
	while (!wgt_metrics_render_step(&r))
		;
	body = wgt_metrics_render_end(&r);
	ck_assert_ptr_nonnull(body);
	ck_assert_ptr_null(dev->metrics_cursor);
	for (unsigned i = 0; i < body->n; i++)
		wgt_text_put(&out, body->part[i].p ? body->part[i].p : "", body->part[i].len);
	wgt_metrics_body_free(body);
	ck_assert(!out.failed);
	return out.p;
}

static unsigned count(const char *text, const char *needle)
{
	unsigned n = 0;

	for (const char *p = text; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

START_TEST(test_render)
{
	struct wgt_peer *peers[3];
	struct wgt_device *dev = fake_device(peers, 3);
	char *text;

	atomic_store(&peers[0]->name, strdup("al\"ice\n"));
	text = render(dev, 1000);
	/* Escaped labels; the name only where one is configured. */
	ck_assert_ptr_nonnull(strstr(text,
		"wireguard_peer_receive_bytes_total{device=\"wg\\\"0\",public_key="
		"\"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\",name=\"al\\\"ice\\n\"} 1148\n"));
	ck_assert_ptr_nonnull(strstr(text,
		"wireguard_peer_transmit_bytes_total{device=\"wg\\\"0\",public_key="
		"\"AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=\"} 20\n"));
	ck_assert_ptr_nonnull(strstr(text,
		"wireguard_peer_last_handshake_seconds{device=\"wg\\\"0\",public_key="
		"\"AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=\"} 1700000002\n"));
	ck_assert_ptr_nonnull(strstr(text, "allowed_ips=\"10.0.0.2/32\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(text, ",friendly_name=\"al\\\"ice\\n\"} 1148\n"));
	ck_assert_ptr_nonnull(strstr(text, "wgate_drops_total{reason=\"no_session\"} 7\n"));
	ck_assert_ptr_nonnull(strstr(text, "wgate_drops_total{reason=\"staging_overflow\"} 3\n"));
	ck_assert_ptr_nonnull(strstr(text, "wgate_udp_send_errors_total{errno=\"EAGAIN\"} 3\n"));
	ck_assert_ptr_nonnull(strstr(text, "wgate_udp_send_errors_total{errno=\"ENOBUFS\"} 6\n"));
	ck_assert_ptr_nonnull(strstr(text, "wgate_udp_send_errors_total{errno=\"other\"} 4\n"));
	ck_assert_ptr_nonnull(strstr(text, "wgate_peer_add_failures_total 6\n"));
	ck_assert_ptr_nonnull(strstr(text, "wgate_peers_with_session_state 2\n"));
	ck_assert_ptr_nonnull(strstr(text, "wgate_session_state_alloc_failures_total 5\n"));
	ck_assert_ptr_nonnull(strstr(text, "wgate_peers 3\n"));
	ck_assert_ptr_nonnull(strstr(text, "wgate_peers_receive_bytes_total 6444\n"));
	ck_assert_ptr_nonnull(strstr(text, "wgate_metrics_peers_omitted 0\n"));
	/* Every family once, with its HELP and TYPE. */
	ck_assert_uint_eq(count(text, "# TYPE wireguard_peer_receive_bytes_total counter\n"), 1);
	ck_assert_uint_eq(count(text, "\nwireguard_peer_receive_bytes_total{"), 3);
	ck_assert_uint_eq(count(text, "\nwireguard_sent_bytes_total{"), 3);
	free(text);

	/* A limit: series for the first peer only, the others in the sums and the gauge. */
	text = render(dev, 1);
	ck_assert_uint_eq(count(text, "\nwireguard_peer_receive_bytes_total{"), 1);
	ck_assert_uint_eq(count(text, "\nwireguard_peer_allowed_ips_info{"), 1);
	ck_assert_ptr_nonnull(strstr(text, "wgate_peers_receive_bytes_total 6444\n"));
	ck_assert_ptr_nonnull(strstr(text, "wgate_metrics_peers_omitted 2\n"));
	free(text);
	fake_device_free(dev);
}
END_TEST

/* A render interrupted midway leaves no cursor behind and frees what it held. */
START_TEST(test_render_discard)
{
	struct wgt_peer *peers[2];
	struct wgt_device *dev = fake_device(peers, 2);
	struct wgt_metrics_render r = { .dev = dev, .peer_limit = 10 };

	wgt_metrics_render_begin(&r);
	ck_assert_ptr_eq(dev->metrics_cursor, peers[0]);
	wgt_metrics_render_discard(&r);
	ck_assert_ptr_null(dev->metrics_cursor);
	ck_assert(!r.active);
	fake_device_free(dev);
}
END_TEST

static Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_parse_listen);
	tcase_add_test(tc, test_label_escape_and_key);
	tcase_add_test(tc, test_render);
	tcase_add_test(tc, test_render_discard);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(metrics_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
