/* Encoding of index headers and records, and the CRC-32C that guards them. */
#include "store/index_format.h"

#include <string.h>

#include "base/buf.h"
#include "base/xalloc.h"

/* 3: messages stored as struct mbox_msg and struct mbox_cold records (mailbox_private.h);
 * 1 and 2 are still read. */
#define INDEX_VERSION (INDEX_IN_PLACE ? 3 : 1)

#if defined(__x86_64__)
/* SSE 4.2 has CRC-32C in hardware (the same polynomial, reflected). */
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const unsigned char *p,
                                                            size_t len)
{
	uint64_t c = ~crc & 0xffffffffu;
	while (len >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = __builtin_ia32_crc32di(c, v);
		p += 8;
		len -= 8;
	}
	while (len-- > 0)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return ~(uint32_t)c;
}

/* CRCs of n records of len bytes (a multiple of 8), four at a time: the instruction's
 * latency, not its throughput, bounds one stream, so four run in about the time of one. */
__attribute__((target("sse4.2"))) static void
crc32c_hw_records(const unsigned char *p, size_t stride, size_t len, size_t n, uint32_t *out)
{
	size_t i = 0;
	for (; i + 4 <= n; i += 4) {
		const unsigned char *r = p + i * stride;
		uint64_t c0 = 0xffffffffu, c1 = 0xffffffffu, c2 = 0xffffffffu, c3 = 0xffffffffu;
		for (size_t off = 0; off < len; off += 8) {
			uint64_t v0, v1, v2, v3;
			memcpy(&v0, r + off, 8);
			memcpy(&v1, r + stride + off, 8);
			memcpy(&v2, r + 2 * stride + off, 8);
			memcpy(&v3, r + 3 * stride + off, 8);
			c0 = __builtin_ia32_crc32di(c0, v0);
			c1 = __builtin_ia32_crc32di(c1, v1);
			c2 = __builtin_ia32_crc32di(c2, v2);
			c3 = __builtin_ia32_crc32di(c3, v3);
		}
		out[i] = ~(uint32_t)c0;
		out[i + 1] = ~(uint32_t)c1;
		out[i + 2] = ~(uint32_t)c2;
		out[i + 3] = ~(uint32_t)c3;
	}
	for (; i < n; i++)
		out[i] = crc32c_hw(0, p + i * stride, len);
}
#endif

static uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len);

void crc32c_records(const void *base, size_t stride, size_t len, size_t n, uint32_t *out)
{
	const unsigned char *p = base;
#if defined(__x86_64__)
	if (len % 8 == 0 && __builtin_cpu_supports("sse4.2")) {
		crc32c_hw_records(p, stride, len, n, out);
		return;
	}
#endif
	for (size_t i = 0; i < n; i++)
		out[i] = crc32c(0, p + i * stride, len);
}

uint32_t crc32c(uint32_t crc, const void *data, size_t len)
{
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2"))
		return crc32c_hw(crc, data, len);
#endif
	return crc32c_sw(crc, data, len);
}

static uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len)
{
	static uint32_t table[256];
	static bool ready;
	if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) {
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;
			for (int k = 0; k < 8; k++)
				c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
			table[i] = c;
		}
		__atomic_store_n(&ready, true, __ATOMIC_RELEASE);
	}
	const unsigned char *p = data;
	crc = ~crc;
	while (len-- > 0)
		crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

void index_put_u32(struct buf *b, uint32_t v)
{
	unsigned char s[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
	                      (unsigned char)(v >> 24)};
	buf_append(b, s, 4);
}

void index_put_u64(struct buf *b, uint64_t v)
{
	index_put_u32(b, (uint32_t)v);
	index_put_u32(b, (uint32_t)(v >> 32));
}

