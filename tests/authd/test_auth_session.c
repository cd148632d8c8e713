/*
 * Protocol transcripts for the auth-client socket: client bytes in, server bytes out,
 * through a real libsasl2 and a real passwd-file (fake transport, real loop and thread
 * pool). Covers handshake order, PLAIN, LOGIN with CONT, SCRAM-SHA-256, FAIL, CANCEL,
 * pipelining, TAB-escaping, over-long lines, garbage and a peer that goes away.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "auth/base64.h"
#include "auth_cache.h"
#include "password_scheme.h"
#include "auth_session.h"
#include "authd_test_util.h"

static const char passwd_mixed[] = "# test users\n"
                                   "alice@example.test:{PLAIN}alicepw::::::\n"
                                   "bob@example.test:" VEC_SHA512 ":1000:1000::/home/bob::\n"
                                   "carol@example.test:" VEC_SCRAM "\n"
                                   "dave@example.test:{PLAIN}davepw::::::nologin\n";

struct t {
	struct test_env env;
	struct fake_io io;
	struct auth_session *s;
	struct buf in;
};

static struct t *t_new(const char *passwd, uint64_t delay_ms, uint64_t delay_max_ms)
{
	struct t *t = xcalloc(1, sizeof(*t));

	test_env_init(&t->env, passwd, delay_ms, delay_max_ms);
	buf_init(&t->io.out, 0);
	buf_init(&t->in, 0);
	t->s = auth_session_new(&t->env.authd, &fake_io_ops, &t->io);
	return t;
}

static void t_free(struct t *t)
{
	auth_session_free(&t->s);
	test_env_deinit(&t->env);
	buf_free(&t->io.out);
	buf_free(&t->in);
	free(t);
}

static void t_send(struct t *t, const char *text)
{
	buf_append_str(&t->in, text);
	auth_session_feed(t->s, &t->in);
}

static void t_handshake(struct t *t)
{
	t_send(t, "VERSION\t1\t0\nCPID\t4242\n");
	assert_true(run_until(&t->env.loop, &t->io.out, "DONE\n", 2000));
	buf_reset(&t->io.out);
}

static char *b64(const void *data, size_t len)
{
	struct buf b;
	buf_init(&b, 0);
	base64_encode(&b, data, len);
	return buf_steal(&b);
}

static void expect_reply(struct t *t, const char *reply, uint64_t timeout_ms)
{
	if (!run_until(&t->env.loop, &t->io.out, reply, timeout_ms))
		fail_msg("expected \"%s\", got \"%s\"", reply, buf_cstr(&t->io.out));
}

static void test_handshake_order(void **state)
{
	struct t *t = t_new(passwd_mixed, 10, 20);
	(void)state;

	/* Nothing before the client's VERSION (Dovecot 2.4 behaviour). */
	t_send(t, "");
	uv_run(&t->env.loop, UV_RUN_NOWAIT);
	assert_int_equal(t->io.out.len, 0);
	t_send(t, "VERSION\t1\t0\nCPID\t31337\n");
	expect_reply(t, "DONE\n", 1000);
	const char *o = buf_cstr(&t->io.out);
	assert_int_equal(
	    strncmp(
	        o, "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\nSPID\t",
	        strlen("VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\nSPID\t")),
	    0);
	/* Mixed credentials: no CRAM-MD5, no SCRAM (they could not succeed for bob). */
	assert_null(strstr(o, "CRAM-MD5"));
	assert_null(strstr(o, "SCRAM"));
	const char *cuid = strstr(o, "\nCUID\t"), *cookie = strstr(o, "\nCOOKIE\t");
	assert_non_null(cuid);
	assert_non_null(cookie);
	assert_true(cuid < cookie);
	assert_int_equal(strspn(cookie + 8, "0123456789abcdef"), 32);
	assert_string_equal(cookie + 8 + 32, "\nDONE\n");
	assert_false(t->io.closed);
	t_free(t);
}

static void test_auth_before_version(void **state)
{
	struct t *t = t_new(passwd_mixed, 10, 20);
	(void)state;

	t_send(t, "AUTH\t1\tPLAIN\tservice=smtp\n");
	assert_true(t->io.closed);
	assert_int_equal(t->io.out.len, 0);
	t_free(t);
}

