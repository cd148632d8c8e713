/*
 * Reading the outbound queue (queue.h): validating and loading a message file, the
 * per-message state file, hold markers, listing, removal and the flush trigger.
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
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "store/atomic_file.h"

#define STATE_MAX (QUEUE_MAX_RCPTS * 1200u)

/* Splits the next '\n'-terminated line off [*p, end). Returns NULL when none is left. */
static char *next_line(char **p, char *end)
{
	char *nl = memchr(*p, '\n', (size_t)(end - *p));
	if (nl == NULL)
		return NULL;
	char *line = *p;
	*nl = '\0';
	*p = nl + 1;
	return line;
}

/* "-" is the empty / absent value. */
static int decode_field(const char *v, char **out_r)
{
	if (strcmp(v, "-") == 0) {
		*out_r = NULL;
		return 0;
	}
	*out_r = queue_xtext_decode(v, strlen(v));
	return *out_r != NULL ? 0 : -1;
}

static int parse_u64(const char *s, uint64_t *v_r)
{
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*v_r = v;
	return 0;
}

static int parse_rcpt(struct queue_envelope *env, char *v)
{
	char *sp1 = strchr(v, ' ');
	char *sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
	if (sp2 == NULL || strchr(sp2 + 1, ' ') != NULL || env->n_rcpts >= QUEUE_MAX_RCPTS)
		return -1;
	*sp1 = *sp2 = '\0';
	uint64_t notify;
	char *addr, *orcpt;
	if (parse_u64(v, &notify) < 0 || notify > 15 || decode_field(sp1 + 1, &addr) < 0 ||
	    addr == NULL)
		return -1;
	if (decode_field(sp2 + 1, &orcpt) < 0) {
		free(addr);
		return -1;
	}
	queue_envelope_add_rcpt(env, addr, orcpt, (unsigned)notify);
	free(addr);
	free(orcpt);
	return 0;
}

/* Parses the header in [p, end); fills msg and *header_len_r. */
static int parse_header(char *start, char *end, struct queue_msg *msg, uint64_t *header_len_r)
{
	char *p = start;
	char *line = next_line(&p, end);
	bool have_size = false, have_sender = false;
	if (line == NULL || strcmp(line, "TERNQ 1") != 0)
		return -1;
	while ((line = next_line(&p, end)) != NULL) {
		if (strcmp(line, "end") == 0) {
			*header_len_r = (uint64_t)(p - start);
			return have_size && have_sender && msg->env.n_rcpts > 0 ? 0 : -1;
		}
		char *v = strchr(line, ' ');
		if (v == NULL)
			return -1;
		*v++ = '\0';
		int r = 0;
		if (strcmp(line, "qid") == 0) {
			r = strcmp(v, msg->qid) == 0 ? 0 : -1;
		} else if (strcmp(line, "arrival") == 0) {
			r = parse_u64(v, &msg->env.arrival_ms);
		} else if (strcmp(line, "sender") == 0 && !have_sender) {
			r = decode_field(v, &msg->env.sender);
			if (r == 0 && msg->env.sender == NULL)
				msg->env.sender = xstrdup("");
			have_sender = true;
		} else if (strcmp(line, "envid") == 0 && msg->env.envid == NULL) {
			r = decode_field(v, &msg->env.envid);
		} else if (strcmp(line, "ret") == 0) {
			msg->env.ret = strcmp(v, "FULL") == 0   ? QUEUE_RET_FULL
			               : strcmp(v, "HDRS") == 0 ? QUEUE_RET_HDRS
			                                        : QUEUE_RET_DEFAULT;
			r = msg->env.ret == QUEUE_RET_DEFAULT && strcmp(v, "-") != 0 ? -1 : 0;
		} else if (strcmp(line, "flags") == 0) {
			if (strlen(v) != 3)
				return -1;
			msg->env.smtputf8 = v[0] == 'U';
			msg->env.body_8bit = v[1] == '8';
			msg->env.is_dsn = v[2] == 'D';
		} else if (strcmp(line, "rcpt") == 0) {
			r = parse_rcpt(&msg->env, v);
		} else if (strcmp(line, "size") == 0) {
			r = parse_u64(v, &msg->body_size);
			have_size = true;
		} else {
			return -1;
		}
		if (r < 0)
			return -1;
	}
	return -1;
}

