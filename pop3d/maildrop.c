/*
 * The POP3 maildrop on the store's folder index (store/mailbox.h): the index gives each
 * message its UID, CRLF size and file; the view it returns at open is the snapshot this
 * session numbers 1..n. DELE/RSET/RETR only mark here; QUIT hands the marks to the index
 * (set \Seen, expunge) under its lock, so IMAP sessions see them consistently.
 */
#include "maildrop.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "store/mailbox.h"

#define MAILDROP_LOCK_NAME "tern-pop3.lock"

struct maildrop_msg {
	uint32_t uid;  /* the store view is searched by UID: its numbers change at a sync */
	uint64_t size; /* RFC822.SIZE = what RETR sends before stuffing */
	char *uidl;
	bool deleted;
	bool seen;     /* RETR asked for \Seen */
	bool had_seen; /* \Seen already at login: nothing to write at QUIT */
};

struct maildrop {
	struct store_mailbox *box;
	int lock_fd;
	struct maildrop_msg *msgs;
	unsigned n;
};

static bool home_is_safe(const char *home)
{
	if (home[0] != '/')
		return false;
	for (const char *p = home; *p != '\0'; p++) {
		if (p[0] == '/' && p[1] == '.' &&
		    (p[2] == '/' || p[2] == '\0' || (p[2] == '.' && (p[3] == '/' || p[3] == '\0'))))
			return false;
	}
	return true;
}

/* RFC 1939 7: a unique-id is 1..70 characters in 0x21..0x7E. */
static char *uidl_for(struct store_mailbox *box, size_t seq, const struct store_msg *m,
                      enum maildrop_uidl_format format)
{
	if (format == MAILDROP_UIDL_UID_VALIDITY) {
		/* Dovecot's default pop3_uidl_format %08Xu%08Xv. */
		return xasprintf("%08X%08X", m->uid, store_mailbox_uidvalidity(box));
	}
	/* Dovecot's %f: the Maildir base name, which never changes for a message. */
	char *path = store_mailbox_msg_path(box, seq);
	if (path == NULL)
		return xasprintf("%08X%08X", m->uid, store_mailbox_uidvalidity(box));
	const char *base = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1 : path;
	size_t len = strcspn(base, ":");
	char *uidl = xstrndup(base, len > 70 ? 70 : len);
	free(path);
	for (char *p = uidl; *p != '\0'; p++) {
		if (*p < 0x21 || *p > 0x7e)
			*p = '_';
	}
	return uidl;
}

