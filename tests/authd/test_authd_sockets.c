/*
 * authd's real sockets driven by the real client libraries (libcommon/auth): PLAIN,
 * LOGIN with CONT, FAIL, userdb lookups, and the fail-closed behaviour of the clients:
 * authd gone (before and during a request), a garbage reply, no reply (timeout), an OK
 * without user= or with nologin. A scripted fake authd on a Unix socket plays the broken
 * server. Every wait is bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "auth/auth_client.h"
#include "auth/userdb_client.h"
#include "auth/base64.h"
#include "authd_server.h"
#include "base/buf.h"
#include "base/xalloc.h"
#include "config/config.h"

#define VEC_SHA512                                                                                 \
	"{SHA512-CRYPT}$6$WxyRe4xjBnjCdaLu$amWAVzyyDlHMuGCsGUxpdjMcnLfYNog6He6AGgRYtQ8/"           \
	"8K3NVjiPWjFnPM9unJf5aOjdehIktyeGMSjtqWL421"

struct result {
	int done;
	enum auth_result r;
	char data[256];
};

static void on_auth(enum auth_result r, const char *data, void *context)
{
	struct result *res = context;
	res->done++;
	res->r = r;
	snprintf(res->data, sizeof(res->data), "%s", data != NULL ? data : "(null)");
}

struct uresult {
	int done;
	enum userdb_result r;
	char home[256];
	uint64_t quota;
};

static void on_userdb(enum userdb_result r, const struct userdb_reply *reply, void *context)
{
	struct uresult *res = context;
	res->done++;
	res->r = r;
	if (reply != NULL) {
		snprintf(res->home, sizeof(res->home), "%s", reply->home);
		res->quota = reply->quota_bytes;
	}
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs the loop until *flag becomes nonzero or timeout_ms pass. */
static int wait_for(uv_loop_t *loop, const int *flag, uint64_t timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;
	while (*flag == 0 && now_ms() < end) {
		uv_run(loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	return *flag;
}

static void drain(uv_loop_t *loop, uint64_t ms)
{
	uint64_t end = now_ms() + ms;
	while (now_ms() < end) {
		uv_run(loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
}

struct env {
	char dir[64], auth[128], userdb[128], passwd[128];
	struct config *cfg;
	uv_loop_t loop;
};

static void env_start(struct env *e)
{
	char *error = NULL;
	char text[1024];

	snprintf(e->dir, sizeof(e->dir), "/tmp/tern-authd-sock.XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->auth, sizeof(e->auth), "%s/auth", e->dir);
	snprintf(e->userdb, sizeof(e->userdb), "%s/auth-userdb", e->dir);
	snprintf(e->passwd, sizeof(e->passwd), "%s/passwd", e->dir);
	FILE *f = fopen(e->passwd, "w");
	assert_non_null(f);
	fprintf(f,
	        "bob@example.test:%s::::::userdb_quota_rule=*:bytes=2M\n"
	        "alice@example.test:{PLAIN}alicepw\n",
	        VEC_SHA512);
	fclose(f);
	snprintf(text, sizeof(text),
	         "run_dir = %s\npasswd_file = %s\ndomains = example.test\nmail_root = /srv/mail\n"
	         "[authd]\nauth_failure_delay = 50ms\nauth_failure_delay_max = 100ms\n",
	         e->dir, e->passwd);
	if (config_load_string("test.conf", text, &e->cfg, &error) < 0)
		fail_msg("config: %s", error);
	uv_loop_init(&e->loop);
	if (authd_server_setup(&e->loop, e->cfg, &error) < 0)
		fail_msg("setup: %s", error);
}

static void env_stop(struct env *e)
{
	authd_server_shutdown();
	drain(&e->loop, 100);
	authd_server_free();
	uv_run(&e->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	config_free(&e->cfg);
	unlink(e->passwd);
	rmdir(e->dir);
}

static void test_auth_client_against_authd(void **state)
{
	struct env e;
	struct result res = {0};
	(void)state;

	env_start(&e);
	struct auth_client *client = auth_client_new(&e.loop, e.auth);
	const struct auth_mech *mechs;
	assert_int_equal(auth_client_mechs(client, &mechs), 0);
	auth_client_connect(client);
	uint64_t end = now_ms() + 2000;
	while (auth_client_mechs(client, &mechs) == 0 && now_ms() < end) {
		uv_run(&e.loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	size_t n = auth_client_mechs(client, &mechs);
	assert_int_equal(n, 2);
	assert_string_equal(mechs[0].name, "PLAIN");
	assert_true(mechs[0].plaintext);

	struct auth_request_info info = {.mech = "PLAIN",
	                                 .service = "smtp",
	                                 .local_ip = "127.0.0.1",
	                                 .remote_ip = "127.0.0.1",
	                                 .nologin = true,
	                                 .secured = true,
	                                 .initial_response_b64 = "AGJvYgBzM2NyZXQgcGFzcw=="};
	auth_client_begin(client, &info, on_auth, &res);
	assert_int_equal(res.done, 0); /* never called from inside begin */
	assert_true(wait_for(&e.loop, &res.done, 5000));
	assert_int_equal(res.r, AUTH_RESULT_OK);
	assert_string_equal(res.data, "bob@example.test");

	memset(&res, 0, sizeof(res));
	info.initial_response_b64 = "AGJvYgB3cm9uZw=="; /* bob / wrong */
	auth_client_begin(client, &info, on_auth, &res);
	assert_true(wait_for(&e.loop, &res.done, 5000));
	assert_int_equal(res.r, AUTH_RESULT_FAIL);

	/* LOGIN: two challenges. */
	memset(&res, 0, sizeof(res));
	info.mech = "login";
	info.initial_response_b64 = NULL;
	struct auth_request *req = auth_client_begin(client, &info, on_auth, &res);
	assert_true(wait_for(&e.loop, &res.done, 5000));
	assert_int_equal(res.r, AUTH_RESULT_CONTINUE);
	assert_string_equal(res.data, "VXNlcm5hbWU6");
	res.done = 0;
	auth_request_continue(req, "YWxpY2U="); /* alice */
	assert_true(wait_for(&e.loop, &res.done, 5000));
	assert_int_equal(res.r, AUTH_RESULT_CONTINUE);
	res.done = 0;
	auth_request_continue(req, "YWxpY2Vwdw=="); /* alicepw */
	assert_true(wait_for(&e.loop, &res.done, 5000));
	assert_int_equal(res.r, AUTH_RESULT_OK);
	assert_string_equal(res.data, "alice@example.test");

	/* A request in CONTINUE when authd goes away: TEMPFAIL, never OK. */
	memset(&res, 0, sizeof(res));
	req = auth_client_begin(client, &info, on_auth, &res);
	assert_true(wait_for(&e.loop, &res.done, 5000));
	assert_int_equal(res.r, AUTH_RESULT_CONTINUE);
	res.done = 0;
	authd_server_shutdown();
	assert_true(wait_for(&e.loop, &res.done, 5000));
	assert_int_equal(res.r, AUTH_RESULT_TEMPFAIL);

	/* authd is down: a new request reconnects, fails to, and says TEMPFAIL. */
	memset(&res, 0, sizeof(res));
	info.mech = "PLAIN";
	info.initial_response_b64 = "AGJvYgBzM2NyZXQgcGFzcw==";
	auth_client_begin(client, &info, on_auth, &res);
	assert_int_equal(res.done, 0);
	assert_true(wait_for(&e.loop, &res.done, 5000));
	assert_int_equal(res.r, AUTH_RESULT_TEMPFAIL);
	assert_int_equal(auth_client_mechs(client, &mechs), 0);

	/* Aborted requests never call back. */
	memset(&res, 0, sizeof(res));
	req = auth_client_begin(client, &info, on_auth, &res);
	auth_request_abort(&req);
	assert_null(req);
	drain(&e.loop, 100);
	assert_int_equal(res.done, 0);

	auth_client_free(&client);
	env_stop(&e);
}

static void test_userdb_client_against_authd(void **state)
{
	struct env e;
	struct uresult res = {0};
	(void)state;

	env_start(&e);
	struct userdb_client *client = userdb_client_new(&e.loop, e.userdb);
	userdb_client_lookup(client, "Bob", "lmtp", on_userdb, &res);
	assert_true(wait_for(&e.loop, &res.done, 5000));
	assert_int_equal(res.r, USERDB_FOUND);
	assert_string_equal(res.home, "/srv/mail/example.test/bob");
	assert_int_equal(res.quota, 2 * 1024 * 1024);
	memset(&res, 0, sizeof(res));
	userdb_client_lookup(client, "nobody@example.test", "lmtp", on_userdb, &res);
	assert_true(wait_for(&e.loop, &res.done, 5000));
	assert_int_equal(res.r, USERDB_NOTFOUND);
	/* A name that could climb out of mail_root is simply not found. */
	memset(&res, 0, sizeof(res));
	userdb_client_lookup(client, "../../etc@example.test", "lmtp", on_userdb, &res);
	assert_true(wait_for(&e.loop, &res.done, 5000));
	assert_int_equal(res.r, USERDB_NOTFOUND);

	authd_server_shutdown();
	drain(&e.loop, 50);
	memset(&res, 0, sizeof(res));
	userdb_client_lookup(client, "bob", "lmtp", on_userdb, &res);
	assert_true(wait_for(&e.loop, &res.done, 5000));
	assert_int_equal(res.r, USERDB_TEMPFAIL);
	userdb_client_free(&client);
	env_stop(&e);
}

/* A scripted, broken authd. */
struct fake {
	uv_pipe_t server;
	uv_pipe_t client;
	bool client_open;
	const char *handshake;
	const char *reply; /* "%u" is the request id; NULL = never answer */
	struct buf in;
};

static void fake_alloc(uv_handle_t *h, size_t size, uv_buf_t *b)
{
	(void)h;
	b->base = malloc(size);
	b->len = size;
}

static void fake_closed(uv_handle_t *h)
{
	struct fake *f = h->data;
	f->client_open = false;
}

static void fake_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct fake *f = s->data;

	if (n > 0)
		buf_append(&f->in, b->base, (size_t)n);
	free(b->base);
	if (n < 0) {
		uv_close((uv_handle_t *)s, fake_closed);
		return;
	}
	char *p = strstr(f->in.data != NULL ? f->in.data : "", "AUTH\t");
	if (p != NULL && f->reply != NULL && strchr(p, '\n') != NULL) {
		char out[256];
		int len = snprintf(out, sizeof(out), f->reply, (unsigned)atoi(p + 5));
		uv_buf_t w = uv_buf_init(out, (unsigned)len);
		uv_try_write(s, &w, 1);
		buf_reset(&f->in);
	}
}

static void fake_connection(uv_stream_t *server, int status)
{
	struct fake *f = server->data;

	assert_int_equal(status, 0);
	uv_pipe_init(server->loop, &f->client, 0);
	f->client.data = f;
	assert_int_equal(uv_accept(server, (uv_stream_t *)&f->client), 0);
	f->client_open = true;
	uv_buf_t w = uv_buf_init((char *)f->handshake, (unsigned)strlen(f->handshake));
	uv_try_write((uv_stream_t *)&f->client, &w, 1);
	uv_read_start((uv_stream_t *)&f->client, fake_alloc, fake_read);
}

static enum auth_result run_against_fake(const char *handshake, const char *reply,
                                         unsigned timeout_ms, char *data, size_t size)
{
	char dir[] = "/tmp/tern-authd-fake.XXXXXX";
	char path[128];
	uv_loop_t loop;
	struct fake f = {.handshake = handshake, .reply = reply};
	struct result res = {0};

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/auth", dir);
	uv_loop_init(&loop);
	buf_init(&f.in, 0);
	uv_pipe_init(&loop, &f.server, 0);
	f.server.data = &f;
	assert_int_equal(uv_pipe_bind(&f.server, path), 0);
	assert_int_equal(uv_listen((uv_stream_t *)&f.server, 4, fake_connection), 0);

	struct auth_client *client = auth_client_new(&loop, path);
	auth_client_set_timeout(client, timeout_ms);
	struct auth_request_info info = {.mech = "PLAIN",
	                                 .service = "imap",
	                                 .remote_ip = "192.0.2.1",
	                                 .initial_response_b64 = "AGJvYgBzM2NyZXQgcGFzcw=="};
	auth_client_begin(client, &info, on_auth, &res);
	assert_true(wait_for(&loop, &res.done, 5000));
	snprintf(data, size, "%s", res.data);
	auth_client_free(&client);
	if (f.client_open)
		uv_close((uv_handle_t *)&f.client, fake_closed);
	uv_close((uv_handle_t *)&f.server, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	buf_free(&f.in);
	unlink(path);
	rmdir(dir);
	return res.r;
}

static void test_auth_client_fails_closed(void **state)
{
	static const char hs[] = "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nSPID\t1\nCUID\t1\n"
	                         "COOKIE\t00\nDONE\n";
	char data[256];
	(void)state;

	/* Sanity: the fake can say OK, so the failures below are the client's doing. */
	assert_int_equal(run_against_fake(hs, "OK\t%u\tuser=bob\n", 5000, data, sizeof(data)),
	                 AUTH_RESULT_OK);
	assert_string_equal(data, "bob");
	/* Garbage instead of a reply. */
	assert_int_equal(run_against_fake(hs, "HTTP/1.1 200 OK\n", 5000, data, sizeof(data)),
	                 AUTH_RESULT_TEMPFAIL);
	assert_int_equal(
	    run_against_fake(hs, "OK\tnot-a-number\tuser=bob\n", 5000, data, sizeof(data)),
	    AUTH_RESULT_TEMPFAIL);
	/* Garbage in the handshake. */
	assert_int_equal(
	    run_against_fake("\x01\x02\x03\n", "OK\t%u\tuser=bob\n", 5000, data, sizeof(data)),
	    AUTH_RESULT_TEMPFAIL);
	assert_int_equal(run_against_fake("VERSION\t2\t0\nDONE\n", "OK\t%u\tuser=bob\n", 5000, data,
	                                  sizeof(data)),
	                 AUTH_RESULT_TEMPFAIL);
	/* No answer: the per-request timeout turns it into TEMPFAIL. */
	uint64_t start = now_ms();
	assert_int_equal(run_against_fake(hs, NULL, 200, data, sizeof(data)), AUTH_RESULT_TEMPFAIL);
	assert_true(now_ms() - start >= 190);
	/* A handshake that never finishes is no better. */
	assert_int_equal(
	    run_against_fake("VERSION\t1\t2\n", "OK\t%u\tuser=bob\n", 200, data, sizeof(data)),
	    AUTH_RESULT_TEMPFAIL);
	/* OK without user=, OK with nologin/proxy, FAIL with temp_fail. */
	assert_int_equal(run_against_fake(hs, "OK\t%u\n", 5000, data, sizeof(data)),
	                 AUTH_RESULT_TEMPFAIL);
	assert_int_equal(
	    run_against_fake(hs, "OK\t%u\tuser=bob\tnologin\n", 5000, data, sizeof(data)),
	    AUTH_RESULT_FAIL);
	assert_int_equal(
	    run_against_fake(hs, "OK\t%u\tuser=bob\tproxy\thost=x\n", 5000, data, sizeof(data)),
	    AUTH_RESULT_FAIL);
	assert_int_equal(
	    run_against_fake(hs, "FAIL\t%u\tcode=temp_fail\n", 5000, data, sizeof(data)),
	    AUTH_RESULT_TEMPFAIL);
	assert_int_equal(
	    run_against_fake(hs, "FAIL\t%u\treason=no\001tway\n", 5000, data, sizeof(data)),
	    AUTH_RESULT_FAIL);
	assert_string_equal(data, "no\tway");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_auth_client_against_authd),
	    cmocka_unit_test(test_userdb_client_against_authd),
	    cmocka_unit_test(test_auth_client_fails_closed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
