/*
 * An open folder: opening (and creating or importing its index), the view that changes
 * only at sync, read access to messages, and the pool that shares one loaded folder among
 * the handles of a process.
 */
#include "store/mailbox_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "store/maildir_fs.h"

struct store_pool {
	struct mbox_folder *head; /* most recently used first */
	size_t folders, idle, keep_idle;
};

static void folder_free(struct mbox_folder *f);

/* Frees the buried messages no live view can show any more. */
static void graves_collect(struct mbox_folder *f)
{
	uint64_t oldest = f->views_head != NULL ? f->views_head->gen : UINT64_MAX;
	size_t out = 0;
	for (size_t i = 0; i < f->grave_count; i++) {
		if (f->graves[i].gen <= oldest)
			mbox_msg_release(f->graves[i].m);
		else
			f->graves[out++] = f->graves[i];
	}
	f->grave_count = out;
}

void mbox_bury(struct mbox_folder *f, struct mbox_msg *m)
{
	if (f->grave_count == f->grave_cap) {
		f->grave_cap = f->grave_cap * 2 + 16;
		f->graves = xreallocarray(f->graves, f->grave_cap, sizeof(*f->graves));
	}
	/* Views up to f->gen may show it; the next one will not. */
	f->graves[f->grave_count].m = m;
	f->graves[f->grave_count++].gen = f->gen + 1;
}

static void view_unref(struct mbox_folder *f, struct mbox_view *v)
{
	if (v == NULL || --v->refs > 0)
		return;
	struct mbox_view **pp = &f->views_head;
	while (*pp != v)
		pp = &(*pp)->next;
	*pp = v->next;
	free(v);
	graves_collect(f);
}

void mbox_publish(struct mbox_folder *f)
{
	struct index_state *st = &f->st;
	if (!st->dirty && f->view != NULL)
		return;
	size_t out = st->count;
	if (st->expunged > 0) { /* else nothing to look for in every message */
		out = 0;
		for (size_t i = 0; i < st->count; i++) {
			if (st->msgs[i]->m.expunged)
				mbox_bury(f, st->msgs[i]);
			else
				st->msgs[out++] = st->msgs[i];
		}
		st->count = out;
		st->expunged = 0;
	}
	struct mbox_view *v = xmalloc(sizeof(*v) + out * sizeof(v->msgs[0]));
	prefault_write(v->msgs, out * sizeof(v->msgs[0]));
	v->next = NULL;
	v->refs = 1; /* the folder's */
	v->gen = ++f->gen;
	v->count = out;
	if (out > 0)
		memcpy(v->msgs, st->msgs, out * sizeof(v->msgs[0]));
	struct mbox_view **pp = &f->views_head;
	while (*pp != NULL)
		pp = &(*pp)->next;
	*pp = v;
	struct mbox_view *old = f->view;
	f->view = v;
	st->dirty = false;
	view_unref(f, old);
}

static struct mbox_folder *folder_open(const char *path, enum store_error *e_r,
                                       const char **error_r)
{
	struct mbox_folder *f = xcalloc(1, sizeof(*f));
	f->dir_fd = f->cur_fd = f->new_fd = f->tmp_fd = -1;
	f->lock_fd = f->log_fd = f->cache_fd = -1;
	f->path = xstrdup(path);
	f->dir_fd = maildir_open_folder(path, true);
	if (f->dir_fd >= 0) {
		f->cur_fd = maildir_open_subdir(f->dir_fd, "cur");
		f->new_fd = maildir_open_subdir(f->dir_fd, "new");
		f->tmp_fd = maildir_open_subdir(f->dir_fd, "tmp");
	}
	if (f->dir_fd < 0 || f->cur_fd < 0 || f->new_fd < 0 || f->tmp_fd < 0) {
		*error_r = errno == ENOENT ? "No such folder" : "Cannot open folder";
		*e_r = errno == ENOENT ? STORE_ENOENT : STORE_ETEMP;
		folder_free(f);
		return NULL;
	}
	const char *kw_error;
	(void)keywords_load(f->dir_fd, &f->kw, &kw_error);
	if (index_state_load(f, &f->st, false) != 0)
		index_state_free(&f->st); /* mbox_lock creates, imports or rebuilds */
	return f;
}

