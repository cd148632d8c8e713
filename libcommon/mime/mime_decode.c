/* Transfer-encoding, encoded-word and charset decoding for search. */
#include "mime/mime_decode.h"

#include <errno.h>
#include <iconv.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <wctype.h>

#include "auth/base64.h"
#include "base/buf.h"
#include "store/mutf7.h"

void mime_base64_decode(const char *in, size_t len, struct buf *out)
{
	unsigned int bits = 0;
	int nbits = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '=')
			break;
		int v = base64_value(c);
		if (v < 0)
			continue; /* line breaks and junk */
		bits = (bits << 6 | (unsigned int)v) & 0xffffff;
		nbits += 6;
		if (nbits >= 8) {
			nbits -= 8;
			if (buf_append_char(out, (char)(bits >> nbits)) < 0)
				return;
		}
	}
}

static int hex_val(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (unsigned char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

void mime_qp_decode(const char *in, size_t len, struct buf *out)
{
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (c == '=' && i + 2 < len && hex_val((unsigned char)in[i + 1]) >= 0 &&
		    hex_val((unsigned char)in[i + 2]) >= 0) {
			c = (char)(hex_val((unsigned char)in[i + 1]) << 4 |
			           hex_val((unsigned char)in[i + 2]));
			i += 2;
		} else if (c == '=') {
			/* A soft line break: "=" then optional white space and the line end. */
			size_t j = i + 1;
			while (j < len && (in[j] == ' ' || in[j] == '\t'))
				j++;
			if (j < len && in[j] == '\r')
				j++;
			if (j < len && in[j] == '\n') {
				i = j;
				continue;
			}
		}
		if (buf_append_char(out, c) < 0)
			return;
	}
}

static bool is_utf8_name(const char *cs)
{
	return strcasecmp(cs, "utf-8") == 0 || strcasecmp(cs, "utf8") == 0 ||
	       strcasecmp(cs, "us-ascii") == 0 || strcasecmp(cs, "ascii") == 0;
}

/* Keeps valid UTF-8, replaces anything else by '?'. */
static void utf8_sanitize(const char *in, size_t len, struct buf *out)
{
	const unsigned char *s = (const unsigned char *)in;
	for (size_t i = 0; i < len;) {
		size_t n;
		if (utf8_decode_char(s + i, len - i, &n) < 0) {
			buf_append_char(out, '?');
			i++;
			continue;
		}
		if (buf_append(out, s + i, n) < 0)
			return;
		i += n;
	}
}

void mime_charset_to_utf8(const char *charset, const char *in, size_t len, struct buf *out)
{
	if (charset == NULL || charset[0] == '\0' || is_utf8_name(charset)) {
		utf8_sanitize(in, len, out);
		return;
	}
	iconv_t cd = iconv_open("UTF-8", charset);
	if (cd == (iconv_t)-1) {
		utf8_sanitize(in, len, out);
		return;
	}
	char chunk[4096];
	char *src = (char *)in;
	size_t left = len;
	while (left > 0) {
		char *dst = chunk;
		size_t room = sizeof(chunk);
		size_t r = iconv(cd, &src, &left, &dst, &room);
		if (buf_append(out, chunk, sizeof(chunk) - room) < 0)
			break;
		if (r == (size_t)-1 && errno != E2BIG) {
			/* An invalid or truncated sequence: mark it and go on. */
			buf_append_char(out, '?');
			src++;
			left--;
		}
	}
	iconv_close(cd);
}

/* Decodes one "=?charset?enc?text?=" at p; returns its end or NULL when it is not one. */
static const char *encoded_word(const char *p, const char *end, struct buf *out)
{
	const char *cs = p + 2;
	const char *q1 = memchr(cs, '?', (size_t)(end - cs));
	if (q1 == NULL || q1 + 3 > end || q1[2] != '?')
		return NULL;
	char enc = (char)(q1[1] | 0x20);
	const char *text = q1 + 3;
	const char *close = text;
	while (close + 1 < end && !(close[0] == '?' && close[1] == '='))
		close++;
	if (close + 1 >= end || (enc != 'b' && enc != 'q') || q1 - cs > 64)
		return NULL;
	char charset[65];
	memcpy(charset, cs, (size_t)(q1 - cs));
	charset[q1 - cs] = '\0';
	char *star = strchr(charset, '*'); /* RFC 2231 language suffix */
	if (star != NULL)
		*star = '\0';
	struct buf raw;
	buf_init(&raw, 0);
	if (enc == 'b') {
		mime_base64_decode(text, (size_t)(close - text), &raw);
	} else {
		for (const char *t = text; t < close; t++) {
			if (*t == '_')
				buf_append_char(&raw, ' ');
			else if (*t == '=' && t + 2 < close && hex_val((unsigned char)t[1]) >= 0 &&
			         hex_val((unsigned char)t[2]) >= 0) {
				buf_append_char(&raw, (char)(hex_val((unsigned char)t[1]) << 4 |
				                             hex_val((unsigned char)t[2])));
				t += 2;
			} else
				buf_append_char(&raw, *t);
		}
	}
	mime_charset_to_utf8(charset, buf_cstr(&raw), raw.len, out);
	buf_free(&raw);
	return close + 2;
}

void mime_header_decode(const char *value, size_t len, struct buf *utf8)
{
	const char *p = value, *end = value + len;
	const char *pending_ws = NULL; /* white space after an encoded word */
	while (p < end) {
		const char *next = NULL;
		if (p + 1 < end && p[0] == '=' && p[1] == '?')
			next = encoded_word(p, end, utf8);
		if (next != NULL) {
			p = next;
			pending_ws = p;
			continue;
		}
		if (pending_ws != NULL) {
			/* RFC 2047 6.2: white space between encoded words is dropped. */
			const char *ws = p;
			while (ws < end &&
			       (*ws == ' ' || *ws == '\t' || *ws == '\r' || *ws == '\n'))
				ws++;
			if (ws + 1 < end && ws[0] == '=' && ws[1] == '?' && ws > p) {
				p = ws;
				continue;
			}
			pending_ws = NULL;
		}
		const char *stop = p + 1;
		while (stop < end && !(stop + 1 < end && stop[0] == '=' && stop[1] == '?'))
			stop++;
		utf8_sanitize(p, (size_t)(stop - p), utf8);
		p = stop;
	}
}

void mime_utf8_fold(const char *in, size_t len, struct buf *out)
{
	static locale_t utf8_locale;
	if (utf8_locale == (locale_t)0)
		utf8_locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	const unsigned char *s = (const unsigned char *)in;
	for (size_t i = 0; i < len;) {
		size_t n;
		long cp = utf8_decode_char(s + i, len - i, &n);
		if (cp < 0) {
			buf_append_char(out, '?');
			i++;
			continue;
		}
		i += n;
		if (cp < 0x80) {
			buf_append_char(out, (char)(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp));
			continue;
		}
		if (utf8_locale != (locale_t)0)
			cp = (long)towlower_l((wint_t)cp, utf8_locale);
		char tmp[4];
		size_t m = 0;
		if (cp < 0x800) {
			tmp[m++] = (char)(0xc0 | cp >> 6);
		} else if (cp < 0x10000) {
			tmp[m++] = (char)(0xe0 | cp >> 12);
			tmp[m++] = (char)(0x80 | (cp >> 6 & 0x3f));
		} else {
			tmp[m++] = (char)(0xf0 | cp >> 18);
			tmp[m++] = (char)(0x80 | (cp >> 12 & 0x3f));
			tmp[m++] = (char)(0x80 | (cp >> 6 & 0x3f));
		}
		tmp[m++] = (char)(0x80 | (cp & 0x3f));
		buf_append(out, tmp, m);
	}
}
