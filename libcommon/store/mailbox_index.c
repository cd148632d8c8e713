/*
 * Reading and writing a folder's index: the snapshot, the change log and the folder lock.
 * Readers replay the log on top of the snapshot; writers append to the log under the lock
 * and now and then fold it into a new snapshot (write new + rename). A torn log tail (a
 * crash during an append) is cut off by the next writer; any other damage means the index
 * is rebuilt from the files with a new UIDVALIDITY, because UIDs it handed out are lost.
 */
#include "store/mailbox_private.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "store/atomic_file.h"
#include "store/lockfile.h"
#include "store/maildir_fs.h"

/* A snapshot stores struct mbox_msg and struct mbox_cold as they are in memory (see
 * mailbox_private.h): the layouts below are part of the file format. */
#if INDEX_IN_PLACE
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "format 3 is little-endian");
_Static_assert(sizeof(time_t) == 8 && sizeof(char *) == 8, "format 3 needs 64-bit types");
_Static_assert(sizeof(struct mbox_msg) == 40 && offsetof(struct mbox_msg, m.expunged) == 12 &&
                   offsetof(struct mbox_msg, m.modseq) == 16 &&
                   offsetof(struct mbox_msg, slot) == 24 && offsetof(struct mbox_msg, home) == 28 &&
                   offsetof(struct mbox_msg, in_new) == 29 && offsetof(struct mbox_msg, crc) == 32,
               "struct mbox_msg is the snapshot's hot record");
_Static_assert(sizeof(struct mbox_cold) == 64 && offsetof(struct mbox_cold, info.idate) == 16 &&
                   offsetof(struct mbox_cold, cache_off) == 24 &&
                   offsetof(struct mbox_cold, name_off) == 36 &&
                   offsetof(struct mbox_cold, sort_date_set) == 42 &&
                   offsetof(struct mbox_cold, crc) == 44 &&
                   offsetof(struct mbox_cold, name_heap) == 48,
               "struct mbox_cold is the snapshot's cold record");
#endif
/* What each record's CRC covers (a cold record's then goes on over its name). */
#define HOT_CRC_LEN offsetof(struct mbox_msg, crc)
#define COLD_CRC_LEN offsetof(struct mbox_cold, crc)

/*
 * The log is folded into a new snapshot when it passes this many bytes plus 1/64 of the
 * snapshot. Every open replays the log, and a record changing a message copies that
 * message's page of the mapped snapshot, so a long log (say the CACHE records of a first
 * FETCH of every message) costs each open more than the snapshot itself; writing a new
 * snapshot costs the writer once.
 */
#define INDEX_LOG_FOLD_MIN 32768

/* The snapshot is at most this big (about 2 million messages). */
#define INDEX_FILE_MAX (512u * 1024 * 1024)

/*
 * A mapped snapshot: its first bytes (the file header, decoded by then) hold how many of
 * its messages are still in use, the mapping's length and where its cold parts are.
 */
_Static_assert(sizeof(struct mbox_map) <= INDEX_HEADER_SIZE, "the map fits in the header");

size_t mbox_map_min = 64 * 1024;

static void snapshot_unmap(void *data, size_t len, bool heap)
{
	if (heap)
		free(data);
	else
		munmap(data, len);
}

static void map_release(struct mbox_map *map)
{
	if (--map->live == 0) {
		free(map->checked);
		snapshot_unmap(map, (size_t)map->len, map->heap != 0);
	}
}

/* The snapshot a mapped message lives in: its hot records follow the header, by slot. */
static struct mbox_map *map_of(const struct mbox_msg *m)
{
	return (struct mbox_map *)(void *)((char *)(uintptr_t)m - INDEX_HEADER_SIZE -
	                                   (size_t)m->slot * sizeof(struct mbox_msg));
}

static bool cold_checked(const struct mbox_map *map, uint32_t slot)
{
	return (map->checked[slot / 64] >> (slot % 64)) & 1;
}

/* True when c is a cold record as mbox_write_snapshot writes it (read as bytes where a
 * bool or a pointer may hold anything). */
static bool cold_ok(const struct mbox_map *map, const struct mbox_cold *c)
{
	static const unsigned char zero[8];
	const unsigned char *b = (const unsigned char *)c;
	if (b[offsetof(struct mbox_cold, sort_date_set)] != 0 ||
	    b[offsetof(struct mbox_cold, reserved)] != 0 ||
	    memcmp(b + offsetof(struct mbox_cold, name_heap), zero, 8) != 0 ||
	    memcmp(b + offsetof(struct mbox_cold, sort_date), zero, 8) != 0)
		return false;
	uint32_t off = c->name_off, len = c->name_len;
	if (len == 0 || off < map->names_start || off > map->names_end ||
	    map->names_end - off < len + 1)
		return false;
	const char *name = (const char *)map + off;
	if (name[len] != '\0' || memchr(name, '\0', len) != NULL || memchr(name, '/', len) != NULL)
		return false;
	return crc32c(crc32c(0, c, COLD_CRC_LEN), name, (size_t)len + 1) == c->crc;
}

struct mbox_cold *mbox_cold_mapped(const struct mbox_msg *m)
{
	struct mbox_map *map = map_of(m);
	struct mbox_cold *c = &map->cold[m->slot];
	if (cold_checked(map, m->slot))
		return c;
	map->checked[m->slot / 64] |= (uint64_t)1 << (m->slot % 64);
	if (!cold_ok(map, c)) {
		/* Its name is lost: no file is found under "", so the next scan takes the file
		 * for a new one; the next mbox_lock drops this message (mbox_catch_up). */
		memset(c, 0, sizeof(*c));
		c->name_heap = xstrdup("");
		map->named++;
		map->damaged = 1;
	}
	return c;
}

