/*
 * Fuzz target: line_next() and line_skip(). The input (after a 3-byte header choosing the
 * mode, the cap and a chunking seed) is run through a capped buffer twice, once whole
 * and once in fuzzer-chosen chunks; both transcripts must match, every reported line
 * must fit the cap and every consumption must make progress within the buffer.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "proto/line.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_transcript(const char *in, size_t n, size_t max, enum line_mode mode, uint8_t seed,
                            struct buf *out)
{
	struct buf b;
	buf_init(&b, max + 2);
	bool skipping = false;
	size_t pos = 0;
	unsigned state = seed;
	for (size_t round = 0; round < 4 * n + 16; round++) {
		if (pos < n) {
			size_t k = n - pos;
			if (seed != 0) {
				state = state * 1103515245u + 12345u;
				k = (state >> 16) % 9 + 1;
			}
			if (k > n - pos)
				k = n - pos;
			if (k > buf_room(&b))
				k = buf_room(&b);
			if (buf_append(&b, in + pos, k) < 0)
				abort();
			pos += k;
		}
		for (;;) {
			if (skipping) {
				bool done;
				size_t used = line_skip(b.data, b.len, &done);
				if (used > b.len || (done && used == 0))
					abort();
				buf_consume(&b, used);
				if (!done)
					break;
				skipping = false;
				continue;
			}
			size_t len = 0, used = 0;
			enum line_result r = line_next(buf_cstr(&b), b.len, max, mode, &len, &used);
			if (r == LINE_NEED_MORE)
				break;
			if (len > max)
				abort();
			if (r == LINE_TOO_LONG) {
				if (used != 0 || b.len <= max)
					abort();
				buf_append_str(out, "L|");
				skipping = true;
				continue;
			}
			if (used == 0 || used > b.len || len >= used)
				abort();
			buf_append_char(out, (char)('0' + r));
			buf_append(out, b.data, len);
			buf_append_char(out, '|');
			buf_consume(&b, used);
		}
		if (pos == n)
			break;
	}
	buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	enum line_mode mode = (enum line_mode)(data[0] % 3);
	size_t max = data[1];
	uint8_t seed = data[2] | 1;
	const char *in = (const char *)data + 3;
	size_t n = size - 3;
	struct buf whole, chunked;
	buf_init(&whole, 0);
	buf_init(&chunked, 0);
	fuzz_transcript(in, n, max, mode, 0, &whole);
	fuzz_transcript(in, n, max, mode, seed, &chunked);
	/* Both empty: no buffer yet (memcmp on NULL is undefined even for 0 bytes). */
	if (whole.len != chunked.len ||
	    (whole.len > 0 && memcmp(whole.data, chunked.data, whole.len) != 0))
		abort();
	buf_free(&whole);
	buf_free(&chunked);
	return 0;
}