static void test_plain(void **state)
{
	struct t *t = t_new(passwd_mixed, 10, 20);
	char line[512];
	(void)state;

	t_handshake(t);
	char *r = b64("\0alice@example.test\0alicepw", 27);
	snprintf(line, sizeof(line),
	         "AUTH\t1\tPLAIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=127.0.0.1\tsecured\t"
	         "resp=%s\n",
	         r);
	free(r);
	t_send(t, line);
	expect_reply(t, "OK\t1\tuser=alice@example.test\n", 5000);

	/* A bare, upper-case name is canonicalised; bob's hash is SHA512-CRYPT. */
	r = b64("\0BOB\0s3cret pass", 16);
	snprintf(line, sizeof(line), "AUTH\t2\tplain\tservice=imap\trip=::1\tresp=%s\n", r);
	free(r);
	t_send(t, line);
	expect_reply(t, "OK\t2\tuser=bob@example.test\n", 5000);
	assert_false(t->io.closed);
	t_free(t);
}

static void test_plain_failures_look_alike(void **state)
{
	struct t *t = t_new(passwd_mixed, 50, 100);
	char line[512];
	(void)state;

	t_handshake(t);
	char *wrong = b64("\0bob@example.test\0wrong", 23);
	char *unknown = b64("\0nobody@example.test\0wrong", 26);
	snprintf(line, sizeof(line), "AUTH\t7\tPLAIN\tservice=smtp\trip=127.0.0.1\tresp=%s\n",
	         wrong);
	t_send(t, line);
	expect_reply(t, "FAIL\t7\tuser=bob@example.test\treason=Authentication failed\n", 5000);
	snprintf(line, sizeof(line), "AUTH\t8\tPLAIN\tservice=smtp\trip=127.0.0.1\tresp=%s\n",
	         unknown);
	t_send(t, line);
	/* Same reply shape: no reason that tells an unknown user from a bad password. */
	expect_reply(t, "FAIL\t8\tuser=nobody@example.test\treason=Authentication failed\n", 5000);
	/* A nologin user with the right password is refused. */
	char *dave = b64("\0dave\0davepw", 12);
	snprintf(line, sizeof(line), "AUTH\t9\tPLAIN\tservice=smtp\tresp=%s\n", dave);
	t_send(t, line);
	expect_reply(
	    t,
	    "FAIL\t9\tcode=user_disabled\tuser=dave@example.test\treason=Authentication failed\n",
	    5000);
	/* bob's password does not let bob act as alice (PLAIN authzid). */
	char *proxy = b64("alice\0bob\0s3cret pass", 21);
	snprintf(line, sizeof(line), "AUTH\t10\tPLAIN\tservice=smtp\tresp=%s\n", proxy);
	t_send(t, line);
	expect_reply(t, "FAIL\t10\t", 5000);
	assert_null(strstr(buf_cstr(&t->io.out), "OK\t10\t"));
	/* The same authzid as the authcid is fine. */
	char *self = b64("bob\0bob\0s3cret pass", 19);
	snprintf(line, sizeof(line), "AUTH\t11\tPLAIN\tservice=smtp\tresp=%s\n", self);
	t_send(t, line);
	expect_reply(t, "OK\t11\tuser=bob@example.test\n", 5000);
	free(proxy);
	free(self);
	free(wrong);
	free(unknown);
	free(dave);
	t_free(t);
}

static void plain_auth(struct t *t, unsigned id, const char *user, const char *pw, const char *want)
{
	char raw[256], line[512], prefix[64];
	size_t ulen = strlen(user), plen = strlen(pw);
	raw[0] = '\0';
	memcpy(raw + 1, user, ulen);
	raw[1 + ulen] = '\0';
	memcpy(raw + 2 + ulen, pw, plen);
	char *r = b64(raw, 2 + ulen + plen);
	snprintf(line, sizeof(line), "AUTH\t%u\tPLAIN\tservice=imap\trip=127.0.0.1\tresp=%s\n", id,
	         r);
	free(r);
	t_send(t, line);
	snprintf(prefix, sizeof(prefix), "%s\t%u\t", want, id);
	expect_reply(t, prefix, 10000);
}

/* With the verified-password cache on: a repeated login is a cache hit; a wrong password
 * is never one; a password changed in the passwd-file takes effect at once. */
