/* The transcript harness (see harness.h). Not a test itself: included by tests. */
#include "harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/xalloc.h"

/* ---- the connection ---- */

static int h_io_write(void *io, const void *data, size_t len)
{
	struct harness *h = io;
	if (h->closed)
		return -1;
	(void)buf_append(&h->out, data, len);
	size_t pending = h->out.len - h->out_read;
	if (pending > h->max_pending)
		h->max_pending = pending;
	return h->pressure_at > 0 && pending > h->pressure_at ? 1 : 0;
}

static void h_io_close(void *io)
{
	((struct harness *)io)->closed = true;
}

static int h_io_starttls(void *io)
{
	struct harness *h = io;
	h->starttls_called = true;
	/* What conn_starttls does: unconsumed plaintext is discarded. */
	buf_reset(&h->in);
	return 0;
}

static void h_io_timer_start(void *io, uint64_t ms)
{
	struct harness *h = io;
	h->timer_ms = ms;
	h->timers++;
}

static void h_io_timer_stop(void *io)
{
	(void)io;
}

/* The thread pool: one job at a time, run by h_run (unless held). */
static void (*h_job_work)(void *);
static void (*h_job_done)(void *);
static void *h_job_arg;

static void h_io_run_blocking(void *io, void (*work)(void *), void (*done)(void *), void *arg)
{
	(void)io;
	assert_null(h_job_work);
	h_job_work = work;
	h_job_done = done;
	h_job_arg = arg;
}

void h_run_job(void)
{
	void (*work)(void *) = h_job_work;
	void (*done)(void *) = h_job_done;
	h_job_work = NULL;
	h_job_done = NULL;
	work(h_job_arg);
	done(h_job_arg);
}

bool h_job_pending(void)
{
	return h_job_work != NULL;
}

static const struct pop3_io_ops h_io = {h_io_write,       h_io_close,      h_io_starttls,
                                        h_io_timer_start, h_io_timer_stop, h_io_run_blocking};

/* ---- authd: users alice/secret and bob/hunter2, PLAIN and LOGIN ---- */

struct auth_request {
	struct harness *h;
	auth_callback_t *cb;
	void *ctx;
	char mech[16];
	int step; /* LOGIN: 0 = want user, 1 = want password */
	char user[64];
	enum auth_result pending;
	char *pending_data;
};

static struct auth_request *h_req;      /* at most one request at a time */
static pop3_home_callback_t *h_home_cb; /* pending home lookup */
static void *h_home_ctx;
static char *h_home_user;

static const struct auth_mech h_mechs[] = {{"PLAIN", true}, {"LOGIN", true}, {"XTEST", false}};

static size_t h_auth_mechs(void *auth, const struct auth_mech **mechs_r)
{
	struct harness *h = auth;
	*mechs_r = h_mechs;
	return h->authd_down ? 0 : sizeof(h_mechs) / sizeof(h_mechs[0]);
}

static size_t b64_decode(const char *in, char *out, size_t max)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned v = 0, bits = 0;
	size_t n = 0;
	for (; *in != '\0' && *in != '='; in++) {
		const char *p = strchr(tab, *in);
		if (p == NULL)
			return (size_t)-1;
		v = (v << 6) | (unsigned)(p - tab);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n < max)
				out[n++] = (char)((v >> bits) & 0xff);
		}
	}
	return n;
}

static bool h_check(const char *user, const char *pass)
{
	return (strcmp(user, "alice") == 0 && strcmp(pass, "secret") == 0) ||
	       (strcmp(user, "bob") == 0 && strcmp(pass, "hunter2") == 0);
}

static void h_answer(struct auth_request *req, enum auth_result r, const char *data)
{
	req->pending = r;
	free(req->pending_data);
	req->pending_data = data != NULL ? xstrdup(data) : NULL;
}

static void h_plain(struct auth_request *req, const char *b64)
{
	char buf[256];
	size_t n = b64_decode(b64, buf, sizeof(buf) - 1);
	if (n == (size_t)-1) {
		h_answer(req, AUTH_RESULT_FAIL, NULL);
		return;
	}
	buf[n] = '\0';
	/* authzid NUL authcid NUL password */
	const char *authcid = memchr(buf, '\0', n);
	if (authcid == NULL) {
		h_answer(req, AUTH_RESULT_FAIL, NULL);
		return;
	}
	authcid++;
	size_t rest = n - (size_t)(authcid - buf);
	const char *pass = memchr(authcid, '\0', rest);
	if (pass == NULL) {
		h_answer(req, AUTH_RESULT_FAIL, NULL);
		return;
	}
	pass++;
	if (h_check(authcid, pass))
		h_answer(req, AUTH_RESULT_OK, authcid);
	else
		h_answer(req, AUTH_RESULT_FAIL, NULL);
}

