// links: smtpd_lib
/*
 * Fuzzes a whole smtpd session: the command parser, MAIL/RCPT paths and parameters,
 * DATA dot-unstuffing and BDAT framing, AUTH exchanges, header handling. The input is
 * split into the pieces a network would deliver (the first byte picks the piece size),
 * the delivery side accepts everything and answers at once, and the output must stay
 * bounded.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "policy.h"
#include "session.h"

struct fz {
	struct smtp_session *s;
	size_t out;
	bool closed;
	int pending; /* delivery replies owed */
	const char *pending_reply[64];
	int n_rcpt;
	bool timer;        /* a session timer is pending */
	bool auth_pending; /* an auth answer is owed */
	enum auth_result auth_result;
	const char *auth_data;
	auth_callback_t *auth_cb;
	void *auth_ctx;
	int auth_rounds;
};

static void fz_write(void *ctx, const char *data, size_t len)
{
	(void)data;
	((struct fz *)ctx)->out += len;
}
static void fz_close(void *ctx)
{
	((struct fz *)ctx)->closed = true;
}
static int fz_starttls(void *ctx)
{
	(void)ctx;
	return 0;
}
static bool fz_tls_available(void *ctx)
{
	(void)ctx;
	return true;
}
static void fz_tls_info(void *ctx, const char **v, const char **c)
{
	(void)ctx;
	*v = "TLSv1.3";
	*c = "X";
}
static void fz_set_timer(void *ctx, uint64_t ms)
{
	(void)ms;
	((struct fz *)ctx)->timer = true;
}
static const struct smtp_io fz_io = {fz_write,    fz_close,     fz_starttls, fz_tls_available,
                                     fz_tls_info, fz_set_timer, NULL};

static void fz_queue(struct fz *f, const char *r)
{
	if (f->pending < 64)
		f->pending_reply[f->pending++] = r;
}
static void *fz_begin(void *ctx, struct smtp_session *s, const char *line)
{
	struct fz *f = ctx;
	(void)s;
	(void)line;
	f->n_rcpt = 0;
	fz_queue(f, "250 2.1.0 Ok");
	return f;
}
static void fz_rcpt(void *tx, const char *line)
{
	struct fz *f = tx;
	if (strstr(line, "<nobody@") != NULL) {
		fz_queue(f, "550 5.1.1 unknown");
	} else {
		f->n_rcpt++;
		fz_queue(f, "250 2.1.5 Ok");
	}
}
static void fz_data(void *tx)
{
	fz_queue(tx, "354 go");
}
static int fz_dwrite(void *tx, const char *d, size_t n)
{
	(void)tx;
	(void)d;
	(void)n;
	return 0;
}
static void fz_end(void *tx)
{
	struct fz *f = tx;
	for (int i = 0; i < f->n_rcpt; i++)
		fz_queue(f, "250 2.0.0 Saved");
}
static void fz_free(void *tx)
{
	((struct fz *)tx)->pending = 0;
}
static const struct smtp_delivery_ops fz_dlv = {fz_begin,  fz_rcpt, fz_data,
                                                fz_dwrite, fz_end,  fz_free};

/* An auth backend like authd: PLAIN/LOGIN/CRAM-MD5; a response "b2s=" succeeds, "*"-free
 * others fail, and one in three exchanges asks for another round first. */
static const struct auth_mech fz_mechs[] = {{"PLAIN", true}, {"LOGIN", true}, {"CRAM-MD5", false}};

static size_t fz_auth_mechs(void *ctx, const struct auth_mech **m)
{
	(void)ctx;
	*m = fz_mechs;
	return 3;
}