static void test_plain_cache(void **state)
{
	struct t *t = t_new(passwd_mixed, 10, 20);
	(void)state;
	t->env.authd.cache = auth_cache_new(100, 3600 * 1000);
	assert_non_null(t->env.authd.cache);
	t_handshake(t);
	uint64_t hits, stores;
	plain_auth(t, 1, "bob", "s3cret pass", "OK");
	plain_auth(t, 2, "bob", "s3cret pass", "OK");
	auth_cache_counts(t->env.authd.cache, &hits, &stores);
	assert_int_equal(hits, 1);
	assert_int_equal(stores, 1);
	plain_auth(t, 3, "bob", "s3cret pasS", "FAIL");
	auth_cache_counts(t->env.authd.cache, &hits, &stores);
	assert_int_equal(hits, 1);
	/* bob's password changes on disk: the old one fails, the new one works. */
	const char *error = NULL;
	char *hash = password_generate("SHA512-CRYPT", "brand new", &error);
	assert_non_null(hash);
	char text[1024];
	snprintf(text, sizeof(text), "bob@example.test:%s:1000:1000::/home/bob::\n", hash);
	free(hash);
	test_write_file(t->env.passwd, text);
	usleep(150 * 1000); /* past the passwd-file's 100 ms re-check limit */
	plain_auth(t, 4, "bob", "s3cret pass", "FAIL");
	plain_auth(t, 5, "bob", "brand new", "OK");
	plain_auth(t, 6, "bob", "brand new", "OK");
	auth_cache_counts(t->env.authd.cache, &hits, &stores);
	assert_int_equal(hits, 2);
	assert_int_equal(stores, 2);
	t_free(t);
}

static void test_login_with_cont(void **state)
{
	struct t *t = t_new(passwd_mixed, 10, 20);
	(void)state;

	t_handshake(t);
	t_send(t, "AUTH\t2\tLOGIN\tservice=smtp\tnologin\tlip=127.0.0.1\trip=127.0.0.1\n");
	expect_reply(t, "CONT\t2\tVXNlcm5hbWU6\n", 5000); /* "Username:" */
	buf_reset(&t->io.out);
	t_send(t, "CONT\t2\tYm9i\n");                     /* "bob" */
	expect_reply(t, "CONT\t2\tUGFzc3dvcmQ6\n", 5000); /* "Password:" */
	buf_reset(&t->io.out);
	t_send(t, "CONT\t2\tczNjcmV0IHBhc3M=\n"); /* "s3cret pass" */
	expect_reply(t, "OK\t2\tuser=bob@example.test\n", 5000);
	t_free(t);
}

static void test_cancel(void **state)
{
	struct t *t = t_new(passwd_mixed, 10, 20);
	(void)state;

	t_handshake(t);
	t_send(t, "AUTH\t3\tLOGIN\tservice=smtp\n");
	expect_reply(t, "CONT\t3\t", 5000);
	buf_reset(&t->io.out);
	t_send(t, "CANCEL\t3\n");
	/* The request is gone: a late CONT is answered like a timed-out request. */
	t_send(t, "CONT\t3\tYm9i\n");
	expect_reply(t, "FAIL\t3\treason=Authentication request timed out\n", 1000);
	/* CANCEL while the step runs in the thread pool: no reply ever comes. */
	buf_reset(&t->io.out);
	char *r = b64("\0bob\0s3cret pass", 16);
	char line[256];
	snprintf(line, sizeof(line), "AUTH\t4\tPLAIN\tservice=smtp\tresp=%s\nCANCEL\t4\n", r);
	free(r);
	t_send(t, line);
	assert_false(run_until(&t->env.loop, &t->io.out, "\t4\t", 300));
	assert_false(t->io.closed);
	t_free(t);
}

