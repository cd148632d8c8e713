/*
 * The outbound queue's files (queue.h): writing a message durably, loading and validating
 * it, and the small per-message state, hold and flush files.
 */
#include "queue.h"
#include "queue_private.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "store/atomic_file.h"

/* The body size is written as a fixed-width field and patched in at commit. */
#define QFILE_SIZE_DIGITS 20

struct queue_writer {
	struct queue *q;
	char qid[QUEUE_ID_LEN + 1];
	int fd;
	uint64_t size_field_offset;
	uint64_t body_size;
};

static char *errno_error(const char *what, const char *name)
{
	return xasprintf("%s %s: %s", what, name, strerror(errno));
}

static int open_subdir(int dir_fd, const char *name)
{
	if (mkdirat(dir_fd, name, 0700) < 0 && errno != EEXIST)
		return -1;
	return openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static void remove_tmp_leftovers(struct queue *q)
{
	int fd = dup(q->tmp_fd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		/* Only a crash leaves files here; they were never acknowledged. */
		if (unlinkat(q->tmp_fd, de->d_name, 0) == 0)
			log_info("queue: removed incomplete file tmp/%s", de->d_name);
	}
	closedir(d);
}

static int open_existing(int dir_fd, const char *name)
{
	return openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

int queue_open_existing(const char *dir, struct queue **q_r, char **error_r)
{
	struct queue *q = xcalloc(1, sizeof(*q));
	q->dir = xstrdup(dir);
	q->tmp_fd = q->msg_fd = q->state_fd = q->hold_fd = q->corrupt_fd = -1;
	q->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (q->dir_fd < 0 || (q->tmp_fd = open_existing(q->dir_fd, "tmp")) < 0 ||
	    (q->msg_fd = open_existing(q->dir_fd, "msg")) < 0 ||
	    (q->state_fd = open_existing(q->dir_fd, "state")) < 0 ||
	    (q->hold_fd = open_existing(q->dir_fd, "hold")) < 0 ||
	    (q->corrupt_fd = open_existing(q->dir_fd, "corrupt")) < 0) {
		int e = errno;
		*error_r = errno_error("open queue directory", dir);
		queue_close(&q);
		errno = e;
		return -1;
	}
	q->readonly = true;
	*q_r = q;
	return 0;
}

int queue_open(const char *dir, struct queue **q_r, char **error_r)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		*error_r = errno_error("mkdir", dir);
		return -1;
	}
	struct queue *q = xcalloc(1, sizeof(*q));
	q->dir = xstrdup(dir);
	q->tmp_fd = q->msg_fd = q->state_fd = q->hold_fd = q->corrupt_fd = -1;
	q->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (q->dir_fd < 0 || (q->tmp_fd = open_subdir(q->dir_fd, "tmp")) < 0 ||
	    (q->msg_fd = open_subdir(q->dir_fd, "msg")) < 0 ||
	    (q->state_fd = open_subdir(q->dir_fd, "state")) < 0 ||
	    (q->hold_fd = open_subdir(q->dir_fd, "hold")) < 0 ||
	    (q->corrupt_fd = open_subdir(q->dir_fd, "corrupt")) < 0) {
		*error_r = errno_error("open queue directory", dir);
		queue_close(&q);
		return -1;
	}
	remove_tmp_leftovers(q);
	*q_r = q;
	return 0;
}

void queue_close(struct queue **qp)
{
	struct queue *q = *qp;
	if (q == NULL)
		return;
	int fds[] = {q->dir_fd, q->tmp_fd, q->msg_fd, q->state_fd, q->hold_fd, q->corrupt_fd};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(q->dir);
	free(q);
	*qp = NULL;
}

int queue_chown(struct queue *q, unsigned uid, unsigned gid, char **error_r)
{
	int fds[] = {q->dir_fd, q->tmp_fd, q->msg_fd, q->state_fd, q->hold_fd, q->corrupt_fd};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++) {
		if (fchown(fds[i], (uid_t)uid, (gid_t)gid) < 0) {
			*error_r = errno_error("chown queue directory in", q->dir);
			return -1;
		}
	}
	return 0;
}

const char *queue_dir(const struct queue *q)
{
	return q->dir;
}

bool queue_id_valid(const char *qid)
{
	if (qid == NULL || strlen(qid) != QUEUE_ID_LEN)
		return false;
	for (const char *p = qid; *p != '\0'; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'F')))
			return false;
	return true;
}