static void folder_free(struct mbox_folder *f)
{
	int fds[] = {f->dir_fd,  f->cur_fd, f->new_fd,  f->tmp_fd,
	             f->lock_fd, f->log_fd, f->cache_fd};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (fds[i] >= 0)
			close(fds[i]);
	}
	if (f->view != NULL)
		view_unref(f, f->view); /* the last: no handle is left */
	for (size_t i = 0; i < f->grave_count; i++)
		mbox_msg_release(f->graves[i].m);
	free(f->graves);
	index_state_free(&f->st);
	uidlist_free(&f->import);
	keywords_free(&f->kw);
	free(f->path);
	free(f);
}

/* A new handle on f, synced (so it shows the folder as it is now). */
/* The sync that makes a handle new to its caller current; it has nothing to report
 * yet. On error *box is closed (NULL). */
static enum store_error handle_first_sync(struct store_mailbox **box, const char **error_r)
{
	struct store_sync_result res;
	enum store_error e = store_mailbox_sync(*box, &res);
	(*box)->uidvalidity_changed = false;
	if (e != STORE_OK) {
		*error_r = "Cannot read the folder index";
		store_mailbox_close(box);
	}
	return e;
}

static enum store_error handle_open(struct mbox_folder *f, struct store_mailbox **box_r,
                                    const char **error_r)
{
	struct store_mailbox *box = xcalloc(1, sizeof(*box));
	box->f = f;
	box->h_next = f->handles;
	if (f->handles != NULL)
		f->handles->h_prev = box;
	f->handles = box;
	f->nhandles++;
	enum store_error e = handle_first_sync(&box, error_r);
	*box_r = box;
	return e;
}

enum store_error store_mailbox_open(const char *path, struct store_mailbox **box_r,
                                    const char **error_r)
{
	*box_r = NULL;
	enum store_error e;
	struct mbox_folder *f = folder_open(path, &e, error_r);
	return f != NULL ? handle_open(f, box_r, error_r) : e;
}

struct store_pool *store_pool_new(size_t keep_idle)
{
	struct store_pool *pool = xcalloc(1, sizeof(*pool));
	pool->keep_idle = keep_idle;
	return pool;
}

static void pool_unlink(struct store_pool *pool, struct mbox_folder *f)
{
	if (f->pool_prev != NULL)
		f->pool_prev->pool_next = f->pool_next;
	else
		pool->head = f->pool_next;
	if (f->pool_next != NULL)
		f->pool_next->pool_prev = f->pool_prev;
	f->pool_prev = f->pool_next = NULL;
	f->pool = NULL;
	pool->folders--;
}

static void pool_push_front(struct store_pool *pool, struct mbox_folder *f)
{
	f->pool = pool;
	f->pool_prev = NULL;
	f->pool_next = pool->head;
	if (pool->head != NULL)
		pool->head->pool_prev = f;
	pool->head = f;
	pool->folders++;
}

void store_pool_free(struct store_pool **poolp)
{
	struct store_pool *pool = *poolp;
	if (pool == NULL)
		return;
	while (pool->head != NULL) {
		struct mbox_folder *f = pool->head;
		pool_unlink(pool, f);
		if (f->nhandles == 0)
			folder_free(f); /* else it goes with its last handle */
	}
	free(pool);
	*poolp = NULL;
}

size_t store_pool_folders(const struct store_pool *pool)
{
	return pool->folders;
}

bool store_pool_loaded(const struct store_pool *pool, const char *path)
{
	for (const struct mbox_folder *f = pool->head; f != NULL; f = f->pool_next) {
		if (strcmp(f->path, path) == 0)
			return true;
	}
	return false;
}

/* Whether path still names the directory f has open (same device and inode). */
static bool folder_still_at(const struct mbox_folder *f, const char *path)
{
	int fd = maildir_open_folder(path, false);
	if (fd < 0)
		return false;
	struct stat a, b;
	bool same = fstat(fd, &a) == 0 && fstat(f->dir_fd, &b) == 0 && a.st_dev == b.st_dev &&
	            a.st_ino == b.st_ino;
	close(fd);
	return same;
}

enum store_error store_mailbox_open_pooled(struct store_pool *pool, const char *path,
                                           struct store_mailbox **box_r, const char **error_r)
{
	*box_r = NULL;
	struct mbox_folder *f = pool->head;
	while (f != NULL && strcmp(f->path, path) != 0)
		f = f->pool_next;
	if (f != NULL && !folder_still_at(f, path)) {
		/* Deleted, renamed away or replaced by another process since it was loaded: its
		 * handles keep it (as a plain open would), the pool forgets it. */
		pool_unlink(pool, f);
		if (f->nhandles == 0) {
			pool->idle--;
			folder_free(f);
		}
		f = NULL;
	}
	if (f != NULL) {
		pool_unlink(pool, f);
		if (f->nhandles == 0)
			pool->idle--;
	} else {
		enum store_error e;
		if ((f = folder_open(path, &e, error_r)) == NULL)
			return e;
	}
	pool_push_front(pool, f);
	return handle_open(f, box_r, error_r);
}