static void test_pipelined(void **state)
{
	struct t *t = t_new(passwd_mixed, 30, 60);
	struct buf lines;
	(void)state;

	t_handshake(t);
	buf_init(&lines, 0);
	for (int i = 10; i < 16; i++) {
		bool good = i % 2 == 0;
		char *r = good ? b64("\0alice\0alicepw", 14) : b64("\0alice\0nope", 11);
		buf_printf(&lines, "AUTH\t%d\tPLAIN\tservice=smtp\trip=127.0.0.%d\tresp=%s\n", i, i,
		           r);
		free(r);
	}
	/* Everything in one write, split at an awkward place. */
	buf_append(&t->in, lines.data, 37);
	auth_session_feed(t->s, &t->in);
	buf_append(&t->in, lines.data + 37, lines.len - 37);
	auth_session_feed(t->s, &t->in);
	for (int i = 10; i < 16; i++) {
		char want[64];
		if (i % 2 == 0)
			snprintf(want, sizeof(want), "OK\t%d\tuser=alice@example.test\n", i);
		else
			snprintf(want, sizeof(want),
			         "FAIL\t%d\tuser=alice@example.test\treason=", i);
		expect_reply(t, want, 5000);
	}
	buf_free(&lines);
	t_free(t);
}

static void test_tab_escaping(void **state)
{
	struct t *t = t_new(passwd_mixed, 10, 20);
	char line[512];
	(void)state;

	t_handshake(t);
	/* Escaped values in parameters are accepted (\001t = TAB, \001n = LF). */
	char *r = b64("\0alice\0alicepw", 14);
	snprintf(line, sizeof(line),
	         "AUTH\t5\tPLAIN\tservice=smtp\tsession=a\001tb\001nc\tlocal_name=x\0011y\t"
	         "resp=%s\tignored-after-resp\n",
	         r);
	free(r);
	t_send(t, line);
	expect_reply(t, "OK\t5\tuser=alice@example.test\n", 5000);
	assert_false(t->io.closed);
	/* An unknown escape is a protocol error. */
	t_send(t, "AUTH\t6\tPLAIN\tservice=sm\001ztp\n");
	assert_true(t->io.closed);
	t_free(t);
}

static void test_overlong_line(void **state)
{
	struct t *t = t_new(passwd_mixed, 10, 20);
	(void)state;

	t_handshake(t);
	char *big = xmalloc(20000);
	memset(big, 'A', 19999);
	big[19999] = '\0';
	t_send(t, "AUTH\t1\tPLAIN\tservice=smtp\tresp=");
	t_send(t, big);
	assert_true(t->io.closed);
	/* Input after the error is dropped, not buffered. */
	assert_int_equal(t->in.len, 0);
	free(big);
	t_free(t);
}

static void test_garbage(void **state)
{
	static const char *const bad[] = {
	    "HELLO\n",
	    "AUTH\n",
	    "AUTH\tx\tPLAIN\tservice=smtp\n",
	    "AUTH\t0\tPLAIN\tservice=smtp\n",
	    "AUTH\t1\tPLAIN\n", /* no service */
	    "CONT\t-1\tAAAA\n",
	    "AUTH\t1\tPL\0AIN\tservice=smtp\n",
	};
	static const size_t len[] = {6, 5, 26, 26, 13, 14, 27};
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct t *t = t_new(passwd_mixed, 10, 20);
		t_handshake(t);
		buf_append(&t->in, bad[i], len[i]);
		auth_session_feed(t->s, &t->in);
		if (!t->io.closed)
			fail_msg("garbage %zu did not close the connection", i);
		t_free(t);
	}
	/* Not a protocol error: an unknown mechanism and bad base64 fail the request only. */
	struct t *t = t_new(passwd_mixed, 10, 20);
	t_handshake(t);
	t_send(t, "AUTH\t1\tGSSAPI\tservice=smtp\n");
	expect_reply(t, "FAIL\t1\treason=Unsupported authentication mechanism\n", 1000);
	t_send(t, "AUTH\t2\tPLAIN\tservice=smtp\tresp=AB=C\n");
	expect_reply(t, "FAIL\t2\tcode=invalid_base64", 1000);
	/* Duplicate id while the first is pending is a protocol error. */
	t_send(t, "AUTH\t3\tLOGIN\tservice=smtp\n");
	expect_reply(t, "CONT\t3\t", 5000);
	t_send(t, "AUTH\t3\tLOGIN\tservice=smtp\n");
	assert_true(t->io.closed);
	t_free(t);
}

