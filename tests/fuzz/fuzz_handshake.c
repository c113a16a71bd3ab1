/* SPDX-License-Identifier: MIT */
/* Fuzzes every parser of handshake-phase datagrams: classification, MAC checks, initiations, responses and cookie replies. */
#include <endian.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "crypto/cookie.h"
#include "crypto/messages.h"
#include "crypto/noise.h"

/*
 * The first input byte picks the target (low 7 bits, modulo TARGET_COUNT)
 * and the source address family (bit 7); the rest is the datagram.
 */
enum target {
	TARGET_RECEIVE,            /* classify, then what the gateway does with the type */
	TARGET_VALIDATE,           /* mac1 only */
	TARGET_VALIDATE_COOKIE,    /* mac1 and mac2, as under load */
	TARGET_CONSUME_INITIATION,
	TARGET_CONSUME_RESPONSE,
	TARGET_CONSUME_COOKIE,
	TARGET_CREATE_REPLY,
	TARGET_COUNT,
};

#define SELECT_IPV6 0x80

/* Working copies, restored from the fixture's pristine states before each input. */
static struct wgt_noise_handshake responder_hs;
static struct wgt_noise_handshake initiator_hs;
static struct wgt_cookie_checker responder_checker;
static struct wgt_cookie_checker initiator_checker;
static struct wgt_cookie_maker initiator_maker;
static union wgt_sockaddr src6;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int ret = fuzz_fixture_init();

	if (ret) {
		fprintf(stderr, "fuzz_handshake: fixture: %s\n", strerror(-ret));
		abort();
	}
	atexit(fuzz_fixture_free);
	src6.in6.sin6_family = AF_INET6;
	src6.in6.sin6_port = htons(51820);
	src6.in6.sin6_addr.s6_addr[0] = 0x20; /* 2001:db8::1 */
	src6.in6.sin6_addr.s6_addr[1] = 0x01;
	src6.in6.sin6_addr.s6_addr[2] = 0x0d;
	src6.in6.sin6_addr.s6_addr[3] = 0xb8;
	src6.in6.sin6_addr.s6_addr[15] = 0x01;
	return 0;
}

/* The state a failed consume must not have touched (padding excluded). */
static bool handshake_equal(const struct wgt_noise_handshake *a, const struct wgt_noise_handshake *b)
{
	return a->state == b->state && a->local_index == b->local_index &&
	       a->remote_index == b->remote_index &&
	       a->last_initiation_consumption == b->last_initiation_consumption &&
	       !memcmp(a->hash, b->hash, WGT_KEY_LEN) &&
	       !memcmp(a->chaining_key, b->chaining_key, WGT_KEY_LEN) &&
	       !memcmp(a->ephemeral_private, b->ephemeral_private, WGT_KEY_LEN) &&
	       !memcmp(a->remote_ephemeral, b->remote_ephemeral, WGT_KEY_LEN) &&
	       !memcmp(a->latest_timestamp, b->latest_timestamp, WGT_TIMESTAMP_LEN);
}

static void check_classify(const uint8_t *msg, size_t len)
{
	enum wgt_message_type type = wgt_msg_classify(msg, len);

	if (type == WGT_MSG_INVALID)
		return;
	FUZZ_CHECK(len >= 4 && msg[0] == type && !msg[1] && !msg[2] && !msg[3]);
	switch (type) {
	case WGT_MSG_HANDSHAKE_INITIATION:
		FUZZ_CHECK(len == WGT_MSG_INITIATION_LEN);
		break;
	case WGT_MSG_HANDSHAKE_RESPONSE:
		FUZZ_CHECK(len == WGT_MSG_RESPONSE_LEN);
		break;
	case WGT_MSG_HANDSHAKE_COOKIE:
		FUZZ_CHECK(len == WGT_MSG_COOKIE_LEN);
		break;
	case WGT_MSG_DATA:
		FUZZ_CHECK(len >= WGT_MSG_DATA_MIN_LEN);
		break;
	default:
		FUZZ_CHECK(!"unknown type");
	}
}

