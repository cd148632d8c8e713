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

/* A snapshot stores struct mbox_msg as it is in memory (see mailbox_private.h): the
 * layout below is part of the file format. */
#if INDEX_IN_PLACE
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "format 2 is little-endian");
_Static_assert(sizeof(time_t) == 8 && sizeof(char *) == 8, "format 2 needs 64-bit types");
_Static_assert(sizeof(struct mbox_msg) == 88 && offsetof(struct mbox_msg, m.expunged) == 12 &&
                   offsetof(struct mbox_msg, m.modseq) == 16 &&
                   offsetof(struct mbox_msg, cache_off) == 48 &&
                   offsetof(struct mbox_msg, home) == 60 &&
                   offsetof(struct mbox_msg, map_off) == 64 &&
                   offsetof(struct mbox_msg, name_heap) == 72,
               "struct mbox_msg is the snapshot's record layout");
#endif

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
 * its messages are still in use and the mapping's length.
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
	if (--map->live == 0)
		snapshot_unmap(map, (size_t)map->len, map->heap != 0);
}

static struct mbox_map *map_of(const struct mbox_msg *m)
{
	return (struct mbox_map *)(void *)((char *)(uintptr_t)m - m->map_off);
}

void mbox_msg_release(struct mbox_msg *m)
{
	if (m == NULL)
		return;
	if (m->home == MBOX_HOME_MAP) {
		if (m->name_heap != NULL)
			map_of(m)->named--;
		free(m->name_heap);
		map_release(map_of(m));
	} else {
		free(m->name_heap);
		free(m);
	}
}

void mbox_msg_set_name(struct mbox_msg *m, char *name)
{
	if (m->home == MBOX_HOME_MAP && m->name_heap == NULL)
		map_of(m)->named++;
	free(m->name_heap);
	m->name_heap = name;
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
	m->m.vsize = r->vsize;
	m->m.psize = r->psize;
	m->m.idate = (time_t)r->idate;
	m->cache_off = r->cache_off;
	m->cache_len = r->cache_len;
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
	struct mbox_msg *m = xcalloc(1, sizeof(*m));
	m->name_heap = r->name;
	state_push(st, r, m);
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
			m->cache_off = index_get_u64(p + 5);
			m->cache_len = index_get_u32(p + 13);
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

/*
 * Decodes a format-1 snapshot (framed ADD records) into messages of their own; damaged
 * records are skipped (their files get new UIDs). The next writer replaces it by a
 * current one (st->old_format).
 */
static size_t state_decode_v1(struct index_state *st, const unsigned char *p, size_t len)
{
	size_t pos = INDEX_HEADER_SIZE;
	size_t room = (len - pos) / INDEX_REC_FRAME_MIN;
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
		if (index_rec_decode(payload, plen, &r))
			state_add(st, &r);
	}
	st->old_format = INDEX_IN_PLACE; /* replace it where format 2 is written */
	return pos;
}

/* True when the payload at p (plen bytes, at offset off of its mapping) is a message
 * record as mbox_write_snapshot writes it (see struct mbox_msg). */
static bool record_ok(const unsigned char *p, size_t plen, uint64_t off)
{
	if (plen < sizeof(struct mbox_msg) + 2 || plen % 8 != 0 || off % 8 != 0)
		return false;
	static const unsigned char zero[8];
	uint64_t map_off;
	memcpy(&map_off, p + offsetof(struct mbox_msg, map_off), 8);
	if (map_off != off || p[offsetof(struct mbox_msg, home)] != MBOX_HOME_MAP ||
	    p[offsetof(struct mbox_msg, m.expunged)] != 0 ||
	    p[offsetof(struct mbox_msg, in_new)] != 0 ||
	    p[offsetof(struct mbox_msg, sort_date_set)] != 0 ||
	    p[offsetof(struct mbox_msg, reserved)] != 0 ||
	    memcmp(p + offsetof(struct mbox_msg, name_heap), zero, 8) != 0)
		return false;
	const unsigned char *name = p + sizeof(struct mbox_msg);
	size_t room = plen - sizeof(struct mbox_msg);
	const unsigned char *end = memchr(name, '\0', room);
	return end != NULL && end != name && memchr(name, '/', (size_t)(end - name)) == NULL;
}

/* A message record's frame as state_use_v2 checks it. */
struct v2_frame {
	const unsigned char *payload;
	size_t len;
	uint32_t crc; /* as stored */
};

/*
 * Reads the headers of up to 4 frames from p[pos..len): their payloads and stored CRCs.
 * Stops before a frame whose length is impossible (it and what follows cannot be found).
 */
