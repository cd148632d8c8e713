/*
 * Transcript harness for smtpd session tests: client bytes in, server bytes out. The
 * delivery and auth sides are scripted recorders that answer the way deliverd and authd
 * do (unknown user -> 550 5.1.1, down -> 451/TEMPFAIL), asynchronously, after the session
 * call returns, as the real backends do.
 */
#ifndef TERN_TESTS_SMTPD_HARNESS_H
#define TERN_TESTS_SMTPD_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "policy.h"
#include "session.h"

#define H_MAX_PENDING 64

struct h_tx;

struct harness {
	struct smtpd_settings set;
	struct policy policy;
	struct smtp_client client;
	struct smtp_session *s;
	struct buf in, out;
	bool closed, tls_avail, tls_started;
	uint64_t timer_ms;
	int timer_calls;
	bool want_input;

	/* delivery side */
	bool dlv_down;        /* begin -> 451 4.3.0 */
	const char *end_fail; /* rcpt address whose final reply is end_fail_reply */
	const char *end_fail_reply;
	int backpressure_every; /* write returns 1 every N calls (0: never) */
	int writes;
	struct buf log; /* MAIL/RCPT/DATA/./QUIT lines the delivery side got */
	struct buf msg; /* the message bytes */
	int begun, ended, freed;
	char *pending[H_MAX_PENDING];
	size_t n_pending;
	struct h_tx *tx;
	bool tx_failed_mid; /* fail the transaction on the next write */

	/* auth side */
	bool auth_down;
	struct auth_request *auth_req_pending;
	enum auth_result auth_result;
	char *auth_data;
	auth_callback_t *auth_cb;
	void *auth_ctx;
	bool auth_has_pending;
	int auth_begun;
	char *last_mech;
};

struct h_tx {
	struct harness *h;
	unsigned n_rcpts;
	char *rcpts[32];
};

static inline void h_write(void *ctx, const char *data, size_t len)
{
	struct harness *h = ctx;
	buf_append(&h->out, data, len);
}
static inline void h_close(void *ctx)
{
	((struct harness *)ctx)->closed = true;
}
static inline int h_starttls(void *ctx)
{
	struct harness *h = ctx;
	h->tls_started = true;
	return 0;
}
static inline bool h_tls_available(void *ctx)
{
	return ((struct harness *)ctx)->tls_avail;
}
static inline void h_tls_info(void *ctx, const char **v, const char **c)
{
	(void)ctx;
	*v = "TLSv1.3";
	*c = "TLS_AES_256_GCM_SHA384";
}
static inline void h_set_timer(void *ctx, uint64_t ms)
{
	struct harness *h = ctx;
	h->timer_ms = ms;
	h->timer_calls++;
}
static inline void h_want_input(void *ctx, bool want)
{
	((struct harness *)ctx)->want_input = want;
}

static const struct smtp_io h_io = {h_write,    h_close,     h_starttls,  h_tls_available,
                                    h_tls_info, h_set_timer, h_want_input};

static inline void h_queue(struct harness *h, const char *reply)
{
	assert_true(h->n_pending < H_MAX_PENDING);
	h->pending[h->n_pending++] = xstrdup(reply);
}