static void quarantine(struct queue *q, const char *qid, const char *why)
{
	if (q->readonly)
		return;
	log_warn("queue: %s: invalid queue file (%s), moved to corrupt/", qid, why);
	if (renameat(q->msg_fd, qid, q->corrupt_fd, qid) == 0)
		fsync(q->msg_fd);
	unlinkat(q->state_fd, qid, 0);
}

static int parse_state_line(struct queue_msg *msg, char *line)
{
	/* r <index> <P|S|B> <tries> <next_try_ms> <dsn|-> <diag|-> */
	char *f[7];
	size_t n = 0;
	for (char *t = strtok(line, " "); t != NULL && n < 7; t = strtok(NULL, " "))
		f[n++] = t;
	uint64_t idx, tries, next;
	if (n != 7 || strcmp(f[0], "r") != 0 || parse_u64(f[1], &idx) < 0 ||
	    idx >= msg->env.n_rcpts || parse_u64(f[3], &tries) < 0 || tries > 1000000 ||
	    parse_u64(f[4], &next) < 0)
		return -1;
	struct queue_rcpt *r = &msg->env.rcpts[idx];
	if (strcmp(f[2], "P") == 0)
		r->state = QUEUE_RCPT_PENDING;
	else if (strcmp(f[2], "S") == 0)
		r->state = QUEUE_RCPT_SENT;
	else if (strcmp(f[2], "B") == 0)
		r->state = QUEUE_RCPT_BOUNCED;
	else
		return -1;
	r->tries = (unsigned)tries;
	r->next_try_ms = next;
	free(r->dsn);
	free(r->diag);
	if (decode_field(f[5], &r->dsn) < 0 || decode_field(f[6], &r->diag) < 0)
		return -1;
	return 0;
}

static int load_state(struct queue *q, struct queue_msg *msg)
{
	struct buf b;
	buf_init(&b, STATE_MAX);
	if (atomic_file_read(q->state_fd, msg->qid, &b) < 0) {
		buf_free(&b);
		return -1;
	}
	int r = 0;
	if (b.len > 0) {
		char *p = b.data, *end = b.data + b.len, *line = next_line(&p, end);
		if (line == NULL || strcmp(line, "TERNS 1") != 0)
			r = -1;
		while (r == 0 && (line = next_line(&p, end)) != NULL) {
			if (strcmp(line, "warned") == 0)
				msg->warned = true;
			else
				r = parse_state_line(msg, line);
		}
	}
	buf_free(&b);
	return r;
}

