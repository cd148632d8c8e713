/*
 * TLS over conns: implicit TLS, the STARTTLS upgrade and the plaintext-injection cases
 * (CVE-2011-0411 class), the version floor, the client side, and context errors. The
 * certificate is generated for the test with OpenSSL's API.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <zlib.h>

#include "net_test.h"

static struct nt_cert cert;
static struct tls_ctx *server_tls;

static int group_setup(void **state)
{
	(void)state;
	nt_cert_make(&cert);
	char *error = NULL;
	server_tls = tls_ctx_server_new(cert.cert, cert.key, &error);
	if (server_tls == NULL) {
		fprintf(stderr, "tls_ctx_server_new: %s\n", error);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	tls_ctx_unref(&server_tls);
	nt_cert_remove(&cert);
	return 0;
}

/* A blocking OpenSSL client on fd that trusts only the test certificate. */
static SSL *client_ssl(int fd, int min_version, int max_version, const char *ciphers)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(ctx, min_version);
	SSL_CTX_set_max_proto_version(ctx, max_version);
	if (ciphers != NULL)
		SSL_CTX_set_cipher_list(ctx, ciphers);
	SSL_CTX_load_verify_locations(ctx, cert.cert, NULL);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL *ssl = SSL_new(ctx);
	SSL_CTX_free(ctx); /* the SSL keeps its own reference */
	SSL_set_tlsext_host_name(ssl, "localhost");
	SSL_set1_host(ssl, "localhost");
	SSL_set_fd(ssl, fd);
	return ssl;
}

static struct listener_config tls_listener(enum listener_tls mode)
{
	struct listener_config cfg = {.tls_mode = mode, .tls = server_tls};
	return cfg;
}

/* --- implicit TLS -------------------------------------------------------------------- */

static void *client_implicit(void *arg)
{
	int port = *(int *)arg;
	int fd = nt_connect(port);
	NT_CHECK(fd >= 0, "connect");
	SSL *ssl = client_ssl(fd, TLS1_2_VERSION, 0, NULL);
	NT_CHECK(SSL_connect(ssl) == 1, "handshake failed");
	char line[256];
	NT_CHECK(nt_ssl_read_line(ssl, line, sizeof(line)), "no greeting");
	NT_CHECK(strcmp(line, "220 hello") == 0, "bad greeting");
	NT_CHECK(nt_ssl_send(ssl, "ECHO secret\r\nTLS\r\n"), "send");
	NT_CHECK(nt_ssl_read_line(ssl, line, sizeof(line)), "no echo");
	NT_CHECK(strcmp(line, "secret") == 0, "bad echo");
	NT_CHECK(nt_ssl_read_line(ssl, line, sizeof(line)), "no TLS line");
	NT_CHECK(strncmp(line, "tls=TLSv1.3 TLS_", 16) == 0, "not TLS 1.3 with a 1.3 suite");
	NT_CHECK(nt_ssl_send(ssl, "QUIT\r\n"), "send");
	NT_CHECK(nt_ssl_read_line(ssl, line, sizeof(line)), "no bye");
	NT_CHECK(strcmp(line, "221 bye") == 0, "bad bye");
	/* The server ends with close_notify, not a bare FIN. */
	char ch;
	NT_CHECK(SSL_read(ssl, &ch, 1) <= 0, "data after bye");
	NT_CHECK(SSL_get_error(ssl, 0) == SSL_ERROR_ZERO_RETURN ||
	             (SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN),
	         "no close_notify from the server");
	SSL_free(ssl);
	close(fd);
	return NULL;
}

static void test_implicit_tls_round_trip(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = tls_listener(LISTENER_TLS_IMPLICIT);
	nt_server_start(&srv, &loop, &cfg);
	const char *err = nt_run_client(&loop, client_implicit, &srv.port);
	if (err != NULL)
		fail_msg("%s", err);
	assert_string_equal(buf_cstr(&srv.seen), "ECHO secret|TLS|QUIT|");
	nt_server_finish(&srv);
	assert_int_equal(srv.opens, 1);
	assert_int_equal(srv.closes, 1);
}

