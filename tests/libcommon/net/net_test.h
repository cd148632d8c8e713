/*
 * Shared by the net tests: a throwaway self-signed certificate, an echo-style line
 * protocol served by a real listener on loopback, and blocking client helpers that run in
 * a thread while the test's uv loop serves. Every wait is bounded (socket timeouts, a
 * deadline timer on the loop, bounded retry counts).
 */
#ifndef TERN_TEST_NET_TEST_H
#define TERN_TEST_NET_TEST_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "base/buf.h"
#include "base/log.h"
#include "net/conn.h"
#include "net/listener.h"
#include "net/tls.h"
#include "proto/line.h"

#define NT_UNUSED __attribute__((unused))
#define NT_DEADLINE_MS 30000
#define NT_SOCK_TIMEOUT_S 10

/* --- a throwaway certificate ------------------------------------------------------- */

struct nt_cert {
	char dir[64];
	char cert[128];
	char key[128];
};

NT_UNUSED static void nt_cert_make(struct nt_cert *nc)
{
	strcpy(nc->dir, "/tmp/tern-net-test-XXXXXX");
	if (mkdtemp(nc->dir) == NULL)
		fail_msg("mkdtemp: %s", strerror(errno));
	snprintf(nc->cert, sizeof(nc->cert), "%s/cert.pem", nc->dir);
	snprintf(nc->key, sizeof(nc->key), "%s/key.pem", nc->dir);
	EVP_PKEY *pkey = EVP_EC_gen("P-256");
	assert_non_null(pkey);
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24);
	X509_set_pubkey(x, pkey);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1,
	                           -1, 0);
	X509_set_issuer_name(x, name);
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost");
	assert_non_null(ext);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, pkey, EVP_sha256()) > 0);
	FILE *f = fopen(nc->cert, "w");
	assert_non_null(f);
	PEM_write_X509(f, x);
	fclose(f);
	f = fopen(nc->key, "w");
	assert_non_null(f);
	PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(pkey);
}

NT_UNUSED static void nt_cert_remove(struct nt_cert *nc)
{
	unlink(nc->cert);
	unlink(nc->key);
	rmdir(nc->dir);
}

/* --- the echo protocol --------------------------------------------------------------- */

struct nt_server {
	uv_loop_t *loop;
	struct listener *l;
	int port;
	struct tls_ctx *tls;
	struct buf seen; /* every command line, '|'-terminated */
	unsigned opens, closes, timeouts, drains, overflows;
	int flood_result;
	size_t max_pending;
	uid_t last_uid;
	bool consume_nothing; /* for the overflow test: never consume input */
	/* ASYNC: one pending "backend" call at a time, like an authd lookup. */
	uv_timer_t async_timer;
	bool async_inited;
	struct conn *async_conn;
};

struct nt_session {
	struct nt_server *srv;
	struct conn *c;
	size_t big_left;
	bool skipping;
};

static void nt_big_continue(struct nt_session *s)
{
	static const char chunk[16384] = {[0 ... 16383] = 'x'};
	while (s->big_left > 0) {
		size_t n = s->big_left < sizeof(chunk) ? s->big_left : sizeof(chunk);
		s->big_left -= n;
		int r = conn_write(s->c, chunk, n);
		size_t pending = conn_output_pending(s->c);
		if (pending > s->srv->max_pending)
			s->srv->max_pending = pending;
		if (r < 0)
			return;
		if (s->big_left == 0)
			conn_write_str(s->c, "\r\nEND\r\n");
		if (r == 1)
			return; /* back-pressure: on_drain resumes */
	}
}

static void nt_on_async_done(uv_timer_t *t)
{
	struct nt_server *srv = t->data;
	if (srv->async_conn == NULL)
		return;
	conn_write_str(srv->async_conn, "async done\r\n");
	conn_resume_read(srv->async_conn);
	srv->async_conn = NULL;
}

