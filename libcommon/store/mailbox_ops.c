/*
 * Changes to messages: flags (a rename of the file, then a log record), expunge, append
 * (IMAP APPEND) and copy/move (hard links). Each runs under the folder lock after
 * catching up with other processes, so concurrent changes are never lost.
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
#include "store/maildir_fs.h"
#include "store/maildir_name.h"
#include "store/quota.h"

/* The message, or NULL; rescans once when its file is not where the index says. */
static struct mbox_msg *live_msg(struct store_mailbox *box, uint32_t uid)
{
	struct mbox_msg *m = mbox_find(&box->f->st, uid);
	return m != NULL && !m->m.expunged ? m : NULL;
}

static uint32_t apply_mode(enum store_flags_mode mode, uint32_t old, uint32_t v)
{
	return mode == STORE_FLAGS_REPLACE ? v : mode == STORE_FLAGS_ADD ? old | v : old & ~v;
}

static enum store_error rename_flags(struct store_mailbox *box, struct mbox_msg *m, uint32_t flags,
                                     uint32_t keywords)
{
	char *name = maildir_name_set_flags(mbox_msg_name(m), flags, keywords);
	int from = m->in_new ? box->f->new_fd : box->f->cur_fd;
	enum store_error e = STORE_OK;
	if (renameat(from, mbox_msg_name(m), box->f->cur_fd, name) < 0)
		e = errno == ENOENT ? STORE_ENOENT : STORE_ETEMP;
	else
		e = mbox_log_flags(box, m, flags, keywords, name);
	free(name);
	return e;
}

/* One message's flag change, lock held. */
static enum store_error set_flags_locked(struct store_mailbox *box, uint32_t uid,
                                         enum store_flags_mode mode, uint32_t flags,
                                         uint32_t keywords, uint64_t unchangedsince)
{
	enum store_error e = STORE_OK;
	for (int attempt = 0; attempt < 2; attempt++) {
		struct mbox_msg *m = live_msg(box, uid);
		if (m == NULL)
			return STORE_ENOENT;
		if (unchangedsince != 0 && m->m.modseq > unchangedsince)
			return STORE_EEXIST;
		uint32_t nf = apply_mode(mode, m->m.flags, flags & STORE_FLAGS_ALL);
		uint32_t nk = apply_mode(mode, m->m.keywords, keywords);
		if (nf == m->m.flags && nk == m->m.keywords)
			return STORE_OK;
		e = rename_flags(box, m, nf, nk);
		if (e != STORE_ENOENT)
			return e;
		/* Renamed or removed by another Maildir client: learn where it went. */
		e = mbox_scan(box, true);
		if (e != STORE_OK)
			return e;
		e = STORE_ENOENT;
	}
	return e;
}

enum store_error store_mailbox_set_flags(struct store_mailbox *box, uint32_t uid,
                                         enum store_flags_mode mode, uint32_t flags,
                                         uint32_t keywords, uint64_t unchangedsince)
{
	enum store_error e = mbox_lock(box);
	if (e != STORE_OK)
		return e;
	e = set_flags_locked(box, uid, mode, flags, keywords, unchangedsince);
	mbox_unlock(box);
	return e;
}

enum store_error store_mailbox_set_flags_many(struct store_mailbox *box, const uint32_t *uids,
                                              size_t count, enum store_flags_mode mode,
                                              uint32_t flags, uint32_t keywords,
                                              uint64_t unchangedsince, uint32_t *modified,
                                              size_t *modified_count_r)
{
	*modified_count_r = 0;
	enum store_error e = mbox_lock(box);
	for (size_t i = 0; i < count && e == STORE_OK; i++) {
		enum store_error r =
		    set_flags_locked(box, uids[i], mode, flags, keywords, unchangedsince);
		if (r == STORE_EEXIST && modified != NULL)
			modified[(*modified_count_r)++] = uids[i];
		else if (r != STORE_OK && r != STORE_ENOENT && r != STORE_EEXIST)
			e = r;
	}
	if (box->f->lock_fd >= 0)
		mbox_unlock(box);
	return e;
}