/* A large response through TLS with a small output cap: back-pressure must hold. */
static void *client_tls_big(void *arg)
{
	int port = *(int *)arg;
	int fd = nt_connect(port);
	NT_CHECK(fd >= 0, "connect");
	SSL *ssl = client_ssl(fd, TLS1_2_VERSION, 0, NULL);
	NT_CHECK(SSL_connect(ssl) == 1, "handshake failed");
	char line[256];
	NT_CHECK(nt_ssl_read_line(ssl, line, sizeof(line)), "no greeting");
	NT_CHECK(nt_ssl_send(ssl, "BIG 2000000\r\n"), "send");
	usleep(100 * 1000);
	static char tmp[16384];
	size_t got = 0;
	while (got < 2000000) {
		size_t want = 2000000 - got < sizeof(tmp) ? 2000000 - got : sizeof(tmp);
		int r = SSL_read(ssl, tmp, (int)want);
		NT_CHECK(r > 0, "EOF or error in the middle of BIG");
		for (int i = 0; i < r; i++)
			NT_CHECK(tmp[i] == 'x', "corrupted BIG stream");
		got += (size_t)r;
	}
	NT_CHECK(nt_ssl_read_line(ssl, line, sizeof(line)) && line[0] == '\0', "no CRLF");
	NT_CHECK(nt_ssl_read_line(ssl, line, sizeof(line)), "no END");
	NT_CHECK(strcmp(line, "END") == 0, "bad END");
	NT_CHECK(nt_ssl_send(ssl, "QUIT\r\n"), "send");
	NT_CHECK(nt_ssl_read_line(ssl, line, sizeof(line)), "no bye");
	SSL_free(ssl);
	close(fd);
	return NULL;
}

static void test_implicit_tls_back_pressure(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = tls_listener(LISTENER_TLS_IMPLICIT);
	cfg.limits.max_output = 128 * 1024;
	cfg.limits.output_lowat = 16 * 1024;
	nt_server_start(&srv, &loop, &cfg);
	const char *err = nt_run_client(&loop, client_tls_big, &srv.port);
	if (err != NULL)
		fail_msg("%s", err);
	assert_true(srv.drains >= 1);
	assert_true(srv.max_pending <= 128 * 1024);
	nt_server_finish(&srv);
}

static void *client_plaintext_to_tls(void *arg)
{
	int port = *(int *)arg;
	int fd = nt_connect(port);
	NT_CHECK(fd >= 0, "connect");
	NT_CHECK(nt_send(fd, "ECHO hello\r\nQUIT\r\n"), "send");
	/* At most an alert comes back, then the connection is closed. */
	char tmp[512];
	ssize_t n = recv(fd, tmp, sizeof(tmp), 0);
	NT_CHECK(n >= 0, "timeout: plaintext on a TLS port was not closed");
	NT_CHECK(n == 0 || tmp[0] == 0x15, "something other than an alert came back");
	close(fd);
	return NULL;
}

static void test_implicit_tls_rejects_plaintext(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = tls_listener(LISTENER_TLS_IMPLICIT);
	nt_server_start(&srv, &loop, &cfg);
	const char *err = nt_run_client(&loop, client_plaintext_to_tls, &srv.port);
	if (err != NULL)
		fail_msg("%s", err);
	assert_int_equal(srv.opens, 0);
	assert_int_equal(buf_cstr(&srv.seen)[0], '\0');
	nt_server_finish(&srv);
	assert_int_equal(srv.closes, 0);
}

static void *client_silent(void *arg)
{
	int port = *(int *)arg;
	uint64_t start = nt_now_ms();
	int fd = nt_connect(port);
	NT_CHECK(fd >= 0, "connect");
	/* Say nothing: the handshake bound (idle_ms here) must close us. */
	NT_CHECK(nt_read_to_eof(fd) == 0, "a silent TLS client was not closed");
	NT_CHECK(nt_now_ms() - start >= 150, "closed before the handshake bound");
	close(fd);
	return NULL;
}