static inline void *h_begin(void *ctx, struct smtp_session *s, const char *mail_line)
{
	struct harness *h = ctx;
	(void)s;
	struct h_tx *tx = xcalloc(1, sizeof(*tx));
	tx->h = h;
	h->tx = tx;
	h->begun++;
	buf_printf(&h->log, "%s\n", mail_line);
	h_queue(h, h->dlv_down ? "451 4.3.0 deliverd unavailable" : "250 2.1.0 Ok");
	return tx;
}
static inline void h_rcpt(void *t, const char *line)
{
	struct h_tx *tx = t;
	struct harness *h = tx->h;
	buf_printf(&h->log, "%s\n", line);
	if (strstr(line, "<nobody@") != NULL) {
		h_queue(h, "550 5.1.1 <nobody@example.org> User doesn't exist");
		return;
	}
	if (tx->n_rcpts < 32) {
		const char *a = strchr(line, '<') + 1;
		tx->rcpts[tx->n_rcpts++] = xstrndup(a, strcspn(a, ">"));
	}
	h_queue(h, "250 2.1.5 Ok");
}
static inline void h_data(void *t)
{
	struct h_tx *tx = t;
	buf_printf(&tx->h->log, "DATA\n");
	h_queue(tx->h, "354 go ahead");
}
static inline int h_dwrite(void *t, const char *data, size_t len)
{
	struct h_tx *tx = t;
	struct harness *h = tx->h;
	if (h->tx_failed_mid)
		return -1;
	buf_append(&h->msg, data, len);
	h->writes++;
	if (h->backpressure_every > 0 && h->writes % h->backpressure_every == 0)
		return 1;
	return 0;
}
static inline void h_end(void *t)
{
	struct h_tx *tx = t;
	struct harness *h = tx->h;
	buf_printf(&h->log, ".\n");
	h->ended++;
	for (unsigned i = 0; i < tx->n_rcpts; i++) {
		if (h->end_fail != NULL && strcmp(tx->rcpts[i], h->end_fail) == 0)
			h_queue(h, h->end_fail_reply);
		else
			h_queue(h, "250 2.0.0 Saved");
	}
}
static inline void h_free(void *t)
{
	struct h_tx *tx = t;
	struct harness *h = tx->h;
	for (unsigned i = 0; i < tx->n_rcpts; i++)
		free(tx->rcpts[i]);
	buf_printf(&h->log, "QUIT\n");
	h->freed++;
	/* A freed transaction gets no more replies. */
	for (size_t i = 0; i < h->n_pending; i++)
		free(h->pending[i]);
	h->n_pending = 0;
	if (h->tx == tx)
		h->tx = NULL;
	free(tx);
}

static const struct smtp_delivery_ops h_dlv = {h_begin, h_rcpt, h_data, h_dwrite, h_end, h_free};

static const struct auth_mech h_mechs[] = {{"PLAIN", true}, {"LOGIN", true}};

static inline size_t h_auth_mechs(void *ctx, const struct auth_mech **m)
{
	struct harness *h = ctx;
	if (h->auth_down)
		return 0;
	*m = h_mechs;
	return 2;
}
static inline void h_auth_answer(struct harness *h, enum auth_result r, const char *data)
{
	h->auth_has_pending = true;
	h->auth_result = r;
	free(h->auth_data);
	h->auth_data = data != NULL ? xstrdup(data) : NULL;
}
static inline void h_auth_check(struct harness *h, const char *resp)
{
	/* base64("\0bob@example.org\0secret") */
	if (strcmp(resp, "AGJvYkBleGFtcGxlLm9yZwBzZWNyZXQ=") == 0)
		h_auth_answer(h, AUTH_RESULT_OK, "bob@example.org");
	else
		h_auth_answer(h, AUTH_RESULT_FAIL, "invalid credentials");
}
static inline struct auth_request *h_auth_begin(void *ctx, const struct auth_request_info *info,
                                                auth_callback_t *cb, void *cbctx)
{
	struct harness *h = ctx;
	h->auth_cb = cb;
	h->auth_ctx = cbctx;
	h->auth_begun++;
	free(h->last_mech);
	h->last_mech = xstrdup(info->mech);
	if (h->auth_down)
		h_auth_answer(h, AUTH_RESULT_TEMPFAIL, NULL);
	else if (info->initial_response_b64 == NULL)
		h_auth_answer(h, AUTH_RESULT_CONTINUE, "");
	else
		h_auth_check(h, info->initial_response_b64);
	return (struct auth_request *)h;
}
static inline void h_auth_cont(struct auth_request *req, const char *resp)
{
	h_auth_check((struct harness *)req, resp);
}
static inline void h_auth_abort(struct auth_request **req)
{
	((struct harness *)*req)->auth_has_pending = false;
	*req = NULL;
}

static const struct smtp_auth_ops h_auth = {h_auth_mechs, h_auth_begin, h_auth_cont, h_auth_abort};

static inline void h_pump(struct harness *h)
{
	for (int round = 0; round < 100000; round++) {
		if (h->auth_has_pending) {
			h->auth_has_pending = false;
			char *d = h->auth_data;
			h->auth_data = NULL;
			h->auth_cb(h->auth_result, d, h->auth_ctx);
			free(d);
			continue;
		}
		if (h->n_pending == 0 || h->s == NULL)
			break;
		char *r = h->pending[0];
		memmove(h->pending, h->pending + 1, (h->n_pending - 1) * sizeof(char *));
		h->n_pending--;
		smtp_session_delivery_reply(h->s, r);
		free(r);
	}
}

