/* SPDX-License-Identifier: MIT */
/* MAC1/MAC2 computation and checking, cookie creation and consumption. */
#include "crypto/cookie.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/compiler.h"
#include "crypto/aead.h"
#include "crypto/blake2s.h"

static const char label_mac1[] = "mac1----";
static const char label_cookie[] = "cookie--";

/* Offsets of mac1 and mac2: the last 32 bytes of message types 1 and 2. */
static size_t mac1_offset(size_t len)
{
	return len - sizeof(struct wgt_msg_macs);
}

static size_t mac2_offset(size_t len)
{
	return len - WGT_MAC_LEN;
}

static int derive_key(uint8_t key[WGT_KEY_LEN], const char *label, const uint8_t pub[WGT_KEY_LEN])
{
	return wgt_blake2s_hash2(key, label, 8, pub, WGT_KEY_LEN);
}

static bool handshake_len_ok(size_t len)
{
	return len == WGT_MSG_INITIATION_LEN || len == WGT_MSG_RESPONSE_LEN;
}

int wgt_cookie_checker_init(struct wgt_cookie_checker *c, const uint8_t *local_public)
{
	int ret;

	wgt_cookie_checker_clear(c);
	if (!local_public)
		return 0;
	ret = derive_key(c->mac1_key, label_mac1, local_public);
	if (!ret)
		ret = derive_key(c->cookie_key, label_cookie, local_public);
	if (ret) {
		wgt_cookie_checker_clear(c);
		return ret;
	}
	c->has_keys = true;
	return 0;
}

void wgt_cookie_checker_clear(struct wgt_cookie_checker *c)
{
	OPENSSL_cleanse(c, sizeof(*c));
}

/* Makes a new Rchanging when there is none or it is older than `max_age`. */
static int rotate_secret(struct wgt_cookie_checker *c, uint64_t max_age, uint64_t now)
{
	if (c->secret_birth && !wgt_has_expired(c->secret_birth, max_age, now))
		return 0;
	if (RAND_bytes(c->secret, sizeof(c->secret)) != 1)
		return -EIO;
	/* A monotonic clock may start near 0; 0 means "no secret". */
	c->secret_birth = now ? now : 1;
	return 1;
}

/* The cookie for `src`: MAC(Rchanging, IP || port). Never rotates: the caller did. */
static int cookie_of(const struct wgt_cookie_checker *c, uint8_t cookie[WGT_COOKIE_LEN],
		     const union wgt_sockaddr *src)
{
	uint8_t input[16 + 2];
	size_t n;

	if (src->sa.sa_family == AF_INET) {
		memcpy(input, &src->in4.sin_addr, 4);
		memcpy(input + 4, &src->in4.sin_port, 2);
		n = 6;
	} else if (src->sa.sa_family == AF_INET6) {
		memcpy(input, &src->in6.sin6_addr, 16);
		memcpy(input + 16, &src->in6.sin6_port, 2);
		n = 18;
	} else {
		return -EAFNOSUPPORT;
	}
	return wgt_blake2s_keyed(cookie, WGT_COOKIE_LEN, c->secret, WGT_KEY_LEN, input, n);
}

int wgt_cookie_checker_refresh(struct wgt_cookie_checker *c, uint64_t max_age, uint64_t now)
{
	if (!c->has_keys)
		return 0;
	return rotate_secret(c, WGT_MIN(max_age, WGT_COOKIE_SECRET_MAX_AGE), now);
}

enum wgt_cookie_mac_state wgt_cookie_validate(const struct wgt_cookie_checker *c, const uint8_t *msg,
					      size_t len, const union wgt_sockaddr *src,
					      bool check_cookie, uint64_t now)
{
	enum wgt_cookie_mac_state state = WGT_COOKIE_INVALID_MAC;
	uint8_t mac[WGT_MAC_LEN], cookie[WGT_COOKIE_LEN];

	if (!c->has_keys || !handshake_len_ok(len))
		return WGT_COOKIE_INVALID_MAC;

	if (wgt_blake2s_keyed(mac, WGT_MAC_LEN, c->mac1_key, WGT_KEY_LEN, msg, mac1_offset(len)) ||
	    CRYPTO_memcmp(mac, msg + mac1_offset(len), WGT_MAC_LEN))
		goto out;
	state = WGT_COOKIE_VALID_MAC_NO_COOKIE;
	if (!check_cookie)
		goto out;

	/*
	 * A cookie made before the secret rotated is refused; so is one made
	 * for another source address or port.
	 */
	if (!c->secret_birth || wgt_has_expired(c->secret_birth, WGT_COOKIE_SECRET_MAX_AGE, now))
		goto out;
	if (cookie_of(c, cookie, src) ||
	    wgt_blake2s_keyed(mac, WGT_MAC_LEN, cookie, WGT_COOKIE_LEN, msg, mac2_offset(len)) ||
	    CRYPTO_memcmp(mac, msg + mac2_offset(len), WGT_MAC_LEN))
		goto out;
	state = WGT_COOKIE_VALID_MAC_WITH_COOKIE;
out:
	OPENSSL_cleanse(cookie, sizeof(cookie));
	return state;
}