static void test_implicit_tls_handshake_timeout(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = tls_listener(LISTENER_TLS_IMPLICIT);
	cfg.limits.idle_ms = 200;
	nt_server_start(&srv, &loop, &cfg);
	const char *err = nt_run_client(&loop, client_silent, &srv.port);
	if (err != NULL)
		fail_msg("%s", err);
	assert_int_equal(srv.opens, 0);
	assert_int_equal(srv.timeouts, 0); /* the protocol never saw it */
	nt_server_finish(&srv);
}

/* A client on its own thread that trusts exactly one certificate file. */
struct trust_arg {
	int port;
	const char *ca;
	bool ok;
};

static void *client_trusting(void *p)
{
	struct trust_arg *a = p;
	int fd = nt_connect(a->port);
	NT_CHECK(fd >= 0, "connect");
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_load_verify_locations(ctx, a->ca, NULL);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL *ssl = SSL_new(ctx);
	SSL_CTX_free(ctx);
	SSL_set_tlsext_host_name(ssl, "localhost");
	SSL_set_fd(ssl, fd);
	a->ok = SSL_connect(ssl) == 1;
	if (a->ok) {
		char line[128];
		NT_CHECK(nt_ssl_read_line(ssl, line, sizeof(line)), "no greeting");
		NT_CHECK(nt_ssl_send(ssl, "QUIT\r\n"), "send");
		NT_CHECK(nt_ssl_read_line(ssl, line, sizeof(line)), "no bye");
	}
	SSL_free(ssl);
	close(fd);
	return NULL;
}

static void test_listener_set_tls_reload(void **state)
{
	(void)state;
	struct nt_cert next;
	nt_cert_make(&next);
	char *error = NULL;
	struct tls_ctx *next_tls = tls_ctx_server_new(next.cert, next.key, &error);
	assert_non_null(next_tls);
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = tls_listener(LISTENER_TLS_IMPLICIT);
	nt_server_start(&srv, &loop, &cfg);
	struct trust_arg a = {srv.port, cert.cert, false};
	assert_null(nt_run_client(&loop, client_trusting, &a));
	assert_true(a.ok);
	/* SIGHUP-style swap: the listener keeps its own reference. */
	listener_set_tls(srv.l, next_tls);
	tls_ctx_unref(&next_tls);
	struct trust_arg b = {srv.port, next.cert, false};
	assert_null(nt_run_client(&loop, client_trusting, &b));
	assert_true(b.ok);
	struct trust_arg c = {srv.port, cert.cert, true};
	assert_null(nt_run_client(&loop, client_trusting, &c));
	assert_false(c.ok);
	nt_server_finish(&srv);
	nt_cert_remove(&next);
}

/* --- STARTTLS ------------------------------------------------------------------------ */

static void *client_starttls_injection(void *arg)
{
	int port = *(int *)arg;
	int fd = nt_connect(port);
	NT_CHECK(fd >= 0, "connect");
	NT_EXPECT_LINE(fd, "220 hello");
	/* THE injection: a command pipelined behind STARTTLS in the same packet. */
	NT_CHECK(nt_send(fd, "STARTTLS\r\nINJECTED\r\n"), "send");
	NT_EXPECT_LINE(fd, "220 go ahead");
	SSL *ssl = client_ssl(fd, TLS1_2_VERSION, 0, NULL);
	NT_CHECK(SSL_connect(ssl) == 1, "handshake after STARTTLS failed");
	char line[256];
	NT_CHECK(nt_ssl_send(ssl, "TLS\r\nSTARTTLS\r\n"), "send");
	NT_CHECK(nt_ssl_read_line(ssl, line, sizeof(line)), "no TLS line");
	NT_CHECK(strncmp(line, "tls=TLSv1.", 10) == 0, "not upgraded");
	/* The first reply inside TLS answers TLS: nothing answered INJECTED. */
	NT_CHECK(nt_ssl_read_line(ssl, line, sizeof(line)), "no STARTTLS reply");
	NT_CHECK(strcmp(line, "220 go ahead") == 0, "bad second STARTTLS reply");
	NT_CHECK(nt_ssl_read_line(ssl, line, sizeof(line)), "no refusal");
	NT_CHECK(strcmp(line, "454 no TLS") == 0, "a second STARTTLS was not refused");
	NT_CHECK(nt_ssl_send(ssl, "QUIT\r\n"), "send");
	NT_CHECK(nt_ssl_read_line(ssl, line, sizeof(line)), "no bye");
	NT_CHECK(strcmp(line, "221 bye") == 0, "bad bye");
	SSL_free(ssl);
	close(fd);
	return NULL;
}