static size_t v2_frames(const unsigned char *p, size_t len, size_t pos, struct v2_frame fr[4])
{
	size_t n = 0;
	while (n < 4 && len - pos >= 8) {
		uint32_t flen = index_get_u32(p + pos);
		if (flen == 0 || flen > INDEX_RECORD_MAX || flen > len - pos - 8)
			break;
		fr[n].payload = p + pos + 8;
		fr[n].len = flen;
		fr[n].crc = index_get_u32(p + pos + 4);
		pos += 8 + (size_t)flen;
		n++;
	}
	return n;
}

/*
 * Uses a current snapshot in place: every message record is checked (frame CRC, the
 * fields only memory may set are zero, its offset, its name) and the valid ones become
 * the state's messages, living in the mapping. Damaged records are skipped. The CRCs of
 * four records are computed side by side (crc32c_4), so that reading the file from
 * memory, not the CRC instruction's latency, bounds the load.
 */
static size_t state_use_v2(struct index_state *st, unsigned char *p, size_t len)
{
	size_t pos = INDEX_HEADER_SIZE;
	size_t room = (len - pos) / (8 + sizeof(struct mbox_msg) + 8);
	st->cap = (room < st->hdr.count ? room : st->hdr.count) + 64;
	st->msgs = xreallocarray(NULL, st->cap, sizeof(*st->msgs));
	uint64_t live = 0;
	uint32_t uidnext = st->hdr.uidnext, last = 0, seen = 0;
	while (seen < st->hdr.count && pos < len) {
		struct v2_frame fr[4];
		size_t n = v2_frames(p, len, pos, fr);
		if (n == 0)
			break;
		if (n > st->hdr.count - seen)
			n = st->hdr.count - seen; /* what follows the messages is not a message */
		uint32_t crc[4];
		if (n == 4) {
			const unsigned char *bufs[4] = {fr[0].payload, fr[1].payload, fr[2].payload,
			                                fr[3].payload};
			size_t lens[4] = {fr[0].len, fr[1].len, fr[2].len, fr[3].len};
			crc32c_4(bufs, lens, crc);
		} else {
			for (size_t k = 0; k < n; k++)
				crc[k] = crc32c(0, fr[k].payload, fr[k].len);
		}
		for (size_t k = 0; k < n; k++) {
			seen++;
			pos = (size_t)(fr[k].payload - p) + fr[k].len;
			if (crc[k] != fr[k].crc ||
			    !record_ok(fr[k].payload, fr[k].len, pos - fr[k].len))
				continue;
			struct mbox_msg *m = (struct mbox_msg *)(void *)(p + (pos - fr[k].len));
			if (m->m.uid <= last || st->count == st->cap)
				continue; /* UIDs only grow */
			last = m->m.uid;
			st->msgs[st->count++] = m;
			live++;
			if (m->m.uid >= uidnext)
				uidnext = m->m.uid + 1;
			if (m->m.modseq > st->hdr.highestmodseq)
				st->hdr.highestmodseq = m->m.modseq;
		}
	}
	st->hdr.uidnext = uidnext;
	st->dirty = true;
	/* The header was decoded: its bytes now count the mapping's users. */
	struct mbox_map *map = (struct mbox_map *)(void *)p;
	map->live = live + 1; /* + 1: st's own reference (st->map) */
	map->len = len;
	map->named = 0;
	st->map = map;
	return pos;
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
 * Maps the snapshot privately: read-only and populated (no page faults while it is
 * checked), then writable, so that a change to a message copies just its page. tern
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
		p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
		close(fd);
		if (p == MAP_FAILED)
			return -1;
		if (mprotect(p, (size_t)sb.st_size, PROT_READ | PROT_WRITE) < 0) {
			munmap(p, (size_t)sb.st_size);
			return -1;
		}
	}
	*data_r = p;
	*len_r = (size_t)sb.st_size;
	*ino_r = sb.st_ino;
	*ctime_r = ctime_ns(&sb);
	return 0;
}

