/* Strict base64 encoding and decoding for SASL payloads. */
#include "auth/base64.h"

#include <stdint.h>

#include "base/buf.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int base64_encode(struct buf *out, const void *in, size_t len)
{
	const unsigned char *p = in;
	size_t start = out->len;

	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		size_t rest = len - i;

		if (rest > 1)
			v |= (uint32_t)p[i + 1] << 8;
		if (rest > 2)
			v |= p[i + 2];
		char q[4] = {b64_alphabet[(v >> 18) & 63], b64_alphabet[(v >> 12) & 63],
		             rest > 1 ? b64_alphabet[(v >> 6) & 63] : '=',
		             rest > 2 ? b64_alphabet[v & 63] : '='};
		if (buf_append(out, q, 4) < 0) {
			buf_truncate(out, start);
			return -1;
		}
	}
	return 0;
}

/* Decodes into out when out != NULL; only validates otherwise. */
static int b64_run(struct buf *out, const char *in, size_t len)
{
	const unsigned char *p = (const unsigned char *)in;

	if (len % 4 != 0)
		return -1;
	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		int pad = 0;
		int v[4];

		for (int k = 0; k < 4; k++) {
			if (p[i + k] == '=' && last && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad > 0)
				return -1; /* data after padding */
			v[k] = base64_value(p[i + k]);
			if (v[k] < 0)
				return -1;
		}
		/* The bits that padding drops must be zero (canonical encoding). */
		if ((pad == 1 && (v[2] & 3) != 0) || (pad == 2 && (v[1] & 15) != 0))
			return -1;
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 |
		             (uint32_t)v[3];
		unsigned char b[3] = {(unsigned char)(w >> 16), (unsigned char)(w >> 8),
		                      (unsigned char)w};
		if (out != NULL && buf_append(out, b, 3 - (size_t)pad) < 0)
			return -1;
	}
	return 0;
}

int base64_decode(struct buf *out, const char *in, size_t len)
{
	size_t start = out->len;

	if (b64_run(out, in, len) < 0) {
		buf_truncate(out, start);
		return -1;
	}
	return 0;
}

bool base64_is_valid(const char *s, size_t len)
{
	return b64_run(NULL, s, len) == 0;
}