static void test_starttls_injection_discarded(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = tls_listener(LISTENER_TLS_NONE);
	nt_server_start(&srv, &loop, &cfg);
	const char *err = nt_run_client(&loop, client_starttls_injection, &srv.port);
	if (err != NULL)
		fail_msg("%s", err);
	/* The server never saw INJECTED as a command, before or after the upgrade. */
	assert_null(strstr(buf_cstr(&srv.seen), "INJECTED"));
	assert_string_equal(buf_cstr(&srv.seen), "STARTTLS|TLS|STARTTLS|QUIT|");
	nt_server_finish(&srv);
	assert_int_equal(srv.closes, 1);
}

/* The injected command in its own packet right behind STARTTLS, before the reply was
 * read: it is either discarded or breaks the handshake, never executed. */
static void *client_starttls_split_injection(void *arg)
{
	int port = *(int *)arg;
	int fd = nt_connect(port);
	NT_CHECK(fd >= 0, "connect");
	NT_EXPECT_LINE(fd, "220 hello");
	NT_CHECK(nt_send(fd, "STARTTLS\r\n"), "send");
	NT_CHECK(nt_send(fd, "INJECTED\r\n"), "send");
	NT_EXPECT_LINE(fd, "220 go ahead");
	SSL *ssl = client_ssl(fd, TLS1_2_VERSION, 0, NULL);
	if (SSL_connect(ssl) == 1) {
		char line[256];
		NT_CHECK(nt_ssl_send(ssl, "QUIT\r\n"), "send");
		NT_CHECK(nt_ssl_read_line(ssl, line, sizeof(line)), "no bye");
		NT_CHECK(strcmp(line, "221 bye") == 0, "reply to something else than QUIT");
	}
	SSL_free(ssl);
	close(fd);
	return NULL;
}

static void test_starttls_split_injection(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = tls_listener(LISTENER_TLS_NONE);
	nt_server_start(&srv, &loop, &cfg);
	const char *err = nt_run_client(&loop, client_starttls_split_injection, &srv.port);
	if (err != NULL)
		fail_msg("%s", err);
	assert_null(strstr(buf_cstr(&srv.seen), "INJECTED"));
	nt_server_finish(&srv);
}

/* --- the version floor --------------------------------------------------------------- */

struct version_arg {
	int port;
	int max_version;
	unsigned long reason; /* the client's OpenSSL error reason on failure */
	bool ok;
};

static void *client_version(void *p)
{
	struct version_arg *a = p;
	int fd = nt_connect(a->port);
	NT_CHECK(fd >= 0, "connect");
	/* SECLEVEL=0 so that the client itself is willing to speak TLS 1.0/1.1. */
	SSL *ssl = client_ssl(fd, TLS1_VERSION, a->max_version, "DEFAULT:@SECLEVEL=0");
	ERR_clear_error();
	a->ok = SSL_connect(ssl) == 1;
	a->reason = ERR_GET_REASON(ERR_peek_last_error());
	if (a->ok) {
		char line[256];
		NT_CHECK(nt_ssl_read_line(ssl, line, sizeof(line)), "no greeting");
		NT_CHECK(nt_ssl_send(ssl, "QUIT\r\n"), "send");
		NT_CHECK(nt_ssl_read_line(ssl, line, sizeof(line)), "no bye");
	}
	SSL_free(ssl);
	close(fd);
	return NULL;
}