struct mbox_msg *mbox_msg_new(char *name)
{
	struct mbox_heap_msg *h = xcalloc(1, sizeof(*h));
	h->hot.home = MBOX_HOME_HEAP;
	h->cold.name_heap = name;
	return &h->hot;
}

const char *mbox_msg_name(const struct mbox_msg *m)
{
	const struct mbox_cold *c = mbox_cold(m);
	if (c->name_heap != NULL)
		return c->name_heap;
	return (const char *)map_of(m) + c->name_off; /* checked by mbox_cold */
}

void mbox_msg_release(struct mbox_msg *m)
{
	if (m == NULL)
		return;
	if (m->home == MBOX_HOME_MAP) {
		struct mbox_map *map = map_of(m);
		/* An unchecked cold record holds no name of ours (its bytes may be anything). */
		if (cold_checked(map, m->slot) && map->cold[m->slot].name_heap != NULL) {
			map->named--;
			free(map->cold[m->slot].name_heap);
		}
		map_release(map);
	} else {
		free(mbox_cold(m)->name_heap);
		free(m); /* the start of its struct mbox_heap_msg */
	}
}

void mbox_msg_set_name(struct mbox_msg *m, char *name)
{
	struct mbox_cold *c = mbox_cold(m);
	if (m->home == MBOX_HOME_MAP && c->name_heap == NULL)
		map_of(m)->named++;
	free(c->name_heap);
	c->name_heap = name;
}

void index_state_free(struct index_state *st)
{
	struct mbox_map *map = st->map;
	if (map != NULL && map->named == 0) {
		/* Its messages hold no heap name: they are let go by counting their addresses,
		 * without touching each one. */
		uintptr_t lo = (uintptr_t)map, hi = lo + (uintptr_t)map->len;
		uint64_t in_map = 0;
		for (size_t i = 0; i < st->count; i++) {
			uintptr_t a = (uintptr_t)st->msgs[i];
			if (a >= lo && a < hi)
				in_map++;
			else
				mbox_msg_release(st->msgs[i]);
		}
		map->live -= in_map; /* never 0 here: st's own reference is released below */
	} else {
		for (size_t i = 0; i < st->count; i++)
			mbox_msg_release(st->msgs[i]);
	}
	if (map != NULL)
		map_release(map);
	free(st->msgs);
	mbox_vanished_free(&st->van);
	memset(st, 0, sizeof(*st));
}

