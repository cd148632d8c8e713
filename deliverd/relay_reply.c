/* The SMTP reply parser and EHLO keyword reader of the relay client (relay_reply.h). */
#include "relay_reply.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"

void smtp_reply_init(struct smtp_reply *r)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->text, SMTP_REPLY_MAX_LINE * SMTP_REPLY_MAX_LINES);
}

void smtp_reply_free(struct smtp_reply *r)
{
	buf_free(&r->text);
}

static void reply_reset(struct smtp_reply *r)
{
	r->code = 0;
	r->enh[0] = '\0';
	r->n_lines = 0;
	buf_reset(&r->text);
}

void smtp_reply_parser_init(struct smtp_reply_parser *p, size_t max_line, size_t max_lines)
{
	memset(p, 0, sizeof(*p));
	p->max_line =
	    max_line != 0 && max_line < SMTP_REPLY_MAX_LINE ? max_line : SMTP_REPLY_MAX_LINE;
	p->max_lines =
	    max_lines != 0 && max_lines < SMTP_REPLY_MAX_LINES ? max_lines : SMTP_REPLY_MAX_LINES;
	smtp_reply_init(&p->cur);
}

void smtp_reply_parser_free(struct smtp_reply_parser *p)
{
	smtp_reply_free(&p->cur);
}

/* Digits "1".."999" without a leading zero beyond a lone "0"; returns the length or 0. */
static size_t number_len(const char *s, size_t len, size_t max_digits)
{
	size_t n = 0;
	while (n < len && n < max_digits + 1 && s[n] >= '0' && s[n] <= '9')
		n++;
	if (n == 0 || n > max_digits || (n > 1 && s[0] == '0'))
		return 0;
	return n;
}

/* RFC 3463: class "." subject "." detail, class = the reply's first digit; subject and
 * detail 1-3 digits. Returns the length of the code (0 when there is none). */
static size_t enhanced_len(const char *s, size_t len, char cls)
{
	if (len < 5 || s[0] != cls || s[1] != '.')
		return 0;
	size_t a = number_len(s + 2, len - 2, 3);
	if (a == 0 || 2 + a >= len || s[2 + a] != '.')
		return 0;
	size_t b = number_len(s + 3 + a, len - 3 - a, 3);
	if (b == 0)
		return 0;
	size_t n = 3 + a + b;
	/* Followed by a space or the end of the line, never glued to text. */
	if (n < len && s[n] != ' ')
		return 0;
	return n;
}

/* One line (without its line end). Returns 1 when it was the last line, 0 for a
 * continuation, -1 on error. */
static int parse_line(struct smtp_reply_parser *p, const char *s, size_t len, const char **error_r)
{
	struct smtp_reply *r = &p->cur;
	if (len < 3 || s[0] < '2' || s[0] > '5' || s[1] < '0' || s[1] > '9' || s[2] < '0' ||
	    s[2] > '9') {
		*error_r = "reply line without a valid code";
		return -1;
	}
	int code = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
	if (len > 3 && s[3] != ' ' && s[3] != '-') {
		*error_r = "reply code not followed by space or '-'";
		return -1;
	}
	if (r->n_lines > 0 && code != r->code) {
		*error_r = "reply lines with different codes";
		return -1;
	}
	if (r->n_lines >= p->max_lines) {
		*error_r = "reply has too many lines";
		return -1;
	}
	bool last = len == 3 || s[3] == ' ';
	const char *t = len > 4 ? s + 4 : s + len;
	size_t tl = len > 4 ? len - 4 : 0;
	size_t e = enhanced_len(t, tl, s[0]);
	if (e > 0) {
		if (r->n_lines == 0)
			memcpy(r->enh, t, e), r->enh[e] = '\0';
		t += e;
		tl -= e;
		if (tl > 0) /* the space after the code */
			t++, tl--;
	}
	if (r->n_lines == 0)
		r->code = code;
	if ((r->n_lines > 0 && buf_append_char(&r->text, '\n') < 0) ||
	    buf_append(&r->text, t, tl) < 0) {
		*error_r = "reply too long";
		return -1;
	}
	r->n_lines++;
	return last ? 1 : 0;
}

