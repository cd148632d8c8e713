/*
 * An open folder: opening (and creating or importing its index), the view that changes
 * only at sync, and read access to messages.
 */
#include "store/mailbox_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "store/maildir_fs.h"

enum store_error store_mailbox_open(const char *path, struct store_mailbox **box_r,
                                    const char **error_r)
{
	struct store_mailbox *box = xcalloc(1, sizeof(*box));
	box->dir_fd = box->cur_fd = box->new_fd = box->tmp_fd = -1;
	box->lock_fd = box->log_fd = box->cache_fd = -1;
	box->path = xstrdup(path);
	*box_r = NULL;
	box->dir_fd = maildir_open_folder(path, true);
	if (box->dir_fd >= 0) {
		box->cur_fd = maildir_open_subdir(box->dir_fd, "cur");
		box->new_fd = maildir_open_subdir(box->dir_fd, "new");
		box->tmp_fd = maildir_open_subdir(box->dir_fd, "tmp");
	}
	if (box->dir_fd < 0 || box->cur_fd < 0 || box->new_fd < 0 || box->tmp_fd < 0) {
		*error_r = errno == ENOENT ? "No such folder" : "Cannot open folder";
		enum store_error e = errno == ENOENT ? STORE_ENOENT : STORE_ETEMP;
		store_mailbox_close(&box);
		return e;
	}
	const char *kw_error;
	(void)keywords_load(box->dir_fd, &box->kw, &kw_error);
	if (index_state_load(box, &box->st) != 0)
		index_state_free(&box->st); /* mbox_lock creates, imports or rebuilds */
	struct store_sync_result res;
	enum store_error e = store_mailbox_sync(box, &res);
	box->uidvalidity_changed = false;
	if (e != STORE_OK) {
		*error_r = "Cannot read the folder index";
		store_mailbox_close(&box);
		return e;
	}
	*box_r = box;
	return STORE_OK;
}

void store_mailbox_close(struct store_mailbox **boxp)
{
	struct store_mailbox *box = *boxp;
	if (box == NULL)
		return;
	int fds[] = {box->dir_fd,  box->cur_fd, box->new_fd,  box->tmp_fd,
	             box->lock_fd, box->log_fd, box->cache_fd};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (fds[i] >= 0)
			close(fds[i]);
	}
	index_state_free(&box->st);
	keywords_free(&box->kw);
	free(box->changed);
	free(box->res_seqs);
	free(box->res_changed);
	free(box->res_uids);
	free(box->quota_root);
	free(box->path);
	free(box);
	*boxp = NULL;
}

/* Drops expunged messages from the view, recording the EXPUNGE sequence numbers. */
static size_t view_compact(struct store_mailbox *box)
{
	struct index_state *st = &box->st;
	size_t out = 0, reported = 0;
	free(box->res_seqs);
	free(box->res_uids);
	box->res_seqs = xcalloc(box->visible + 1, sizeof(uint32_t));
	box->res_uids = xcalloc(box->visible + 1, sizeof(uint32_t));
	for (size_t i = 0; i < st->count; i++) {
		if (st->msgs[i]->m.expunged) {
			/* Earlier EXPUNGEs already shifted the numbers down. */
			if (i < box->visible) {
				box->res_seqs[reported] = (uint32_t)(i + 1 - reported);
				box->res_uids[reported] = st->msgs[i]->m.uid;
				reported++;
			}
			mbox_msg_release(st->msgs[i]);
			continue;
		}
		st->msgs[out++] = st->msgs[i];
	}
	st->count = out;
	return reported;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* The changed UIDs, sorted, once each, only those still in the view. */
static size_t changed_compact(struct store_mailbox *box)
{
	free(box->res_changed);
	box->res_changed = xcalloc(box->changed_count + 1, sizeof(uint32_t));
	if (box->changed_count > 1)
		qsort(box->changed, box->changed_count, sizeof(uint32_t), cmp_u32);
	size_t n = 0;
	for (size_t i = 0; i < box->changed_count; i++) {
		uint32_t uid = box->changed[i];
		if ((n == 0 || box->res_changed[n - 1] != uid) && mbox_find(&box->st, uid) != NULL)
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
	res->expunged_count = view_compact(box);
	res->expunged_seqs = box->res_seqs;
	res->expunged_uids = box->res_uids;
	res->changed_count = changed_compact(box);
	res->changed_uids = box->res_changed;
	box->visible = box->st.count;
	res->exists = box->visible;
	res->uidvalidity_changed = box->uidvalidity_changed;
	box->uidvalidity_changed = false;
	return e;
}

uint32_t store_mailbox_uidvalidity(const struct store_mailbox *box)
{
	return box->st.hdr.uidvalidity;
}

uint32_t store_mailbox_uidnext(const struct store_mailbox *box)
{
	return box->st.hdr.uidnext;
}

uint64_t store_mailbox_highestmodseq(const struct store_mailbox *box)
{
	return box->st.hdr.highestmodseq;
}

size_t store_mailbox_count(const struct store_mailbox *box)
{
	return box->visible;
}

const struct store_msg *store_mailbox_msg(const struct store_mailbox *box, size_t seq)
{
	return seq >= 1 && seq <= box->visible ? &box->st.msgs[seq - 1]->m : NULL;
}

size_t store_mailbox_seq(const struct store_mailbox *box, uint32_t uid)
{
	ssize_t i = mbox_index_of(&box->st, uid);
	return i >= 0 && (size_t)i < box->visible ? (size_t)i + 1 : 0;
}

char *store_mailbox_msg_path(const struct store_mailbox *box, size_t seq)
{
	if (seq < 1 || seq > box->visible || box->st.msgs[seq - 1]->m.expunged)
		return NULL;
	const struct mbox_msg *m = box->st.msgs[seq - 1];
	return xasprintf("%s/%s/%s", box->path, m->in_new ? "new" : "cur", m->name);
}

const char *store_mailbox_keyword_name(const struct store_mailbox *box, unsigned int idx)
{
	return idx < STORE_KEYWORDS_MAX ? box->kw.names[idx] : NULL;
}

int store_mailbox_keyword(struct store_mailbox *box, const char *name, bool create)
{
	int idx = keywords_lookup(&box->kw, name);
	if (idx >= 0 || !create)
		return idx;
	if (mbox_lock(box) != STORE_OK)
		return -1;
	const char *error;
	idx = keywords_add(box->dir_fd, &box->kw, name, &error);
	mbox_unlock(box);
	return idx;
}

void store_mailbox_set_quota_root(struct store_mailbox *box, const char *root)
{
	free(box->quota_root);
	box->quota_root = root != NULL ? xstrdup(root) : NULL;
}