int index_state_load(struct mbox_folder *f, struct index_state *st)
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
	if (!index_header_decode(data, len, &st->hdr)) {
		snapshot_unmap(data, len, heap);
		return -1;
	}
	if (st->hdr.version != 1 && !INDEX_IN_PLACE) {
		snapshot_unmap(data, len, heap); /* another machine's records: rebuild */
		return -1;
	}
	size_t pos;
	if (st->hdr.version == 1)
		pos = state_decode_v1(st, data, len);
	else
		pos = state_use_v2(st, data, len);
	mbox_vanished_snapshot_load(st, data + pos, pos < len ? len - pos : 0);
	st->snapshot_size = len;
	if (st->hdr.version == 1)
		snapshot_unmap(data, len, heap);
	else
		st->map->heap = heap; /* st and its messages keep it */
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
			o->m = fm->m;
			o->cache_off = fm->cache_off;
			o->cache_len = fm->cache_len;
			o->in_new = fm->in_new;
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
			struct mbox_msg *c = xcalloc(1, sizeof(*c));
			c->m = fm->m;
			c->cache_off = fm->cache_off;
			c->cache_len = fm->cache_len;
			c->in_new = fm->in_new;
			c->name_heap = xstrdup(mbox_msg_name(fm));
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
	bool reload = fstatat(box->f->dir_fd, INDEX_FILE, &si, AT_SYMLINK_NOFOLLOW) < 0 ||
	              si.st_ino != box->f->st.idx_ino ||
	              (uint64_t)si.st_size != box->f->st.snapshot_size ||
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
	struct index_state fresh;
	int ret = index_state_load(box->f, &fresh);
	if (ret != 0) {
		index_state_free(&fresh);
		return ret == 1 ? -2 : -1;
	}
	mbox_merge(box->f, &fresh);
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
	struct uidlist ul;
	/* No index at all (first open): a dovecot-uidlist seeds UIDVALIDITY and UIDs. */
	bool import = missing && uidlist_read(box->f->dir_fd, &ul) == 0;
	for (size_t i = 0; i < box->f->st.count; i++)
		mbox_bury(box->f, box->f->st.msgs[i]);
	box->f->st.count = 0;
	box->f->st.expunged = 0;
	box->f->st.dirty = true;
	box->f->st.hdr.uidvalidity = uidvalidity_next(box, old);
	if (import) {
		box->f->st.hdr.uidvalidity = ul.uidvalidity;
		uidlist_free(&ul);
	}
	box->f->import_uidlist = import;
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
	else if (box->f->st.old_format ||
	         box->f->st.log_offset > INDEX_LOG_FOLD_MIN + box->f->st.snapshot_size / 64)
		(void)mbox_write_snapshot(box);
	if (box->f->lock_fd >= 0)
		close(box->f->lock_fd);
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

/*
 * Appends m's framed record to the snapshot b: the bytes of a struct mbox_msg as the
 * loader will use them in place (the fields only memory sets are zero, home and map_off
 * say where it will live), then the name, its NUL and zeros up to a multiple of 8, so
 * that every record of the mapping is aligned.
 */
static void snapshot_append_msg(struct buf *b, struct buf *payload, const struct mbox_msg *m)
{
	struct mbox_msg r;
	memset(&r, 0, sizeof(r));
	r.m.uid = m->m.uid;
	r.m.flags = m->m.flags;
	r.m.keywords = m->m.keywords;
	r.m.modseq = m->m.modseq;
	r.m.vsize = m->m.vsize;
	r.m.psize = m->m.psize;
	r.m.idate = m->m.idate;
	r.cache_off = m->cache_off;
	r.cache_len = m->cache_len;
	r.home = MBOX_HOME_MAP;
	r.map_off = (uint64_t)b->len + 8; /* after the frame's length and CRC */
	const char *name = mbox_msg_name(m);
	size_t name_len = strlen(name);
	buf_reset(payload);
	buf_append(payload, &r, sizeof(r));
	buf_append(payload, name, name_len);
	static const char zeros[8];
	buf_append(payload, zeros, 8 - (sizeof(r) + name_len) % 8);
	index_frame(b, payload);
}

enum store_error mbox_write_snapshot(struct store_mailbox *box)
{
	struct index_state *st = &box->f->st;
	struct buf b, payload;
	buf_init(&b, 0);
	buf_init(&payload, 0);
	struct index_header h = st->hdr;
	h.gen++;
	h.count = 0;
	for (size_t i = 0; i < st->count; i++)
		h.count += st->msgs[i]->m.expunged ? 0 : 1;
	index_header_encode(&b, &h);
	for (size_t i = 0; i < st->count; i++) {
		const struct mbox_msg *m = st->msgs[i];
		if (m->m.expunged)
			continue;
		if (INDEX_IN_PLACE) {
			snapshot_append_msg(&b, &payload, m);
			continue;
		}
		char *name =
		    xstrdup(mbox_msg_name(m)); /* format 1, where format 2 is not written */
		struct index_rec r = {m->m.uid,     m->m.flags, m->m.keywords, m->m.modseq,
		                      m->m.vsize,   m->m.psize, m->m.idate,    m->cache_off,
		                      m->cache_len, name};
		buf_reset(&payload);
		index_rec_encode(&payload, &r);
		index_frame(&b, &payload);
		free(name);
	}
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
	buf_free(&payload);
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
	st->old_format = false;
	return STORE_OK;
}