enum smtp_reply_result smtp_reply_parse(struct smtp_reply_parser *p, struct buf *in,
                                        struct smtp_reply *reply_r, const char **error_r)
{
	for (;;) {
		const char *nl = memchr(in->data != NULL ? in->data : "", '\n', in->len);
		if (nl == NULL) {
			/* Enforce the cap before the line is complete: +1 for a CR. */
			if (in->len > p->max_line + 1) {
				*error_r = "reply line too long";
				return SMTP_REPLY_ERROR;
			}
			return SMTP_REPLY_MORE;
		}
		size_t len = (size_t)(nl - in->data);
		size_t consume = len + 1;
		if (len > 0 && in->data[len - 1] == '\r')
			len--;
		if (len > p->max_line) {
			*error_r = "reply line too long";
			return SMTP_REPLY_ERROR;
		}
		if (memchr(in->data, '\0', len) != NULL || memchr(in->data, '\r', len) != NULL) {
			*error_r = "NUL or bare CR in a reply";
			return SMTP_REPLY_ERROR;
		}
		int r = parse_line(p, in->data, len, error_r);
		buf_consume(in, consume);
		if (r < 0)
			return SMTP_REPLY_ERROR;
		if (r == 1) {
			/* Swap the finished reply out; the parser keeps the caller's old buffers.
			 */
			struct smtp_reply done = p->cur;
			p->cur = *reply_r;
			reply_reset(&p->cur);
			*reply_r = done;
			return SMTP_REPLY_DONE;
		}
	}
}

const char *smtp_reply_dsn(const struct smtp_reply *r)
{
	if (r->enh[0] != '\0')
		return r->enh;
	return r->code >= 500 ? "5.0.0" : r->code >= 400 ? "4.0.0" : "2.0.0";
}

void smtp_reply_format(const struct smtp_reply *r, struct buf *out, size_t max)
{
	buf_printf(out, "%03d", r->code);
	if (r->enh[0] != '\0')
		buf_printf(out, " %s", r->enh);
	if (r->text.len == 0)
		return;
	buf_append_char(out, ' ');
	/* One log line: the lines are joined with spaces, then sanitised. */
	struct buf joined;
	buf_init(&joined, 0);
	buf_append(&joined, r->text.data, r->text.len);
	for (size_t i = 0; i < joined.len; i++)
		if (joined.data[i] == '\n')
			joined.data[i] = ' ';
	log_sanitize(out, joined.data, joined.len, max);
	buf_free(&joined);
}

static bool keyword_is(const char *line, size_t len, const char *kw, const char **args_r)
{
	size_t kl = strlen(kw);
	if (len < kl || strncasecmp(line, kw, kl) != 0 ||
	    (len > kl && line[kl] != ' ' && line[kl] != '='))
		return false;
	*args_r = len > kl ? line + kl + 1 : line + len;
	return true;
}

static void parse_keyword(struct smtp_ehlo *e, const char *line, size_t len)
{
	const char *args;
	if (keyword_is(line, len, "PIPELINING", &args))
		e->pipelining = true;
	else if (keyword_is(line, len, "STARTTLS", &args))
		e->starttls = true;
	else if (keyword_is(line, len, "8BITMIME", &args))
		e->eightbitmime = true;
	else if (keyword_is(line, len, "SMTPUTF8", &args))
		e->smtputf8 = true;
	else if (keyword_is(line, len, "DSN", &args))
		e->dsn = true;
	else if (keyword_is(line, len, "CHUNKING", &args))
		e->chunking = true;
	else if (keyword_is(line, len, "ENHANCEDSTATUSCODES", &args))
		e->enhancedstatuscodes = true;
	else if (keyword_is(line, len, "SIZE", &args)) {
		e->size = true;
		uint64_t v = 0;
		const char *end = line + len;
		for (const char *q = args; q < end && *q >= '0' && *q <= '9'; q++)
			v = v > UINT64_MAX / 10 - 10 ? UINT64_MAX : v * 10 + (uint64_t)(*q - '0');
		e->max_size = v;
	} else if (keyword_is(line, len, "AUTH", &args)) {
		/* AUTH PLAIN LOGIN ..., also the old "AUTH=PLAIN" form. */
		const char *end = line + len;
		while (args < end) {
			const char *sp = memchr(args, ' ', (size_t)(end - args));
			size_t wl = sp != NULL ? (size_t)(sp - args) : (size_t)(end - args);
			if (wl == 5 && strncasecmp(args, "PLAIN", 5) == 0)
				e->auth_plain = true;
			if (wl == 5 && strncasecmp(args, "LOGIN", 5) == 0)
				e->auth_login = true;
			args += wl + (sp != NULL ? 1 : 0);
		}
	}
}

void smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ehlo *e)
{
	memset(e, 0, sizeof(*e));
	const char *p = buf_cstr(&r->text);
	const char *end = p + r->text.len;
	/* The first line is the server's greeting text, not a keyword. */
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	p = nl != NULL ? nl + 1 : end;
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		parse_keyword(e, p, len);
		p += len + 1;
	}
}