static int lock_mailbox(const char *home, int *fd_r, char **error_r)
{
	int dir_fd = open(home, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int fd;

	if (dir_fd < 0) {
		*error_r = xasprintf("open(%s) failed: %s", home, strerror(errno));
		return -1;
	}
	fd = openat(dir_fd, MAILDROP_LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	close(dir_fd);
	if (fd < 0) {
		*error_r =
		    xasprintf("open(%s/%s) failed: %s", home, MAILDROP_LOCK_NAME, strerror(errno));
		return -1;
	}
	/* flock locks belong to the open file description: a second session in this
	 * process conflicts just like one in another process. */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno;
		close(fd);
		if (err == EWOULDBLOCK)
			return 1;
		*error_r = xasprintf("flock(%s) failed: %s", MAILDROP_LOCK_NAME, strerror(err));
		return -1;
	}
	*fd_r = fd;
	return 0;
}

enum maildrop_open_result maildrop_open(const char *home, enum maildrop_uidl_format format,
                                        struct maildrop **md_r, char **error_r)
{
	struct maildrop *md;
	const char *store_error = NULL;
	int lock_fd = -1;
	int r;

	*md_r = NULL;
	if (!home_is_safe(home)) {
		*error_r = xasprintf("unsafe home directory path: %s", home);
		return MAILDROP_OPEN_ERROR;
	}
	r = lock_mailbox(home, &lock_fd, error_r);
	if (r != 0)
		return r > 0 ? MAILDROP_OPEN_IN_USE : MAILDROP_OPEN_ERROR;
	md = xcalloc(1, sizeof(*md));
	md->lock_fd = lock_fd;
	/* Opening syncs: new files get UIDs and move to cur/; this view is our snapshot. */
	if (store_mailbox_open(home, &md->box, &store_error) != STORE_OK) {
		*error_r = xasprintf("opening the INBOX index failed: %s",
		                     store_error != NULL ? store_error : "?");
		maildrop_free(&md);
		return MAILDROP_OPEN_ERROR;
	}
	/* The INBOX is the Maildir++ root: expunges keep its maildirsize (quota) right. */
	store_mailbox_set_quota_root(md->box, home);
	size_t count = store_mailbox_count(md->box);
	md->msgs = xcalloc(count > 0 ? count : 1, sizeof(*md->msgs));
	for (size_t seq = 1; seq <= count; seq++) {
		const struct store_msg *m = store_mailbox_msg(md->box, seq);
		if (m->expunged)
			continue;
		struct maildrop_msg *pm = &md->msgs[md->n++];
		pm->uid = m->uid;
		pm->size = store_mailbox_msg_info(md->box, seq)->vsize;
		pm->had_seen = (m->flags & STORE_FLAG_SEEN) != 0;
		pm->uidl = uidl_for(md->box, seq, m, format);
	}
	*md_r = md;
	return MAILDROP_OPEN_OK;
}

void maildrop_free(struct maildrop **mdp)
{
	struct maildrop *md = *mdp;

	if (md == NULL)
		return;
	for (unsigned i = 0; i < md->n; i++)
		free(md->msgs[i].uidl);
	free(md->msgs);
	store_mailbox_close(&md->box);
	if (md->lock_fd >= 0)
		close(md->lock_fd); /* releases the flock */
	free(md);
	*mdp = NULL;
}

unsigned maildrop_count(const struct maildrop *md)
{
	return md->n;
}

bool maildrop_exists(const struct maildrop *md, unsigned n)
{
	return n >= 1 && n <= md->n && !md->msgs[n - 1].deleted;
}

bool maildrop_is_deleted(const struct maildrop *md, unsigned n)
{
	return n >= 1 && n <= md->n && md->msgs[n - 1].deleted;
}

uint64_t maildrop_size(const struct maildrop *md, unsigned n)
{
	return md->msgs[n - 1].size;
}

void maildrop_stat(const struct maildrop *md, unsigned *count_r, uint64_t *size_r)
{
	*count_r = 0;
	*size_r = 0;
	for (unsigned i = 0; i < md->n; i++) {
		if (!md->msgs[i].deleted) {
			(*count_r)++;
			*size_r += md->msgs[i].size;
		}
	}
}

const char *maildrop_uidl(const struct maildrop *md, unsigned n)
{
	return md->msgs[n - 1].uidl;
}

/* The message's path in the index view, or NULL when it is expunged. */
static char *msg_path(struct maildrop *md, uint32_t uid)
{
	size_t seq = store_mailbox_seq(md->box, uid);
	return seq != 0 ? store_mailbox_msg_path(md->box, seq) : NULL;
}

int maildrop_open_message(struct maildrop *md, unsigned n, char **error_r)
{
	uint32_t uid = md->msgs[n - 1].uid;
	char *path = msg_path(md, uid);
	int fd = -1;

	for (int attempt = 0; attempt < 2 && path != NULL; attempt++) {
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0 || errno != ENOENT || attempt == 1)
			break;
		/* Another client renamed it (flags) or expunged it: catch up with the index.
		 * Our numbering does not change: it is our own array, looked up by UID. */
		free(path);
		path = NULL;
		struct store_sync_result res;
		if (store_mailbox_sync(md->box, &res) == STORE_OK)
			path = msg_path(md, uid);
	}
	if (fd < 0) {
		if (path == NULL)
			*error_r = xasprintf("UID %u was expunged by another client", uid);
		else
			*error_r = xasprintf("open(%s) failed: %s", path, strerror(errno));
	}
	free(path);
	return fd;
}

void maildrop_mark_deleted(struct maildrop *md, unsigned n)
{
	md->msgs[n - 1].deleted = true;
}

void maildrop_reset(struct maildrop *md)
{
	for (unsigned i = 0; i < md->n; i++)
		md->msgs[i].deleted = false;
}

void maildrop_mark_seen(struct maildrop *md, unsigned n)
{
	md->msgs[n - 1].seen = true;
}

int maildrop_commit(struct maildrop *md, unsigned *deleted_r, char **error_r)
{
	uint32_t *dele = xcalloc(md->n > 0 ? md->n : 1, sizeof(*dele));
	uint32_t *seen = xcalloc(md->n > 0 ? md->n : 1, sizeof(*seen));
	size_t n_dele = 0, n_seen = 0;
	int ret = 0;

	*deleted_r = 0;
	*error_r = NULL;
	for (unsigned i = 0; i < md->n; i++) {
		const struct maildrop_msg *m = &md->msgs[i];
		if (m->deleted)
			dele[n_dele++] = m->uid;
		else if (m->seen && !m->had_seen)
			seen[n_seen++] = m->uid;
	}
	/* RETR's \Seen, all under one index lock (UIDs another client expunged meanwhile
	 * are skipped by the store). */
	if (n_seen > 0) {
		size_t n_modified = 0;
		enum store_error e =
		    store_mailbox_set_flags_many(md->box, seen, n_seen, STORE_FLAGS_ADD,
		                                 STORE_FLAG_SEEN, 0, 0, NULL, &n_modified);
		if (e != STORE_OK && e != STORE_ENOENT) {
			*error_r = xasprintf("setting \\Seen failed (%d)", (int)e);
			ret = -1;
		}
	}
	/* RFC 1939 6: all deletions at once, in one index transaction. */
	if (n_dele > 0) {
		enum store_error e = store_mailbox_expunge(md->box, dele, n_dele);
		if (e != STORE_OK && e != STORE_ENOENT) {
			if (*error_r == NULL)
				*error_r = xasprintf("expunge failed (%d)", (int)e);
			ret = -1;
		} else {
			*deleted_r = (unsigned)n_dele;
		}
	}
	free(dele);
	free(seen);
	return ret;
}
