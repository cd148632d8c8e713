/*
 * The cache of parsed IMAP data (tern-cache): one framed blob per message holding its
 * ENVELOPE, BODY, BODYSTRUCTURE and list header fields, appended under the folder lock.
 * A blob that fails its checksum (torn append, damage, a deleted cache file) is rebuilt
 * from the message file, so the cache is never trusted further than its CRC.
 */
#include "store/mailbox_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "mime/imap_bodystructure.h"
#include "store/maildir_fs.h"
#include "store/maildir_name.h"

#define CACHE_NULL 0xffffffffu
#define CACHE_ITEMS (3 + MIME_FIELD_COUNT)
/* The cache is rewritten when it is larger than this plus twice its live blobs. */
#define CACHE_COMPACT_MIN (256u * 1024)

static void blob_put(struct buf *b, const char *s, size_t len)
{
	if (s == NULL) {
		index_put_u32(b, CACHE_NULL);
		return;
	}
	index_put_u32(b, (uint32_t)len);
	buf_append(b, s, len);
}

static int cache_open(struct store_mailbox *box)
{
	if (box->f->cache_fd < 0)
		box->f->cache_fd =
		    openat(box->f->dir_fd, INDEX_CACHE_FILE,
		           O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	return box->f->cache_fd;
}

/* Appends root's framed blob to frame; nothing when it is too big for a frame. */
static void blob_encode(const struct mime_part *root, struct buf *frame)
{
	struct buf payload, item;
	buf_init(&payload, 0);
	buf_init(&item, 0);
	imap_envelope_append(&item, root);
	blob_put(&payload, item.data, item.len);
	buf_reset(&item);
	imap_bodystructure_append(&item, root, false);
	blob_put(&payload, item.data, item.len);
	buf_reset(&item);
	imap_bodystructure_append(&item, root, true);
	blob_put(&payload, item.data, item.len);
	for (int f = 0; f < MIME_FIELD_COUNT; f++) {
		const char *v = root->fields[f];
		blob_put(&payload, v, v != NULL ? strlen(v) : 0);
	}
	/* Index frames are capped; a bigger blob is simply not cached (rebuilt on use). */
	if (payload.len <= INDEX_RECORD_MAX)
		index_frame(frame, &payload);
	buf_free(&payload);
	buf_free(&item);
}

/* Appends the blob for root (lock held); fills rec's cache reference. */
static enum store_error cache_append(struct store_mailbox *box, const struct mime_part *root,
                                     struct index_rec *rec)
{
	struct buf frame;
	buf_init(&frame, 0);
	blob_encode(root, &frame);
	rec->cache_off = 0;
	rec->cache_len = 0;
	struct stat sb;
	if (frame.len > 0 && cache_open(box) >= 0 && fstat(box->f->cache_fd, &sb) == 0 &&
	    write(box->f->cache_fd, frame.data, frame.len) == (ssize_t)frame.len) {
		rec->cache_off = (uint64_t)sb.st_size;
		rec->cache_len = (uint32_t)frame.len;
	}
	buf_free(&frame);
	return STORE_OK;
}

/* Parses the message file; STORE_ENOENT when it is gone. */
static enum store_error parse_file(int dir_fd, const char *name, struct mime_part **root_r,
                                   struct stat *sb)
{
	int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? STORE_ENOENT : STORE_ETEMP;
	if (fstat(fd, sb) < 0 || !S_ISREG(sb->st_mode)) {
		close(fd);
		return STORE_ETEMP;
	}
	struct mime_parser *p = mime_parser_new(NULL);
	char *chunk = xmalloc(65536);
	ssize_t n;
	while ((n = read(fd, chunk, 65536)) > 0)
		mime_parser_feed(p, chunk, (size_t)n);
	free(chunk);
	close(fd);
	*root_r = mime_parser_finish(&p);
	return n < 0 ? STORE_ETEMP : STORE_OK;
}

enum store_error mbox_cache_build(struct store_mailbox *box, int dir_fd, const char *name,
                                  struct index_rec *rec)
{
	struct mime_part *root = NULL;
	struct stat sb;
	enum store_error e = parse_file(dir_fd, name, &root, &sb);
	if (e == STORE_OK) {
		rec->psize = (uint64_t)sb.st_size;
		rec->vsize = root->header.virtual_size + root->body.virtual_size;
		if (rec->idate == 0)
			rec->idate = sb.st_mtim.tv_sec;
		e = cache_append(box, root, rec);
	}
	mime_part_free(&root);
	return e;
}

enum store_error mbox_msg_sizes(int dir_fd, const char *name, struct index_rec *rec)
{
	uint64_t s = 0, w = 0;
	bool have_s = maildir_name_get_size(name, 'S', &s);
	bool have_w = have_s && maildir_name_get_size(name, 'W', &w);
	struct stat sb;
	if (have_w) {
		if (fstatat(dir_fd, name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			return errno == ENOENT ? STORE_ENOENT : STORE_ETEMP;
		/* A name whose ",S=" is not the file's size lies: count instead. */
		if (S_ISREG(sb.st_mode) && (uint64_t)sb.st_size == s && w >= s) {
			rec->psize = s;
			rec->vsize = w;
			if (rec->idate == 0)
				rec->idate = sb.st_mtim.tv_sec;
			return STORE_OK;
		}
	}
	int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? STORE_ENOENT : STORE_ETEMP;
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return STORE_ETEMP;
	}
	size_t cap = sb.st_size < 65536 ? (size_t)sb.st_size + 1 : 65536;
	char *chunk = xmalloc(cap);
	uint64_t psize = 0, bare = 0;
	bool last_cr = false;
	ssize_t n;
	while ((n = read(fd, chunk, cap)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		psize += (uint64_t)n;
		bare += maildir_count_bare_lf(chunk, (size_t)n, &last_cr);
	}
	free(chunk);
	close(fd);
	if (n < 0)
		return STORE_ETEMP;
	rec->psize = psize;
	rec->vsize = psize + bare;
	if (rec->idate == 0)
		rec->idate = sb.st_mtim.tv_sec;
	return STORE_OK;
}

static char *blob_get(const unsigned char **p, const unsigned char *end, bool *ok)
{
	if (end - *p < 4) {
		*ok = false;
		return NULL;
	}
	uint32_t len = index_get_u32(*p);
	*p += 4;
	if (len == CACHE_NULL)
		return NULL;
	if ((size_t)(end - *p) < len) {
		*ok = false;
		return NULL;
	}
	char *s = xstrndup((const char *)*p, len);
	*p += len;
	return s;
}

/* Reads and checks the blob of m into data (cache_len bytes); payload and length out. */
static bool cache_load(struct store_mailbox *box, const struct mbox_msg *m, unsigned char *data,
                       const unsigned char **payload, size_t *plen)
{
	size_t flen;
	const struct mbox_cold *c = mbox_cold(m);
	return pread(box->f->cache_fd, data, c->cache_len, (off_t)c->cache_off) ==
	           (ssize_t)c->cache_len &&
	       index_unframe(data, c->cache_len, payload, plen, &flen);
}

/* Just one item of m's blob (0 envelope, 1 body, 2 bodystructure, 3.. fields) into out;
 * -1 when the blob is unusable, 0 when the item is NULL, 1 when set. */
static int cache_read_item(struct store_mailbox *box, const struct mbox_msg *m, int item,
                           struct buf *out)
{
	uint32_t cache_len = mbox_cold(m)->cache_len;
	if (cache_len == 0 || cache_len > INDEX_RECORD_MAX + 8 || cache_open(box) < 0)
		return -1;
	unsigned char stack[4096];
	unsigned char *data = cache_len <= sizeof(stack) ? stack : xmalloc(cache_len);
	const unsigned char *p, *end;
	size_t plen;
	int ret = -1;
	if (cache_load(box, m, data, &p, &plen)) {
		end = p + plen;
		for (int i = 0; i <= item && end - p >= 4; i++) {
			uint32_t len = index_get_u32(p);
			p += 4;
			if (len != CACHE_NULL && (size_t)(end - p) < len)
				break;
			if (i == item) {
				ret = len == CACHE_NULL ? 0 : 1;
				if (ret == 1)
					buf_append(out, p, len);
			}
			p += len == CACHE_NULL ? 0 : len;
		}
	}
	if (data != stack)
		free(data);
	return ret;
}

static bool cache_read(struct store_mailbox *box, const struct mbox_msg *m, struct store_cache *c)
{
	uint32_t cache_len = mbox_cold(m)->cache_len;
	if (cache_len == 0 || cache_len > INDEX_RECORD_MAX + 8 || cache_open(box) < 0)
		return false;
	unsigned char *data = xmalloc(cache_len);
	const unsigned char *payload;
	size_t plen;
	bool ok = cache_load(box, m, data, &payload, &plen);
	if (ok) {
		const unsigned char *p = payload, *end = payload + plen;
		c->envelope = blob_get(&p, end, &ok);
		c->body = blob_get(&p, end, &ok);
		c->bodystructure = blob_get(&p, end, &ok);
		for (int f = 0; f < MIME_FIELD_COUNT; f++)
			c->fields[f] = blob_get(&p, end, &ok);
		ok = ok && c->envelope != NULL && c->body != NULL && c->bodystructure != NULL;
	}
	free(data);
	if (!ok)
		store_cache_free(c);
	return ok;
}

void store_cache_free(struct store_cache *c)
{
	free(c->envelope);
	free(c->body);
	free(c->bodystructure);
	for (int f = 0; f < MIME_FIELD_COUNT; f++)
		free(c->fields[f]);
	memset(c, 0, sizeof(*c));
}

/* Parses m's file and appends its framed blob to blobs (*len_r bytes, 0 when too big). */
static enum store_error blob_build(struct store_mailbox *box, const struct mbox_msg *m,
                                   struct buf *blobs, uint32_t *len_r)
{
	struct mime_part *root = NULL;
	struct stat sb;
	*len_r = 0;
	enum store_error e =
	    parse_file(m->in_new ? box->f->new_fd : box->f->cur_fd, mbox_msg_name(m), &root, &sb);
	if (e == STORE_OK) {
		size_t before = blobs->len;
		blob_encode(root, blobs);
		*len_r = (uint32_t)(blobs->len - before);
	}
	mime_part_free(&root);
	return e;
}

/* A miss builds the blobs of this many following messages too (a FETCH 1:* wants them
 * next), under one lock, with one write to tern-cache and one to the log. */
#define CACHE_BATCH_MSGS 256
#define CACHE_BATCH_BYTES (4u * 1024 * 1024)

struct pending_blob {
	uint32_t uid, len;
	size_t rel; /* offset in the batch */
};

/* Writes the batch's blobs, then the CACHE records pointing at them (lock held). */
static enum store_error batch_commit(struct store_mailbox *box, const struct buf *blobs,
                                     const struct pending_blob *pend, size_t n)
{
	struct stat sb;
	if (blobs->len == 0)
		return STORE_OK;
	if (cache_open(box) < 0 || fstat(box->f->cache_fd, &sb) < 0 ||
	    write(box->f->cache_fd, blobs->data, blobs->len) != (ssize_t)blobs->len)
		return STORE_ETEMP; /* a torn tail of blobs nobody points at is harmless */
	struct buf p, frames;
	buf_init(&p, 0);
	buf_init(&frames, 0);
	for (size_t i = 0; i < n; i++) {
		if (pend[i].len == 0)
			continue;
		buf_reset(&p);
		buf_append_char(&p, INDEX_REC_CACHE);
		index_put_u32(&p, pend[i].uid);
		index_put_u64(&p, (uint64_t)sb.st_size + pend[i].rel);
		index_put_u32(&p, pend[i].len);
		index_frame(&frames, &p);
	}
	enum store_error e = mbox_log_frames(box, &frames);
	buf_free(&p);
	buf_free(&frames);
	return e;
}

/*
 * Builds the blob of uid (lock held), and those of the messages after it that have none.
 * When uid's file is not where the index says (renamed by a process that died before it
 * logged the new name, or by another Maildir client, with the directory mtimes not showing
 * it), the folder is rescanned once: the message is then found, or known to be gone.
 */
static enum store_error cache_build_batch(struct store_mailbox *box, uint32_t uid)
{
	struct buf blobs;
	buf_init(&blobs, 0);
	struct pending_blob *pend = xcalloc(CACHE_BATCH_MSGS, sizeof(*pend));
	size_t n = 0;
	uint32_t len;
	struct mbox_msg *m = mbox_find(&box->f->st, uid);
	enum store_error e =
	    m == NULL || m->m.expunged ? STORE_ENOENT : blob_build(box, m, &blobs, &len);
	if (e == STORE_ENOENT && m != NULL && !m->m.expunged) {
		e = mbox_scan(box, true);
		m = mbox_find(&box->f->st, uid);
		if (e == STORE_OK)
			e = m == NULL || m->m.expunged ? STORE_ENOENT
			                               : blob_build(box, m, &blobs, &len);
	}
	if (e == STORE_OK) {
		pend[n++] = (struct pending_blob){uid, len, 0};
		for (size_t j = (size_t)mbox_index_of(&box->f->st, uid) + 1;
		     j < box->f->st.count && n < CACHE_BATCH_MSGS && blobs.len < CACHE_BATCH_BYTES;
		     j++) {
			const struct mbox_msg *next = box->f->st.msgs[j];
			size_t before = blobs.len;
			if (next->m.expunged || mbox_cold(next)->cache_len != 0 ||
			    blob_build(box, next, &blobs, &len) != STORE_OK)
				continue;
			pend[n++] = (struct pending_blob){next->m.uid, len, before};
		}
		e = batch_commit(box, &blobs, pend, n);
	}
	free(pend);
	buf_free(&blobs);
	return e;
}

/* The cached data straight from the file (a blob too big to cache). */
static enum store_error cache_from_file(struct store_mailbox *box, const struct mbox_msg *m,
                                        struct store_cache *c)
{
	struct mime_part *root = NULL;
	struct stat sb;
	enum store_error e =
	    parse_file(m->in_new ? box->f->new_fd : box->f->cur_fd, mbox_msg_name(m), &root, &sb);
	if (e == STORE_OK) {
		struct buf b;
		buf_init(&b, 0);
		imap_envelope_append(&b, root);
		c->envelope = buf_steal(&b);
		buf_init(&b, 0);
		imap_bodystructure_append(&b, root, false);
		c->body = buf_steal(&b);
		buf_init(&b, 0);
		imap_bodystructure_append(&b, root, true);
		c->bodystructure = buf_steal(&b);
		for (int f = 0; f < MIME_FIELD_COUNT; f++)
			c->fields[f] = root->fields[f] != NULL ? xstrdup(root->fields[f]) : NULL;
	}
	mime_part_free(&root);
	return e;
}

enum store_error store_mailbox_cache(struct store_mailbox *box, size_t seq,
                                     struct store_cache *cache)
{
	memset(cache, 0, sizeof(*cache));
	if (seq == 0 || seq > mbox_visible(box))
		return STORE_EINVAL;
	uint32_t uid = box->view->msgs[seq - 1]->m.uid;
	if (cache_read(box, box->view->msgs[seq - 1], cache))
		return STORE_OK;
	/* Not built yet (the first open does not parse), missing or damaged: parse the file
	 * and store a fresh blob. */
	enum store_error e = mbox_lock(box);
	if (e != STORE_OK)
		return e;
	struct mbox_msg *m = mbox_find(&box->f->st, uid);
	if (m != NULL && !m->m.expunged && cache_read(box, m, cache)) {
		/* Another process built it, or compacted the cache: the fresh offsets read fine. */
		mbox_unlock(box);
		return STORE_OK;
	}
	e = cache_build_batch(box, uid);
	mbox_unlock(box);
	m = mbox_find(&box->f->st, uid);
	if (e == STORE_OK && (m == NULL || m->m.expunged))
		e = STORE_ENOENT;
	if (e == STORE_OK && !cache_read(box, m, cache))
		e = cache_from_file(box, m, cache);
	return e;
}

enum store_error store_mailbox_cache_field(struct store_mailbox *box, size_t seq, int field,
                                           struct buf *out, bool *present_r)
{
	*present_r = false;
	if (seq == 0 || seq > mbox_visible(box) || field < 0 || field >= MIME_FIELD_COUNT)
		return STORE_EINVAL;
	int r = cache_read_item(box, box->view->msgs[seq - 1], 3 + field, out);
	if (r < 0) {
		/* Damaged or missing: the full read rebuilds it. */
		struct store_cache c;
		enum store_error e = store_mailbox_cache(box, seq, &c);
		if (e != STORE_OK)
			return e;
		if (c.fields[field] != NULL) {
			buf_append_str(out, c.fields[field]);
			r = 1;
		}
		store_cache_free(&c);
	}
	*present_r = r == 1;
	return STORE_OK;
}

void mbox_cache_check(struct store_mailbox *box)
{
	struct stat open_st, path_st;
	if (box->f->cache_fd < 0 || fstat(box->f->cache_fd, &open_st) < 0)
		return;
	if (fstatat(box->f->dir_fd, INDEX_CACHE_FILE, &path_st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    path_st.st_ino != open_st.st_ino) {
		close(box->f->cache_fd);
		box->f->cache_fd = -1;
	}
}

/* Copies the live blobs into fd, noting each message's new offset and length (0/0 when
 * its blob was unreadable) in offs[i]/lens[i]. */
static int compact_copy(struct store_mailbox *box, int fd, uint64_t *offs, uint32_t *lens)
{
	uint64_t off = 0;
	for (size_t i = 0; i < box->f->st.count; i++) {
		struct mbox_msg *m = box->f->st.msgs[i];
		offs[i] = 0;
		lens[i] = 0;
		uint32_t cache_len = m->m.expunged ? 0 : mbox_cold(m)->cache_len;
		if (cache_len == 0 || cache_len > INDEX_RECORD_MAX + 8)
			continue;
		unsigned char *data = xmalloc(cache_len);
		const unsigned char *payload;
		size_t plen;
		bool ok = cache_load(box, m, data, &payload, &plen);
		if (ok && write(fd, data, cache_len) != (ssize_t)cache_len) {
			free(data);
			return -1;
		}
		free(data);
		if (ok) {
			offs[i] = off;
			lens[i] = cache_len;
			off += cache_len;
		}
	}
	return 0;
}

bool mbox_cache_compact(struct store_mailbox *box)
{
	struct stat sb;
	if (!box->f->expunged_since_compact || box->f->lock_fd < 0 || cache_open(box) < 0 ||
	    fstat(box->f->cache_fd, &sb) < 0)
		return false;
	box->f->expunged_since_compact = false;
	uint64_t live = 0;
	for (size_t i = 0; i < box->f->st.count; i++)
		live +=
		    box->f->st.msgs[i]->m.expunged ? 0 : mbox_cold(box->f->st.msgs[i])->cache_len;
	if ((uint64_t)sb.st_size <= CACHE_COMPACT_MIN + 2 * live)
		return false;
	char *unique = maildir_name_unique();
	char *tmp = xasprintf(".tern-cache.tmp.%s", unique);
	free(unique);
	int fd =
	    openat(box->f->dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	uint64_t *offs = xcalloc(box->f->st.count + 1, sizeof(uint64_t));
	uint32_t *lens = xcalloc(box->f->st.count + 1, sizeof(uint32_t));
	bool ok = fd >= 0 && compact_copy(box, fd, offs, lens) == 0 && fsync(fd) == 0;
	if (fd >= 0 && close(fd) < 0)
		ok = false;
	/* From the rename on, old offsets read the new file and fail their CRC: harmless. */
	ok = ok && renameat(box->f->dir_fd, tmp, box->f->dir_fd, INDEX_CACHE_FILE) == 0 &&
	     maildir_dirsync(box->f->dir_fd) == 0;
	if (!ok)
		(void)unlinkat(box->f->dir_fd, tmp, 0);
	for (size_t i = 0; ok && i < box->f->st.count; i++) {
		struct mbox_cold *c = mbox_cold(box->f->st.msgs[i]);
		c->cache_off = offs[i];
		c->cache_len = lens[i];
	}
	free(offs);
	free(lens);
	free(tmp);
	close(box->f->cache_fd);
	box->f->cache_fd = -1;
	return ok;
}