static void test_tls11_refused(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = tls_listener(LISTENER_TLS_IMPLICIT);
	nt_server_start(&srv, &loop, &cfg);
	struct version_arg a = {.port = srv.port, .max_version = TLS1_1_VERSION};
	const char *err = nt_run_client(&loop, client_version, &a);
	if (err != NULL)
		fail_msg("%s", err);
	assert_false(a.ok);
	/* The server answered the ClientHello with a protocol_version alert (so this is the
	 * server's floor at work, not a client that could not even start). */
	assert_int_equal(a.reason, SSL_R_TLSV1_ALERT_PROTOCOL_VERSION);
	assert_int_equal(srv.opens, 0);
	/* The same client capped at TLS 1.2 gets in. */
	struct version_arg b = {.port = srv.port, .max_version = TLS1_2_VERSION};
	err = nt_run_client(&loop, client_version, &b);
	if (err != NULL)
		fail_msg("%s", err);
	assert_true(b.ok);
	assert_int_equal(srv.opens, 1);
	nt_server_finish(&srv);
}

/* --- the client side ------------------------------------------------------------------ */

struct tls_client {
	struct tls_ctx *tls;
	struct buf got;
	int step;
	bool done;
	int closes;
	char version[32];
};

static void tc_on_open(struct conn *c)
{
	(void)c;
}

static void tc_on_data(struct conn *c, struct buf *in)
{
	struct tls_client *tc = conn_data(c);
	size_t len, used;
	while (line_next(in->data, in->len, 512, LINE_MODE_CRLF, &len, &used) == LINE_OK) {
		buf_append(&tc->got, in->data, len);
		buf_append_char(&tc->got, '|');
		buf_consume(in, used);
		switch (tc->step++) {
		case 0: /* greeting */
			conn_write_str(c, "STARTTLS\r\n");
			break;
		case 1: /* 220 go ahead */
			assert_int_equal(conn_start_tls_client(c, tc->tls, "localhost"), 0);
			/* Written before the handshake ends: held, then sent encrypted. */
			conn_write_str(c, "TLS\r\n");
			return;
		case 2:
			snprintf(tc->version, sizeof(tc->version), "%s",
			         conn_tls_version(c) ?: "none");
			conn_write_str(c, "QUIT\r\n");
			break;
		}
	}
}

static void tc_on_close(struct conn *c)
{
	struct tls_client *tc = conn_data(c);
	tc->closes++;
	tc->done = true;
}

static const struct conn_ops tc_ops = {
    .on_open = tc_on_open,
    .on_data = tc_on_data,
    .on_close = tc_on_close,
};

static bool tc_done(void *arg)
{
	return ((struct tls_client *)arg)->done;
}

static void run_tls_client(struct tls_client *tc, uv_loop_t *loop, int port)
{
	buf_init(&tc->got, 0);
	assert_non_null(conn_connect_tcp(loop, "127.0.0.1", port, &tc_ops, NULL, tc));
	assert_true(nt_run_until(loop, tc_done, tc));
}

static void test_client_starttls(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = tls_listener(LISTENER_TLS_NONE);
	nt_server_start(&srv, &loop, &cfg);
	char *error = NULL;
	struct tls_client tc = {0};
	tc.tls = tls_ctx_client_new(cert.cert, true, &error);
	assert_non_null(tc.tls);
	run_tls_client(&tc, &loop, srv.port);
	assert_int_equal(strncmp(buf_cstr(&tc.got), "220 hello|220 go ahead|tls=TLSv1.3 ", 35), 0);
	assert_non_null(strstr(buf_cstr(&tc.got), "|221 bye|"));
	assert_string_equal(tc.version, "TLSv1.3");
	assert_int_equal(tc.closes, 1);
	assert_string_equal(buf_cstr(&srv.seen), "STARTTLS|TLS|QUIT|");
	tls_ctx_unref(&tc.tls);
	buf_free(&tc.got);
	nt_server_finish(&srv);
}

