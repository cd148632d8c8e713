/*
 * COMPRESS=DEFLATE (RFC 4978) on a struct conn: raw DEFLATE (RFC 1951, windowBits -15
 * on input, smaller on output) between the protocol and TLS (or the socket).
 *
 * Output: conn_write() deflates with Z_NO_FLUSH and kicks the conn; the kick runs in the
 * loop's next idle phase, after every callback of this turn has written its part of the
 * response batch and before the loop blocks waiting for the peer, and ends the batch
 * with Z_SYNC_FLUSH. The deflate state is then released: a new one is made for the next
 * batch (the peer's inflater continues across them, since a sync flush ends on a byte
 * boundary without a final block), so an idle compressed conn holds no compressor.
 *
 * Input: bytes from the network (or out of TLS) go to the capped `zin`; conn_z_pump()
 * inflates them into `in`, never more than `in` has room for, so the protocol's input
 * cap bounds what a decompression bomb can make us hold, and reading stops (TCP flow
 * control) while `zin` is full.
 */
#include "net/conn_int.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xalloc.h"

/* Compressed input held before reading stops. */
#define CONN_Z_INPUT_MAX (16 * 1024)
/*
 * Our deflater: a 4 KiB window and memLevel 5 take 2^(12+2) + 2^(5+9) = 32 KiB plus
 * zlib's ~6 KiB state (docs/net.md has the measured numbers), against 256 KiB for zlib's
 * defaults; IMAP responses compress almost as well with the smaller window.
 */
#define CONN_Z_DEF_WBITS 12
#define CONN_Z_DEF_MEMLEVEL 5
#define CONN_Z_DEF_LEVEL 6
/* The peer may use any window up to 32 KiB (RFC 1951): our inflater must take it. */
#define CONN_Z_INF_WBITS 15

static _Thread_local char z_scratch[16 * 1024];

/* zlib allocations carry their size in front, so the per-conn cost can be measured. */
struct z_alloc_head {
	size_t size;
	max_align_t align;
};

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
	struct conn_z *z = opaque;
	size_t n = (size_t)items * size;
	struct z_alloc_head *h = xmalloc(sizeof(*h) + n);
	h->size = n;
	z->zmem += n;
	if (z->zmem > z->zmem_peak)
		z->zmem_peak = z->zmem;
	return (char *)h + sizeof(*h);
}

static void z_free(voidpf opaque, voidpf p)
{
	struct conn_z *z = opaque;
	if (p == NULL)
		return;
	struct z_alloc_head *h = (struct z_alloc_head *)(void *)((char *)p - sizeof(*h));
	z->zmem -= h->size;
	free(h);
}

struct conn_z *conn_z_new(void)
{
	struct conn_z *z = xcalloc(1, sizeof(*z));
	z->inf.zalloc = z_alloc;
	z->inf.zfree = z_free;
	z->inf.opaque = z;
	if (inflateInit2(&z->inf, -CONN_Z_INF_WBITS) != Z_OK)
		log_panic("zlib: inflateInit2 failed");
	buf_init(&z->zin, CONN_Z_INPUT_MAX);
	return z;
}

void conn_z_destroy(struct conn_z *z)
{
	if (z == NULL)
		return;
	if (z->def_ready)
		(void)deflateEnd(&z->def);
	(void)inflateEnd(&z->inf);
	buf_free(&z->zin);
	free(z);
}

void conn_z_free(struct conn *c)
{
	conn_z_destroy(c->z);
	c->z = NULL;
}

/* --- output ------------------------------------------------------------------------- */

static int conn_z_emit(struct conn *c, const char *p, size_t n)
{
	c->z->wire_out += n;
	if (c->tls != NULL)
		return conn_tls_write(c, p, n);
	conn_queue_wire(c, p, n);
	return 0;
}

static void conn_z_deflate_init(struct conn_z *z)
{
	memset(&z->def, 0, sizeof(z->def));
	z->def.zalloc = z_alloc;
	z->def.zfree = z_free;
	z->def.opaque = z;
	if (deflateInit2(&z->def, CONN_Z_DEF_LEVEL, Z_DEFLATED, -CONN_Z_DEF_WBITS,
	                 CONN_Z_DEF_MEMLEVEL, Z_DEFAULT_STRATEGY) != Z_OK)
		log_panic("zlib: deflateInit2 failed");
	z->def_ready = true;
}

/* Runs deflate over data with the given flush until zlib wants no more output room. */
static int conn_z_deflate(struct conn *c, const void *data, size_t len, int flush)
{
	struct conn_z *z = c->z;
	const unsigned char *p = data;
	do {
		/* avail_in is 32 bits wide: feed a huge write in slices. */
		uInt slice = len > (1u << 30) ? (1u << 30) : (uInt)len;
		z->def.next_in = (Bytef *)(uintptr_t)p;
		z->def.avail_in = slice;
		for (;;) {
			z->def.next_out = (Bytef *)z_scratch;
			z->def.avail_out = sizeof(z_scratch);
			int r = deflate(&z->def, len - slice == 0 ? flush : Z_NO_FLUSH);
			if (r != Z_OK && r != Z_BUF_ERROR)
				log_panic("zlib: deflate failed: %d", r);
			size_t n = sizeof(z_scratch) - z->def.avail_out;
			if (n > 0 && conn_z_emit(c, z_scratch, n) < 0)
				return -1;
			if (z->def.avail_out != 0 && z->def.avail_in == 0)
				break;
		}
		p += slice;
		len -= slice;
	} while (len > 0);
	return 0;
}

