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

/* The snapshot is at most this big (about 2 million messages). */
#define INDEX_FILE_MAX (512u * 1024 * 1024)

void mbox_msg_release(struct mbox_msg *m)
{
	if (m == NULL)
		return;
	if (!m->name_in_slab)
		free(m->name);
	if (m->slab == NULL)
		free(m);
	else if (--m->slab->live == 0)
		free(m->slab);
}

void mbox_msg_set_name(struct mbox_msg *m, char *name)
{
	if (!m->name_in_slab)
		free(m->name);
	m->name = name;
	m->name_in_slab = false;
}

void index_state_free(struct index_state *st)
{
	for (size_t i = 0; i < st->count; i++)
		mbox_msg_release(st->msgs[i]);
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
	ssize_t i = mbox_index_of(st, uid);
	return i >= 0 ? st->msgs[i] : NULL;
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

/* Appends m (zeroed but for slab/name) as r's message. */
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
	m->name = r->name;
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

/* The smallest framed ADD record: frame header, fixed fields, a one-byte name. */
#define INDEX_REC_FRAME_MIN (8 + 61 + 1)

/*
 * Decodes the snapshot p[0..len); damaged records are skipped (their files get new UIDs).
 * All its messages go into one mbox_slab: the records, then their names (each name is
 * shorter than its frame, so len bytes hold them all with their NULs).
 */
static int state_decode_snapshot(struct index_state *st, const unsigned char *p, size_t len)
{
	if (!index_header_decode(p, len, &st->hdr))
		return -1;
	size_t pos = INDEX_HEADER_SIZE;
	uint32_t uidnext = st->hdr.uidnext;
	size_t room = (len - pos) / INDEX_REC_FRAME_MIN;
	if (room > st->hdr.count)
		room = st->hdr.count;
	st->cap = room + 64; /* and some for the log's ADDs */
	st->msgs = xreallocarray(NULL, st->cap, sizeof(*st->msgs));
	struct mbox_slab *slab = NULL;
	struct mbox_msg *recs = NULL;
	char *names = NULL;
	if (room > 0) {
		size_t head = (sizeof(*slab) + _Alignof(struct mbox_msg) - 1) /
		              _Alignof(struct mbox_msg) * _Alignof(struct mbox_msg);
		slab = xmalloc(head + room * sizeof(*recs) + (len - pos));
		slab->live = 0;
		recs = (struct mbox_msg *)(void *)((char *)slab + head);
		names = (char *)(recs + room);
	}
	for (uint32_t i = 0; i < st->hdr.count && pos < len; i++) {
		const unsigned char *payload;
		size_t plen, flen;
		if (!index_unframe(p + pos, len - pos, &payload, &plen, &flen)) {
			uint32_t claimed = len - pos >= 4 ? index_get_u32(p + pos) : 0;
			if (claimed == 0 || claimed > INDEX_RECORD_MAX)
				break; /* no way to find the next record */
			pos += 8 + claimed;
			continue;
		}
		pos += flen;
		struct index_rec r;
		const char *name;
		size_t name_len;
		/* A valid ADD frame is at least INDEX_REC_FRAME_MIN bytes, so room suffices. */
		if (!index_rec_decode_ref(payload, plen, &r, &name, &name_len) ||
		    !state_accepts(st, r.uid) || slab == NULL || slab->live == room)
			continue;
		struct mbox_msg *m = &recs[slab->live++];
		memset(m, 0, sizeof(*m));
		memcpy(names, name, name_len);
		names[name_len] = '\0';
		m->name = names;
		m->name_in_slab = true;
		m->slab = slab;
		names += name_len + 1;
		state_push(st, &r, m);
	}
	if (slab != NULL && slab->live == 0)
		free(slab);
	mbox_vanished_snapshot_load(st, p + pos, pos < len ? len - pos : 0);
	st->hdr.uidnext = uidnext > st->hdr.uidnext ? uidnext : st->hdr.uidnext;
	st->snapshot_size = len;
	return 0;
}

static int64_t ctime_ns(const struct stat *sb)
{
	return (int64_t)sb->st_ctim.tv_sec * 1000000000LL + sb->st_ctim.tv_nsec;
}

/*
 * Maps the snapshot read-only (populated, so decoding takes no page faults) for the time
 * it is decoded: no copy, and no fresh heap pages to fault in. tern never changes a
 * snapshot in place (writers write a new file and rename it over), so the mapping cannot
 * shrink under the reader. Returns 0, 1 when missing or empty, -1 on error; unmap with
 * munmap(*data_r, *len_r). *ino_r and *ctime_r identify the file that was mapped.
 */
static int snapshot_map(int dir_fd, unsigned char **data_r, size_t *len_r, ino_t *ino_r,
                        int64_t *ctime_r)
{
	int fd = openat(dir_fd, INDEX_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 1 : -1;
	struct stat sb;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size > INDEX_FILE_MAX) {
		close(fd);
		return -1;
	}
	if (sb.st_size == 0) {
		close(fd);
		return 1;
	}
	void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -1;
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
	int ret = snapshot_map(f->dir_fd, &data, &len, &ino, &ctime);
	if (ret != 0)
		return ret;
	ret = state_decode_snapshot(st, data, len);
	munmap(data, len);
	if (ret != 0)
		return ret;
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
		*old = *fresh;
		old->dirty = true;
		return;
	}
	struct index_state merged = *fresh;
	memset(&fresh->van, 0, sizeof(fresh->van)); /* merged took the tombstones */
	merged.msgs = NULL;
	merged.count = merged.cap = 0;
	for (size_t i = 0; i < old->count; i++) {
		struct mbox_msg *o = old->msgs[i];
		if (o->m.expunged)
			continue;
		struct mbox_msg *fm = mbox_find(fresh, o->m.uid);
		if (fm == NULL || fm->m.expunged) {
			o->m.expunged = true;
		} else {
			if (fm->m.flags != o->m.flags || fm->m.keywords != o->m.keywords)
				mbox_note_changed_all(f, o->m.uid);
			/* o stays where it is (and in its block); it takes fm's contents. */
			struct mbox_slab *slab = o->slab;
			bool date_set = o->sort_date_set;
			int64_t date = o->sort_date;
			if (!o->name_in_slab)
				free(o->name);
			*o = *fm;
			o->slab = slab;
			o->sort_date_set = date_set; /* the file (so its Date:) is the same */
			o->sort_date = date;
			if (fm->name_in_slab) {
				o->name = xstrdup(fm->name); /* fm's block may go before o */
				o->name_in_slab = false;
			} else {
				fm->name = NULL;
			}
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
		if (fresh->msgs[i]->m.uid > last && !fresh->msgs[i]->m.expunged) {
			merged.msgs[merged.count++] = fresh->msgs[i];
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
	else if (box->f->st.log_offset > 65536 + box->f->st.snapshot_size / 4)
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
		struct index_rec r = {m->m.uid,     m->m.flags, m->m.keywords, m->m.modseq,
		                      m->m.vsize,   m->m.psize, m->m.idate,    m->cache_off,
		                      m->cache_len, m->name};
		buf_reset(&payload);
		index_rec_encode(&payload, &r);
		index_frame(&b, &payload);
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
	return STORE_OK;
}
