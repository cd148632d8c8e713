/*
 * Syncing the index with the files (the truth): new files in new/ or cur/ get the next
 * UIDs in arrival order (name order, which starts with the delivery time), files renamed
 * by other Maildir clients keep their UID (matched by base name, everything before ':'),
 * files that vanished are expunged. New files move from new/ to cur/ as Dovecot does.
 * The scan is skipped while cur/ and new/ keep the mtimes the last scan saw.
 *
 * A new message is not parsed here: its sizes come from the ",S=" and ",W=" of its name (or
 * from reading the file and counting bare LFs) and its INTERNALDATE from the mtime; the
 * cached ENVELOPE/BODYSTRUCTURE/header fields are built on first use (mailbox_cache.c),
 * as Dovecot does. The ADD records of a scan are written to the log in large batches.
 */
#include "store/mailbox_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "mime/imap_bodystructure.h"
#include "store/maildir_name.h"

/* A directory modified this recently may still change within the same mtime tick. */
#define SCAN_DIRTY_NS (2LL * 1000000000LL)

struct name_table {
	size_t *slots; /* index + 1 into st->msgs; 0 = empty */
	size_t size;
	const struct index_state *st;
};

static uint64_t base_hash(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
	return h;
}

static void table_build(struct name_table *t, const struct index_state *st)
{
	t->size = 16;
	while (t->size < st->count * 2 + 1)
		t->size *= 2;
	t->slots = xcalloc(t->size, sizeof(size_t));
	t->st = st;
	for (size_t i = 0; i < st->count; i++) {
		const char *name = mbox_msg_name(st->msgs[i]);
		if (st->msgs[i]->m.expunged)
			continue;
		size_t len = maildir_name_base_len(name);
		size_t s = (size_t)base_hash(name, len) & (t->size - 1);
		while (t->slots[s] != 0)
			s = (s + 1) & (t->size - 1);
		t->slots[s] = i + 1;
	}
}

static ssize_t table_find(const struct name_table *t, const char *name)
{
	size_t len = maildir_name_base_len(name);
	size_t s = (size_t)base_hash(name, len) & (t->size - 1);
	for (; t->slots[s] != 0; s = (s + 1) & (t->size - 1)) {
		const char *n = mbox_msg_name(t->st->msgs[t->slots[s] - 1]);
		if (maildir_name_base_len(n) == len && memcmp(n, name, len) == 0)
			return (ssize_t)(t->slots[s] - 1);
	}
	return -1;
}

struct new_file {
	char *name;
	bool in_new;
	uint32_t uid;                /* from dovecot-uidlist, or 0 */
	unsigned long long order[3]; /* arrival_key() of the name */
};

/* ADD records waiting to be written: flushed in pieces of this many bytes. */
#define SCAN_BATCH_BYTES (1024u * 1024)

struct scan {
	struct store_mailbox *box;
	struct name_table table;
	bool *seen;
	struct new_file *files;
	size_t nfiles, cap;
};

enum store_error mbox_log_flags(struct store_mailbox *box, struct mbox_msg *m, uint32_t flags,
                                uint32_t keywords, const char *name)
{
	struct buf p;
	buf_init(&p, 0);
	buf_append_char(&p, INDEX_REC_FLAGS);
	index_put_u32(&p, m->m.uid);
	index_put_u32(&p, flags);
	index_put_u32(&p, keywords);
	index_put_u64(&p, ++box->f->st.hdr.highestmodseq);
	index_put_u32(&p, (uint32_t)strlen(name));
	buf_append_str(&p, name);
	enum store_error e = mbox_log(box, &p);
	buf_free(&p);
	return e;
}

