/*
 * Fuzz target: the relay client's SMTP reply parser (deliverd/relay_reply.c) and EHLO
 * keyword reader. The input is parsed twice, whole and one byte at a time; both
 * transcripts (every reply's code, enhanced code and text, then the final result) must
 * match, and every reply must respect the parser's invariants and caps.
 */
// links: deliverd_lib
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "relay_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_reply(const struct smtp_reply *r)
{
	if (r->code < 200 || r->code > 599 || r->n_lines == 0 || r->n_lines > SMTP_REPLY_MAX_LINES)
		abort();
	if (r->enh[0] != '\0' && r->enh[0] != (char)('0' + r->code / 100))
		abort();
	if (r->text.len > SMTP_REPLY_MAX_LINE * SMTP_REPLY_MAX_LINES)
		abort();
	struct smtp_ehlo e;
	smtp_ehlo_parse(r, &e);
	struct buf f;
	buf_init(&f, 0);
	smtp_reply_format(r, &f, 512);
	if (f.len > 512 + 32)
		abort();
	buf_free(&f);
}

static void transcript(const uint8_t *data, size_t size, size_t chunk, struct buf *out)
{
	struct smtp_reply_parser p;
	smtp_reply_parser_init(&p, 512, 16);
	struct smtp_reply r;
	smtp_reply_init(&r);
	struct buf in;
	buf_init(&in, 0);
	enum smtp_reply_result res = SMTP_REPLY_MORE;
	for (size_t off = 0; off < size && res != SMTP_REPLY_ERROR; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;
		buf_append(&in, data + off, n);
		const char *err;
		while ((res = smtp_reply_parse(&p, &in, &r, &err)) == SMTP_REPLY_DONE) {
			check_reply(&r);
			buf_printf(out, "%d|%s|", r.code, r.enh);
			buf_append(out, r.text.data, r.text.len);
			buf_append_char(out, '\n');
		}
	}
	buf_printf(out, "end %d\n", res == SMTP_REPLY_ERROR);
	buf_free(&in);
	smtp_reply_free(&r);
	smtp_reply_parser_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 65536)
		return 0;
	struct buf whole, trickle;
	buf_init(&whole, 0);
	buf_init(&trickle, 0);
	transcript(data, size, size > 0 ? size : 1, &whole);
	transcript(data, size, 1, &trickle);
	if (whole.len != trickle.len || memcmp(whole.data, trickle.data, whole.len) != 0)
		abort();
	buf_free(&whole);
	buf_free(&trickle);
	return 0;
}