static void nt_command(struct nt_session *s, const char *line, size_t len, struct buf *in)
{
	struct nt_server *srv = s->srv;
	buf_append(&srv->seen, line, len);
	buf_append_char(&srv->seen, '|');
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "%.*s", (int)(len < 255 ? len : 255), line);
	if (strncmp(cmd, "ECHO ", 5) == 0) {
		conn_printf(s->c, "%s\r\n", cmd + 5);
	} else if (strncmp(cmd, "BIG ", 4) == 0) {
		s->big_left = strtoul(cmd + 4, NULL, 10);
		nt_big_continue(s);
	} else if (strncmp(cmd, "FLOOD ", 6) == 0) {
		size_t n = strtoul(cmd + 6, NULL, 10);
		char *p = malloc(n);
		memset(p, 'f', n);
		srv->flood_result = conn_write(s->c, p, n);
		free(p);
		if (srv->flood_result >= 0)
			conn_write_str(s->c, "\r\nFLOODED\r\n");
	} else if (strcmp(cmd, "STARTTLS") == 0) {
		conn_write_str(s->c, "220 go ahead\r\n");
		if (conn_starttls(s->c, srv->tls) < 0)
			conn_write_str(s->c, "454 no TLS\r\n");
		(void)in;
	} else if (strcmp(cmd, "COMPRESS") == 0) {
		/* The reply is written before the switch: it goes out uncompressed. */
		conn_write_str(s->c, "OK deflate\r\n");
		if (conn_start_compress(s->c) < 0)
			conn_write_str(s->c, "NO already\r\n");
	} else if (strcmp(cmd, "STALL") == 0) {
		srv->consume_nothing = true; /* from now on nothing is consumed */
	} else if (strcmp(cmd, "ZMEM") == 0) {
		size_t peak;
		size_t now = conn_compress_memory(s->c, &peak);
		conn_printf(s->c, "zmem=%zu peak=%zu\r\n", now, peak);
	} else if (strcmp(cmd, "TLS") == 0) {
		conn_printf(s->c, "tls=%s %s\r\n", conn_tls_version(s->c) ?: "none",
		            conn_tls_cipher(s->c) ?: "none");
	} else if (strcmp(cmd, "CRED") == 0) {
		uid_t uid = (uid_t)-1;
		if (conn_peer_cred(s->c, &uid, NULL, NULL) == 0)
			conn_printf(s->c, "uid=%ld\r\n", (long)uid);
		else
			conn_write_str(s->c, "nocred\r\n");
	} else if (strcmp(cmd, "PEER") == 0) {
		conn_printf(s->c, "peer=%s loop=%d\r\n", conn_peer_ip(s->c),
		            conn_is_loopback(s->c) ? 1 : 0);
	} else if (strncmp(cmd, "ASYNC ", 6) == 0) {
		/* Wait for a pretend backend; pipelined input must wait too. */
		if (!srv->async_inited) {
			uv_timer_init(srv->loop, &srv->async_timer);
			srv->async_timer.data = srv;
			srv->async_inited = true;
		}
		srv->async_conn = s->c;
		conn_pause_read(s->c);
		uv_timer_start(&srv->async_timer, nt_on_async_done, strtoul(cmd + 6, NULL, 10), 0);
	} else if (strcmp(cmd, "QUIT") == 0) {
		conn_write_str(s->c, "221 bye\r\n");
		conn_close(s->c);
	} else if (strcmp(cmd, "SHUTDOWN") == 0) {
		conn_write_str(s->c, "221 bye\r\n");
		conn_close(s->c);
		listener_stop(srv->l);
	} else {
		conn_write_str(s->c, "500 unknown\r\n");
	}
}

static void nt_on_open(struct conn *c)
{
	struct nt_server *srv = listener_ops_data(c);
	struct nt_session *s = calloc(1, sizeof(*s));
	s->srv = srv;
	s->c = c;
	conn_set_data(c, s);
	srv->opens++;
	conn_write_str(c, "220 hello\r\n");
}

static void nt_on_data(struct conn *c, struct buf *in)
{
	struct nt_session *s = conn_data(c);
	if (s->srv->consume_nothing)
		return;
	while (in->len > 0 && !conn_is_closing(c) && s->srv->async_conn != c) {
		if (s->skipping) {
			bool done;
			buf_consume(in, line_skip(in->data, in->len, &done));
			if (!done)
				return;
			s->skipping = false;
			continue;
		}
		size_t len, used;
		enum line_result r =
		    line_next(in->data, in->len, 1000, LINE_MODE_CRLF, &len, &used);
		if (r == LINE_NEED_MORE)
			return;
		if (r == LINE_TOO_LONG) {
			conn_write_str(c, "500 line too long\r\n");
			s->skipping = true;
			continue;
		}
		if (r != LINE_OK) {
			conn_write_str(c, "500 bare CR or LF\r\n");
			buf_consume(in, used);
			continue;
		}
		char *line = malloc(len + 1);
		memcpy(line, in->data, len);
		line[len] = '\0';
		buf_consume(in, used);
		nt_command(s, line, len, in);
		free(line);
	}
}