enum store_error store_mailbox_reindex(struct store_mailbox *box)
{
	enum store_error e = mbox_lock(box);
	if (e != STORE_OK)
		return e;
	e = mbox_scan(box, true);
	if (e == STORE_OK)
		e = mbox_write_snapshot(box);
	mbox_unlock(box);
	return e;
}

enum store_error store_mailbox_expunge(struct store_mailbox *box, const uint32_t *uids,
                                       size_t count)
{
	enum store_error e = mbox_lock(box);
	if (e != STORE_OK)
		return e;
	bool rescanned = false;
	int64_t freed = 0, removed = 0;
	for (size_t i = 0; i < count && e == STORE_OK; i++) {
		struct mbox_msg *m = live_msg(box, uids[i]);
		if (m == NULL)
			continue;
		if (unlinkat(m->in_new ? box->f->new_fd : box->f->cur_fd, mbox_msg_name(m), 0) <
		    0) {
			if (errno != ENOENT) {
				e = STORE_ETEMP;
				break;
			}
			if (!rescanned) {
				/* Maybe renamed by another client: find it and try again. */
				rescanned = true;
				e = mbox_scan(box, true);
				i--;
				continue;
			}
		}
		freed += (int64_t)mbox_cold(m)->info.psize;
		removed++;
		e = mbox_log_expunge(box, uids[i]);
	}
	mbox_unlock(box);
	if (removed > 0 && box->quota_root != NULL)
		(void)store_quota_add(box->quota_root, -freed, -removed);
	return e;
}

struct store_append {
	struct store_mailbox *box;
	int fd;
	char *tmp_name;
	uint32_t flags, keywords;
	time_t idate;
	uint64_t size;
	uint64_t vsize; /* bare LFs counted as CRLF: RFC822.SIZE and ",W=" */
	bool last_cr;
	bool failed;
};

enum store_error store_mailbox_append_begin(struct store_mailbox *box, uint32_t flags,
                                            uint32_t keywords, time_t idate,
                                            struct store_append **app_r)
{
	struct store_append *app = xcalloc(1, sizeof(*app));
	app->box = box;
	app->flags = flags & STORE_FLAGS_ALL;
	app->keywords = keywords;
	app->idate = idate;
	for (int i = 0; i < 16; i++) {
		free(app->tmp_name);
		app->tmp_name = maildir_name_unique();
		app->fd = openat(box->f->tmp_fd, app->tmp_name,
		                 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (app->fd >= 0 || errno != EEXIST)
			break;
	}
	if (app->fd < 0) {
		free(app->tmp_name);
		free(app);
		*app_r = NULL;
		return STORE_ETEMP;
	}
	*app_r = app;
	return STORE_OK;
}

enum store_error store_mailbox_append_write(struct store_append *app, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0 && !app->failed) {
		ssize_t n = write(app->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			app->failed = true;
			break;
		}
		app->vsize += (uint64_t)n + maildir_count_bare_lf(p, (size_t)n, &app->last_cr);
		p += n;
		len -= (size_t)n;
		app->size += (uint64_t)n;
	}
	return app->failed ? STORE_ETEMP : STORE_OK;
}

void store_mailbox_append_abort(struct store_append **appp)
{
	struct store_append *app = *appp;
	if (app == NULL)
		return;
	if (app->fd >= 0)
		close(app->fd);
	(void)unlinkat(app->box->f->tmp_fd, app->tmp_name, 0);
	free(app->tmp_name);
	free(app);
	*appp = NULL;
}

/*
 * Links the durable tmp file into cur/ with its flags and indexes it (lock held). The sizes
 * are known from the writes; the cached IMAP data is built when first asked for.
 */