static struct auth_request *h_auth_begin(void *auth, const struct auth_request_info *info,
                                         auth_callback_t *cb, void *ctx)
{
	struct harness *h = auth;
	struct auth_request *req = xcalloc(1, sizeof(*req));

	assert_null(h_req);
	assert_string_equal(info->service, "pop3");
	req->h = h;
	req->cb = cb;
	req->ctx = ctx;
	snprintf(req->mech, sizeof(req->mech), "%s", info->mech);
	h_req = req;
	if (h->authd_down) {
		h_answer(req, AUTH_RESULT_TEMPFAIL, NULL);
	} else if (strcasecmp(info->mech, "PLAIN") == 0) {
		if (info->initial_response_b64 == NULL || info->initial_response_b64[0] == '\0')
			h_answer(req, AUTH_RESULT_CONTINUE, "");
		else
			h_plain(req, info->initial_response_b64);
	} else if (strcasecmp(info->mech, "LOGIN") == 0) {
		h_answer(req, AUTH_RESULT_CONTINUE, "VXNlcm5hbWU6");
	} else {
		h_answer(req, AUTH_RESULT_FAIL, NULL);
	}
	return req;
}

static void h_auth_cont(struct auth_request *req, const char *resp)
{
	if (strcasecmp(req->mech, "PLAIN") == 0) {
		h_plain(req, resp);
	} else if (req->step == 0) {
		size_t n = b64_decode(resp, req->user, sizeof(req->user) - 1);
		req->user[n == (size_t)-1 ? 0 : n] = '\0';
		req->step = 1;
		h_answer(req, AUTH_RESULT_CONTINUE, "UGFzc3dvcmQ6");
	} else {
		char pass[64];
		size_t n = b64_decode(resp, pass, sizeof(pass) - 1);
		pass[n == (size_t)-1 ? 0 : n] = '\0';
		if (h_check(req->user, pass))
			h_answer(req, AUTH_RESULT_OK, req->user);
		else
			h_answer(req, AUTH_RESULT_FAIL, NULL);
	}
}

static void h_req_free(struct auth_request *req)
{
	free(req->pending_data);
	free(req);
	h_req = NULL;
}

static void h_auth_abort(struct auth_request **req)
{
	if (*req != NULL)
		h_req_free(*req);
	*req = NULL;
}

static void *h_lookup_home(void *auth, const char *user, pop3_home_callback_t *cb, void *ctx)
{
	(void)auth;
	h_home_cb = cb;
	h_home_ctx = ctx;
	h_home_user = xstrdup(user);
	return h_home_user;
}

static void h_lookup_abort(void **handle)
{
	free(h_home_user);
	h_home_user = NULL;
	h_home_cb = NULL;
	*handle = NULL;
}

static const struct pop3_auth_ops h_auth = {h_auth_mechs, h_auth_begin,  h_auth_cont,
                                            h_auth_abort, h_lookup_home, h_lookup_abort};

/* Runs what the loop would: authd answers, lookups, the delay timer. */
static void h_run(struct harness *h)
{
	for (int i = 0; i < 100; i++) {
		if (h_req != NULL && h_req->pending != (enum auth_result) - 1) {
			struct auth_request *req = h_req;
			enum auth_result r = req->pending;
			char *data = req->pending_data;
			auth_callback_t *cb = req->cb;
			void *ctx = req->ctx;
			req->pending = (enum auth_result) - 1;
			req->pending_data = NULL;
			if (r != AUTH_RESULT_CONTINUE)
				h_req_free(req);
			cb(r, data, ctx);
			free(data);
			continue;
		}
		if (h_home_cb != NULL) {
			pop3_home_callback_t *cb = h_home_cb;
			char *home = xasprintf("%s/%s", h->root, h_home_user);
			struct stat st;
			bool found = stat(home, &st) == 0;
			h_home_cb = NULL;
			free(h_home_user);
			h_home_user = NULL;
			cb(found ? POP3_HOME_FOUND : POP3_HOME_NOTFOUND, found ? home : NULL,
			   h_home_ctx);
			free(home);
			continue;
		}
		if (h_job_work != NULL && !h->hold_blocking) {
			h_run_job();
			continue;
		}
		if (h->timers > 0) {
			h->timers--;
			pop3_session_timer(h->s);
			continue;
		}
		break;
	}
}

