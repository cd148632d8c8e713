/* Unit tests for the index encodings: CRC-32C vectors, header and record round trips,
 * and damage detection in frames. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "store/index_format.h"

static void test_crc32c_vectors(void **state)
{
	(void)state;
	/* RFC 3720 B.4 and the usual check value. */
	assert_int_equal(crc32c(0, "123456789", 9), 0xe3069283);
	unsigned char zeros[32] = {0}, ones[32];
	memset(ones, 0xff, sizeof(ones));
	assert_int_equal(crc32c(0, zeros, 32), 0x8a9136aa);
	assert_int_equal(crc32c(0, ones, 32), 0x62a8ab43);
	/* Odd lengths and offsets (the 8-byte loop and its tail) agree with chaining. */
	const char *text = "The quick brown fox jumps over the lazy dog";
	for (size_t split = 0; split <= strlen(text); split++) {
		uint32_t a = crc32c(0, text, strlen(text));
		uint32_t b = crc32c(crc32c(0, text, split), text + split, strlen(text) - split);
		assert_int_equal(a, b);
	}
}

static void test_header_and_record_round_trip(void **state)
{
	(void)state;
	struct index_header h = {.uidvalidity = 1234567,
	                         .uidnext = 42,
	                         .count = 3,
	                         .highestmodseq = 99,
	                         .gen = 7,
	                         .cur_mtime_ns = 111,
	                         .new_mtime_ns = 222,
	                         .names_len = 4321},
	                    h2;
	struct buf b;
	buf_init(&b, 0);
	index_header_encode(&b, &h);
	assert_int_equal(b.len, INDEX_HEADER_SIZE);
	assert_true(index_header_decode((unsigned char *)b.data, b.len, &h2));
	assert_int_equal(h2.uidvalidity, 1234567);
	assert_int_equal(h2.uidnext, 42);
	assert_int_equal(h2.highestmodseq, 99);
	assert_int_equal(h2.new_mtime_ns, 222);
	assert_int_equal(h2.version, INDEX_IN_PLACE ? 3 : 1);      /* the current format */
	assert_int_equal(h2.names_len, INDEX_IN_PLACE ? 4321 : 0); /* format 3 only */
	/* Any flipped bit is caught. */
	for (size_t i = 0; i < INDEX_HEADER_SIZE; i++) {
		b.data[i] ^= 0x10;
		assert_false(index_header_decode((unsigned char *)b.data, b.len, &h2));
		b.data[i] ^= 0x10;
	}
	struct index_rec r = {5, 3, 1, 77, 1000, 990, 1700000000, 4096, 120, "1.M2P3.h:2,S"}, r2;
	struct buf payload, frame;
	buf_init(&payload, 0);
	buf_init(&frame, 0);
	index_rec_encode(&payload, &r);
	index_frame(&frame, &payload);
	const unsigned char *p;
	size_t plen, flen;
	assert_true(index_unframe((unsigned char *)frame.data, frame.len, &p, &plen, &flen));
	assert_int_equal(flen, frame.len);
	assert_true(index_rec_decode(p, plen, &r2));
	assert_int_equal(r2.uid, 5);
	assert_int_equal(r2.vsize, 1000);
	assert_int_equal(r2.idate, 1700000000);
	assert_string_equal(r2.name, r.name);
	free(r2.name);
	/* Torn: any shorter frame fails; a damaged byte fails. */
	for (size_t n = 0; n < frame.len; n++)
		assert_false(index_unframe((unsigned char *)frame.data, n, &p, &plen, &flen));
	frame.data[frame.len - 1] ^= 1;
	assert_false(index_unframe((unsigned char *)frame.data, frame.len, &p, &plen, &flen));
	/* A name with '/' is refused even with a good checksum. */
	struct index_rec bad = r;
	bad.name = "../../etc";
	buf_reset(&payload);
	index_rec_encode(&payload, &bad);
	assert_false(index_rec_decode((unsigned char *)payload.data, payload.len, &r2));
	buf_free(&b);
	buf_free(&payload);
	buf_free(&frame);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crc32c_vectors),
	    cmocka_unit_test(test_header_and_record_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