enum store_error store_pool_adopt(struct store_pool *pool, const char *path,
                                  struct store_mailbox **box, const char **error_r)
{
	struct mbox_folder *f = (*box)->f;
	if (f->pool != NULL || f->nhandles != 1 || strcmp(f->path, path) != 0 ||
	    store_pool_loaded(pool, path)) {
		/* Not a folder of its own (or another session loaded path meanwhile): open
		 * the pool's. */
		store_mailbox_close(box);
		return store_mailbox_open_pooled(pool, path, box, error_r);
	}
	pool_push_front(pool, f);
	/* Catch up with what changed since the load, as any pooled open does. */
	return handle_first_sync(box, error_r);
}

/* f lost its last handle: kept for the next open when the pool has room, else freed. */
static void folder_release(struct mbox_folder *f)
{
	struct store_pool *pool = f->pool;
	if (pool == NULL || pool->keep_idle == 0) {
		if (pool != NULL)
			pool_unlink(pool, f);
		folder_free(f);
		return;
	}
	pool_unlink(pool, f);
	pool_push_front(pool, f);
	pool->idle++;
	if (pool->idle <= pool->keep_idle)
		return;
	/* Too many kept: free the least recently used one without handles. */
	struct mbox_folder *last = pool->head;
	while (last->pool_next != NULL)
		last = last->pool_next;
	while (last != NULL && last->nhandles > 0)
		last = last->pool_prev;
	if (last != NULL) {
		pool_unlink(pool, last);
		pool->idle--;
		folder_free(last);
	}
}