static void fz_auth_answer(struct fz *f, const char *resp)
{
	f->auth_pending = true;
	if (resp == NULL || (f->auth_rounds++ % 3 == 0 && f->auth_rounds < 50)) {
		f->auth_result = AUTH_RESULT_CONTINUE;
		f->auth_data = "VXNlcm5hbWU6";
	} else if (strcmp(resp, "b2s=") == 0) {
		f->auth_result = AUTH_RESULT_OK;
		f->auth_data = "bob@example.org";
	} else if (strcmp(resp, "ZG93bg==") == 0) {
		f->auth_result = AUTH_RESULT_TEMPFAIL;
		f->auth_data = NULL;
	} else {
		f->auth_result = AUTH_RESULT_FAIL;
		f->auth_data = NULL;
	}
}

static struct auth_request *fz_auth_begin(void *ctx, const struct auth_request_info *info,
                                          auth_callback_t *cb, void *cbctx)
{
	struct fz *f = ctx;
	f->auth_cb = cb;
	f->auth_ctx = cbctx;
	fz_auth_answer(f, info->initial_response_b64);
	return (struct auth_request *)f;
}

static void fz_auth_cont(struct auth_request *req, const char *resp)
{
	fz_auth_answer((struct fz *)req, resp);
}

static void fz_auth_abort(struct auth_request **req)
{
	((struct fz *)*req)->auth_pending = false;
	*req = NULL;
}

static const struct smtp_auth_ops fz_auth = {fz_auth_mechs, fz_auth_begin, fz_auth_cont,
                                             fz_auth_abort};

static void fz_pump(struct fz *f)
{
	/* Backends answer from the loop, in any order that can happen for real. */
	for (int i = 0; i < 5000 && f->s != NULL; i++) {
		if (f->auth_pending) {
			f->auth_pending = false;
			f->auth_cb(f->auth_result, f->auth_data, f->auth_ctx);
		} else if (f->timer) {
			f->timer = false;
			smtp_session_timer(f->s);
		} else if (f->pending > 0) {
			const char *r = f->pending_reply[0];
			memmove(f->pending_reply, f->pending_reply + 1,
			        (size_t)(f->pending - 1) * sizeof(char *));
			f->pending--;
			smtp_session_delivery_reply(f->s, r);
		} else {
			break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct policy policy;
	static bool init;
	static struct smtpd_settings set;
	if (!init) {
		static const char *const domains[] = {"example.org"};
		static const char *const nets[] = {"192.0.2.0/24"};
		char *err;
		log_init("smtpd", LOG_TARGET_STDERR);
		if (policy_init(&policy, domains, 1, nets, 1, &err) < 0)
			abort();
		set.hostname = "mx.example.org";
		set.policy = &policy;
		set.max_line = 512;
		set.max_recipients = 20;
		set.max_message_size = 100000;
		set.max_header_size = 2000;
		set.max_errors = 50;
		set.vrfy_enabled = true;
		set.loopback_plaintext_auth = true;
		set.add_missing_headers = true;
		init = true;
	}
	if (size == 0)
		return 0;
	size_t step = (size_t)(data[0] % 32) + 1;
	struct fz f;
	memset(&f, 0, sizeof(f));
	struct smtp_client client = {"192.0.2.5",
	                             1234,
	                             "192.0.2.1",
	                             25,
	                             false,
	                             data[0] & 0x80 ? SMTP_ROLE_SUBMISSIONS : SMTP_ROLE_SMTP,
	                             (data[0] & 0x80) != 0};
	struct buf in;
	buf_init(&in, 4096);
	f.s = smtp_session_new(&set, &client, &fz_io, &f);
	smtp_session_set_delivery(f.s, &fz_dlv, &f);
	smtp_session_set_auth(f.s, &fz_auth, &f);
	smtp_session_start(f.s);
	for (size_t off = 1; off < size && !f.closed;) {
		size_t n = size - off < step ? size - off : step;
		if (n > buf_room(&in))
			n = buf_room(&in);
		if (n == 0)
			break; /* the session stopped reading (it waits): the conn would pause */
		buf_append(&in, data + off, n);
		off += n;
		smtp_session_input(f.s, &in);
		fz_pump(&f);
	}
	if (f.out > 200 * (size + 10))
		abort(); /* output must stay proportional to input */
	smtp_session_free(&f.s);
	buf_free(&in);
	return 0;
}