static void test_client_verify_failure(void **state)
{
	(void)state;
	/* Trust a different certificate: the handshake must fail and close the conn. */
	struct nt_cert other;
	nt_cert_make(&other);
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = tls_listener(LISTENER_TLS_NONE);
	nt_server_start(&srv, &loop, &cfg);
	char *error = NULL;
	struct tls_client tc = {0};
	tc.tls = tls_ctx_client_new(other.cert, true, &error);
	assert_non_null(tc.tls);
	run_tls_client(&tc, &loop, srv.port);
	assert_string_equal(buf_cstr(&tc.got), "220 hello|220 go ahead|");
	assert_int_equal(tc.closes, 1);
	assert_string_equal(tc.version, "");
	assert_string_equal(buf_cstr(&srv.seen), "STARTTLS|");
	tls_ctx_unref(&tc.tls);
	buf_free(&tc.got);
	nt_server_finish(&srv);
	nt_cert_remove(&other);
}

/* --- contexts ------------------------------------------------------------------------ */

static void test_ctx_errors(void **state)
{
	(void)state;
	char *error = NULL;
	assert_null(tls_ctx_server_new("/nonexistent/cert.pem", cert.key, &error));
	assert_non_null(strstr(error, "/nonexistent/cert.pem"));
	free(error);
	/* A key that does not belong to the certificate. */
	struct nt_cert other;
	nt_cert_make(&other);
	error = NULL;
	assert_null(tls_ctx_server_new(cert.cert, other.key, &error));
	assert_non_null(error);
	free(error);
	nt_cert_remove(&other);
	/* Reference counting: two refs, two unrefs. */
	struct tls_ctx *t = tls_ctx_server_new(cert.cert, cert.key, &error);
	assert_non_null(t);
	struct tls_ctx *t2 = tls_ctx_ref(t);
	tls_ctx_unref(&t);
	assert_null(t);
	tls_ctx_unref(&t2);
	assert_null(t2);
	/* STARTTLS needs a server context. */
	struct tls_ctx *client = tls_ctx_client_new(NULL, false, &error);
	assert_non_null(client);
	tls_ctx_unref(&client);
}

/* --- COMPRESS above TLS ------------------------------------------------------------- */

/* Deflates text with a sync flush and sends it through ssl. */
static bool z_ssl_send(SSL *ssl, z_stream *def, const char *text)
{
	unsigned char out[4096];
	def->next_in = (Bytef *)(uintptr_t)text;
	def->avail_in = (uInt)strlen(text);
	def->next_out = out;
	def->avail_out = sizeof(out);
	if (deflate(def, Z_SYNC_FLUSH) != Z_OK || def->avail_in != 0)
		return false;
	int n = (int)(sizeof(out) - def->avail_out);
	return SSL_write(ssl, out, n) == n;
}

/* Reads decrypted bytes, inflates them and returns one line (CRLF stripped). */
static bool z_ssl_read_line(SSL *ssl, z_stream *inf, char *acc, size_t *acc_len, size_t cap,
                            char *line, size_t size)
{
	for (int rounds = 0; rounds < 10000; rounds++) {
		char *lf = memchr(acc, '\n', *acc_len);
		if (lf != NULL) {
			size_t len = (size_t)(lf - acc);
			size_t keep = len > 0 && acc[len - 1] == '\r' ? len - 1 : len;
			if (keep >= size)
				keep = size - 1;
			memcpy(line, acc, keep);
			line[keep] = '\0';
			memmove(acc, lf + 1, *acc_len - len - 1);
			*acc_len -= len + 1;
			return true;
		}
		unsigned char raw[4096];
		int r = SSL_read(ssl, raw, sizeof(raw));
		if (r <= 0)
			return false;
		inf->next_in = raw;
		inf->avail_in = (uInt)r;
		inf->next_out = (Bytef *)acc + *acc_len;
		inf->avail_out = (uInt)(cap - *acc_len);
		int e = inflate(inf, Z_SYNC_FLUSH);
		if ((e != Z_OK && e != Z_BUF_ERROR) || inf->avail_in != 0)
			return false;
		*acc_len = cap - inf->avail_out;
	}
	return false;
}

