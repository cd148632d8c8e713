/* The maildrop file format and its writer (queue_maildrop.h). */
#include "queue_maildrop.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "queue.h"

struct maildrop_writer {
	int dir_fd;
	int fd;
	char name[40];
};

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void maildrop_abort(struct maildrop_writer *w)
{
	if (w == NULL)
		return;
	if (w->fd >= 0) {
		close(w->fd);
		unlinkat(w->dir_fd, w->name, 0);
	}
	if (w->dir_fd >= 0)
		close(w->dir_fd);
	free(w);
}

int maildrop_begin(const char *dir, const char *sender, const char *const *rcpts, size_t n,
                   struct maildrop_writer **w_r, char **error_r)
{
	if (n == 0 || n > MAILDROP_MAX_RCPTS) {
		*error_r = xasprintf("bad recipient count %zu", n);
		return -1;
	}
	struct maildrop_writer *w = xcalloc(1, sizeof(*w));
	w->fd = -1;
	w->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dir_fd < 0) {
		*error_r = xasprintf("maildrop %s: %s", dir, strerror(errno));
		maildrop_abort(w);
		return -1;
	}
	for (int attempt = 0; attempt < 20 && w->fd < 0; attempt++) {
		unsigned char rnd[12];
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			break;
		int o = snprintf(w->name, sizeof(w->name), "t.");
		for (size_t i = 0; i < sizeof(rnd); i++)
			o += snprintf(w->name + o, sizeof(w->name) - (size_t)o, "%02x", rnd[i]);
		w->fd = openat(w->dir_fd, w->name,
		               O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (w->fd < 0 && errno != EEXIST)
			break;
	}
	if (w->fd < 0) {
		*error_r = xasprintf("maildrop %s: %s", dir, strerror(errno));
		maildrop_abort(w);
		return -1;
	}
	struct buf b;
	buf_init(&b, MAILDROP_MAX_HEADER);
	buf_append_str(&b, "TERND 1\nsender ");
	if (sender == NULL || sender[0] == '\0')
		buf_append_char(&b, '-');
	else
		queue_xtext_encode(&b, sender);
	for (size_t i = 0; i < n; i++) {
		buf_append_str(&b, "\nrcpt ");
		queue_xtext_encode(&b, rcpts[i]);
	}
	int r = buf_append_str(&b, "\nend\n");
	if (r < 0 || write_all(w->fd, b.data, b.len) < 0) {
		*error_r = r < 0 ? xstrdup("maildrop header too large")
		                 : xasprintf("maildrop write: %s", strerror(errno));
		buf_free(&b);
		maildrop_abort(w);
		return -1;
	}
	buf_free(&b);
	*w_r = w;
	return 0;
}

int maildrop_write(struct maildrop_writer *w, const void *data, size_t len, char **error_r)
{
	if (write_all(w->fd, data, len) < 0) {
		*error_r = xasprintf("maildrop write: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int maildrop_commit(struct maildrop_writer *w, char **error_r)
{
	char final[sizeof(w->name)];
	memcpy(final, w->name, sizeof(final));
	final[0] = 'm';
	/* The file must be readable by deliverd, which does not run as the writer. */
	if (fchmod(w->fd, 0644) < 0 || fsync(w->fd) < 0 || close(w->fd) < 0) {
		*error_r = xasprintf("maildrop: %s", strerror(errno));
		w->fd = -1;
		unlinkat(w->dir_fd, w->name, 0);
		maildrop_abort(w);
		return -1;
	}
	w->fd = -1;
	if (renameat(w->dir_fd, w->name, w->dir_fd, final) < 0 || fsync(w->dir_fd) < 0) {
		*error_r = xasprintf("maildrop commit: %s", strerror(errno));
		unlinkat(w->dir_fd, w->name, 0);
		maildrop_abort(w);
		return -1;
	}
	maildrop_abort(w); /* closes the directory; the file stays */
	return 0;
}

void maildrop_msg_free(struct maildrop_msg *m)
{
	free(m->sender);
	for (size_t i = 0; i < m->n_rcpts; i++)
		free(m->rcpts[i]);
	free(m->rcpts);
	memset(m, 0, sizeof(*m));
}

int maildrop_parse(int fd, struct maildrop_msg *m, char **error_r)
{
	memset(m, 0, sizeof(*m));
	char *h = xmalloc(MAILDROP_MAX_HEADER + 1);
	ssize_t n = pread(fd, h, MAILDROP_MAX_HEADER, 0);
	if (n < 0) {
		*error_r = xasprintf("read: %s", strerror(errno));
		free(h);
		return -1;
	}
	h[n] = '\0';
	const char *why = NULL;
	char *p = h, *end = h + n;
	bool have_sender = false;
	for (int line_no = 0;; line_no++) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL) {
			why = "incomplete header";
			break;
		}
		*nl = '\0';
		if (line_no == 0) {
			if (strcmp(p, "TERND 1") != 0) {
				why = "not a maildrop file";
				break;
			}
		} else if (strcmp(p, "end") == 0) {
			m->body_offset = (uint64_t)(nl + 1 - h);
			if (!have_sender || m->n_rcpts == 0)
				why = "no sender or no recipients";
			break;
		} else if (strncmp(p, "sender ", 7) == 0 && !have_sender) {
			have_sender = true;
			m->sender = strcmp(p + 7, "-") == 0
			                ? xstrdup("")
			                : queue_xtext_decode(p + 7, strlen(p + 7));
			if (m->sender == NULL) {
				why = "bad sender";
				break;
			}
		} else if (strncmp(p, "rcpt ", 5) == 0 && m->n_rcpts < MAILDROP_MAX_RCPTS) {
			char *r = queue_xtext_decode(p + 5, strlen(p + 5));
			if (r == NULL || r[0] == '\0') {
				free(r);
				why = "bad recipient";
				break;
			}
			m->rcpts = xreallocarray(m->rcpts, m->n_rcpts + 1, sizeof(char *));
			m->rcpts[m->n_rcpts++] = r;
		} else {
			why = "bad header line";
			break;
		}
		p = nl + 1;
	}
	free(h);
	if (why != NULL) {
		*error_r = xstrdup(why);
		maildrop_msg_free(m);
		return -1;
	}
	return 0;
}