static void test_plaintext_needs_tls(void **state)
{
	struct t *t = t_new(passwd_mixed, 10, 20);
	(void)state;

	t_handshake(t);
	char *r = b64("\0alice\0alicepw", 14);
	char line[256];
	snprintf(line, sizeof(line), "AUTH\t1\tPLAIN\tservice=imap\trip=198.51.100.7\tresp=%s\n",
	         r);
	t_send(t, line);
	expect_reply(t, "FAIL\t1\treason=Plaintext authentication disallowed", 1000);
	snprintf(line, sizeof(line),
	         "AUTH\t2\tPLAIN\tservice=imap\trip=198.51.100.7\tsecured\tresp=%s\n", r);
	t_send(t, line);
	expect_reply(t, "OK\t2\tuser=alice@example.test\n", 5000);
	free(r);
	t_free(t);
}

static void test_half_closed(void **state)
{
	struct t *t = t_new(passwd_mixed, 10, 20);
	(void)state;

	t_handshake(t);
	/* The peer goes away with requests in every state: in the thread pool, waiting
	 * for CONT, and waiting out a failure delay. Nothing is written afterwards and
	 * nothing leaks (ASan builds check). */
	char *good = b64("\0bob\0s3cret pass", 16);
	char *bad = b64("\0bob\0bad", 8);
	char line[512];
	snprintf(line, sizeof(line),
	         "AUTH\t1\tLOGIN\tservice=smtp\nAUTH\t2\tPLAIN\tservice=smtp\tresp=%s\n", bad);
	t_send(t, line);
	expect_reply(t, "CONT\t1\t", 5000);
	snprintf(line, sizeof(line), "AUTH\t3\tPLAIN\tservice=smtp\tresp=%s\n", good);
	t_send(t, line);
	auth_session_free(&t->s);
	size_t before = t->io.out.len;
	uint64_t end = test_now_ms() + 300;
	while (test_now_ms() < end) {
		uv_run(&t->env.loop, UV_RUN_NOWAIT);
		usleep(2000);
	}
	assert_int_equal(t->io.out.len, before);
	free(good);
	free(bad);
	t_free(t);
}

/* A SCRAM-SHA-256 client (RFC 5802 section 3) for the full exchange. */
static void scram_client(struct t *t, const char *user, const char *password, unsigned id,
                         bool expect_ok)
{
	char line[1024], first_bare[256];
	const char *cnonce = "rOprNGfwEbeRWgbNEkqO";

	snprintf(first_bare, sizeof(first_bare), "n=%s,r=%s", user, cnonce);
	char client_first[300];
	snprintf(client_first, sizeof(client_first), "n,,%s", first_bare);
	char *r = b64(client_first, strlen(client_first));
	snprintf(line, sizeof(line), "AUTH\t%u\tSCRAM-SHA-256\tservice=imap\tresp=%s\n", id, r);
	free(r);
	t_send(t, line);
	char want[32];
	snprintf(want, sizeof(want), "CONT\t%u\t", id);
	expect_reply(t, want, 5000);
	expect_reply(t, "\n", 1000);
	char *p = strstr(t->io.out.data, want) + strlen(want);
	struct buf server_first;
	buf_init(&server_first, 0);
	assert_int_equal(base64_decode(&server_first, p, strcspn(p, "\n")), 0);
	buf_reset(&t->io.out);
	/* r=<nonce>,s=<salt>,i=<iterations> */
	assert_true(server_first.len > 2);
	const char *sf = server_first.data;
	assert_int_equal(strncmp(sf, "r=", 2), 0);
	const char *nonce = sf + 2;
	size_t nonce_len = strcspn(nonce, ",");
	assert_int_equal(strncmp(nonce, cnonce, strlen(cnonce)), 0);
	const char *s = strstr(sf, ",s=") + 3;
	struct buf salt;
	buf_init(&salt, 0);
	assert_int_equal(base64_decode(&salt, s, strcspn(s, ",")), 0);
	unsigned iter = (unsigned)atoi(strstr(sf, ",i=") + 3);
	assert_true(iter >= 4096);

	unsigned char salted[32], ckey[32], skey[32], stored[32], csig[32], ssig[32], proof[32];
	unsigned n;
	PKCS5_PBKDF2_HMAC(password, (int)strlen(password), (unsigned char *)salt.data,
	                  (int)salt.len, (int)iter, EVP_sha256(), 32, salted);
	HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Client Key", 10, ckey, &n);
	HMAC(EVP_sha256(), salted, 32, (const unsigned char *)"Server Key", 10, skey, &n);
	SHA256(ckey, 32, stored);
	char without_proof[512], auth_message[1024];
	snprintf(without_proof, sizeof(without_proof), "c=biws,r=%.*s", (int)nonce_len, nonce);
	snprintf(auth_message, sizeof(auth_message), "%s,%s,%s", first_bare, sf, without_proof);
	HMAC(EVP_sha256(), stored, 32, (unsigned char *)auth_message, strlen(auth_message), csig,
	     &n);
	HMAC(EVP_sha256(), skey, 32, (unsigned char *)auth_message, strlen(auth_message), ssig, &n);
	for (int i = 0; i < 32; i++)
		proof[i] = ckey[i] ^ csig[i];
	char *proof64 = b64(proof, 32);
	char client_final[600];
	snprintf(client_final, sizeof(client_final), "%s,p=%s", without_proof, proof64);
	free(proof64);
	r = b64(client_final, strlen(client_final));
	snprintf(line, sizeof(line), "CONT\t%u\t%s\n", id, r);
	free(r);
	t_send(t, line);
	if (!expect_ok) {
		snprintf(want, sizeof(want), "FAIL\t%u\t", id);
		expect_reply(t, want, 5000);
	} else {
		/* The server's final message (v=ServerSignature) comes as one more CONT. */
		expect_reply(t, want, 5000);
		expect_reply(t, "\n", 1000);
		p = strstr(t->io.out.data, want) + strlen(want);
		struct buf fin;
		buf_init(&fin, 0);
		assert_int_equal(base64_decode(&fin, p, strcspn(p, "\n")), 0);
		char *sig64 = b64(ssig, 32);
		char v[64];
		snprintf(v, sizeof(v), "v=%s", sig64);
		assert_string_equal(buf_cstr(&fin), v);
		free(sig64);
		buf_free(&fin);
		buf_reset(&t->io.out);
		snprintf(line, sizeof(line), "CONT\t%u\t\n", id);
		t_send(t, line);
		snprintf(line, sizeof(line), "OK\t%u\tuser=%s\n", id, user);
		expect_reply(t, line, 5000);
	}
	buf_reset(&t->io.out);
	buf_free(&salt);
	buf_free(&server_first);
}