static enum store_error append_link(struct store_append *app, uint32_t *uid_r)
{
	struct store_mailbox *box = app->box;
	char *base = xasprintf("%s,S=%llu,W=%llu", app->tmp_name, (unsigned long long)app->size,
	                       (unsigned long long)app->vsize);
	char *name = maildir_name_set_flags(base, app->flags, app->keywords);
	free(base);
	enum store_error e = STORE_OK;
	if (linkat(box->f->tmp_fd, app->tmp_name, box->f->cur_fd, name, 0) < 0 ||
	    maildir_dirsync(box->f->cur_fd) < 0)
		e = STORE_ETEMP;
	struct index_rec rec = {.flags = app->flags, .keywords = app->keywords};
	if (e == STORE_OK)
		e = mbox_msg_sizes(box->f->cur_fd, name, &rec);
	if (e == STORE_OK) {
		rec.name = name;
		e = mbox_add(box, &rec);
	}
	if (e == STORE_OK)
		e = mbox_log_sync(box);
	if (e == STORE_OK)
		*uid_r = rec.uid;
	else
		(void)unlinkat(box->f->cur_fd, name, 0);
	if (e == STORE_OK && box->quota_root != NULL)
		(void)store_quota_add(box->quota_root, (int64_t)rec.psize, 1);
	free(name);
	return e;
}

enum store_error store_mailbox_append_commit(struct store_append **appp, uint32_t *uid_r)
{
	struct store_append *app = *appp;
	enum store_error e = app->failed ? STORE_ETEMP : STORE_OK;
	if (e == STORE_OK && fsync(app->fd) < 0)
		e = STORE_ETEMP;
	if (close(app->fd) < 0 && e == STORE_OK)
		e = STORE_ETEMP;
	app->fd = -1;
	if (e == STORE_OK && app->idate != 0) {
		/* Maildir keeps INTERNALDATE as the file's mtime. */
		struct timespec ts[2] = {{app->idate, 0}, {app->idate, 0}};
		(void)utimensat(app->box->f->tmp_fd, app->tmp_name, ts, AT_SYMLINK_NOFOLLOW);
	}
	if (e == STORE_OK && (e = mbox_lock(app->box)) == STORE_OK) {
		e = append_link(app, uid_r);
		mbox_unlock(app->box);
	}
	store_mailbox_append_abort(appp);
	return e;
}

/* dst keyword bits for src's keyword bits, matched by name (created in dst). */
static uint32_t map_keywords(struct store_mailbox *src, struct store_mailbox *dst, uint32_t kw)
{
	uint32_t out = 0;
	for (unsigned int i = 0; i < STORE_KEYWORDS_MAX; i++) {
		const char *name = (kw & (1u << i)) != 0 ? src->f->kw.names[i] : NULL;
		int idx = name != NULL ? store_mailbox_keyword(dst, name, true) : -1;
		if (idx >= 0)
			out |= 1u << idx;
	}
	return out;
}