static void scan_file(struct scan *sc, const char *name, bool in_new)
{
	if (!maildir_name_is_valid(name))
		return;
	ssize_t i = table_find(&sc->table, name);
	if (i >= 0 && !sc->seen[i]) {
		sc->seen[i] = true;
		struct mbox_msg *m = sc->box->f->st.msgs[i];
		if (in_new) {
			m->in_new = true;
			mbox_msg_set_name(m, xstrdup(name));
		} else if (strcmp(mbox_msg_name(m), name) != 0) {
			/* Renamed by another Maildir client: same UID, flags from the name. */
			unsigned int flags;
			uint32_t kw;
			maildir_name_get_flags(name, &flags, &kw);
			(void)mbox_log_flags(sc->box, m, flags, kw, name);
		}
		return;
	}
	if (i >= 0)
		return; /* the same base name twice (new/ and cur/): keep the first */
	if (sc->nfiles == sc->cap) {
		sc->cap = sc->cap * 2 + 64;
		sc->files = xreallocarray(sc->files, sc->cap, sizeof(*sc->files));
	}
	sc->files[sc->nfiles++] = (struct new_file){xstrdup(name), in_new, 0, {0, 0, 0}};
}

static int scan_dir(struct scan *sc, int dir_fd, bool in_new)
{
	int fd = dup(dir_fd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	rewinddir(d);
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		scan_file(sc, de->d_name, in_new);
	closedir(d);
	return 0;
}

/*
 * Arrival order from a name "<sec>.M<usec>P<pid>Q<n>..." (Dovecot's and ours): the numbers
 * are not zero-padded, so "M99" must sort before "M123". Other names sort by their seconds.
 */
static void arrival_key(const char *name, unsigned long long key[3])
{
	char *end;
	key[0] = strtoull(name, &end, 10);
	key[1] = key[2] = 0;
	if (end[0] == '.' && end[1] == 'M') {
		key[1] = strtoull(end + 2, &end, 10);
		const char *dot = strchr(end, '.'), *q = strchr(end, 'Q');
		if (q != NULL && (dot == NULL || q < dot))
			key[2] = strtoull(q + 1, NULL, 10);
	}
}

static int cmp_new_files(const void *a, const void *b)
{
	const struct new_file *x = a, *y = b;
	if (x->uid != y->uid)
		return x->uid == 0 ? 1 : y->uid == 0 ? -1 : (x->uid < y->uid ? -1 : 1);
	for (int i = 0; i < 3; i++) {
		if (x->order[i] != y->order[i])
			return x->order[i] < y->order[i] ? -1 : 1;
	}
	return strcmp(x->name, y->name);
}

/* Moves a file from new/ to cur/ (keeping any flags in its name). */
static char *move_to_cur(struct store_mailbox *box, const char *name)
{
	char *cur_name = strchr(name, ':') != NULL ? xstrdup(name) : xasprintf("%s:2,", name);
	if (renameat2(box->f->new_fd, name, box->f->cur_fd, cur_name, RENAME_NOREPLACE) < 0) {
		free(cur_name);
		return NULL;
	}
	return cur_name;
}

/* The ADD records of one scan, written to the log together. */
struct add_batch {
	struct buf frames, payload;
	uint32_t uidnext; /* the next UID, counting the records not written yet */
};

static enum store_error batch_flush(struct store_mailbox *box, struct add_batch *b)
{
	enum store_error e = mbox_log_frames(box, &b->frames);
	buf_reset(&b->frames);
	return e;
}

/* Moves f to cur/ and queues its ADD record (sizes and date from the file, no parsing). */
static enum store_error scan_add_new(struct store_mailbox *box, struct new_file *f,
                                     struct add_batch *b)
{
	char *name = f->name;
	int dir_fd = box->f->cur_fd;
	if (f->in_new) {
		char *moved = move_to_cur(box, f->name);
		if (moved == NULL && errno == ENOENT)
			return STORE_OK; /* gone meanwhile (another client took it) */
		if (moved == NULL)
			dir_fd = box->f->new_fd; /* leave it in new/, index it there */
		else
			name = moved;
	}
	struct index_rec rec = {.uid = f->uid != 0 ? f->uid : b->uidnext};
	maildir_name_get_flags(name, &rec.flags, &rec.keywords);
	enum store_error e = mbox_msg_sizes(dir_fd, name, &rec);
	if (e == STORE_ENOENT)
		e = STORE_OK;
	else if (e == STORE_OK) {
		rec.name = name;
		rec.modseq = ++box->f->st.hdr.highestmodseq;
		b->uidnext = rec.uid + 1;
		buf_reset(&b->payload);
		index_rec_encode(&b->payload, &rec);
		index_frame(&b->frames, &b->payload);
		if (b->frames.len >= SCAN_BATCH_BYTES)
			e = batch_flush(box, b);
	}
	if (name != f->name)
		free(name);
	return e;
}

static void dir_mtime(int fd, int64_t *ns_r)
{
	struct stat sb;
	*ns_r = fstat(fd, &sb) == 0 ? (int64_t)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec
	                            : 0;
}

static int64_t now_ns(void)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return (int64_t)now.tv_sec * 1000000000LL + now.tv_nsec;
}