/* Time (seconds, microseconds) and a per-process counter: unique within this queue as
 * long as one process writes it; the O_EXCL create catches any collision anyway. */
static void new_qid(struct queue *q, char *out)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	unsigned c = (q->counter++ + (unsigned)getpid()) & 0xfff;
	snprintf(out, QUEUE_ID_LEN + 1, "%08" PRIX32 "%05" PRIX32 "%03X", (uint32_t)tv.tv_sec,
	         (uint32_t)tv.tv_usec & 0xfffff, c);
}

void queue_xtext_encode(struct buf *out, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 33 || *p > 126 || *p == '+' || *p == '=') {
			char e[3] = {'+', hex[*p >> 4], hex[*p & 15]};
			buf_append(out, e, 3);
		} else {
			buf_append_char(out, (char)*p);
		}
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *queue_xtext_decode(const char *s, size_t len)
{
	char *out = xmalloc(len + 1);
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '+') {
			int h, l;
			if (i + 2 >= len || (h = hexval(s[i + 1])) < 0 ||
			    (l = hexval(s[i + 2])) < 0 || (h == 0 && l == 0)) {
				free(out);
				return NULL;
			}
			out[o++] = (char)(h * 16 + l);
			i += 2;
		} else if (c < 33 || c > 126 || c == '=') {
			free(out);
			return NULL;
		} else {
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return out;
}

void queue_envelope_add_rcpt(struct queue_envelope *env, const char *address, const char *orcpt,
                             unsigned notify)
{
	env->rcpts = xreallocarray(env->rcpts, env->n_rcpts + 1, sizeof(*env->rcpts));
	struct queue_rcpt *r = &env->rcpts[env->n_rcpts++];
	memset(r, 0, sizeof(*r));
	r->address = xstrdup(address);
	r->orcpt = orcpt != NULL ? xstrdup(orcpt) : NULL;
	r->notify = notify;
}

void queue_envelope_free(struct queue_envelope *env)
{
	for (size_t i = 0; i < env->n_rcpts; i++) {
		free(env->rcpts[i].address);
		free(env->rcpts[i].orcpt);
		free(env->rcpts[i].dsn);
		free(env->rcpts[i].diag);
	}
	free(env->rcpts);
	free(env->sender);
	free(env->envid);
	memset(env, 0, sizeof(*env));
}

static void put_field(struct buf *b, const char *key, const char *value)
{
	buf_append_str(b, key);
	buf_append_char(b, ' ');
	if (value == NULL || value[0] == '\0')
		buf_append_char(b, '-');
	else
		queue_xtext_encode(b, value);
	buf_append_char(b, '\n');
}

static const char *ret_names[] = {"-", "FULL", "HDRS"};