static void nt_on_drain(struct conn *c)
{
	struct nt_session *s = conn_data(c);
	s->srv->drains++;
	nt_big_continue(s);
}

static void nt_on_overflow(struct conn *c)
{
	struct nt_session *s = conn_data(c);
	s->srv->overflows++;
	conn_write_str(c, "500 input overflow\r\n");
	conn_close(c);
}

static void nt_on_timeout(struct conn *c)
{
	struct nt_session *s = conn_data(c);
	s->srv->timeouts++;
	conn_write_str(c, "421 timeout\r\n");
}

static void nt_on_close(struct conn *c)
{
	struct nt_session *s = conn_data(c);
	s->srv->closes++;
	if (s->srv->async_conn == c)
		s->srv->async_conn = NULL;
	free(s);
}

NT_UNUSED static const struct conn_ops nt_ops = {
    .on_open = nt_on_open,
    .on_data = nt_on_data,
    .on_drain = nt_on_drain,
    .on_overflow = nt_on_overflow,
    .on_timeout = nt_on_timeout,
    .on_close = nt_on_close,
};

/* Starts the echo server on 127.0.0.1:0 (or cfg->address when set). */
NT_UNUSED static void nt_server_start(struct nt_server *srv, uv_loop_t *loop,
                                      struct listener_config *cfg)
{
	memset(srv, 0, sizeof(*srv));
	srv->loop = loop;
	buf_init(&srv->seen, 0);
	if (cfg->ops == NULL)
		cfg->ops = &nt_ops;
	cfg->ops_data = srv;
	if (cfg->name == NULL)
		cfg->name = "test";
	if (cfg->address == NULL)
		cfg->address = "127.0.0.1:0";
	srv->tls = cfg->tls;
	char *error = NULL;
	srv->l = listener_start(loop, cfg, &error);
	if (srv->l == NULL)
		fail_msg("listener_start: %s", error);
	srv->port = listener_port(srv->l);
}

/* Frees the listener and runs the loop until every handle is closed; the loop must then
 * close cleanly (nothing leaked). */
NT_UNUSED static void nt_server_finish(struct nt_server *srv)
{
	listener_free(&srv->l);
	if (srv->async_inited)
		uv_close((uv_handle_t *)&srv->async_timer, NULL);
	for (int i = 0; i < 1000 && uv_run(srv->loop, UV_RUN_NOWAIT) != 0; i++)
		usleep(1000);
	assert_int_equal(uv_loop_close(srv->loop), 0);
	buf_free(&srv->seen);
}

/* --- running a blocking client in a thread against the loop ------------------------- */

struct nt_client_run {
	void *(*fn)(void *);
	void *arg;
	uv_async_t done;
	bool finished;
	void *result;
};

static void *nt_client_trampoline(void *p)
{
	struct nt_client_run *r = p;
	r->result = r->fn(r->arg);
	uv_async_send(&r->done);
	return NULL;
}

static void nt_on_client_done(uv_async_t *a)
{
	struct nt_client_run *r = a->data;
	r->finished = true;
}

static void nt_on_deadline(uv_timer_t *t)
{
	bool *expired = t->data;
	*expired = true;
}

/* Runs fn(arg) in a thread while serving the loop; returns what fn returned (NULL = ok,
 * otherwise a static failure message). */
NT_UNUSED static const char *nt_run_client(uv_loop_t *loop, void *(*fn)(void *), void *arg)
{
	struct nt_client_run r = {.fn = fn, .arg = arg};
	bool expired = false;
	uv_timer_t deadline;
	uv_async_init(loop, &r.done, nt_on_client_done);
	r.done.data = &r;
	uv_timer_init(loop, &deadline);
	deadline.data = &expired;
	uv_timer_start(&deadline, nt_on_deadline, NT_DEADLINE_MS, 0);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, nt_client_trampoline, &r), 0);
	while (!r.finished && !expired)
		uv_run(loop, UV_RUN_ONCE);
	pthread_join(th, NULL);
	uv_close((uv_handle_t *)&r.done, NULL);
	uv_close((uv_handle_t *)&deadline, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	if (expired)
		return "deadline passed";
	return r.result;
}

