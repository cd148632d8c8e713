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
	(void)ctx;
	(void)ms;
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

static void fz_pump(struct fz *f)
{
	for (int i = 0; i < 1000 && f->pending > 0 && f->s != NULL; i++) {
		const char *r = f->pending_reply[0];
		memmove(f->pending_reply, f->pending_reply + 1,
		        (size_t)(f->pending - 1) * sizeof(char *));
		f->pending--;
		smtp_session_delivery_reply(f->s, r);
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
