/*
 * The cache of parsed IMAP data (tern-cache): one framed blob per message holding its
 * ENVELOPE, BODY, BODYSTRUCTURE and list header fields, appended under the folder lock.
 * A blob that fails its checksum (torn append, damage, a deleted cache file) is rebuilt
 * from the message file, so the cache is never trusted further than its CRC.
 */
#include "store/mailbox_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "mime/imap_bodystructure.h"

#define CACHE_NULL 0xffffffffu
#define CACHE_ITEMS (3 + MIME_FIELD_COUNT)

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
	if (box->cache_fd < 0)
		box->cache_fd = openat(box->dir_fd, INDEX_CACHE_FILE,
		                       O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
	return box->cache_fd;
}

/* Appends the blob for root (lock held); fills rec's cache reference. */
static enum store_error cache_append(struct store_mailbox *box, const struct mime_part *root,
                                     struct index_rec *rec)
{
	struct buf payload, item, frame;
	buf_init(&payload, 0);
	buf_init(&item, 0);
	buf_init(&frame, 0);
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
	enum store_error e = STORE_OK;
	rec->cache_off = 0;
	rec->cache_len = 0;
	struct stat sb;
	if (payload.len <= INDEX_RECORD_MAX && cache_open(box) >= 0 &&
	    fstat(box->cache_fd, &sb) == 0) {
		index_frame(&frame, &payload);
		if (write(box->cache_fd, frame.data, frame.len) == (ssize_t)frame.len) {
			rec->cache_off = (uint64_t)sb.st_size;
			rec->cache_len = (uint32_t)frame.len;
		}
	}
	buf_free(&payload);
	buf_free(&item);
	buf_free(&frame);
	return e;
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

static bool cache_read(struct store_mailbox *box, const struct mbox_msg *m, struct store_cache *c)
{
	if (m->cache_len == 0 || m->cache_len > INDEX_RECORD_MAX + 8 || cache_open(box) < 0)
		return false;
	unsigned char *data = xmalloc(m->cache_len);
	bool ok =
	    pread(box->cache_fd, data, m->cache_len, (off_t)m->cache_off) == (ssize_t)m->cache_len;
	const unsigned char *payload;
	size_t plen, flen;
	ok = ok && index_unframe(data, m->cache_len, &payload, &plen, &flen);
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

enum store_error store_mailbox_cache(struct store_mailbox *box, size_t seq,
                                     struct store_cache *cache)
{
	memset(cache, 0, sizeof(*cache));
	if (seq == 0 || seq > box->visible)
		return STORE_EINVAL;
	uint32_t uid = box->st.msgs[seq - 1].m.uid;
	if (cache_read(box, &box->st.msgs[seq - 1], cache))
		return STORE_OK;
	/* Missing or damaged: parse the file again and store a fresh blob. */
	enum store_error e = mbox_lock(box);
	if (e != STORE_OK)
		return e;
	struct mbox_msg *m = mbox_find(&box->st, uid);
	struct index_rec rec = {.uid = uid, .idate = 1};
	if (m == NULL || m->m.expunged)
		e = STORE_ENOENT;
	else
		e = mbox_cache_build(box, m->in_new ? box->new_fd : box->cur_fd, m->name, &rec);
	if (e == STORE_OK && rec.cache_len > 0) {
		struct buf p;
		buf_init(&p, 0);
		buf_append_char(&p, INDEX_REC_CACHE);
		index_put_u32(&p, uid);
		index_put_u64(&p, rec.cache_off);
		index_put_u32(&p, rec.cache_len);
		e = mbox_log(box, &p);
		buf_free(&p);
	}
	mbox_unlock(box);
	m = mbox_find(&box->st, uid);
	if (e == STORE_OK && (m == NULL || !cache_read(box, m, cache)))
		e = STORE_ETEMP;
	return e;
}