static void *client_tls_compress(void *arg)
{
	int port = *(int *)arg;
	int fd = nt_connect(port);
	NT_CHECK(fd >= 0, "connect");
	SSL *ssl = client_ssl(fd, TLS1_2_VERSION, 0, NULL);
	NT_CHECK(SSL_connect(ssl) == 1, "handshake failed");
	char line[256];
	NT_CHECK(nt_ssl_read_line(ssl, line, sizeof(line)), "no greeting");
	z_stream def = {0}, inf = {0};
	NT_CHECK(deflateInit2(&def, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK, "zlib");
	NT_CHECK(inflateInit2(&inf, -15) == Z_OK, "zlib");
	/* The command in plaintext (inside TLS), then compressed bytes in the same record
	 * stream: TLS carries the DEFLATE stream. */
	NT_CHECK(nt_ssl_send(ssl, "COMPRESS\r\n"), "send");
	NT_CHECK(z_ssl_send(ssl, &def, "ECHO inside\r\n"), "send");
	NT_CHECK(nt_ssl_read_line(ssl, line, sizeof(line)), "no COMPRESS reply");
	NT_CHECK(strcmp(line, "OK deflate") == 0, "bad COMPRESS reply");
	static char acc[65536];
	size_t acc_len = 0;
	NT_CHECK(z_ssl_read_line(ssl, &inf, acc, &acc_len, sizeof(acc), line, sizeof(line)),
	         "no compressed echo");
	NT_CHECK(strcmp(line, "inside") == 0, "bad compressed echo");
	NT_CHECK(z_ssl_send(ssl, &def, "TLS\r\nQUIT\r\n"), "send");
	NT_CHECK(z_ssl_read_line(ssl, &inf, acc, &acc_len, sizeof(acc), line, sizeof(line)),
	         "no TLS line");
	NT_CHECK(strncmp(line, "tls=TLSv1.3", 11) == 0, "not over TLS");
	NT_CHECK(z_ssl_read_line(ssl, &inf, acc, &acc_len, sizeof(acc), line, sizeof(line)),
	         "no bye");
	NT_CHECK(strcmp(line, "221 bye") == 0, "bad bye");
	/* The last compressed reply is flushed before the close_notify. */
	char ch;
	NT_CHECK(SSL_read(ssl, &ch, 1) <= 0, "data after bye");
	NT_CHECK(SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN, "no close_notify");
	deflateEnd(&def);
	inflateEnd(&inf);
	SSL_free(ssl);
	close(fd);
	return NULL;
}

static void test_compress_over_tls(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = tls_listener(LISTENER_TLS_IMPLICIT);
	nt_server_start(&srv, &loop, &cfg);
	const char *err = nt_run_client(&loop, client_tls_compress, &srv.port);
	if (err != NULL)
		fail_msg("%s", err);
	assert_string_equal(buf_cstr(&srv.seen), "COMPRESS|ECHO inside|TLS|QUIT|");
	nt_server_finish(&srv);
	assert_int_equal(srv.closes, 1);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	log_init("test", LOG_TARGET_STDERR);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_implicit_tls_round_trip),
	    cmocka_unit_test(test_implicit_tls_rejects_plaintext),
	    cmocka_unit_test(test_implicit_tls_back_pressure),
	    cmocka_unit_test(test_implicit_tls_handshake_timeout),
	    cmocka_unit_test(test_listener_set_tls_reload),
	    cmocka_unit_test(test_starttls_injection_discarded),
	    cmocka_unit_test(test_starttls_split_injection),
	    cmocka_unit_test(test_tls11_refused),
	    cmocka_unit_test(test_client_starttls),
	    cmocka_unit_test(test_client_verify_failure),
	    cmocka_unit_test(test_ctx_errors),
	    cmocka_unit_test(test_compress_over_tls),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