static void test_scram_sha256(void **state)
{
	/* Every user can do SCRAM here: a stored secret (carol) or a plaintext (alice). */
	struct t *t =
	    t_new("alice@example.test:{PLAIN}alicepw\ncarol@example.test:" VEC_SCRAM "\n", 10, 20);
	(void)state;

	t_send(t, "VERSION\t1\t0\n");
	expect_reply(t, "DONE\n", 1000);
	assert_non_null(strstr(buf_cstr(&t->io.out), "MECH\tSCRAM-SHA-256\tmutual-auth\n"));
	assert_null(strstr(buf_cstr(&t->io.out), "CRAM-MD5"));
	buf_reset(&t->io.out);
	scram_client(t, "carol@example.test", "s3cret pass", 1, true);
	scram_client(t, "alice@example.test", "alicepw", 2, true);
	scram_client(t, "carol@example.test", "wrong", 3, false);
	t_free(t);
}

static void test_cram_md5_only_when_all_plaintext(void **state)
{
	struct t *t = t_new("alice@example.test:{PLAIN}alicepw\n", 10, 20);
	(void)state;

	t_send(t, "VERSION\t1\t0\n");
	expect_reply(t, "DONE\n", 1000);
	assert_non_null(strstr(buf_cstr(&t->io.out), "MECH\tCRAM-MD5\tdictionary\tactive\n"));
	buf_reset(&t->io.out);
	t_send(t, "AUTH\t1\tCRAM-MD5\tservice=imap\n");
	expect_reply(t, "CONT\t1\t", 5000);
	expect_reply(t, "\n", 1000);
	char *p = t->io.out.data + 7;
	struct buf ch;
	buf_init(&ch, 0);
	assert_int_equal(base64_decode(&ch, p, strcspn(p, "\n")), 0);
	unsigned char mac[16];
	unsigned n;
	HMAC(EVP_md5(), "alicepw", 7, (unsigned char *)ch.data, ch.len, mac, &n);
	char resp[128];
	int len = snprintf(resp, sizeof(resp), "alice@example.test ");
	for (int i = 0; i < 16; i++)
		len += snprintf(resp + len, sizeof(resp) - (size_t)len, "%02x", mac[i]);
	char *r = b64(resp, (size_t)len);
	char line[256];
	snprintf(line, sizeof(line), "CONT\t1\t%s\n", r);
	free(r);
	buf_reset(&t->io.out);
	t_send(t, line);
	expect_reply(t, "OK\t1\tuser=alice@example.test\n", 5000);
	buf_free(&ch);
	t_free(t);
}