void index_header_encode(struct buf *b, const struct index_header *h)
{
	size_t start = b->len;
	buf_append(b, INDEX_MAGIC, 8);
	index_put_u32(b, INDEX_VERSION);
	index_put_u32(b, h->uidvalidity);
	index_put_u32(b, h->uidnext);
	index_put_u32(b, h->count);
	index_put_u64(b, h->highestmodseq);
	index_put_u64(b, h->gen);
	index_put_u64(b, (uint64_t)h->cur_mtime_ns);
	index_put_u64(b, (uint64_t)h->new_mtime_ns);
	/* 56 bytes so far; the names' length (format 3), then the checksum of the first 60. */
	index_put_u32(b, INDEX_VERSION == 3 ? h->names_len : 0);
	index_put_u32(b, crc32c(0, b->data + start, 60));
}

bool index_header_decode(const unsigned char *p, size_t len, struct index_header *h)
{
	if (len < INDEX_HEADER_SIZE || memcmp(p, INDEX_MAGIC, 8) != 0 ||
	    index_get_u32(p + 60) != crc32c(0, p, 60))
		return false;
	h->version = index_get_u32(p + 8);
	if (h->version < 1 || h->version > 3)
		return false;
	h->uidvalidity = index_get_u32(p + 12);
	h->uidnext = index_get_u32(p + 16);
	h->count = index_get_u32(p + 20);
	h->highestmodseq = index_get_u64(p + 24);
	h->gen = index_get_u64(p + 32);
	h->cur_mtime_ns = (int64_t)index_get_u64(p + 40);
	h->new_mtime_ns = (int64_t)index_get_u64(p + 48);
	h->names_len = h->version == 3 ? index_get_u32(p + 56) : 0;
	return h->uidvalidity != 0;
}

void index_frame(struct buf *b, const struct buf *payload)
{
	index_put_u32(b, (uint32_t)payload->len);
	index_put_u32(b, crc32c(0, payload->data, payload->len));
	buf_append(b, payload->data, payload->len);
}

bool index_unframe(const unsigned char *p, size_t avail, const unsigned char **payload_r,
                   size_t *len_r, size_t *frame_len_r)
{
	if (avail < 8)
		return false;
	uint32_t len = index_get_u32(p);
	if (len == 0 || len > INDEX_RECORD_MAX || len > avail - 8 ||
	    crc32c(0, p + 8, len) != index_get_u32(p + 4))
		return false;
	*payload_r = p + 8;
	*len_r = len;
	*frame_len_r = 8 + (size_t)len;
	return true;
}

void index_rec_encode(struct buf *b, const struct index_rec *r)
{
	size_t name_len = strlen(r->name);
	buf_append_char(b, INDEX_REC_ADD);
	index_put_u32(b, r->uid);
	index_put_u32(b, r->flags);
	index_put_u32(b, r->keywords);
	index_put_u64(b, r->modseq);
	index_put_u64(b, r->vsize);
	index_put_u64(b, r->psize);
	index_put_u64(b, (uint64_t)r->idate);
	index_put_u64(b, r->cache_off);
	index_put_u32(b, r->cache_len);
	index_put_u32(b, (uint32_t)name_len);
	buf_append(b, r->name, name_len);
}

bool index_rec_decode(const unsigned char *p, size_t len, struct index_rec *r)
{
	/* type 1 + 4*3 + 8*5 + 4 + 4 = 61 bytes before the name */
	if (len < 61 || p[0] != INDEX_REC_ADD)
		return false;
	uint32_t name_len = index_get_u32(p + 57);
	if (name_len == 0 || name_len != len - 61 || memchr(p + 61, '\0', name_len) != NULL ||
	    memchr(p + 61, '/', name_len) != NULL)
		return false;
	r->uid = index_get_u32(p + 1);
	r->flags = index_get_u32(p + 5);
	r->keywords = index_get_u32(p + 9);
	r->modseq = index_get_u64(p + 13);
	r->vsize = index_get_u64(p + 21);
	r->psize = index_get_u64(p + 29);
	r->idate = (int64_t)index_get_u64(p + 37);
	r->cache_off = index_get_u64(p + 45);
	r->cache_len = index_get_u32(p + 53);
	if (r->uid == 0)
		return false;
	r->name = xstrndup((const char *)p + 61, name_len);
	return true;
}