/* The reply's header, a fresh nonce and the sealed cookie; `rotate`: renew the secret if due. */
static int create_reply(struct wgt_cookie_checker *rotate, const struct wgt_cookie_checker *c,
			struct wgt_msg_cookie *dst, const uint8_t *msg, size_t len,
			const union wgt_sockaddr *src, uint64_t now)
{
	uint8_t cookie[WGT_COOKIE_LEN];
	uint32_t sender_index;
	int ret;

	if (!c->has_keys || !handshake_len_ok(len))
		return -EINVAL;
	/* Types 1 and 2 both carry the sender index right after the header. */
	memcpy(&sender_index, msg + 4, sizeof(sender_index));

	memset(dst, 0, sizeof(*dst));
	dst->header.type = htole32(WGT_MSG_HANDSHAKE_COOKIE);
	dst->receiver_index = sender_index;
	/* The nonce before a new secret: the fuzzers' fixed-seed corpus depends on the order. */
	if (RAND_bytes(dst->nonce, sizeof(dst->nonce)) != 1)
		return -EIO;
	if (rotate) {
		ret = rotate_secret(rotate, WGT_COOKIE_SECRET_MAX_AGE, now);
		if (ret < 0)
			return ret;
	}
	if (!c->secret_birth || wgt_has_expired(c->secret_birth, WGT_COOKIE_SECRET_MAX_AGE, now))
		return -ESTALE;
	ret = cookie_of(c, cookie, src);
	if (!ret)
		ret = wgt_xaead_encrypt(dst->encrypted_cookie, cookie, WGT_COOKIE_LEN,
					msg + mac1_offset(len), WGT_MAC_LEN, dst->nonce,
					c->cookie_key);
	OPENSSL_cleanse(cookie, sizeof(cookie));
	return ret;
}

int wgt_cookie_create_reply_ro(const struct wgt_cookie_checker *c, struct wgt_msg_cookie *dst,
			       const uint8_t *msg, size_t len, const union wgt_sockaddr *src,
			       uint64_t now)
{
	return create_reply(NULL, c, dst, msg, len, src, now);
}

int wgt_cookie_create_reply(struct wgt_cookie_checker *c, struct wgt_msg_cookie *dst,
			    const uint8_t *msg, size_t len, const union wgt_sockaddr *src,
			    uint64_t now)
{
	return create_reply(c, c, dst, msg, len, src, now);
}

int wgt_cookie_maker_init(struct wgt_cookie_maker *m, const uint8_t remote_public[WGT_KEY_LEN])
{
	int ret;

	wgt_cookie_maker_clear(m);
	ret = derive_key(m->mac1_key, label_mac1, remote_public);
	if (!ret)
		ret = derive_key(m->cookie_key, label_cookie, remote_public);
	if (ret)
		wgt_cookie_maker_clear(m);
	return ret;
}

void wgt_cookie_maker_clear(struct wgt_cookie_maker *m)
{
	OPENSSL_cleanse(m, sizeof(*m));
}

int wgt_cookie_add_macs(struct wgt_cookie_maker *m, uint8_t *msg, size_t len, uint64_t now)
{
	int ret;

	if (!handshake_len_ok(len))
		return -EINVAL;
	ret = wgt_blake2s_keyed(msg + mac1_offset(len), WGT_MAC_LEN, m->mac1_key, WGT_KEY_LEN, msg,
				mac1_offset(len));
	if (ret)
		return ret;
	memcpy(m->last_mac1_sent, msg + mac1_offset(len), WGT_MAC_LEN);
	m->have_sent_mac1 = true;

	if (!m->have_cookie ||
	    wgt_has_expired(m->cookie_birth, WGT_COOKIE_SECRET_MAX_AGE - WGT_COOKIE_SECRET_LATENCY,
			    now)) {
		memset(msg + mac2_offset(len), 0, WGT_MAC_LEN);
		return 0;
	}
	return wgt_blake2s_keyed(msg + mac2_offset(len), WGT_MAC_LEN, m->cookie, WGT_COOKIE_LEN,
				 msg, mac2_offset(len));
}

int wgt_cookie_consume_reply(struct wgt_cookie_maker *m, const struct wgt_msg_cookie *src,
			     uint64_t now)
{
	uint8_t cookie[WGT_COOKIE_LEN];
	int ret;

	if (!m->have_sent_mac1)
		return -EINVAL;
	ret = wgt_xaead_decrypt(cookie, src->encrypted_cookie, sizeof(src->encrypted_cookie),
				m->last_mac1_sent, WGT_MAC_LEN, src->nonce, m->cookie_key);
	if (ret)
		goto out;
	memcpy(m->cookie, cookie, WGT_COOKIE_LEN);
	m->cookie_birth = now;
	m->have_cookie = true;
	/* One reply per message sent: a second copy of it must not refresh the cookie. */
	m->have_sent_mac1 = false;
out:
	OPENSSL_cleanse(cookie, sizeof(cookie));
	return ret;
}