/* The same transcript fed whole and one byte at a time gives the same replies. A CONT
 * is only sent once the challenge it answers arrived, as a client must. */
static void trickle_send(struct t *t, const char *text, bool bytewise)
{
	if (!bytewise) {
		t_send(t, text);
		return;
	}
	for (size_t i = 0; text[i] != '\0'; i++) {
		char one[2] = {text[i], '\0'};
		t_send(t, one);
	}
}

static void run_trickle_transcript(struct t *t, bool bytewise)
{
	char *r = b64("\0alice\0alicepw", 14);
	char first[256];

	snprintf(first, sizeof(first),
	         "VERSION\t1\t0\nCPID\t9\nAUTH\t1\tPLAIN\tservice=smtp\tresp=%s\n"
	         "AUTH\t2\tLOGIN\tservice=imap\n",
	         r);
	free(r);
	trickle_send(t, first, bytewise);
	expect_reply(t, "OK\t1\t", 5000);
	expect_reply(t, "CONT\t2\tVXNlcm5hbWU6\n", 5000);
	trickle_send(t, "CONT\t2\tYWxpY2U=\n", bytewise);
	expect_reply(t, "CONT\t2\tUGFzc3dvcmQ6\n", 5000);
	trickle_send(t, "CONT\t2\tYWxpY2Vwdw==\n", bytewise);
	expect_reply(t, "OK\t2\t", 5000);
	assert_false(t->io.closed);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The lines of text, sorted: independent requests may finish in either order. */
static char *sorted_lines(const char *text)
{
	char *copy = xstrdup(text), *lines[64], *save = NULL;
	size_t n = 0;
	struct buf b;

	for (char *l = strtok_r(copy, "\n", &save); l != NULL && n < 64;
	     l = strtok_r(NULL, "\n", &save))
		lines[n++] = l;
	qsort(lines, n, sizeof(lines[0]), cmp_str);
	buf_init(&b, 0);
	for (size_t i = 0; i < n; i++)
		buf_printf(&b, "%s\n", lines[i]);
	free(copy);
	return buf_steal(&b);
}

static void test_trickle(void **state)
{
	(void)state;
	struct t *whole = t_new(passwd_mixed, 10, 20);
	struct t *trickle = t_new(passwd_mixed, 10, 20);
	run_trickle_transcript(whole, false);
	run_trickle_transcript(trickle, true);
	/* Same bytes, apart from the per-connection SPID/CUID/COOKIE values. */
	const char *a = strstr(buf_cstr(&whole->io.out), "DONE\n");
	const char *b = strstr(buf_cstr(&trickle->io.out), "DONE\n");
	assert_non_null(a);
	assert_non_null(b);
	char *sa = sorted_lines(a), *sb = sorted_lines(b);
	assert_string_equal(sa, sb);
	free(sa);
	free(sb);
	t_free(whole);
	t_free(trickle);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_handshake_order),
	    cmocka_unit_test(test_auth_before_version),
	    cmocka_unit_test(test_plain),
	    cmocka_unit_test(test_plain_failures_look_alike),
	    cmocka_unit_test(test_plain_cache),
	    cmocka_unit_test(test_login_with_cont),
	    cmocka_unit_test(test_cancel),
	    cmocka_unit_test(test_pipelined),
	    cmocka_unit_test(test_tab_escaping),
	    cmocka_unit_test(test_overlong_line),
	    cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_plaintext_needs_tls),
	    cmocka_unit_test(test_half_closed),
	    cmocka_unit_test(test_scram_sha256),
	    cmocka_unit_test(test_cram_md5_only_when_all_plaintext),
	    cmocka_unit_test(test_trickle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
