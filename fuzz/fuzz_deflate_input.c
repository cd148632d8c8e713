/*
 * Fuzz target: the COMPRESS=DEFLATE input path (conn_z_inflate_step, conn_compress.c).
 * After a 2-byte header (the size of the capped output buffer, a chunking seed), the
 * input is raw DEFLATE fed to the compressed-input buffer in chunks as room allows and
 * inflated into a small capped buffer that a consumer drains line by line. Checks: the
 * output buffer never passes its cap, each step makes no more than its room, and the
 * inflated bytes (and whether the stream failed) do not depend on the chunking. Output
 * is cut at 64 KiB per run so a bomb costs bounded time.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "net/conn_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_OUTPUT_LIMIT (64u * 1024)

struct run {
	struct buf text; /* every inflated byte, in order */
	size_t total;
	bool failed;
};

static void fuzz_inflate(const uint8_t *in, size_t n, size_t cap, uint8_t seed, struct run *r)
{
	struct conn_z *z = conn_z_new();
	struct buf out;
	buf_init(&out, cap);
	size_t pos = 0;
	unsigned state = seed;
	buf_init(&r->text, 0);
	r->total = 0;
	r->failed = false;
	for (size_t round = 0; round < 64 * n + FUZZ_OUTPUT_LIMIT; round++) {
		if (pos < n && buf_room(&z->zin) > 0) {
			size_t k = n - pos;
			if (seed != 0) {
				state = state * 1103515245u + 12345u;
				k = (state >> 16) % 17 + 1;
			}
			if (k > n - pos)
				k = n - pos;
			if (k > buf_room(&z->zin))
				k = buf_room(&z->zin);
			if (buf_append(&z->zin, in + pos, k) < 0)
				abort();
			pos += k;
		}
		size_t room = buf_room(&out);
		const char *error = NULL;
		ssize_t made = conn_z_inflate_step(z, &out, &error);
		if (made < 0) {
			if (error == NULL)
				abort();
			r->failed = true;
			break;
		}
		if ((size_t)made > room || out.len > cap)
			abort();
		/* The consumer: whole lines, or everything when the buffer is full. */
		while (out.len > 0) {
			const char *lf = memchr(out.data, '\n', out.len);
			size_t take = lf != NULL ? (size_t)(lf - out.data) + 1 : 0;
			if (take == 0 && (buf_room(&out) == 0 || (pos == n && made == 0)))
				take = out.len;
			if (take == 0)
				break;
			(void)buf_append(&r->text, out.data, take);
			r->total += take;
			buf_consume(&out, take);
		}
		if (r->total >= FUZZ_OUTPUT_LIMIT)
			break;
		if (pos == n && made == 0 && z->zin.len == 0 && !z->inf_more)
			break;
	}
	buf_free(&out);
	conn_z_destroy(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t cap = (size_t)data[0] * 64 + 64;
	uint8_t seed = data[1] | 1;
	struct run whole, chunked;
	fuzz_inflate(data + 2, size - 2, cap, 0, &whole);
	fuzz_inflate(data + 2, size - 2, cap, seed, &chunked);
	/* Runs cut short by the limit stop at different points: compare what both have. */
	bool cut = whole.total >= FUZZ_OUTPUT_LIMIT || chunked.total >= FUZZ_OUTPUT_LIMIT;
	size_t common = whole.total < chunked.total ? whole.total : chunked.total;
	if (memcmp(buf_cstr(&whole.text), buf_cstr(&chunked.text), common) != 0)
		abort();
	if (!cut && whole.failed != chunked.failed)
		abort();
	if (!cut && !whole.failed && whole.total != chunked.total)
		abort();
	buf_free(&whole.text);
	buf_free(&chunked.text);
	return 0;
}