/*
 * Whether a directory whose mtime is still the indexed one may hide a change: one made
 * in the same timestamp tick as that mtime, after the scan read the directory. It cannot
 * when the mtime is older than SCAN_DIRTY_NS, or older than this process's last scan by
 * more than a tick: any later change would have given a newer mtime. A tick is taken as
 * 20 ms when the file system keeps sub-second times (Linux stamps files from its coarse
 * clock, which lags by at most one jiffy: 10 ms at HZ=100), else as SCAN_DIRTY_NS (FAT
 * keeps 2 s). A scan that moved files itself changed the mtimes, so the next sync reads
 * the directories once more, unless it comes 2 s later.
 */
static bool mtime_settled(const struct mbox_folder *f, int64_t mtime_ns, int64_t now)
{
	if (now - mtime_ns >= SCAN_DIRTY_NS)
		return true;
	int64_t tick = mtime_ns % 1000000000LL != 0 ? 20000000LL : SCAN_DIRTY_NS;
	return f->scan_start_ns != 0 && mtime_ns < f->scan_start_ns - tick;
}

static bool scan_needed(struct store_mailbox *box, int64_t cur_ns, int64_t new_ns)
{
	int64_t now = now_ns();
	return box->f->force_scan || cur_ns != box->f->st.hdr.cur_mtime_ns ||
	       new_ns != box->f->st.hdr.new_mtime_ns || !mtime_settled(box->f, cur_ns, now) ||
	       !mtime_settled(box->f, new_ns, now);
}

/*
 * Records the directory mtimes a scan saw. An mtime still inside the dirty window is
 * recorded as 0: a change made after our readdir but within the same kernel clock tick
 * (a rename by a process that then died before logging it) leaves the mtime as it was,
 * and once the window has passed nobody would look again. With 0 the first sync after
 * the window scans once more and records mtimes that are safe to trust. An mtime older
 * than this scan's start by more than a tick (mtime_settled) is safe at once: a later
 * change would have given a newer one.
 */
static enum store_error log_dates(struct store_mailbox *box, int64_t cur_ns, int64_t new_ns)
{
	/* box->f->scan_start_ns is the start of the scan that read the directories: an mtime
	 * older than it by more than a tick cannot hide a change made after the readdir. */
	int64_t now = now_ns();
	if (!mtime_settled(box->f, cur_ns, now))
		cur_ns = 0;
	if (!mtime_settled(box->f, new_ns, now))
		new_ns = 0;
	if (cur_ns == box->f->st.hdr.cur_mtime_ns && new_ns == box->f->st.hdr.new_mtime_ns)
		return STORE_OK;
	struct buf p;
	buf_init(&p, 0);
	buf_append_char(&p, INDEX_REC_DATES);
	index_put_u64(&p, (uint64_t)cur_ns);
	index_put_u64(&p, (uint64_t)new_ns);
	enum store_error e = mbox_log(box, &p);
	buf_free(&p);
	return e;
}