static void mkdir_user(const char *root, const char *user)
{
	char *p = xasprintf("%s/%s", root, user);
	assert_int_equal(mkdir(p, 0700), 0);
	for (int i = 0; i < 3; i++) {
		static const char *const subs[] = {"cur", "new", "tmp"};
		char *q = xasprintf("%s/%s", p, subs[i]);
		assert_int_equal(mkdir(q, 0700), 0);
		free(q);
	}
	free(p);
}

static void h_setup(struct harness *h)
{
	buf_init(&h->in, 1 << 20);
	buf_init(&h->out, 0);
	h->s = pop3_session_new(&h->set, &h->info, &h_io, h, &h_auth, h);
	pop3_session_start(h->s);
}

void h_init(struct harness *h, bool tls, bool loopback, bool tls_available)
{
	char tmpl[] = "/tmp/tern-pop3d-test.XXXXXX";

	memset(h, 0, sizeof(*h));
	assert_non_null(mkdtemp(tmpl));
	h->root = xstrdup(tmpl);
	h->owns_root = true;
	mkdir_user(h->root, "alice");
	mkdir_user(h->root, "bob");
	pop3_settings_defaults(&h->set);
	h->set.tls_available = tls_available;
	h->set.uidl_format = MAILDROP_UIDL_FILENAME;
	h->info.remote_ip = loopback ? "127.0.0.1" : "192.0.2.7";
	h->info.local_ip = loopback ? "127.0.0.1" : "192.0.2.1";
	h->info.remote_port = 40000;
	h->info.local_port = 110;
	h->info.tls = tls;
	h->info.loopback = loopback;
	h->info.id = 42;
	h_setup(h);
}

void h_init_shared(struct harness *h, const struct harness *other)
{
	memset(h, 0, sizeof(*h));
	h->set = other->set;
	h->info = other->info;
	h->root = other->root; /* borrowed */
	h->owns_root = false;
	h_setup(h);
}

static void rm_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	if (d == NULL) {
		unlink(path);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char *p = xasprintf("%s/%s", path, de->d_name);
		rm_tree(p);
		free(p);
	}
	closedir(d);
	rmdir(path);
}

void h_drop(struct harness *h)
{
	pop3_session_free(&h->s);
	h->closed = true;
}

void h_free(struct harness *h)
{
	pop3_session_free(&h->s);
	buf_free(&h->in);
	buf_free(&h->out);
	free(h->text);
	if (h->owns_root) {
		rm_tree(h->root);
		free(h->root);
	}
}

void h_read_all(struct harness *h)
{
	h->out_read = h->out.len;
	if (h->s != NULL)
		pop3_session_drain(h->s);
}

const char *h_send_len(struct harness *h, const char *client, size_t len)
{
	size_t start = h->out_read;

	assert_int_equal(buf_append(&h->in, client, len), 0);
	if (h->s != NULL && !h->closed)
		pop3_session_input(h->s, &h->in);
	h_run(h);
	free(h->text);
	h->text = xstrndup(h->out.data + start, h->out.len - start);
	h->out_read = h->out.len;
	return h->text;
}

const char *h_send(struct harness *h, const char *client)
{
	return h_send_len(h, client, strlen(client));
}

char *h_add_message(struct harness *h, const char *user, const char *dir, const char *name,
                    const char *content)
{
	char *path = xasprintf("%s/%s/%s/%s", h->root, user, dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(content, 1, strlen(content), f), strlen(content));
	assert_int_equal(fclose(f), 0);
	return path;
}

bool h_file_exists(struct harness *h, const char *user, const char *dir, const char *name)
{
	char *path = xasprintf("%s/%s/%s/%s", h->root, user, dir, name);
	bool r = access(path, F_OK) == 0;
	free(path);
	return r;
}

unsigned h_count_files(struct harness *h, const char *user, const char *dir)
{
	char *path = xasprintf("%s/%s/%s", h->root, user, dir);
	DIR *d = opendir(path);
	struct dirent *de;
	unsigned n = 0;
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.')
			n++;
	}
	closedir(d);
	free(path);
	return n;
}