/* Copies the bytes when a hard link is impossible (another file system). */
static enum store_error copy_bytes(struct store_mailbox *src, const struct mbox_msg *m,
                                   struct store_mailbox *dst, uint32_t kw, uint32_t *uid_r)
{
	int fd = openat(m->in_new ? src->f->new_fd : src->f->cur_fd, mbox_msg_name(m),
	                O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? STORE_ENOENT : STORE_ETEMP;
	struct store_append *app;
	enum store_error e =
	    store_mailbox_append_begin(dst, m->m.flags, kw, mbox_cold(m)->info.idate, &app);
	char *chunk = xmalloc(65536);
	ssize_t n = 0;
	while (e == STORE_OK && (n = read(fd, chunk, 65536)) > 0)
		e = store_mailbox_append_write(app, chunk, (size_t)n);
	free(chunk);
	close(fd);
	if (e == STORE_OK && n < 0)
		e = STORE_ETEMP;
	if (e == STORE_OK)
		return store_mailbox_append_commit(&app, uid_r);
	store_mailbox_append_abort(&app);
	return e;
}

static enum store_error copy_link(struct store_mailbox *src, const struct mbox_msg *m,
                                  struct store_mailbox *dst, uint32_t kw, uint32_t *uid_r)
{
	const struct store_msg_info info = mbox_cold(m)->info;
	char *unique = maildir_name_unique();
	char *base = xasprintf("%s,S=%llu,W=%llu", unique, (unsigned long long)info.psize,
	                       (unsigned long long)info.vsize);
	char *name = maildir_name_set_flags(base, m->m.flags, kw);
	free(unique);
	free(base);
	enum store_error e = mbox_lock(dst);
	if (e != STORE_OK) {
		free(name);
		return e;
	}
	if (linkat(m->in_new ? src->f->new_fd : src->f->cur_fd, mbox_msg_name(m), dst->f->cur_fd,
	           name, 0) < 0)
		/* EXDEV: another file system; EPERM: protected_hardlinks and a file owned by
		 * someone else (dropped in by root); EMLINK: too many links. All fall back to a
		 * copy. */
		e = errno == ENOENT                                       ? STORE_ENOENT
		    : errno == EXDEV || errno == EPERM || errno == EMLINK ? STORE_EINVAL
		                                                          : STORE_ETEMP;
	else if (maildir_dirsync(dst->f->cur_fd) < 0)
		e = STORE_ETEMP;
	/* The same bytes: the source's sizes and date hold; the cache is built on first use. */
	struct index_rec rec = {.flags = m->m.flags,
	                        .keywords = kw,
	                        .idate = info.idate,
	                        .psize = info.psize,
	                        .vsize = info.vsize};
	if (e == STORE_OK) {
		rec.name = name;
		e = mbox_add(dst, &rec);
	}
	if (e == STORE_OK)
		e = mbox_log_sync(dst);
	if (e == STORE_OK)
		*uid_r = rec.uid;
	mbox_unlock(dst);
	if (e == STORE_OK && dst->quota_root != NULL)
		(void)store_quota_add(dst->quota_root, (int64_t)rec.psize, 1);
	free(name);
	return e;
}

enum store_error store_mailbox_copy(struct store_mailbox *src, uint32_t uid,
                                    struct store_mailbox *dst, uint32_t *new_uid_r)
{
	enum store_error e = STORE_ENOENT;
	for (int attempt = 0; attempt < 2 && e == STORE_ENOENT; attempt++) {
		if (attempt > 0) {
			/* The file moved (flags changed elsewhere): catch up and retry. */
			if ((e = mbox_lock(src)) != STORE_OK)
				return e;
			e = mbox_scan(src, true);
			mbox_unlock(src);
			if (e != STORE_OK)
				return e;
		}
		struct mbox_msg *m = live_msg(src, uid);
		if (m == NULL)
			return STORE_ENOENT;
		/* A copy of its own: locking dst may catch up with src's folder (the same one)
		 * and change m. */
		struct mbox_msg *copy = mbox_msg_new(xstrdup(mbox_msg_name(m)));
		mbox_msg_take(copy, m);
		uint32_t kw = map_keywords(src, dst, copy->m.keywords);
		e = copy_link(src, copy, dst, kw, new_uid_r);
		if (e == STORE_EINVAL)
			e = copy_bytes(src, copy, dst, kw, new_uid_r);
		mbox_msg_release(copy);
	}
	return e;
}

enum store_error store_mailbox_move(struct store_mailbox *src, uint32_t uid,
                                    struct store_mailbox *dst, uint32_t *new_uid_r)
{
	/* Copy first: a crash in between leaves a duplicate, never a loss. */
	enum store_error e = store_mailbox_copy(src, uid, dst, new_uid_r);
	return e == STORE_OK ? store_mailbox_expunge(src, &uid, 1) : e;
}