int conn_z_write(struct conn *c, const void *data, size_t len)
{
	struct conn_z *z = c->z;
	if (!z->def_ready)
		conn_z_deflate_init(z);
	z->raw_out += len;
	if (conn_z_deflate(c, data, len, Z_NO_FLUSH) < 0)
		return -1;
	if (!z->flush_pending) {
		z->flush_pending = true;
		conn_kick(c);
	}
	return 0;
}

int conn_z_flush(struct conn *c)
{
	struct conn_z *z = c->z;
	if (z == NULL || !z->flush_pending)
		return 0;
	z->flush_pending = false;
	int r = conn_z_deflate(c, "", 0, Z_SYNC_FLUSH);
	/* The batch is out and byte-aligned: the next one starts a fresh deflater. */
	(void)deflateEnd(&z->def);
	z->def_ready = false;
	if (r == 0)
		conn_flush(c);
	return r;
}

/* --- input -------------------------------------------------------------------------- */

ssize_t conn_z_inflate_step(struct conn_z *z, struct buf *out, const char **error_r)
{
	size_t room = buf_room(out);
	if (room > sizeof(z_scratch))
		room = sizeof(z_scratch);
	if (room == 0 || (z->zin.len == 0 && !z->inf_more))
		return 0;
	if (z->inf_ended) {
		*error_r = "data after the end of the compressed stream";
		return -1;
	}
	z->inf.next_in = (Bytef *)z->zin.data;
	z->inf.avail_in = (uInt)z->zin.len;
	z->inf.next_out = (Bytef *)z_scratch;
	z->inf.avail_out = (uInt)room;
	int r = inflate(&z->inf, Z_SYNC_FLUSH);
	size_t used = z->zin.len - z->inf.avail_in;
	size_t made = room - z->inf.avail_out;
	z->wire_in += used;
	z->raw_in += made;
	buf_consume(&z->zin, used);
	if (z->zin.len == 0)
		buf_free(&z->zin); /* an idle conn keeps no input buffer */
	z->inf_more = z->inf.avail_out == 0;
	if (made > 0 && buf_append(out, z_scratch, made) < 0)
		log_panic("conn: inflated past the input cap");
	switch (r) {
	case Z_OK:
	case Z_BUF_ERROR: /* no progress possible until more input or room */
		break;
	case Z_STREAM_END:
		z->inf_ended = true;
		z->inf_more = false;
		if (z->zin.len > 0) {
			*error_r = "data after the end of the compressed stream";
			return -1;
		}
		break;
	case Z_NEED_DICT:
		*error_r = "preset dictionary requested";
		return -1;
	default:
		*error_r = z->inf.msg != NULL ? z->inf.msg : "corrupt data";
		return -1;
	}
	return (ssize_t)made;
}

int conn_z_pump(struct conn *c)
{
	for (;;) {
		const char *error = NULL;
		ssize_t n = conn_z_inflate_step(c->z, &c->in, &error);
		if (n < 0) {
			log_info("conn %llu: bad compressed input from %s: %s",
			         (unsigned long long)c->id, c->peer_ip, error);
			conn_close(c);
			return -1;
		}
		if (n == 0)
			return 0;
		c->fresh_input = true;
	}
}

bool conn_z_has_buffered(const struct conn *c)
{
	return c->z != NULL && (c->z->zin.len > 0 || c->z->inf_more);
}

/* --- the API ------------------------------------------------------------------------ */

int conn_start_compress(struct conn *c)
{
	if (c->z != NULL || c->state != CONN_OPEN)
		return -1;
	if (c->tls != NULL && c->tls->phase != TLS_PHASE_UP)
		return -1;
	struct conn_z *z = conn_z_new();
	/* Bytes the peer sent after the command belong to its compressed stream. */
	if (c->in.len > 0) {
		z->zin.max = c->in.len > CONN_Z_INPUT_MAX ? c->in.len : CONN_Z_INPUT_MAX;
		if (buf_append(&z->zin, c->in.data, c->in.len) < 0)
			log_panic("conn: compressed input does not fit");
		buf_reset(&c->in);
	}
	c->fresh_input = false;
	c->z = z;
	if (z->zin.len > 0)
		conn_kick(c); /* inflate it from the loop, never inside the protocol's call */
	return 0;
}

bool conn_is_compressed(const struct conn *c)
{
	return c->z != NULL;
}

size_t conn_compress_memory(const struct conn *c, size_t *peak_r)
{
	if (peak_r != NULL)
		*peak_r = c->z != NULL ? c->z->zmem_peak : 0;
	return c->z != NULL ? c->z->zmem : 0;
}

void conn_compress_stats(const struct conn *c, uint64_t *raw_in_r, uint64_t *wire_in_r,
                         uint64_t *raw_out_r, uint64_t *wire_out_r)
{
	const struct conn_z *z = c->z;
	*raw_in_r = z != NULL ? z->raw_in : 0;
	*wire_in_r = z != NULL ? z->wire_in : 0;
	*raw_out_r = z != NULL ? z->raw_out : 0;
	*wire_out_r = z != NULL ? z->wire_out : 0;
}