static inline void h_init_role(struct harness *h, const char *ip, enum smtp_role role)
{
	static const char *const domains[] = {"example.org", "example.net"};
	static const char *const nets[] = {"127.0.0.0/8", "::1/128", "192.0.2.0/24"};
	char *err = NULL;

	memset(h, 0, sizeof(*h));
	log_init("smtpd", LOG_TARGET_STDERR);
	assert_int_equal(policy_init(&h->policy, domains, 2, nets, 3, &err), 0);
	h->set.hostname = "mx.example.org";
	h->set.policy = &h->policy;
	h->set.max_line = 4096;
	h->set.max_recipients = 100;
	h->set.max_message_size = 1024 * 1024;
	h->set.max_header_size = 8192;
	h->set.max_errors = 20;
	h->set.vrfy_enabled = true;
	h->set.sender_login_check = true;
	h->set.submission_tls_required = true;
	h->set.loopback_plaintext_auth = true;
	h->set.auth_failure_delay_ms = 100;
	h->set.auth_failure_delay_max_ms = 1600;
	h->set.add_missing_headers = true;
	h->client.ip = ip;
	h->client.port = 40000;
	h->client.local_ip = "192.0.2.1";
	h->client.local_port = 25;
	h->client.loopback = strncmp(ip, "127.", 4) == 0;
	h->client.role = role;
	h->client.tls = role == SMTP_ROLE_SUBMISSIONS;
	h->tls_avail = true;
	buf_init(&h->in, 128 * 1024);
	buf_init(&h->out, 0);
	buf_init(&h->log, 0);
	buf_init(&h->msg, 0);
}

static inline void h_start(struct harness *h)
{
	h->s = smtp_session_new(&h->set, &h->client, &h_io, h);
	smtp_session_set_delivery(h->s, &h_dlv, h);
	smtp_session_set_auth(h->s, &h_auth, h);
	smtp_session_start(h->s);
}

static inline void h_init(struct harness *h, const char *ip)
{
	h_init_role(h, ip, SMTP_ROLE_SMTP);
	h_start(h);
}

/* Feeds bytes (through the capped input buffer, as the connection would). */
static inline void h_feedn(struct harness *h, const char *data, size_t len)
{
	while (len > 0 && !h->closed) {
		size_t n = buf_room(&h->in) < len ? buf_room(&h->in) : len;
		assert_int_equal(buf_append(&h->in, data, n), 0);
		data += n;
		len -= n;
		smtp_session_input(h->s, &h->in);
		h_pump(h);
		if (n == 0 && buf_room(&h->in) == 0)
			fail_msg("input buffer stuck full");
	}
	if (len == 0) {
		smtp_session_input(h->s, &h->in);
		h_pump(h);
	}
}

static inline void h_feed(struct harness *h, const char *text)
{
	h_feedn(h, text, strlen(text));
}

/* Returns the server output since the last call (caller frees). */
static inline char *h_take(struct harness *h)
{
	return buf_steal(&h->out);
}

/* Feeds text and checks the output equals expect exactly. */
static inline void h_expect(struct harness *h, const char *text, const char *expect)
{
	h_feed(h, text);
	char *out = h_take(h);
	if (strcmp(out, expect) != 0)
		fail_msg("after %s\nexpected: [%s]\n     got: [%s]", text, expect, out);
	free(out);
}

/* Feeds text and checks the output starts with prefix. */
static inline void h_expect_prefix(struct harness *h, const char *text, const char *prefix)
{
	h_feed(h, text);
	char *out = h_take(h);
	if (strncmp(out, prefix, strlen(prefix)) != 0)
		fail_msg("after %.200s\nexpected prefix: [%s]\n            got: [%.400s]", text,
		         prefix, out);
	free(out);
}

static inline void h_done(struct harness *h)
{
	smtp_session_free(&h->s);
	for (size_t i = 0; i < h->n_pending; i++)
		free(h->pending[i]);
	free(h->auth_data);
	free(h->last_mech);
	buf_free(&h->in);
	buf_free(&h->out);
	buf_free(&h->log);
	buf_free(&h->msg);
	policy_free(&h->policy);
}

#endif
