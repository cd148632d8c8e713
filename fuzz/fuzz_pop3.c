/*
 * Fuzz target: the POP3 command parser and session. The input is what a client sends,
 * delivered in two pieces at a point chosen by the first byte (so framing across reads is
 * covered). authd accepts user "u" with password "p" (PLAIN); the Maildir holds three
 * messages, recreated before each run because QUIT may delete them.
 */
// links: pop3d_lib
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char root[64];
static char home[96];
static bool closed;
static size_t out_bytes;
static unsigned timers;

static int io_write(void *io, const void *d, size_t len)
{
	(void)io;
	(void)d;
	if (closed)
		return -1;
	out_bytes += len;
	return 0;
}
static void io_close(void *io)
{
	(void)io;
	closed = true;
}
static int io_starttls(void *io)
{
	(void)io;
	return 0;
}
static void io_timer_start(void *io, uint64_t ms)
{
	(void)io;
	(void)ms;
	timers++;
}
static void io_timer_stop(void *io)
{
	(void)io;
}
static void (*job_work)(void *);
static void (*job_done)(void *);
static void *job_arg;
static void io_run_blocking(void *io, void (*work)(void *), void (*done)(void *), void *arg)
{
	(void)io;
	job_work = work;
	job_done = done;
	job_arg = arg;
}
static const struct pop3_io_ops io_ops = {io_write,       io_close,      io_starttls,
                                          io_timer_start, io_timer_stop, io_run_blocking};

struct auth_request {
	auth_callback_t *cb;
	void *ctx;
	enum auth_result result;
	bool pending;
};
static struct auth_request req;
static pop3_home_callback_t *home_cb;
static void *home_ctx;

static const struct auth_mech mechs[] = {{"PLAIN", true}};
static size_t a_mechs(void *a, const struct auth_mech **m)
{
	(void)a;
	*m = mechs;
	return 1;
}
static struct auth_request *a_begin(void *a, const struct auth_request_info *info,
                                    auth_callback_t *cb, void *ctx)
{
	(void)a;
	req.cb = cb;
	req.ctx = ctx;
	req.pending = true;
	/* "\0u\0p" */
	if (info->initial_response_b64 == NULL)
		req.result = AUTH_RESULT_TEMPFAIL;
	else if (strcmp(info->initial_response_b64, "AHUAcA==") == 0)
		req.result = AUTH_RESULT_OK;
	else if (info->initial_response_b64[0] == '\0')
		req.result = AUTH_RESULT_CONTINUE;
	else
		req.result = AUTH_RESULT_FAIL;
	return &req;
}
static void a_cont(struct auth_request *r, const char *resp)
{
	r->pending = true;
	r->result = strcmp(resp, "AHUAcA==") == 0 ? AUTH_RESULT_OK : AUTH_RESULT_FAIL;
}
static void a_abort(struct auth_request **r)
{
	(*r)->pending = false;
	*r = NULL;
}
static void *a_lookup(void *a, const char *user, pop3_home_callback_t *cb, void *ctx)
{
	(void)a;
	(void)user;
	home_cb = cb;
	home_ctx = ctx;
	return &home_cb;
}
static void a_lookup_abort(void **h)
{
	home_cb = NULL;
	*h = NULL;
}
static const struct pop3_auth_ops auth_ops = {a_mechs, a_begin,  a_cont,
                                              a_abort, a_lookup, a_lookup_abort};

static void put(const char *dir, const char *name, const char *content)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s/%s", home, dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		abort();
	if (write(fd, content, strlen(content)) != (ssize_t)strlen(content))
		abort();
	close(fd);
}

static void rm_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	char p[512];
	if (d == NULL) {
		unlink(path);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		rm_tree(p);
	}
	closedir(d);
	rmdir(path);
}

/* A fresh mailbox (files and the store's index) whenever the last run logged in. */
static bool dirty = true;

static void setup(void)
{
	char p[128];
	if (root[0] == '\0') {
		snprintf(root, sizeof(root), "/tmp/tern-fuzz-pop3.XXXXXX");
		if (mkdtemp(root) == NULL)
			abort();
		snprintf(home, sizeof(home), "%s/u", root);
		log_init("pop3d", LOG_TARGET_STDERR);
	}
	if (!dirty)
		return;
	rm_tree(home);
	mkdir(home, 0700);
	snprintf(p, sizeof(p), "%s/cur", home);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/new", home);
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/tmp", home);
	mkdir(p, 0700);
	put("cur", "1.M1P1.f:2,", "Subject: a\n\n.body\n");
	put("cur", "2.M2P1.f:2,S", "H: x\r\n\r\nno newline");
	put("new", "3.M3P1.f", "");
	dirty = false;
}

static void run_pending(struct pop3_session *s)
{
	for (int i = 0; i < 16; i++) {
		if (req.pending) {
			req.pending = false;
			req.cb(req.result, req.result == AUTH_RESULT_OK ? "u" : "", req.ctx);
		} else if (home_cb != NULL) {
			pop3_home_callback_t *cb = home_cb;
			home_cb = NULL;
			dirty = true;
			cb(POP3_HOME_FOUND, home, home_ctx);
		} else if (job_work != NULL) {
			void (*work)(void *) = job_work;
			job_work = NULL;
			work(job_arg);
			job_done(job_arg);
		} else if (timers > 0) {
			timers--;
			pop3_session_timer(s);
		} else {
			break;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pop3_settings set;
	struct pop3_conn_info info = {"127.0.0.1", "127.0.0.1", 1, 110, false, true, 1};
	struct buf in;
	struct pop3_session *s;
	size_t split;

	setup();
	closed = false;
	timers = 0;
	req.pending = false;
	home_cb = NULL;
	pop3_settings_defaults(&set);
	set.max_line = 64;
	set.max_auth_line = 128;
	set.tls_available = true;
	buf_init(&in, 4096);
	s = pop3_session_new(&set, &info, &io_ops, NULL, &auth_ops, NULL);
	pop3_session_start(s);
	split = size > 0 ? data[0] % (size + 1) : 0;
	for (int piece = 0; piece < 2 && !closed; piece++) {
		const uint8_t *p = piece == 0 ? data : data + split;
		size_t n = piece == 0 ? split : size - split;
		/* Feed in buffer-sized steps as the connection would. */
		while (n > 0 && !closed) {
			size_t k = buf_room(&in) < n ? buf_room(&in) : n;
			if (k == 0)
				break;
			buf_append(&in, p, k);
			p += k;
			n -= k;
			pop3_session_input(s, &in);
			run_pending(s);
			pop3_session_drain(s);
		}
	}
	pop3_session_free(&s);
	if (job_work != NULL) {
		/* Dropped while the maildrop was opening: finish it (it is released). */
		void (*work)(void *) = job_work;
		job_work = NULL;
		work(job_arg);
		job_done(job_arg);
	}
	buf_free(&in);
	return 0;
}