/* The header; *size_offset_r gets where the fixed-width size digits start. */
static void format_header(struct buf *b, const char *qid, const struct queue_envelope *env,
                          size_t *size_offset_r)
{
	buf_append_str(b, "TERNQ 1\n");
	buf_printf(b, "qid %s\n", qid);
	buf_printf(b, "arrival %" PRIu64 "\n", env->arrival_ms);
	put_field(b, "sender", env->sender);
	put_field(b, "envid", env->envid);
	buf_printf(b, "ret %s\n", ret_names[env->ret]);
	buf_printf(b, "flags %c%c%c\n", env->smtputf8 ? 'U' : '-', env->body_8bit ? '8' : '-',
	           env->is_dsn ? 'D' : '-');
	for (size_t i = 0; i < env->n_rcpts; i++) {
		const struct queue_rcpt *r = &env->rcpts[i];
		buf_printf(b, "rcpt %u ", r->notify);
		queue_xtext_encode(b, r->address);
		buf_append_char(b, ' ');
		if (r->orcpt != NULL && r->orcpt[0] != '\0')
			queue_xtext_encode(b, r->orcpt);
		else
			buf_append_char(b, '-');
		buf_append_char(b, '\n');
	}
	buf_append_str(b, "size ");
	*size_offset_r = b->len;
	buf_printf(b, "%0*d\nend\n", QFILE_SIZE_DIGITS, 0);
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int queue_writer_begin(struct queue *q, const struct queue_envelope *env, struct queue_writer **w_r,
                       char **error_r)
{
	if (env->n_rcpts == 0 || env->n_rcpts > QUEUE_MAX_RCPTS) {
		*error_r = xasprintf("bad recipient count %zu", env->n_rcpts);
		return -1;
	}
	struct queue_writer *w = xcalloc(1, sizeof(*w));
	w->q = q;
	w->fd = -1;
	for (int attempt = 0; attempt < 100 && w->fd < 0; attempt++) {
		new_qid(q, w->qid);
		w->fd = openat(q->tmp_fd, w->qid, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (w->fd < 0 && errno != EEXIST)
			break;
	}
	if (w->fd < 0) {
		*error_r = errno_error("create queue file", "tmp/");
		free(w);
		return -1;
	}
	struct buf b;
	buf_init(&b, QUEUE_MAX_HEADER);
	size_t off = 0;
	format_header(&b, w->qid, env, &off);
	if (b.len >= QUEUE_MAX_HEADER - 1) {
		*error_r = xstrdup("envelope too large");
		buf_free(&b);
		queue_writer_abort(w);
		return -1;
	}
	w->size_field_offset = off;
	int r = write_all(w->fd, b.data, b.len);
	buf_free(&b);
	if (r < 0) {
		*error_r = errno_error("write queue file", w->qid);
		queue_writer_abort(w);
		return -1;
	}
	*w_r = w;
	return 0;
}

int queue_writer_write(struct queue_writer *w, const void *data, size_t len, char **error_r)
{
	if (write_all(w->fd, data, len) < 0) {
		*error_r = errno_error("write queue file", w->qid);
		return -1;
	}
	w->body_size += len;
	return 0;
}

void queue_writer_abort(struct queue_writer *w)
{
	if (w == NULL)
		return;
	if (w->fd >= 0) {
		close(w->fd);
		unlinkat(w->q->tmp_fd, w->qid, 0);
	}
	free(w);
}

int queue_writer_commit(struct queue_writer *w, char *qid_r, char **error_r)
{
	char digits[QFILE_SIZE_DIGITS + 1];
	snprintf(digits, sizeof(digits), "%0*" PRIu64, QFILE_SIZE_DIGITS, w->body_size);
	ssize_t n = pwrite(w->fd, digits, QFILE_SIZE_DIGITS, (off_t)w->size_field_offset);
	if (n != QFILE_SIZE_DIGITS || fsync(w->fd) < 0) {
		*error_r = errno_error("write/fsync queue file", w->qid);
		queue_writer_abort(w);
		return -1;
	}
	int fd = w->fd;
	w->fd = -1;
	if (close(fd) < 0) {
		*error_r = errno_error("close queue file", w->qid);
		unlinkat(w->q->tmp_fd, w->qid, 0);
		free(w);
		return -1;
	}
	/* RFC-less but essential: rename into msg/ only once the bytes are on disk, then make
	 * the rename itself durable before anyone answers 250. */
	if (renameat(w->q->tmp_fd, w->qid, w->q->msg_fd, w->qid) < 0 || fsync(w->q->msg_fd) < 0) {
		*error_r = errno_error("commit queue file", w->qid);
		unlinkat(w->q->tmp_fd, w->qid, 0);
		free(w);
		return -1;
	}
	memcpy(qid_r, w->qid, QUEUE_ID_LEN + 1);
	free(w);
	return 0;
}

int queue_add_fd(struct queue *q, const struct queue_envelope *env, int fd, uint64_t len,
                 char *qid_r, char **error_r)
{
	return queue_add_fd_at(q, env, fd, 0, len, qid_r, error_r);
}

int queue_add_fd_at(struct queue *q, const struct queue_envelope *env, int fd, uint64_t offset,
                    uint64_t len, char *qid_r, char **error_r)
{
	struct queue_writer *w;
	if (queue_writer_begin(q, env, &w, error_r) < 0)
		return -1;
	char *chunk = xmalloc(65536);
	uint64_t off = 0;
	while (off < len) {
		size_t want = len - off > 65536 ? 65536 : (size_t)(len - off);
		ssize_t n = pread(fd, chunk, want, (off_t)(offset + off));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*error_r = n < 0 ? errno_error("read spool for", "queue")
			                 : xstrdup("spool shorter than announced");
			free(chunk);
			queue_writer_abort(w);
			return -1;
		}
		if (queue_writer_write(w, chunk, (size_t)n, error_r) < 0) {
			free(chunk);
			queue_writer_abort(w);
			return -1;
		}
		off += (uint64_t)n;
	}
	free(chunk);
	return queue_writer_commit(w, qid_r, error_r);
}
