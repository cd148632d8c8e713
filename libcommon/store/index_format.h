/*
 * The on-disk formats of a folder's index (see docs/store.md "Index"):
 *
 *   tern-index      snapshot: a 64-byte header (checksummed) + one framed record per message
 *   tern-index.log  changes since the snapshot: a header with the snapshot's generation,
 *                   then framed records appended under the folder lock
 *   tern-cache      append-only blobs of cached ENVELOPE/BODY/BODYSTRUCTURE/header fields
 *
 * A framed record is u32 length, u32 CRC-32C of the payload, then the payload, so a torn
 * append or a flipped bit is detected and that record (and, in the log, what follows) is
 * ignored. All integers are little-endian.
 */
#ifndef TERN_STORE_INDEX_FORMAT_H
#define TERN_STORE_INDEX_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

#define INDEX_FILE "tern-index"
#define INDEX_LOG_FILE "tern-index.log"
#define INDEX_CACHE_FILE "tern-cache"
#define INDEX_LOCK_FILE "tern-index.lock"
#define INDEX_UIDVALIDITY_FILE "tern-uidvalidity"

/*
 * Whether this machine writes format 3, whose message records are struct mbox_msg and
 * struct mbox_cold as laid out on little-endian 64-bit machines (see mailbox_private.h).
 * Elsewhere format 1 is written, formats 1 and 2 are read, and a format-3 snapshot (from
 * another machine) is rebuilt.
 */
#ifndef INDEX_IN_PLACE
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && __SIZEOF_POINTER__ == 8
#define INDEX_IN_PLACE 1
#else
#define INDEX_IN_PLACE 0
#endif
#endif

#define INDEX_MAGIC "TERNIDX1"
#define INDEX_LOG_MAGIC "TERNLOG1"
#define INDEX_HEADER_SIZE 64
#define INDEX_LOG_HEADER_SIZE 20
/* A record larger than this is damage, not data. */
#define INDEX_RECORD_MAX (64 * 1024)

enum index_rec_type {
	INDEX_REC_ADD = 1,     /* a message got its UID (full record) */
	INDEX_REC_FLAGS = 2,   /* flags/keywords/name changed */
	INDEX_REC_EXPUNGE = 3, /* the message is gone */
	INDEX_REC_CACHE = 4,   /* new cache blob for a message */
	INDEX_REC_DATES = 5,   /* directory mtimes seen by the last full scan */
	/* Snapshot only, after the messages: the expunge tombstones (QRESYNC), see
	 * mailbox_vanished.c: u64 floor, u32 n, n x (u32 first UID, u32 last UID, u64 modseq). */
	INDEX_REC_VANISHED = 6,
};

/* One message as the index knows it. */
struct index_rec {
	uint32_t uid;
	uint32_t flags;
	uint32_t keywords;
	uint64_t modseq;
	uint64_t vsize; /* RFC822.SIZE: CRLF line ends */
	uint64_t psize; /* bytes in the file */
	int64_t idate;  /* INTERNALDATE, seconds */
	uint64_t cache_off;
	uint32_t cache_len;
	char *name; /* file name (in cur/ or new/), owned */
};

struct index_header {
	uint32_t version; /* as read (1, 2 or 3); the encoder writes the current one */
	uint32_t uidvalidity;
	uint32_t uidnext;
	uint32_t count;
	uint64_t highestmodseq;
	uint64_t gen;
	int64_t cur_mtime_ns, new_mtime_ns;
	uint32_t names_len; /* format 3: bytes of the names' area (else 0) */
};

uint32_t crc32c(uint32_t crc, const void *data, size_t len);
/* out[i] = crc32c(0, base + i * stride, len) for i < n, several computed side by side. */
void crc32c_records(const void *base, size_t stride, size_t len, size_t n, uint32_t *out);

void index_put_u32(struct buf *b, uint32_t v);
void index_put_u64(struct buf *b, uint64_t v);
static inline uint32_t index_get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t index_get_u64(const unsigned char *p)
{
	return (uint64_t)index_get_u32(p) | (uint64_t)index_get_u32(p + 4) << 32;
}

void index_header_encode(struct buf *b, const struct index_header *h);
/* false when the magic, version or checksum is wrong. */
bool index_header_decode(const unsigned char *p, size_t len, struct index_header *h);

/* Appends a framed record (length, CRC, payload). */
void index_frame(struct buf *b, const struct buf *payload);
/*
 * Reads the framed record at p: the payload and its length, and the frame's total size.
 * Returns false for a torn or damaged frame.
 */
bool index_unframe(const unsigned char *p, size_t avail, const unsigned char **payload_r,
                   size_t *len_r, size_t *frame_len_r);

/* Payload of an ADD record (type byte included). */
void index_rec_encode(struct buf *payload, const struct index_rec *r);
/* Decodes an ADD payload (type byte included); false when malformed. */
bool index_rec_decode(const unsigned char *p, size_t len, struct index_rec *r);

#endif