int queue_load(struct queue *q, const char *qid, struct queue_msg **msg_r, char **error_r)
{
	if (!queue_id_valid(qid)) {
		*error_r = xstrdup("invalid queue id");
		return -1;
	}
	int fd = openat(q->msg_fd, qid, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		*error_r = xasprintf("open %s: %s", qid, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	size_t want = st.st_size < (off_t)QUEUE_MAX_HEADER ? (size_t)st.st_size : QUEUE_MAX_HEADER;
	char *head = xmalloc(want + 1);
	ssize_t got = pread(fd, head, want, 0);
	close(fd);
	struct queue_msg *msg = xcalloc(1, sizeof(*msg));
	memcpy(msg->qid, qid, QUEUE_ID_LEN + 1);
	uint64_t header_len = 0;
	const char *why = NULL;
	if (got != (ssize_t)want)
		why = "short read";
	else if (parse_header(head, head + want, msg, &header_len) < 0)
		why = "bad header";
	else if (header_len + msg->body_size != (uint64_t)st.st_size)
		why = "length does not match the header (torn file)";
	free(head);
	if (why == NULL && load_state(q, msg) < 0)
		why = "bad state file";
	if (why != NULL) {
		quarantine(q, qid, why);
		*error_r = xasprintf("%s: %s", qid, why);
		queue_msg_free(&msg);
		return -2;
	}
	msg->body_offset = header_len;
	msg->hold = queue_is_held(q, qid);
	*msg_r = msg;
	return 0;
}

void queue_msg_free(struct queue_msg **msgp)
{
	if (*msgp == NULL)
		return;
	queue_envelope_free(&(*msgp)->env);
	free(*msgp);
	*msgp = NULL;
}

int queue_open_body(struct queue *q, const struct queue_msg *msg, char **error_r)
{
	int fd = openat(q->msg_fd, msg->qid, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		*error_r = xasprintf("open %s: %s", msg->qid, strerror(errno));
	return fd;
}

static void put_opt(struct buf *b, const char *v)
{
	buf_append_char(b, ' ');
	if (v == NULL || v[0] == '\0')
		buf_append_char(b, '-');
	else
		queue_xtext_encode(b, v);
}

int queue_save_state(struct queue *q, const struct queue_msg *msg, char **error_r)
{
	static const char states[] = {'P', 'S', 'B'};
	struct buf b;
	buf_init(&b, 0);
	buf_append_str(&b, "TERNS 1\n");
	if (msg->warned)
		buf_append_str(&b, "warned\n");
	for (size_t i = 0; i < msg->env.n_rcpts; i++) {
		const struct queue_rcpt *r = &msg->env.rcpts[i];
		buf_printf(&b, "r %zu %c %u %" PRIu64, i, states[r->state], r->tries,
		           r->next_try_ms);
		put_opt(&b, r->dsn);
		put_opt(&b, r->diag);
		buf_append_char(&b, '\n');
	}
	int r = atomic_file_write(q->state_fd, msg->qid, b.data, b.len);
	if (r < 0)
		*error_r = xasprintf("write state %s: %s", msg->qid, strerror(errno));
	buf_free(&b);
	return r;
}

bool queue_msg_done(const struct queue_msg *msg)
{
	for (size_t i = 0; i < msg->env.n_rcpts; i++)
		if (msg->env.rcpts[i].state == QUEUE_RCPT_PENDING)
			return false;
	return true;
}

int queue_remove(struct queue *q, const char *qid, char **error_r)
{
	if (!queue_id_valid(qid)) {
		*error_r = xstrdup("invalid queue id");
		return -1;
	}
	/* The message file goes first: without it the state file is meaningless. */
	if (unlinkat(q->msg_fd, qid, 0) < 0) {
		*error_r = xasprintf("remove %s: %s", qid, strerror(errno));
		return -1;
	}
	unlinkat(q->state_fd, qid, 0);
	unlinkat(q->hold_fd, qid, 0);
	if (fsync(q->msg_fd) < 0) {
		*error_r = xasprintf("fsync msg/: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int queue_set_hold(struct queue *q, const char *qid, bool hold, char **error_r)
{
	if (!queue_id_valid(qid)) {
		*error_r = xstrdup("invalid queue id");
		return -1;
	}
	struct stat st;
	if (fstatat(q->msg_fd, qid, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		*error_r = xasprintf("%s: no such message", qid);
		return -1;
	}
	int r;
	if (hold) {
		int fd = openat(q->hold_fd, qid, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		r = fd < 0 ? -1 : close(fd);
	} else {
		r = unlinkat(q->hold_fd, qid, 0) < 0 && errno != ENOENT ? -1 : 0;
	}
	if (r == 0)
		r = fsync(q->hold_fd);
	if (r < 0)
		*error_r = xasprintf("%s %s: %s", hold ? "hold" : "release", qid, strerror(errno));
	return r;
}

bool queue_exists(struct queue *q, const char *qid)
{
	struct stat st;
	return queue_id_valid(qid) && fstatat(q->msg_fd, qid, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

bool queue_is_held(struct queue *q, const char *qid)
{
	struct stat st;
	return queue_id_valid(qid) && fstatat(q->hold_fd, qid, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int queue_list_ids(struct queue *q, char ***ids_r, size_t *n_r, char **error_r)
{
	int fd = dup(q->msg_fd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (d == NULL) {
		*error_r = xasprintf("list %s/msg: %s", q->dir, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	rewinddir(d);
	char **ids = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!queue_id_valid(de->d_name))
			continue;
		ids = xreallocarray(ids, n + 1, sizeof(*ids));
		ids[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (n > 1)
		qsort(ids, n, sizeof(*ids), cmp_str);
	*ids_r = ids;
	*n_r = n;
	return 0;
}

void queue_ids_free(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

int queue_request_flush(struct queue *q, char **error_r)
{
	int fd = openat(q->dir_fd, "flush", O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		*error_r = xasprintf("flush: %s", strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

bool queue_take_flush(struct queue *q)
{
	return unlinkat(q->dir_fd, "flush", 0) == 0;
}