static enum wgt_cookie_mac_state validate(struct wgt_cookie_checker *c, const uint8_t *msg,
					  size_t len, const union wgt_sockaddr *src,
					  bool check_cookie)
{
	enum wgt_cookie_mac_state state;

	state = wgt_cookie_validate(c, msg, len, src, check_cookie, FUZZ_NOW);
	if (len != WGT_MSG_INITIATION_LEN && len != WGT_MSG_RESPONSE_LEN)
		FUZZ_CHECK(state == WGT_COOKIE_INVALID_MAC);
	if (!check_cookie)
		FUZZ_CHECK(state != WGT_COOKIE_VALID_MAC_WITH_COOKIE);
	return state;
}

/* The gateway's checker validates what it receives: initiations as responder, responses as initiator. */
static struct wgt_cookie_checker *checker_for(size_t len)
{
	return len == WGT_MSG_RESPONSE_LEN ? &initiator_checker : &responder_checker;
}

static void consume_initiation(const uint8_t *msg, size_t len)
{
	struct wgt_noise_handshake *hs = NULL, *again = NULL;
	struct wgt_noise_keypair *kp = NULL;
	struct wgt_noise_keypairs kps;
	struct wgt_cookie_maker maker = fuzz_fx.responder_maker;
	struct wgt_msg_response resp;
	int ret;

	if (wgt_msg_classify(msg, len) != WGT_MSG_HANDSHAKE_INITIATION)
		return;
	ret = wgt_noise_consume_initiation((const struct wgt_msg_initiation *)msg, &fuzz_fx.responder,
					   fuzz_lookup, &responder_hs, FUZZ_NOW, &hs);
	if (ret) {
		FUZZ_CHECK(ret == -EBADMSG || ret == -ENOKEY || ret == -ESTALE || ret == -EBUSY);
		/* A refused initiation leaves the peer as it was. */
		FUZZ_CHECK(handshake_equal(&responder_hs, &fuzz_fx.pristine_responder_hs));
		return;
	}
	FUZZ_CHECK(hs == &responder_hs && hs->state == WGT_HANDSHAKE_CONSUMED_INITIATION);

	/* The same message a second later, past the flood guard, is a replay. */
	ret = wgt_noise_consume_initiation((const struct wgt_msg_initiation *)msg, &fuzz_fx.responder,
					   fuzz_lookup, &responder_hs, FUZZ_NOW + WGT_NSEC_PER_SEC,
					   &again);
	FUZZ_CHECK(ret == -ESTALE && !again);

	wgt_noise_keypairs_init(&kps);
	ret = wgt_noise_create_response(hs, &resp, FUZZ_RESPONDER_INDEX);
	if (!ret)
		ret = wgt_cookie_add_macs(&maker, (uint8_t *)&resp, sizeof(resp), FUZZ_NOW);
	if (!ret)
		ret = wgt_noise_begin_session(hs, &kps, FUZZ_NOW, &kp);
	FUZZ_CHECK(!ret && !kp->is_initiator && kp->local_index == FUZZ_RESPONDER_INDEX);
	FUZZ_CHECK(atomic_load(&kps.next) == kp && !atomic_load(&kps.current));
	wgt_noise_keypairs_clear(&kps);
	wgt_cookie_maker_clear(&maker);
}