void store_mailbox_close(struct store_mailbox **boxp)
{
	struct store_mailbox *box = *boxp;
	if (box == NULL)
		return;
	struct mbox_folder *f = box->f;
	if (box->h_prev != NULL)
		box->h_prev->h_next = box->h_next;
	else
		f->handles = box->h_next;
	if (box->h_next != NULL)
		box->h_next->h_prev = box->h_prev;
	f->nhandles--;
	view_unref(f, box->view);
	free(box->changed);
	free(box->res_seqs);
	free(box->res_changed);
	free(box->res_uids);
	free(box->quota_root);
	free(box);
	*boxp = NULL;
	if (f->nhandles == 0)
		folder_release(f);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Position of uid in v, or -1. */
static ssize_t view_index_of(const struct mbox_view *v, uint32_t uid)
{
	if (v == NULL)
		return -1;
	size_t lo = 0, hi = v->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v->msgs[mid]->m.uid < uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < v->count && v->msgs[lo]->m.uid == uid ? (ssize_t)lo : -1;
}

/* The EXPUNGE sequence numbers: messages of the old view gone since. */
static size_t view_expunged(struct store_mailbox *box)
{
	size_t visible = mbox_visible(box), reported = 0;
	free(box->res_seqs);
	free(box->res_uids);
	box->res_seqs = xcalloc(visible + 1, sizeof(uint32_t));
	box->res_uids = xcalloc(visible + 1, sizeof(uint32_t));
	if (box->uidvalidity_changed)
		return 0; /* a new folder: nothing of the old one is reported */
	for (size_t i = 0; i < visible; i++) {
		/* Earlier EXPUNGEs already shifted the numbers down. */
		if (box->view->msgs[i]->m.expunged) {
			box->res_seqs[reported] = (uint32_t)(i + 1 - reported);
			box->res_uids[reported] = box->view->msgs[i]->m.uid;
			reported++;
		}
	}
	return reported;
}

/* The changed UIDs, sorted, once each, only those still in the view. */
static size_t changed_compact(struct store_mailbox *box)
{
	free(box->res_changed);
	box->res_changed = xcalloc(box->changed_count + 1, sizeof(uint32_t));
	if (box->changed_count > 1)
		qsort(box->changed, box->changed_count, sizeof(uint32_t), cmp_u32);
	size_t n = 0;
	for (size_t i = 0; i < box->changed_count && !box->uidvalidity_changed; i++) {
		uint32_t uid = box->changed[i];
		if (n > 0 && box->res_changed[n - 1] == uid)
			continue;
		ssize_t at = view_index_of(box->view, uid);
		if (at >= 0 && !box->view->msgs[at]->m.expunged)
			box->res_changed[n++] = uid;
	}
	box->changed_count = 0;
	return n;
}

enum store_error store_mailbox_sync(struct store_mailbox *box, struct store_sync_result *res)
{
	memset(res, 0, sizeof(*res));
	enum store_error e = mbox_lock(box);
	if (e != STORE_OK)
		return e;
	e = mbox_scan(box, false);
	mbox_unlock(box);
	mbox_publish(box->f);
	res->expunged_count = view_expunged(box);
	res->expunged_seqs = box->res_seqs;
	res->expunged_uids = box->res_uids;
	res->changed_count = changed_compact(box);
	res->changed_uids = box->res_changed;
	struct mbox_view *old = box->view;
	box->view = box->f->view;
	box->view->refs++;
	view_unref(box->f, old);
	res->exists = box->view->count;
	res->uidvalidity_changed = box->uidvalidity_changed;
	box->uidvalidity_changed = false;
	return e;
}

uint32_t store_mailbox_uidvalidity(const struct store_mailbox *box)
{
	return box->f->st.hdr.uidvalidity;
}

uint32_t store_mailbox_uidnext(const struct store_mailbox *box)
{
	return box->f->st.hdr.uidnext;
}

uint64_t store_mailbox_highestmodseq(const struct store_mailbox *box)
{
	return box->f->st.hdr.highestmodseq;
}

size_t store_mailbox_count(const struct store_mailbox *box)
{
	return mbox_visible(box);
}

const struct store_msg *store_mailbox_msg(const struct store_mailbox *box, size_t seq)
{
	return seq >= 1 && seq <= mbox_visible(box) ? &box->view->msgs[seq - 1]->m : NULL;
}

const struct store_msg_info *store_mailbox_msg_info(const struct store_mailbox *box, size_t seq)
{
	if (seq < 1 || seq > mbox_visible(box))
		return NULL;
	return &mbox_cold(box->view->msgs[seq - 1])->info;
}

size_t store_mailbox_seq(const struct store_mailbox *box, uint32_t uid)
{
	ssize_t i = view_index_of(box->view, uid);
	return i >= 0 ? (size_t)i + 1 : 0;
}

char *store_mailbox_msg_path(const struct store_mailbox *box, size_t seq)
{
	if (seq < 1 || seq > mbox_visible(box) || box->view->msgs[seq - 1]->m.expunged)
		return NULL;
	const struct mbox_msg *m = box->view->msgs[seq - 1];
	const char *name = mbox_msg_name(m);
	if (*name == '\0')
		return NULL; /* its index entry is damaged: the next sync finds the file again */
	return xasprintf("%s/%s/%s", box->f->path, m->in_new ? "new" : "cur", name);
}

bool store_mailbox_sort_date(const struct store_mailbox *box, size_t seq, int64_t *date_r)
{
	if (seq < 1 || seq > mbox_visible(box))
		return false;
	const struct mbox_cold *c = mbox_cold(box->view->msgs[seq - 1]);
	*date_r = c->sort_date;
	return c->sort_date_set;
}

void store_mailbox_set_sort_date(struct store_mailbox *box, size_t seq, int64_t date)
{
	if (seq < 1 || seq > mbox_visible(box))
		return;
	struct mbox_cold *c = mbox_cold(box->view->msgs[seq - 1]);
	c->sort_date = date;
	c->sort_date_set = true;
}

const char *store_mailbox_keyword_name(const struct store_mailbox *box, unsigned int idx)
{
	return idx < STORE_KEYWORDS_MAX ? box->f->kw.names[idx] : NULL;
}

int store_mailbox_keyword(struct store_mailbox *box, const char *name, bool create)
{
	int idx = keywords_lookup(&box->f->kw, name);
	if (idx >= 0 || !create)
		return idx;
	if (mbox_lock(box) != STORE_OK)
		return -1;
	const char *error;
	idx = keywords_add(box->f->dir_fd, &box->f->kw, name, &error);
	mbox_unlock(box);
	return idx;
}

void store_mailbox_set_quota_root(struct store_mailbox *box, const char *root)
{
	free(box->quota_root);
	box->quota_root = root != NULL ? xstrdup(root) : NULL;
}