/* Serves the loop until cond(arg) holds, bounded by the deadline. */
NT_UNUSED static bool nt_run_until(uv_loop_t *loop, bool (*cond)(void *), void *arg)
{
	bool expired = false;
	uv_timer_t deadline;
	uv_timer_init(loop, &deadline);
	deadline.data = &expired;
	uv_timer_start(&deadline, nt_on_deadline, NT_DEADLINE_MS, 0);
	while (!cond(arg) && !expired)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&deadline, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return !expired;
}

/* --- blocking client helpers --------------------------------------------------------- */

NT_UNUSED static uint64_t nt_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void nt_set_timeout(int fd, int seconds)
{
	struct timeval tv = {.tv_sec = seconds};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* Connects to 127.0.0.1:port from src (NULL = any); -1 on failure. */
NT_UNUSED static int nt_connect_from(int port, const char *src)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	nt_set_timeout(fd, NT_SOCK_TIMEOUT_S);
	if (src != NULL) {
		struct sockaddr_in sa = {.sin_family = AF_INET};
		inet_pton(AF_INET, src, &sa.sin_addr);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			close(fd);
			return -1;
		}
	}
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

NT_UNUSED static int nt_connect(int port)
{
	return nt_connect_from(port, NULL);
}

NT_UNUSED static int nt_connect_unix(const char *path)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	nt_set_timeout(fd, NT_SOCK_TIMEOUT_S);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

NT_UNUSED static bool nt_send(int fd, const char *s)
{
	size_t n = strlen(s);
	while (n > 0) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w <= 0)
			return false;
		s += w;
		n -= (size_t)w;
	}
	return true;
}

/* Reads one line (CRLF stripped) into out; returns false on EOF, error or timeout. */
NT_UNUSED static bool nt_read_line(int fd, char *out, size_t size)
{
	size_t n = 0;
	for (;;) {
		char ch;
		ssize_t r = recv(fd, &ch, 1, 0);
		if (r <= 0)
			return false;
		if (ch == '\n')
			break;
		if (n + 1 < size)
			out[n++] = ch;
	}
	if (n > 0 && out[n - 1] == '\r')
		n--;
	out[n] = '\0';
	return true;
}

/* Reads until EOF (or error/timeout); returns the byte count, -1 on timeout. */
NT_UNUSED static long nt_read_to_eof(int fd)
{
	char tmp[8192];
	long total = 0;
	for (;;) {
		ssize_t r = recv(fd, tmp, sizeof(tmp), 0);
		if (r == 0)
			return total;
		if (r < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? -1 : total;
		total += r;
	}
}

/* TLS over a blocking fd (the test's client side). */
NT_UNUSED static bool nt_ssl_read_line(SSL *ssl, char *out, size_t size)
{
	size_t n = 0;
	for (;;) {
		char ch;
		if (SSL_read(ssl, &ch, 1) != 1)
			return false;
		if (ch == '\n')
			break;
		if (n + 1 < size)
			out[n++] = ch;
	}
	if (n > 0 && out[n - 1] == '\r')
		n--;
	out[n] = '\0';
	return true;
}

NT_UNUSED static bool nt_ssl_send(SSL *ssl, const char *s)
{
	return SSL_write(ssl, s, (int)strlen(s)) == (int)strlen(s);
}

#define NT_CHECK(cond, msg)                                                                        \
	do {                                                                                       \
		if (!(cond))                                                                       \
			return (void *)(msg);                                                      \
	} while (0)

#define NT_EXPECT_LINE(fd, want)                                                                   \
	do {                                                                                       \
		char line_[512];                                                                   \
		NT_CHECK(nt_read_line(fd, line_, sizeof(line_)), "EOF waiting for " want);         \
		NT_CHECK(strcmp(line_, want) == 0, "unexpected reply, wanted " want);              \
	} while (0)

#endif
