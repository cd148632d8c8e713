/*
 * Modified UTF-7 <-> UTF-8. Decoding validates by re-encoding: a name is valid only when
 * encode(decode(name)) gives the same bytes back, which is the test Dovecot applies too.
 */
#include "store/mutf7.h"

#include <stdint.h>
#include <string.h>

#include "base/buf.h"

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

long utf8_decode_char(const unsigned char *s, size_t len, size_t *n_r)
{
	static const long mins[] = {0, 0, 0x80, 0x800, 0x10000};
	if (len == 0)
		return -1;
	size_t n;
	long cp;
	if (s[0] < 0x80) {
		*n_r = 1;
		return s[0];
	} else if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return -1;
	}
	if (len < n)
		return -1;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return -1;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < mins[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	*n_r = n;
	return cp;
}

static void utf8_append(struct buf *out, long cp)
{
	char s[4];
	size_t n;
	if (cp < 0x80) {
		s[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		s[0] = (char)(0xc0 | cp >> 6);
		s[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		s[0] = (char)(0xe0 | cp >> 12);
		s[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		s[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		s[0] = (char)(0xf0 | cp >> 18);
		s[1] = (char)(0x80 | (cp >> 12 & 0x3f));
		s[2] = (char)(0x80 | (cp >> 6 & 0x3f));
		s[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	buf_append(out, s, n);
}

struct b64_writer {
	uint32_t bits;
	int nbits;
};

static void b64_put16(struct buf *out, struct b64_writer *w, unsigned int unit)
{
	w->bits = w->bits << 16 | unit;
	w->nbits += 16;
	while (w->nbits >= 6) {
		w->nbits -= 6;
		buf_append_char(out, b64chars[(w->bits >> w->nbits) & 0x3f]);
	}
}

static int encode_into(const char *utf8, size_t len, struct buf *out)
{
	const unsigned char *s = (const unsigned char *)utf8;
	size_t i = 0;
	while (i < len) {
		if (s[i] >= 0x20 && s[i] < 0x7f) {
			buf_append_str(out, s[i] == '&' ? "&-" : (char[]){(char)s[i], '\0'});
			i++;
			continue;
		}
		struct b64_writer w = {0, 0};
		buf_append_char(out, '&');
		while (i < len && !(s[i] >= 0x20 && s[i] < 0x7f)) {
			size_t n;
			long cp = utf8_decode_char(s + i, len - i, &n);
			if (cp < 0)
				return -1;
			i += n;
			if (cp >= 0x10000) {
				cp -= 0x10000;
				b64_put16(out, &w, 0xd800 | (unsigned int)(cp >> 10));
				b64_put16(out, &w, 0xdc00 | (unsigned int)(cp & 0x3ff));
			} else {
				b64_put16(out, &w, (unsigned int)cp);
			}
		}
		if (w.nbits > 0)
			buf_append_char(out, b64chars[(w.bits << (6 - w.nbits)) & 0x3f]);
		buf_append_char(out, '-');
	}
	return 0;
}

int mutf7_encode(const char *utf8, size_t len, struct buf *out)
{
	size_t old = out->len;
	if (encode_into(utf8, len, out) < 0) {
		buf_truncate(out, old);
		return -1;
	}
	return 0;
}

static int b64_value(char c)
{
	const char *p = c != '\0' ? strchr(b64chars, c) : NULL;
	return p != NULL ? (int)(p - b64chars) : -1;
}

/* Decodes one shifted run s[0..] up to '-'; returns bytes consumed or -1. */
static long decode_shift(const char *s, size_t len, struct buf *out)
{
	uint32_t bits = 0;
	int nbits = 0;
	unsigned int high = 0;
	size_t i = 0;
	for (; i < len && s[i] != '-'; i++) {
		int v = b64_value(s[i]);
		if (v < 0)
			return -1;
		bits = bits << 6 | (uint32_t)v;
		nbits += 6;
		if (nbits < 16)
			continue;
		nbits -= 16;
		unsigned int unit = (bits >> nbits) & 0xffff;
		if (unit >= 0xd800 && unit <= 0xdbff) {
			if (high != 0)
				return -1;
			high = unit;
		} else if (unit >= 0xdc00 && unit <= 0xdfff) {
			if (high == 0)
				return -1;
			utf8_append(out, 0x10000 + ((long)(high - 0xd800) << 10) + (unit - 0xdc00));
			high = 0;
		} else {
			if (high != 0)
				return -1;
			utf8_append(out, unit);
		}
	}
	if (i == len || high != 0)
		return -1;
	return (long)i + 1;
}

static int decode_into(const char *s, size_t len, struct buf *out)
{
	size_t i = 0;
	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x7f)
			return -1;
		if (c != '&') {
			buf_append_char(out, (char)c);
			i++;
			continue;
		}
		if (i + 1 < len && s[i + 1] == '-') {
			buf_append_char(out, '&');
			i += 2;
			continue;
		}
		long n = decode_shift(s + i + 1, len - i - 1, out);
		if (n < 0)
			return -1;
		i += 1 + (size_t)n;
	}
	return 0;
}

int mutf7_decode(const char *mutf7, size_t len, struct buf *out)
{
	size_t old = out->len;
	struct buf check;
	buf_init(&check, 0);
	int ret = decode_into(mutf7, len, out);
	/* Canonical only: re-encoding must give back exactly the input. */
	if (ret == 0 && (mutf7_encode(buf_cstr(out) + old, out->len - old, &check) < 0 ||
	                 check.len != len || (len > 0 && memcmp(check.data, mutf7, len) != 0)))
		ret = -1;
	buf_free(&check);
	if (ret < 0)
		buf_truncate(out, old);
	return ret;
}

bool mutf7_is_valid(const char *s, size_t len)
{
	struct buf b;
	buf_init(&b, 0);
	bool ok = mutf7_decode(s, len, &b) == 0;
	buf_free(&b);
	return ok;
}