static void consume_response(const uint8_t *msg, size_t len)
{
	const struct wgt_msg_response *resp = (const struct wgt_msg_response *)msg;
	struct wgt_noise_keypair *kp = NULL;
	struct wgt_noise_keypairs kps;
	int ret;

	if (wgt_msg_classify(msg, len) != WGT_MSG_HANDSHAKE_RESPONSE)
		return;
	ret = wgt_noise_consume_response(&initiator_hs, resp);
	if (ret) {
		FUZZ_CHECK(ret == -EINVAL || ret == -EBADMSG || ret == -ENOKEY);
		/* A forged response must not spoil the pending handshake. */
		FUZZ_CHECK(handshake_equal(&initiator_hs, &fuzz_fx.pristine_initiator_hs));
		return;
	}
	FUZZ_CHECK(initiator_hs.state == WGT_HANDSHAKE_CONSUMED_RESPONSE);
	FUZZ_CHECK(initiator_hs.remote_index == le32toh(resp->sender_index));

	wgt_noise_keypairs_init(&kps);
	ret = wgt_noise_begin_session(&initiator_hs, &kps, FUZZ_NOW, &kp);
	FUZZ_CHECK(!ret && kp->is_initiator && atomic_load(&kps.current) == kp);
	FUZZ_CHECK(initiator_hs.state == WGT_HANDSHAKE_ZEROED);
	wgt_noise_keypairs_clear(&kps);
}

static void consume_cookie(const uint8_t *msg, size_t len)
{
	struct wgt_msg_initiation init = fuzz_fx.initiation;
	struct wgt_cookie_checker checker = fuzz_fx.pristine_responder_checker;
	int ret;

	if (wgt_msg_classify(msg, len) != WGT_MSG_HANDSHAKE_COOKIE)
		return;
	ret = wgt_cookie_consume_reply(&initiator_maker, (const struct wgt_msg_cookie *)msg, FUZZ_NOW);
	if (ret) {
		FUZZ_CHECK(ret == -EBADMSG || ret == -EINVAL);
		FUZZ_CHECK(!initiator_maker.have_cookie);
		return;
	}
	FUZZ_CHECK(initiator_maker.have_cookie);
	/* One reply per message sent. */
	FUZZ_CHECK(wgt_cookie_consume_reply(&initiator_maker, (const struct wgt_msg_cookie *)msg,
					    FUZZ_NOW) == -EINVAL);
	/* Only an authentic cookie opens, and its mac2 passes the checker that made it. */
	ret = wgt_cookie_add_macs(&initiator_maker, (uint8_t *)&init, sizeof(init), FUZZ_NOW);
	FUZZ_CHECK(!ret);
	FUZZ_CHECK(wgt_cookie_validate(&checker, (const uint8_t *)&init, sizeof(init), &fuzz_fx.src,
				       true, FUZZ_NOW) == WGT_COOKIE_VALID_MAC_WITH_COOKIE);
	wgt_cookie_checker_clear(&checker);
}

static void create_reply(const uint8_t *msg, size_t len, const union wgt_sockaddr *src)
{
	struct wgt_msg_cookie reply;
	int ret;

	ret = wgt_cookie_create_reply(&responder_checker, &reply, msg, len, src, FUZZ_NOW);
	if (len != WGT_MSG_INITIATION_LEN && len != WGT_MSG_RESPONSE_LEN) {
		FUZZ_CHECK(ret == -EINVAL);
		return;
	}
	FUZZ_CHECK(!ret && !memcmp(&reply.receiver_index, msg + 4, 4));
	FUZZ_CHECK(wgt_msg_classify((const uint8_t *)&reply, sizeof(reply)) ==
		   WGT_MSG_HANDSHAKE_COOKIE);
}

