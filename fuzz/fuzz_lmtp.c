/*
 * Fuzz target: the LMTP framing and the session on top of it. The input is fed to a
 * session (with a backend whose every mailbox exists and whose delivery is immediate)
 * twice: whole and in pseudo-random chunks chosen by the first byte. Both runs must write
 * the same replies (queue ids aside) and deliver the same bytes; every body the parser emits must
 * come from the input; memory stays bounded by the caps.
 */
// links: deliverd_lib
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "lmtp_parse.h"
#include "lmtp_session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz {
	struct buf out;
	struct buf spool;
	struct buf delivered;
	bool spool_open;
};

static void fz_write(void *ctx, const void *d, size_t n)
{
	struct fz *f = ctx;
	if (buf_append(&f->out, d, n) < 0)
		abort(); /* replies must stay bounded by the input */
}

static void fz_nop(void *ctx)
{
	(void)ctx;
}

static void fz_lookup(void *ctx, struct lmtp_session *s, const char *key)
{
	(void)ctx;
	/* Deterministic answers from the key's first letter. */
	enum lmtp_lookup_result r = key[0] == 'n'   ? LMTP_LOOKUP_NOTFOUND
	                            : key[0] == 't' ? LMTP_LOOKUP_TEMPFAIL
	                                            : LMTP_LOOKUP_FOUND;
	lmtp_session_lookup_done(s, r, "/m/x", 0, 0);
}

static void fz_lookup_abort(void *ctx, struct lmtp_session *s)
{
	(void)ctx;
	(void)s;
}

static int fz_spool_begin(void *ctx, char **error_r)
{
	(void)error_r;
	struct fz *f = ctx;
	if (f->spool_open)
		abort(); /* a spool is never opened twice */
	f->spool_open = true;
	buf_reset(&f->spool);
	return 0;
}

static int fz_spool_write(void *ctx, const void *d, size_t n, char **error_r)
{
	(void)error_r;
	struct fz *f = ctx;
	if (!f->spool_open)
		abort();
	if (buf_append(&f->spool, d, n) < 0)
		abort();
	return 0;
}

static void fz_spool_discard(void *ctx)
{
	struct fz *f = ctx;
	f->spool_open = false;
}

static void fz_deliver(void *ctx, struct lmtp_session *s, struct lmtp_target *t, size_t n)
{
	struct fz *f = ctx;
	for (size_t i = 0; i < n; i++) {
		buf_append_str(&f->delivered, t[i].prefix);
		buf_append(&f->delivered, f->spool.data, f->spool.len);
		lmtp_session_delivery_done(s, i, LMTP_DELIVERED, "INBOX");
	}
}

static const struct lmtp_limits limits = {
    .max_line = 512,
    .max_message = 4096,
    .max_recipients = 8,
    .max_errors = 1000,
};

static void run(const char *in, size_t n, uint8_t seed, struct fz *f)
{
	struct lmtp_backend be = {
	    .ctx = f,
	    .write = fz_write,
	    .close = fz_nop,
	    .resume = fz_nop,
	    .lookup = fz_lookup,
	    .lookup_abort = fz_lookup_abort,
	    .spool_begin = fz_spool_begin,
	    .spool_write = fz_spool_write,
	    .spool_discard = fz_spool_discard,
	    .deliver = fz_deliver,
	};
	buf_init(&f->out, 64 * 1024 + n * 64);
	buf_init(&f->spool, 0);
	buf_init(&f->delivered, 0);
	f->spool_open = false;
	struct lmtp_session *s = lmtp_session_new(&be, &limits, "fuzz.test", "fuzz");
	struct buf pending;
	buf_init(&pending, 0);
	unsigned state = seed;
	size_t pos = 0;
	while (pos < n) {
		size_t k = n - pos;
		if (seed != 0) {
			state = state * 1103515245u + 12345u;
			k = (state >> 16) % 13 + 1;
			if (k > n - pos)
				k = n - pos;
		}
		buf_append(&pending, in + pos, k);
		pos += k;
		lmtp_session_input(s, &pending);
	}
	lmtp_session_close(s);
	if (f->spool_open)
		abort(); /* closing always drops the spool */
	buf_free(&pending);
	buf_free(&f->spool);
}

/* The replies with the per-transaction queue id (which differs between runs) left out:
 * each line's code and its text up to the first '<'. */
static void reply_shape(const struct buf *out, struct buf *shape)
{
	buf_init(shape, 0);
	bool keep = true;
	for (size_t i = 0; i < out->len; i++) {
		char c = out->data[i];
		if (c == '<')
			keep = false;
		if (keep || c == '\n')
			buf_append_char(shape, c);
		if (c == '\n')
			keep = true;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 64 * 1024)
		return 0;
	/* Start every run after LHLO so the fuzzer reaches the transaction states. */
	struct buf in;
	buf_init(&in, 0);
	buf_append_str(&in, "LHLO fuzz\r\n");
	buf_append(&in, data + 1, size - 1);
	struct fz whole, chunked;
	run(in.data, in.len, 0, &whole);
	run(in.data, in.len, data[0] | 1, &chunked);
	struct buf a, b;
	reply_shape(&whole.out, &a);
	reply_shape(&chunked.out, &b);
	if (a.len != b.len || (a.len > 0 && memcmp(a.data, b.data, a.len) != 0))
		abort();
	buf_free(&a);
	buf_free(&b);
	if (whole.delivered.len != chunked.delivered.len ||
	    (whole.delivered.len > 0 &&
	     memcmp(whole.delivered.data, chunked.delivered.data, whole.delivered.len) != 0))
		abort();
	buf_free(&whole.out);
	buf_free(&chunked.out);
	buf_free(&whole.delivered);
	buf_free(&chunked.delivered);
	buf_free(&in);
	return 0;
}
