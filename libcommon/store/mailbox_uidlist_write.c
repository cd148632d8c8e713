/*
 * Keeping a migrated folder's dovecot-uidlist current, so that switching back to Dovecot
 * keeps UIDVALIDITY and UIDs: without it Dovecot would find its old list, give the
 * messages tern added since the switch UIDs of its own, and a client's cache could then
 * show one message's contents under another's UID (the UIDVALIDITY being the same).
 *
 * Only a folder that has the file is kept (tern never creates one). New UIDs are appended
 * as "<uid> :<file name>" lines, as Dovecot appends them; the header is rewritten only
 * with the whole file, when UIDVALIDITY changed (a rebuild) or the file is ahead of the
 * index. Lines of expunged messages stay until then: Dovecot drops a line whose file is
 * gone. Dovecot and tern are not run on one folder at the same time (see docs/store.md).
 */
#include "store/mailbox_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "store/atomic_file.h"

#define UIDLIST_FILE "dovecot-uidlist"
/* The most of its head or tail read to find the header or the last line. */
#define UIDLIST_PEEK 4096

/* What the file says: its first line, its UIDVALIDITY, and the next UID it would give
 * (the larger of the header's N and the last line's UID + 1). */
struct uidlist_state {
	char header[UIDLIST_PEEK + 1];
	uint32_t uidvalidity, next;
};

/* 0 when the file is a version-3 list (s filled), -1 when it is not or cannot be read
 * (s->header then holds what could be read of the first line, maybe nothing). */
static int uidlist_peek(int fd, struct uidlist_state *s)
{
	ssize_t n = pread(fd, s->header, UIDLIST_PEEK, 0);
	s->header[n > 0 ? n : 0] = '\0';
	s->header[strcspn(s->header, "\n")] = '\0';
	int version = 0;
	struct stat sb;
	if (!uidlist_parse_header(s->header, &s->uidvalidity, &s->next, &version) || version != 3 ||
	    fstat(fd, &sb) < 0)
		return -1;
	char tail[UIDLIST_PEEK + 1];
	off_t from = sb.st_size > UIDLIST_PEEK ? sb.st_size - UIDLIST_PEEK : 0;
	n = pread(fd, tail, UIDLIST_PEEK, from);
	if (n < 0)
		return -1;
	tail[n] = '\0';
	while (n > 0 && tail[n - 1] == '\n')
		tail[--n] = '\0';
	const char *last = strrchr(tail, '\n');
	last = last != NULL ? last + 1 : (from == 0 ? NULL : tail);
	unsigned long uid = last != NULL ? strtoul(last, NULL, 10) : 0;
	if (uid >= s->next && uid < UINT32_MAX)
		s->next = (uint32_t)uid + 1;
	return 0;
}

/* Appends the line of every message of st with a UID from first on to b. */
static void lines_from(struct buf *b, const struct index_state *st, uint32_t first)
{
	size_t i = st->count;
	while (i > 0 && st->msgs[i - 1]->m.uid >= first)
		i--;
	for (; i < st->count; i++) {
		const struct mbox_msg *m = st->msgs[i];
		const char *name = mbox_msg_name(m);
		if (!m->m.expunged && *name != '\0')
			buf_printf(b, "%u :%s\n", m->m.uid, name);
	}
}

/* Rewrites the whole file from st, keeping the fields of the old header (in header,
 * changed) other than V and N: Dovecot's mailbox GUID. */
static int uidlist_rewrite(int dir_fd, char *header, const struct index_state *st)
{
	struct buf b;
	buf_init(&b, 0);
	buf_printf(&b, "3 V%u N%u", st->hdr.uidvalidity, st->hdr.uidnext);
	for (char *save = NULL, *tok = strtok_r(header, " ", &save); tok != NULL;
	     tok = strtok_r(NULL, " ", &save)) {
		if (tok != header && tok[0] != 'V' && tok[0] != 'N')
			buf_printf(&b, " %s", tok);
	}
	buf_append_char(&b, '\n');
	lines_from(&b, st, 1);
	int ret = atomic_file_write(dir_fd, UIDLIST_FILE, b.data, b.len);
	buf_free(&b);
	return ret;
}

/* Appends the lines of UIDs from first on, durably (the UIDs were promised: the log
 * records giving them are synced too); a failed write is cut off again, so that no
 * half line is left for the next append to run into. -1 on failure, -2 when even the
 * cut failed (the file must be rewritten). */
static int uidlist_append(int fd, const struct index_state *st, uint32_t first)
{
	struct buf b;
	buf_init(&b, 0);
	lines_from(&b, st, first);
	int ret = 0;
	if (b.len > 0) {
		off_t end = lseek(fd, 0, SEEK_END);
		ret = end >= 0 && pwrite(fd, b.data, b.len, end) == (ssize_t)b.len &&
		              fdatasync(fd) == 0
		          ? 0
		          : -1;
		if (ret < 0 && end >= 0 && ftruncate(fd, end) < 0)
			ret = -2;
	}
	buf_free(&b);
	return ret;
}

void uidlist_keep(struct mbox_folder *f)
{
	const struct index_state *st = &f->st;
	if (f->uidlist_next == UIDLIST_ABSENT || f->import.uidvalidity != 0 ||
	    st->hdr.uidvalidity == 0 ||
	    (f->uidlist_validity == st->hdr.uidvalidity && f->uidlist_next == st->hdr.uidnext))
		return;
	int fd = openat(f->dir_fd, UIDLIST_FILE, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			f->uidlist_next = UIDLIST_ABSENT;
		return;
	}
	struct uidlist_state s;
	int ret = uidlist_peek(fd, &s);
	if (ret == 0 && s.uidvalidity == st->hdr.uidvalidity && s.next <= st->hdr.uidnext)
		ret = uidlist_append(fd, st, s.next);
	else
		ret = -2;
	if (ret == -2)
		ret = uidlist_rewrite(f->dir_fd, s.header, st);
	if (close(fd) < 0)
		ret = -1;
	if (ret == 0) {
		f->uidlist_validity = st->hdr.uidvalidity;
		f->uidlist_next = st->hdr.uidnext;
	}
}