ssize_t mbox_index_of(const struct index_state *st, uint32_t uid)
{
	size_t lo = 0, hi = st->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (st->msgs[mid]->m.uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < st->count && st->msgs[lo]->m.uid == uid ? (ssize_t)lo : -1;
}

struct mbox_msg *mbox_find(struct index_state *st, uint32_t uid)
{
	/* Lookups mostly come in UID order (log replay, merge): first try just after the last
	 * one, which spares a binary search whose every step may miss the cache. */
	for (size_t k = st->find_hint; k < st->count && k < st->find_hint + 2; k++) {
		if (st->msgs[k]->m.uid == uid) {
			st->find_hint = k + 1;
			return st->msgs[k];
		}
	}
	ssize_t i = mbox_index_of(st, uid);
	if (i < 0)
		return NULL;
	st->find_hint = (size_t)i + 1;
	return st->msgs[i];
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

void mbox_note_changed(struct store_mailbox *box, uint32_t uid)
{
	size_t visible = mbox_visible(box);
	/* Only messages in the view are reported. */
	if (visible == 0 || uid > box->view->msgs[visible - 1]->m.uid)
		return;
	if (box->changed_count == box->changed_cap && box->changed_cap > 2 * visible + 64) {
		/* Bounded by the view: drop repeats before growing. */
		qsort(box->changed, box->changed_count, sizeof(uint32_t), cmp_u32);
		size_t n = 0;
		for (size_t i = 0; i < box->changed_count; i++) {
			if (n == 0 || box->changed[n - 1] != box->changed[i])
				box->changed[n++] = box->changed[i];
		}
		box->changed_count = n;
	}
	if (box->changed_count == box->changed_cap) {
		box->changed_cap = box->changed_cap * 2 + 16;
		box->changed = xreallocarray(box->changed, box->changed_cap, sizeof(uint32_t));
	}
	box->changed[box->changed_count++] = uid;
}

void mbox_note_changed_all(struct mbox_folder *f, uint32_t uid)
{
	for (struct store_mailbox *h = f->handles; h != NULL; h = h->h_next)
		mbox_note_changed(h, uid);
}

/* UIDs only grow: an ADD at or below the last UID is a replayed or bogus one. */
static bool state_accepts(const struct index_state *st, uint32_t uid)
{
	return st->count == 0 || uid > st->msgs[st->count - 1]->m.uid;
}

/* Appends m (zeroed but for its name) as r's message. */
static void state_push(struct index_state *st, const struct index_rec *r, struct mbox_msg *m)
{
	struct mbox_cold *c = mbox_cold(m);
	if (st->count == st->cap) {
		st->cap = st->cap * 2 + 64;
		st->msgs = xreallocarray(st->msgs, st->cap, sizeof(*st->msgs));
	}
	st->msgs[st->count++] = m;
	st->dirty = true;
	m->m.uid = r->uid;
	m->m.flags = r->flags;
	m->m.keywords = r->keywords;
	m->m.modseq = r->modseq;
	c->info.vsize = r->vsize;
	c->info.psize = r->psize;
	c->info.idate = (time_t)r->idate;
	c->cache_off = r->cache_off;
	c->cache_len = r->cache_len;
	if (r->uid >= st->hdr.uidnext)
		st->hdr.uidnext = r->uid + 1;
	if (r->modseq > st->hdr.highestmodseq)
		st->hdr.highestmodseq = r->modseq;
}

static void state_add(struct index_state *st, struct index_rec *r)
{
	if (!state_accepts(st, r->uid)) {
		free(r->name);
		return;
	}
	state_push(st, r, mbox_msg_new(r->name));
}

/* Applies one log payload; f's handles (f may be NULL) learn of flag changes. */
static bool state_apply(struct mbox_folder *f, struct index_state *st, const unsigned char *p,
                        size_t len)
{
	struct index_rec r;
	struct mbox_msg *m;
	switch (p[0]) {
	case INDEX_REC_ADD:
		if (!index_rec_decode(p, len, &r))
			return false;
		state_add(st, &r);
		return true;
	case INDEX_REC_FLAGS:
		if (len < 25 || index_get_u32(p + 21) != len - 25 || len == 25)
			return false;
		if ((m = mbox_find(st, index_get_u32(p + 1))) != NULL && !m->m.expunged) {
			m->m.flags = index_get_u32(p + 5);
			m->m.keywords = index_get_u32(p + 9);
			m->m.modseq = index_get_u64(p + 13);
			mbox_msg_set_name(m, xstrndup((const char *)p + 25, len - 25));
			m->in_new = false;
			if (f != NULL)
				mbox_note_changed_all(f, m->m.uid);
		}
		if (index_get_u64(p + 13) > st->hdr.highestmodseq)
			st->hdr.highestmodseq = index_get_u64(p + 13);
		return true;
	case INDEX_REC_EXPUNGE:
		if (len != 13)
			return false;
		if ((m = mbox_find(st, index_get_u32(p + 1))) != NULL && !m->m.expunged) {
			m->m.expunged = true;
			st->expunged++;
			st->dirty = true;
		}
		mbox_vanished_add(st, index_get_u32(p + 1), index_get_u64(p + 5));
		if (index_get_u64(p + 5) > st->hdr.highestmodseq)
			st->hdr.highestmodseq = index_get_u64(p + 5);
		return true;
	case INDEX_REC_CACHE:
		if (len != 17)
			return false;
		if ((m = mbox_find(st, index_get_u32(p + 1))) != NULL) {
			struct mbox_cold *c = mbox_cold(m);
			c->cache_off = index_get_u64(p + 5);
			c->cache_len = index_get_u32(p + 13);
		}
		return true;
	case INDEX_REC_DATES:
		if (len != 17)
			return false;
		st->hdr.cur_mtime_ns = (int64_t)index_get_u64(p + 1);
		st->hdr.new_mtime_ns = (int64_t)index_get_u64(p + 9);
		return true;
	default:
		return false;
	}
}

/*
 * Replays log records from st->log_offset. Returns 0, or -1 when the log is damaged
 * before its end (a torn last record is not damage: it is simply not there yet).
 */
static int state_replay_log(struct mbox_folder *f, struct index_state *st, int log_fd)
{
	struct stat sb;
	if (fstat(log_fd, &sb) < 0)
		return -1;
	if ((uint64_t)sb.st_size <= st->log_offset)
		return 0;
	size_t len = (size_t)((uint64_t)sb.st_size - st->log_offset);
	unsigned char *data = xmalloc(len);
	ssize_t n = pread(log_fd, data, len, (off_t)st->log_offset);
	int ret = 0;
	size_t pos = 0;
	while (n > 0 && pos < (size_t)n) {
		const unsigned char *payload;
		size_t plen, flen;
		if (!index_unframe(data + pos, (size_t)n - pos, &payload, &plen, &flen)) {
			/* A frame claiming to run past the end is a torn append. */
			uint32_t claimed = (size_t)n - pos >= 4 ? index_get_u32(data + pos) : 0;
			if ((size_t)n - pos < 8 || (uint64_t)pos + 8 + claimed > (uint64_t)n)
				break;
			ret = -1;
			break;
		}
		if (!state_apply(f, st, payload, plen)) {
			ret = -1;
			break;
		}
		pos += flen;
	}
	st->log_offset += pos;
	free(data);
	return n < 0 ? -1 : ret;
}

static bool log_header_ok(int fd, uint64_t gen)
{
	unsigned char h[INDEX_LOG_HEADER_SIZE];
	if (pread(fd, h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return false;
	return memcmp(h, INDEX_LOG_MAGIC, 8) == 0 && index_get_u64(h + 8) == gen &&
	       index_get_u32(h + 16) == crc32c(0, h, 16);
}

static int64_t ctime_ns(const struct stat *sb)
{
	return (int64_t)sb->st_ctim.tv_sec * 1000000000LL + sb->st_ctim.tv_nsec;
}

/* The smallest framed ADD record: frame header, fixed fields, a one-byte name. */
#define INDEX_REC_FRAME_MIN (8 + 61 + 1)

/* Skips a damaged frame at p when its length can be trusted; 0 when it cannot. */
static size_t damaged_frame_len(const unsigned char *p, size_t avail)
{
	uint32_t claimed = avail >= 4 ? index_get_u32(p) : 0;
	if (claimed == 0 || claimed > INDEX_RECORD_MAX)
		return 0; /* no way to find the next record */
	return 8 + (size_t)claimed;
}

/* A message record of format 2 (tern of late 2026: the struct mbox_msg of then, 88
 * bytes, little-endian, then the name with its NUL, padded to 8) as an index_rec. */
static bool v2_rec_decode(const unsigned char *p, size_t len, struct index_rec *r)
{
	if (len < 90)
		return false;
	const unsigned char *name = p + 88;
	const unsigned char *end = memchr(name, '\0', len - 88);
	if (end == NULL || end == name || memchr(name, '/', (size_t)(end - name)) != NULL)
		return false;
	*r = (struct index_rec){.uid = index_get_u32(p),
	                        .flags = index_get_u32(p + 4),
	                        .keywords = index_get_u32(p + 8),
	                        .modseq = index_get_u64(p + 16),
	                        .vsize = index_get_u64(p + 24),
	                        .psize = index_get_u64(p + 32),
	                        .idate = (int64_t)index_get_u64(p + 40),
	                        .cache_off = index_get_u64(p + 48),
	                        .cache_len = index_get_u32(p + 56),
	                        .name = xstrndup((const char *)name, (size_t)(end - name))};
	return true;
}

/*
 * Decodes a snapshot of an older format (one framed record a message: format 1's ADD
 * records, or format 2's) into messages of their own; damaged records are skipped (their
 * files get new UIDs). The next writer replaces it by a current one (st->rewrite).
 * min_frame: the smallest frame a message can have.
 */
static size_t state_decode_framed(struct index_state *st, const unsigned char *p, size_t len,
                                  size_t min_frame,
                                  bool (*decode)(const unsigned char *, size_t, struct index_rec *))
{
	size_t pos = INDEX_HEADER_SIZE;
	size_t room = (len - pos) / min_frame;
	st->cap = (room < st->hdr.count ? room : st->hdr.count) + 64;
	st->msgs = xreallocarray(NULL, st->cap, sizeof(*st->msgs));
	for (uint32_t i = 0; i < st->hdr.count && pos < len; i++) {
		const unsigned char *payload;
		size_t plen, flen;
		if (!index_unframe(p + pos, len - pos, &payload, &plen, &flen)) {
			size_t skip = damaged_frame_len(p + pos, len - pos);
			if (skip == 0)
				break;
			pos += skip;
			continue;
		}
		pos += flen;
		struct index_rec r;
		if (decode(payload, plen, &r))
			state_add(st, &r);
	}
	st->rewrite = INDEX_IN_PLACE; /* replace it where format 3 is written */
	return pos;
}

/* True when the hot record m, at position slot, whose 32 bytes have CRC crc, is one as
 * mbox_write_snapshot writes it (bools read as bytes: a file may hold any value). */
static bool hot_ok(const struct mbox_msg *m, uint32_t slot, uint32_t crc)
{
	const unsigned char *b = (const unsigned char *)m;
	return crc == m->crc && m->slot == slot && m->m.uid != 0 &&
	       b[offsetof(struct mbox_msg, home)] == MBOX_HOME_MAP &&
	       b[offsetof(struct mbox_msg, m.expunged)] == 0 &&
	       b[offsetof(struct mbox_msg, in_new)] == 0 && m->reserved == 0 && m->reserved2 == 0;
}

/*
 * Uses a current snapshot (format 3) in place: header, n hot records, n cold records, the
 * names, then framed records (VANISHED). Every hot record is checked (CRC, the fields
 * only memory may set are zero, its slot, UIDs growing) and the valid ones become the
 * state's messages, living in the mapping; damaged ones are skipped. Cold records are
 * checked when first used (mbox_cold), or here when all is set, a message with a damaged
 * one then skipped too. The CRCs of hot records are computed several at a time.
 * Returns the offset of what follows the names, or 0 when the areas do not fit the file.
 */
static size_t state_use_v3(struct index_state *st, unsigned char *p, size_t len, bool heap,
                           bool all)
{
	uint32_t n = st->hdr.count;
	size_t cold = INDEX_HEADER_SIZE + (size_t)n * sizeof(struct mbox_msg);
	size_t names = cold + (size_t)n * sizeof(struct mbox_cold);
	size_t end = names + st->hdr.names_len;
	if (end > len || end > UINT32_MAX)
		return 0;
	/* The header was decoded: its bytes now describe the mapping. */
	struct mbox_map *map = (struct mbox_map *)(void *)p;
	memset(map, 0, sizeof(*map));
	map->len = len;
	map->heap = heap;
	map->checked = xcalloc((size_t)n / 64 + 1, sizeof(uint64_t));
	map->cold = (struct mbox_cold *)(void *)(p + cold);
	map->count = n;
	map->names_start = (uint32_t)names;
	map->names_end = (uint32_t)end;
	st->map = map;
	st->cap = (size_t)n + 64;
	st->msgs = xreallocarray(NULL, st->cap, sizeof(*st->msgs));
	prefault_write(st->msgs, (size_t)n * sizeof(*st->msgs));
	struct mbox_msg *hot = (struct mbox_msg *)(void *)(p + INDEX_HEADER_SIZE);
	uint32_t uidnext = st->hdr.uidnext, last = 0;
	for (uint32_t i = 0; i < n; i += 64) {
		uint32_t crc[64], k_n = n - i < 64 ? n - i : 64;
		crc32c_records(&hot[i], sizeof(*hot), HOT_CRC_LEN, k_n, crc);
		for (uint32_t k = 0; k < k_n; k++) {
			struct mbox_msg *m = &hot[i + k];
			if (!hot_ok(m, i + k, crc[k]) || m->m.uid <= last)
				continue; /* damaged, or UIDs not growing */
			if (all) {
				if (!cold_ok(map, &map->cold[i + k]))
					continue;
				map->checked[(i + k) / 64] |= (uint64_t)1 << ((i + k) % 64);
			}
			last = m->m.uid;
			st->msgs[st->count++] = m;
			if (m->m.uid >= uidnext)
				uidnext = m->m.uid + 1;
			if (m->m.modseq > st->hdr.highestmodseq)
				st->hdr.highestmodseq = m->m.modseq;
		}
	}
	st->hdr.uidnext = uidnext;
	st->dirty = true;
	map->live = st->count + 1; /* + 1: st's own reference (st->map) */
	return end;
}

/* Reads all of fd (len bytes) into a new heap buffer; NULL on error or a short file. */
static unsigned char *snapshot_read(int fd, size_t len)
{
	unsigned char *p = xmalloc(len); /* malloc aligns for any record */
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, p + done, len - done, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(p);
			return NULL;
		}
		done += (size_t)n;
	}
	return p;
}

/*
 * Maps the snapshot privately, so that a change to a message copies just its page. tern
 * never changes a snapshot in place (writers write a new file and rename it over), so
 * the mapping cannot shrink under the reader. A small one is read into the heap
 * (*heap_r). Returns 0, 1 when missing or empty, -1 on error. *ino_r and *ctime_r
 * identify the file that was read.
 */
static int snapshot_map(int dir_fd, unsigned char **data_r, size_t *len_r, bool *heap_r,
                        ino_t *ino_r, int64_t *ctime_r)
{
	int fd = openat(dir_fd, INDEX_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 1 : -1;
	struct stat sb;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size > INDEX_FILE_MAX) {
		close(fd);
		return -1;
	}
	if (sb.st_size < INDEX_HEADER_SIZE) {
		close(fd);
		return sb.st_size == 0 ? 1 : -1;
	}
	*heap_r = (size_t)sb.st_size < mbox_map_min;
	void *p;
	if (*heap_r) {
		p = snapshot_read(fd, (size_t)sb.st_size);
		close(fd);
		if (p == NULL)
			return -1;
	} else {
		p = mmap(NULL, (size_t)sb.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
		close(fd);
		if (p == MAP_FAILED)
			return -1;
	}
	*data_r = p;
	*len_r = (size_t)sb.st_size;
	*ino_r = sb.st_ino;
	*ctime_r = ctime_ns(&sb);
	return 0;
}

/*
 * Maps in the pages of a mapped format-3 snapshot that a load reads (the hot records, or
 * all when every record is checked) in one call instead of a page fault each; the rest
 * is faulted in when used. Only a hint: without MADV_POPULATE_READ (Linux < 5.14) the
 * pages fault in as they are read.
 */
static void populate_hot(unsigned char *p, size_t len, uint32_t count, bool all)
{
#ifdef MADV_POPULATE_READ
	size_t end = all ? len : INDEX_HEADER_SIZE + (size_t)count * sizeof(struct mbox_msg);
	if (end > len)
		end = len;
	(void)madvise(p, end, MADV_POPULATE_READ);
#else
	(void)p;
	(void)len;
	(void)count;
	(void)all;
#endif
}

int index_state_load(struct mbox_folder *f, struct index_state *st, bool all)
{
	memset(st, 0, sizeof(*st));
	unsigned char *data;
	size_t len;
	ino_t ino;
	int64_t ctime;
	bool heap;
	int ret = snapshot_map(f->dir_fd, &data, &len, &heap, &ino, &ctime);
	if (ret != 0)
		return ret;
	if (!index_header_decode(data, len, &st->hdr) ||
	    (st->hdr.version == 3 && !INDEX_IN_PLACE)) { /* another machine's records */
		snapshot_unmap(data, len, heap);
		return -1;
	}
	if (st->hdr.version == 3 && !heap)
		populate_hot(data, len, st->hdr.count, all);
	size_t pos;
	if (st->hdr.version == 1)
		pos = state_decode_framed(st, data, len, INDEX_REC_FRAME_MIN, index_rec_decode);
	else if (st->hdr.version == 2)
		pos = state_decode_framed(st, data, len, 8 + 88 + 8, v2_rec_decode);
	else if ((pos = state_use_v3(st, data, len, heap, all)) == 0) {
		if (st->map != NULL)
			free(st->map->checked);
		free(st->msgs);
		snapshot_unmap(data, len, heap);
		memset(st, 0, sizeof(*st));
		return -1;
	}
	if (st->count < st->hdr.count) {
		/* Refused records: their files are found again by a scan (with new UIDs), and a
		 * new snapshot leaves the records out. */
		st->rewrite = true;
		f->force_scan = true;
	}
	mbox_vanished_snapshot_load(st, data + pos, pos < len ? len - pos : 0);
	st->snapshot_size = len;
	if (st->map == NULL)
		snapshot_unmap(data, len, heap); /* decoded: st and its messages keep a mapping */
	st->idx_ino = ino;
	st->idx_ctime_ns = ctime;
	struct stat sb;
	int fd = openat(f->dir_fd, INDEX_LOG_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0; /* no log: the snapshot is all there is; a writer recreates it */
	if (fstat(fd, &sb) == 0 && log_header_ok(fd, st->hdr.gen)) {
		st->log_ino = sb.st_ino;
		st->log_offset = INDEX_LOG_HEADER_SIZE;
		ret = state_replay_log(NULL, st, fd);
	}
	close(fd);
	return ret;
}

void mbox_msg_take(struct mbox_msg *dst, const struct mbox_msg *src)
{
	dst->m = src->m;
	dst->in_new = src->in_new;
	struct mbox_cold *dc = mbox_cold(dst);
	const struct mbox_cold *sc = mbox_cold(src);
	dc->info = sc->info;
	dc->cache_off = sc->cache_off;
	dc->cache_len = sc->cache_len;
}

/* A fresh load replaces f->st; messages keep their place in memory (views show them),
 * taking the fresh contents, and gone ones are marked expunged. */
static void mbox_merge(struct mbox_folder *f, struct index_state *fresh)
{
	struct index_state *old = &f->st;
	if (fresh->hdr.uidvalidity != old->hdr.uidvalidity) {
		for (struct store_mailbox *h = f->handles; h != NULL; h = h->h_next)
			h->uidvalidity_changed = true;
		for (size_t i = 0; i < old->count; i++)
			mbox_bury(f, old->msgs[i]);
		free(old->msgs);
		mbox_vanished_free(&old->van);
		if (old->map != NULL)
			map_release(
			    old->map); /* the buried messages keep it while they are shown */
		*old = *fresh;
		old->dirty = true;
		return;
	}
	struct index_state merged = *fresh;
	memset(&fresh->van, 0, sizeof(fresh->van)); /* merged took the tombstones */
	merged.map = old->map; /* where its messages stay; fresh's goes with fresh */
	merged.msgs = NULL;
	merged.count = merged.cap = 0;
	merged.expunged = old->expunged; /* fresh's expunged messages are left out below */
	for (size_t i = 0; i < old->count; i++) {
		struct mbox_msg *o = old->msgs[i];
		if (o->m.expunged)
			continue;
		struct mbox_msg *fm = mbox_find(fresh, o->m.uid);
		if (fm == NULL || fm->m.expunged) {
			o->m.expunged = true;
			merged.expunged++;
		} else {
			if (fm->m.flags != o->m.flags || fm->m.keywords != o->m.keywords)
				mbox_note_changed_all(f, o->m.uid);
			/* o stays where it is (in its mapping or alone) and takes fm's contents;
			 * its sort date stays (the file, so its Date:, is the same). */
			mbox_msg_take(o, fm);
			if (strcmp(mbox_msg_name(o), mbox_msg_name(fm)) != 0)
				mbox_msg_set_name(o, xstrdup(mbox_msg_name(fm)));
		}
	}
	/* The old messages, then everything newer from the fresh state. */
	merged.cap = old->count + fresh->count + 1;
	merged.msgs = xcalloc(merged.cap, sizeof(*merged.msgs));
	if (old->count > 0)
		memcpy(merged.msgs, old->msgs, old->count * sizeof(*merged.msgs));
	merged.count = old->count;
	uint32_t last = old->count > 0 ? old->msgs[old->count - 1]->m.uid : 0;
	for (size_t i = 0; i < fresh->count; i++) {
		struct mbox_msg *fm = fresh->msgs[i];
		if (fm->m.uid <= last || fm->m.expunged)
			continue;
		if (fm->home == MBOX_HOME_MAP) {
			/* A copy of its own: a few new messages must not keep the whole new
			 * snapshot mapped (and its file on disk) next to the one already in use. */
			struct mbox_msg *c = mbox_msg_new(xstrdup(mbox_msg_name(fm)));
			mbox_msg_take(c, fm);
			merged.msgs[merged.count++] = c;
		} else {
			merged.msgs[merged.count++] = fm;
			fresh->msgs[i] = NULL; /* moved */
		}
	}
	free(old->msgs);
	mbox_vanished_free(&old->van);
	index_state_free(fresh);
	*old = merged;
	old->dirty = true;
}

/*
 * Catches box->f->st up with the disk: -1 when the index is damaged, -2 when missing. The
 * snapshot we know is still there when its inode, size and ctime are, and the log still
 * belongs to it when its header names our generation: a file replaced by another process
 * can get the inode number of the one it replaced (ext4, tmpfs), so the number alone
 * proves nothing.
 */
static int mbox_catch_up(struct store_mailbox *box)
{
	struct stat si, sl;
	/* A cold record found damaged since: load again with every record checked, which
	 * leaves that message out (merged as expunged), and find its file again. */
	bool damaged = box->f->st.map != NULL && box->f->st.map->damaged;
	if (damaged) {
		box->f->st.map->damaged = 0;
		box->f->force_scan = true;
	}
	bool reload =
	    damaged || fstatat(box->f->dir_fd, INDEX_FILE, &si, AT_SYMLINK_NOFOLLOW) < 0 ||
	    si.st_ino != box->f->st.idx_ino || (uint64_t)si.st_size != box->f->st.snapshot_size ||
	    ctime_ns(&si) != box->f->st.idx_ctime_ns ||
	    fstatat(box->f->dir_fd, INDEX_LOG_FILE, &sl, AT_SYMLINK_NOFOLLOW) < 0 ||
	    sl.st_ino != box->f->st.log_ino;
	if (!reload) {
		int fd = openat(box->f->dir_fd, INDEX_LOG_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return -1;
		int ret = -1;
		if (log_header_ok(fd, box->f->st.hdr.gen))
			ret = state_replay_log(box->f, &box->f->st, fd);
		else
			reload = true; /* a new log (and snapshot) in the same inodes */
		close(fd);
		if (!reload)
			return ret;
	}
	/* Every cold record checked: the merge reads them all anyway. */
	struct index_state fresh;
	int ret = index_state_load(box->f, &fresh, true);
	if (ret != 0) {
		index_state_free(&fresh);
		return ret == 1 ? -2 : -1;
	}
	mbox_merge(box->f, &fresh);
	if (damaged)
		box->f->st.rewrite = true; /* a snapshot without the damaged record */
	return 0;
}

static enum store_error mbox_open_log(struct store_mailbox *box)
{
	if (box->f->log_fd >= 0)
		close(box->f->log_fd);
	box->f->log_fd = openat(box->f->dir_fd, INDEX_LOG_FILE, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	struct stat sb;
	if (box->f->log_fd < 0 || fstat(box->f->log_fd, &sb) < 0 ||
	    sb.st_ino != box->f->st.log_ino || !log_header_ok(box->f->log_fd, box->f->st.hdr.gen))
		return mbox_write_snapshot(box);
	/* Cut off a torn tail left by a writer that died. */
	if ((uint64_t)sb.st_size > box->f->st.log_offset &&
	    ftruncate(box->f->log_fd, (off_t)box->f->st.log_offset) < 0)
		return STORE_ETEMP;
	return STORE_OK;
}

/*
 * A UIDVALIDITY never used for this folder before: the clock, but always above the last
 * one handed out (kept in tern-uidvalidity, which survives a damaged index).
 */
static uint32_t uidvalidity_next(struct store_mailbox *box, uint32_t old)
{
	struct buf b;
	buf_init(&b, 64);
	uint32_t last = old;
	if (atomic_file_read(box->f->dir_fd, INDEX_UIDVALIDITY_FILE, &b) == 0 && b.len > 0) {
		unsigned long v = strtoul(buf_cstr(&b), NULL, 10);
		if (v > last && v <= UINT32_MAX)
			last = (uint32_t)v;
	}
	uint32_t now = (uint32_t)time(NULL);
	uint32_t v = now > last ? now : last + 1;
	buf_reset(&b);
	buf_printf(&b, "%u\n", v);
	(void)atomic_file_write(box->f->dir_fd, INDEX_UIDVALIDITY_FILE, b.data, b.len);
	buf_free(&b);
	return v;
}

/* Damage: rebuild from the files. UIDs handed out may be lost, so UIDVALIDITY changes. */
static enum store_error mbox_rebuild(struct store_mailbox *box, bool missing)
{
	uint32_t old = box->f->st.hdr.uidvalidity;
	/* No index at all (first open): a dovecot-uidlist seeds UIDVALIDITY and UIDs (read
	 * once, kept for the scan that gives them). */
	uidlist_free(&box->f->import);
	bool import = missing && uidlist_read(box->f->dir_fd, &box->f->import) == 0;
	for (size_t i = 0; i < box->f->st.count; i++)
		mbox_bury(box->f, box->f->st.msgs[i]);
	box->f->st.count = 0;
	box->f->st.expunged = 0;
	box->f->st.dirty = true;
	box->f->st.hdr.uidvalidity = uidvalidity_next(box, old);
	if (import)
		box->f->st.hdr.uidvalidity = box->f->import.uidvalidity;
	box->f->st.hdr.uidnext = 1;
	box->f->st.hdr.highestmodseq = 1;
	mbox_vanished_reset(&box->f->st.van, 0); /* a new UIDVALIDITY: no resync across it */
	box->f->st.hdr.cur_mtime_ns = box->f->st.hdr.new_mtime_ns = 0;
	for (struct store_mailbox *h = box->f->handles; h != NULL && old != 0; h = h->h_next)
		h->uidvalidity_changed = true;
	box->f->force_scan = true;
	return mbox_write_snapshot(box);
}

enum store_error mbox_lock(struct store_mailbox *box)
{
	box->f->lock_fd = lockfile_lock(box->f->dir_fd, INDEX_LOCK_FILE, true);
	if (box->f->lock_fd < 0)
		return STORE_ETEMP;
	enum store_error e = STORE_OK;
	int ret = mbox_catch_up(box);
	if (ret < 0)
		e = mbox_rebuild(box, ret == -2);
	else
		e = mbox_open_log(box);
	mbox_cache_check(box);
	if (e != STORE_OK) {
		close(box->f->lock_fd);
		box->f->lock_fd = -1;
	}
	return e;
}

void mbox_unlock(struct store_mailbox *box)
{
	if (mbox_cache_compact(box))
		(void)mbox_write_snapshot(box); /* carries the new cache offsets */
	else if (box->f->st.rewrite ||
	         box->f->st.log_offset > INDEX_LOG_FOLD_MIN + box->f->st.snapshot_size / 64)
		(void)mbox_write_snapshot(box);
	if (box->f->lock_fd >= 0) {
		uidlist_keep(box->f);
		close(box->f->lock_fd);
	}
	box->f->lock_fd = -1;
}

static int write_all_at(int fd, const void *data, size_t len, off_t off)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

enum store_error mbox_log(struct store_mailbox *box, const struct buf *payload)
{
	struct buf frame;
	buf_init(&frame, 0);
	index_frame(&frame, payload);
	int ret = write_all_at(box->f->log_fd, frame.data, frame.len, (off_t)box->f->st.log_offset);
	buf_free(&frame);
	if (ret < 0)
		return STORE_ETEMP;
	/* Apply what we wrote, exactly as another reader will. */
	return state_replay_log(box->f, &box->f->st, box->f->log_fd) < 0 ? STORE_ECORRUPT
	                                                                 : STORE_OK;
}

enum store_error mbox_log_frames(struct store_mailbox *box, const struct buf *frames)
{
	if (frames->len == 0)
		return STORE_OK;
	if (write_all_at(box->f->log_fd, frames->data, frames->len, (off_t)box->f->st.log_offset) <
	    0)
		return STORE_ETEMP;
	return state_replay_log(box->f, &box->f->st, box->f->log_fd) < 0 ? STORE_ECORRUPT
	                                                                 : STORE_OK;
}

enum store_error mbox_log_sync(struct store_mailbox *box)
{
	return fdatasync(box->f->log_fd) < 0 ? STORE_ETEMP : STORE_OK;
}

/* A message that goes into a new snapshot, with its name. */
struct snap_msg {
	const struct mbox_msg *m;
	const char *name;
	size_t name_len;
};

/*
 * The messages of st that go into a new snapshot, in UID order (caller frees): not the
 * expunged ones, nor one whose index entry was found damaged (name "": its file is to be
 * found again) or whose name no file can have. *names_len_r: their names' bytes with NULs.
 */
static struct snap_msg *snapshot_msgs(const struct index_state *st, size_t *n_r,
                                      size_t *names_len_r)
{
	struct snap_msg *out = xreallocarray(NULL, st->count + 1, sizeof(*out));
	size_t n = 0, names_len = 0;
	for (size_t i = 0; i < st->count; i++) {
		const struct mbox_msg *m = st->msgs[i];
		if (m->m.expunged)
			continue;
		const char *name = mbox_msg_name(m);
		size_t len = strlen(name);
		if (len == 0 || len > NAME_MAX)
			continue;
		out[n++] = (struct snap_msg){m, name, len};
		names_len += len + 1;
	}
	*n_r = n;
	*names_len_r = names_len;
	return out;
}

/* Format 1, where format 3 is not written: one framed ADD record a message. */
static void snapshot_v1(struct buf *b, const struct snap_msg *msgs, size_t n,
                        struct index_header *h)
{
	h->count = (uint32_t)n;
	index_header_encode(b, h);
	struct buf payload;
	buf_init(&payload, 0);
	for (size_t i = 0; i < n; i++) {
		const struct mbox_msg *m = msgs[i].m;
		const struct mbox_cold *c = mbox_cold(m);
		struct index_rec r = {m->m.uid,      m->m.flags,
		                      m->m.keywords, m->m.modseq,
		                      c->info.vsize, c->info.psize,
		                      c->info.idate, c->cache_off,
		                      c->cache_len,  (char *)(uintptr_t)msgs[i].name};
		buf_reset(&payload);
		index_rec_encode(&payload, &r);
		index_frame(b, &payload);
	}
	buf_free(&payload);
}

/*
 * Format 3: the header, the hot records (struct mbox_msg as the loader will use them in
 * place: the fields only memory sets are zero, home and slot say where it will live, and
 * a CRC), the cold records (struct mbox_cold likewise, with where its name is), then the
 * names with their NULs.
 */
static void snapshot_v3(struct buf *b, const struct snap_msg *msgs, size_t n, size_t names_len,
                        struct index_header *h)
{
	h->count = (uint32_t)n;
	h->names_len = (uint32_t)names_len;
	index_header_encode(b, h);
	for (size_t i = 0; i < n; i++) {
		const struct mbox_msg *m = msgs[i].m;
		struct mbox_msg r;
		memset(&r, 0, sizeof(r));
		r.m.uid = m->m.uid;
		r.m.flags = m->m.flags;
		r.m.keywords = m->m.keywords;
		r.m.modseq = m->m.modseq;
		r.slot = (uint32_t)i;
		r.home = MBOX_HOME_MAP;
		r.crc = crc32c(0, &r, HOT_CRC_LEN);
		buf_append(b, &r, sizeof(r));
	}
	size_t name_off =
	    INDEX_HEADER_SIZE + n * (sizeof(struct mbox_msg) + sizeof(struct mbox_cold));
	for (size_t i = 0; i < n; i++) {
		const struct mbox_cold *c = mbox_cold(msgs[i].m);
		struct mbox_cold r;
		memset(&r, 0, sizeof(r));
		r.info = c->info;
		r.cache_off = c->cache_off;
		r.cache_len = c->cache_len;
		r.name_off = (uint32_t)name_off;
		r.name_len = (uint16_t)msgs[i].name_len;
		r.crc = crc32c(crc32c(0, &r, COLD_CRC_LEN), msgs[i].name, msgs[i].name_len + 1);
		buf_append(b, &r, sizeof(r));
		name_off += msgs[i].name_len + 1;
	}
	for (size_t i = 0; i < n; i++)
		buf_append(b, msgs[i].name, msgs[i].name_len + 1);
}

enum store_error mbox_write_snapshot(struct store_mailbox *box)
{
	struct index_state *st = &box->f->st;
	struct buf b;
	buf_init(&b, 0);
	struct index_header h = st->hdr;
	h.gen++;
	size_t n, names_len;
	struct snap_msg *msgs = snapshot_msgs(st, &n, &names_len);
	if (INDEX_IN_PLACE)
		snapshot_v3(&b, msgs, n, names_len, &h);
	else
		snapshot_v1(&b, msgs, n, &h);
	free(msgs);
	mbox_vanished_snapshot_append(&st->van, &b);
	enum store_error e = STORE_OK;
	if (atomic_file_write(box->f->dir_fd, INDEX_FILE, b.data, b.len) < 0)
		e = STORE_ETEMP;
	size_t snapshot_size = b.len;
	buf_reset(&b);
	buf_append(&b, INDEX_LOG_MAGIC, 8);
	index_put_u64(&b, h.gen);
	index_put_u32(&b, crc32c(0, b.data, 16));
	if (e == STORE_OK && atomic_file_write(box->f->dir_fd, INDEX_LOG_FILE, b.data, b.len) < 0)
		e = STORE_ETEMP;
	buf_free(&b);
	if (e != STORE_OK)
		return e;
	struct stat si, sl;
	if (box->f->log_fd >= 0)
		close(box->f->log_fd);
	box->f->log_fd = openat(box->f->dir_fd, INDEX_LOG_FILE, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (box->f->log_fd < 0 || fstat(box->f->log_fd, &sl) < 0 ||
	    fstatat(box->f->dir_fd, INDEX_FILE, &si, AT_SYMLINK_NOFOLLOW) < 0)
		return STORE_ETEMP;
	st->hdr.gen = h.gen;
	st->idx_ino = si.st_ino;
	st->idx_ctime_ns = ctime_ns(&si);
	st->log_ino = sl.st_ino;
	st->log_offset = INDEX_LOG_HEADER_SIZE;
	st->snapshot_size = snapshot_size;
	st->rewrite = false;
	return STORE_OK;
}