static enum store_error scan_finish(struct scan *sc, const struct uidlist *ul)
{
	struct store_mailbox *box = sc->box;
	enum store_error e = STORE_OK;
	size_t known = box->f->st.count;
	/* Indexed but no longer on disk: expunged by someone else. */
	for (size_t i = 0; i < known && e == STORE_OK; i++) {
		struct mbox_msg *m = box->f->st.msgs[i];
		if (!sc->seen[i] && !m->m.expunged)
			e = mbox_log_expunge(box, m->m.uid);
	}
	for (size_t i = 0; i < sc->nfiles; i++) {
		uint32_t uid = ul != NULL ? uidlist_lookup(ul, sc->files[i].name) : 0;
		sc->files[i].uid = uid >= box->f->st.hdr.uidnext ? uid : 0;
		arrival_key(sc->files[i].name, sc->files[i].order);
	}
	if (sc->nfiles > 1)
		qsort(sc->files, sc->nfiles, sizeof(*sc->files), cmp_new_files);
	struct add_batch b = {.uidnext = box->f->st.hdr.uidnext};
	buf_init(&b.frames, 0);
	buf_init(&b.payload, 0);
	for (size_t i = 0; i < sc->nfiles && e == STORE_OK; i++) {
		if (sc->files[i].uid != 0 && sc->files[i].uid < b.uidnext)
			sc->files[i].uid = 0; /* a duplicate UID in the uidlist */
		/* Files Dovecot never saw come after its next UID. */
		if (sc->files[i].uid == 0 && ul != NULL && ul->uidnext > b.uidnext)
			sc->files[i].uid = ul->uidnext;
		e = scan_add_new(box, &sc->files[i], &b);
	}
	if (e == STORE_OK)
		e = batch_flush(box, &b);
	buf_free(&b.frames);
	buf_free(&b.payload);
	if (e == STORE_OK && sc->nfiles > 0)
		e = mbox_log_sync(box); /* UIDs are promises: make them durable */
	return e;
}

enum store_error mbox_scan(struct store_mailbox *box, bool force)
{
	int64_t cur_ns, new_ns;
	dir_mtime(box->f->cur_fd, &cur_ns);
	dir_mtime(box->f->new_fd, &new_ns);
	if (!force && !scan_needed(box, cur_ns, new_ns))
		return STORE_OK;
	/* Taken over: UIDs are given from it by this scan only. */
	struct uidlist ul = box->f->import;
	bool have_ul = ul.uidvalidity != 0;
	memset(&box->f->import, 0, sizeof(box->f->import));
	struct scan sc = {.box = box};
	int64_t start_ns = now_ns();
	table_build(&sc.table, &box->f->st);
	sc.seen = xcalloc(box->f->st.count + 1, sizeof(bool));
	enum store_error e = STORE_OK;
	if (scan_dir(&sc, box->f->new_fd, true) < 0 || scan_dir(&sc, box->f->cur_fd, false) < 0)
		e = STORE_ETEMP;
	free(sc.table.slots);
	if (e == STORE_OK)
		e = scan_finish(&sc, have_ul ? &ul : NULL);
	for (size_t i = 0; i < sc.nfiles; i++)
		free(sc.files[i].name);
	free(sc.files);
	free(sc.seen);
	if (have_ul)
		uidlist_free(&ul);
	if (e == STORE_OK) {
		dir_mtime(box->f->cur_fd, &cur_ns);
		dir_mtime(box->f->new_fd, &new_ns);
		box->f->scan_start_ns = start_ns;
		e = log_dates(box, cur_ns, new_ns);
		box->f->force_scan = false;
	}
	return e;
}

enum store_error mbox_log_expunge(struct store_mailbox *box, uint32_t uid)
{
	box->f->expunged_since_compact = true;
	struct buf p;
	buf_init(&p, 0);
	buf_append_char(&p, INDEX_REC_EXPUNGE);
	index_put_u32(&p, uid);
	index_put_u64(&p, ++box->f->st.hdr.highestmodseq);
	enum store_error e = mbox_log(box, &p);
	buf_free(&p);
	return e;
}

enum store_error mbox_add(struct store_mailbox *box, struct index_rec *rec)
{
	if (rec->uid == 0)
		rec->uid = box->f->st.hdr.uidnext;
	rec->modseq = ++box->f->st.hdr.highestmodseq;
	struct buf p;
	buf_init(&p, 0);
	index_rec_encode(&p, rec);
	enum store_error e = mbox_log(box, &p);
	buf_free(&p);
	return e;
}