/* What the gateway's receive path does with a datagram, up to the data path. */
static void receive(const uint8_t *msg, size_t len, const union wgt_sockaddr *src)
{
	check_classify(msg, len);
	switch (wgt_msg_classify(msg, len)) {
	case WGT_MSG_HANDSHAKE_INITIATION:
		if (validate(&responder_checker, msg, len, src, false) != WGT_COOKIE_INVALID_MAC)
			consume_initiation(msg, len);
		break;
	case WGT_MSG_HANDSHAKE_RESPONSE:
		if (validate(&initiator_checker, msg, len, src, false) != WGT_COOKIE_INVALID_MAC)
			consume_response(msg, len);
		break;
	case WGT_MSG_HANDSHAKE_COOKIE:
		consume_cookie(msg, len);
		break;
	case WGT_MSG_DATA:    /* fuzz_transport's business */
	case WGT_MSG_INVALID:
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const union wgt_sockaddr *src;
	uint8_t *msg;
	size_t len;

	if (size < 1)
		return 0;
	src = data[0] & SELECT_IPV6 ? &src6 : &fuzz_fx.src;
	/* An exact-size heap copy, so that a read past the datagram is an ASan report. */
	len = size - 1;
	msg = malloc(len ? len : 1);
	if (!msg)
		return 0;
	memcpy(msg, data + 1, len);

	fuzz_rand_reset();
	memcpy(&responder_hs, &fuzz_fx.pristine_responder_hs, sizeof(responder_hs));
	memcpy(&initiator_hs, &fuzz_fx.pristine_initiator_hs, sizeof(initiator_hs));
	memcpy(&responder_checker, &fuzz_fx.pristine_responder_checker, sizeof(responder_checker));
	memcpy(&initiator_checker, &fuzz_fx.initiator_checker, sizeof(initiator_checker));
	memcpy(&initiator_maker, &fuzz_fx.pristine_initiator_maker, sizeof(initiator_maker));

	switch ((data[0] & ~SELECT_IPV6) % TARGET_COUNT) {
	case TARGET_RECEIVE:
		receive(msg, len, src);
		break;
	case TARGET_VALIDATE:
		validate(checker_for(len), msg, len, src, false);
		break;
	case TARGET_VALIDATE_COOKIE:
		validate(checker_for(len), msg, len, src, true);
		break;
	case TARGET_CONSUME_INITIATION:
		consume_initiation(msg, len);
		break;
	case TARGET_CONSUME_RESPONSE:
		consume_response(msg, len);
		break;
	case TARGET_CONSUME_COOKIE:
		consume_cookie(msg, len);
		break;
	case TARGET_CREATE_REPLY:
		create_reply(msg, len, src);
		break;
	}
	free(msg);
	return 0;
}

size_t fuzz_seeds(struct fuzz_seed *seeds)
{
	static const uint8_t data_header[WGT_MSG_DATA_MIN_LEN] = { WGT_MSG_DATA };
	const struct fuzz_fixture *fx = &fuzz_fx;
	size_t n = 0;

	fuzz_seed_add(seeds, &n, "receive-initiation", TARGET_RECEIVE, &fx->initiation,
		      sizeof(fx->initiation));
	fuzz_seed_add(seeds, &n, "receive-response", TARGET_RECEIVE, &fx->response,
		      sizeof(fx->response));
	fuzz_seed_add(seeds, &n, "receive-cookie", TARGET_RECEIVE, &fx->cookie, sizeof(fx->cookie));
	fuzz_seed_add(seeds, &n, "receive-data", TARGET_RECEIVE, data_header, sizeof(data_header));
	fuzz_seed_add(seeds, &n, "validate-initiation", TARGET_VALIDATE, &fx->initiation,
		      sizeof(fx->initiation));
	fuzz_seed_add(seeds, &n, "validate-response", TARGET_VALIDATE, &fx->response,
		      sizeof(fx->response));
	fuzz_seed_add(seeds, &n, "validate-cookie-mac2", TARGET_VALIDATE_COOKIE,
		      &fx->initiation_mac2, sizeof(fx->initiation_mac2));
	fuzz_seed_add(seeds, &n, "consume-initiation", TARGET_CONSUME_INITIATION, &fx->initiation,
		      sizeof(fx->initiation));
	fuzz_seed_add(seeds, &n, "consume-response", TARGET_CONSUME_RESPONSE, &fx->response,
		      sizeof(fx->response));
	fuzz_seed_add(seeds, &n, "consume-cookie", TARGET_CONSUME_COOKIE, &fx->cookie,
		      sizeof(fx->cookie));
	fuzz_seed_add(seeds, &n, "create-reply", TARGET_CREATE_REPLY, &fx->initiation,
		      sizeof(fx->initiation));
	return n;
}
