/*
 * TLS on a struct conn: OpenSSL runs over two memory BIOs and this file moves ciphertext
 * between them and the libuv stream, so the loop never blocks and the conn's caps apply
 * to TLS exactly as to plaintext.
 *
 * STARTTLS (server): conn_starttls() empties the input buffer and enters FLUSH_PLAIN,
 * where every byte read is discarded until our plaintext reply has been written; only
 * then does the handshake start (CVE-2011-0411: a command pipelined behind STARTTLS must
 * never run inside the TLS session). A client cannot legitimately send its ClientHello
 * before it has read that reply.
 */
#include "net/conn_int.h"

#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "net/tls.h"

/* Above this much undecrypted ciphertext, reading waits for the protocol to consume. */
#define TLS_MAX_BUFFERED_CIPHERTEXT (64 * 1024)

static _Thread_local char tls_scratch[16 * 1024];

int conn_tls_setup(struct conn *c, struct tls_ctx *tls, bool server, enum conn_tls_phase phase,
                   const char *sni)
{
	SSL *ssl = SSL_new(tls_ctx_ssl(tls));
	if (ssl == NULL) {
		char err[256];
		log_warn("TLS: SSL_new failed: %s", tls_error_string(err, sizeof(err)));
		return -1;
	}
	struct conn_tls *t = xcalloc(1, sizeof(*t));
	t->ssl = ssl;
	t->rbio = BIO_new(BIO_s_mem());
	t->wbio = BIO_new(BIO_s_mem());
	if (t->rbio == NULL || t->wbio == NULL)
		log_panic("TLS: cannot allocate memory BIOs");
	/* An empty memory BIO reports "retry", not EOF. */
	BIO_set_mem_eof_return(t->rbio, -1);
	SSL_set_bio(ssl, t->rbio, t->wbio);
	buf_init(&t->plain_out, 0);
	t->phase = phase;
	if (server) {
		SSL_set_accept_state(ssl);
	} else {
		SSL_set_connect_state(ssl);
		if (sni != NULL && sni[0] != '\0') {
			SSL_set_tlsext_host_name(ssl, sni);
			if (tls_ctx_verifies(tls))
				SSL_set1_host(ssl, sni);
		}
	}
	c->tls = t;
	return 0;
}

void conn_tls_free(struct conn *c)
{
	if (c->tls == NULL)
		return;
	SSL_free(c->tls->ssl); /* frees both BIOs */
	buf_free(&c->tls->plain_out);
	free(c->tls);
	c->tls = NULL;
}

/* Moves ciphertext OpenSSL produced into the output queue. */
static void conn_tls_drain(struct conn *c)
{
	char *p;
	long n = BIO_get_mem_data(c->tls->wbio, &p);
	if (n <= 0)
		return;
	conn_queue_wire(c, p, (size_t)n);
	(void)BIO_reset(c->tls->wbio);
	conn_flush(c);
}

void conn_tls_input(struct conn *c, const char *data, size_t len)
{
	if (c->tls->phase == TLS_PHASE_DOWN)
		return;
	if (BIO_write(c->tls->rbio, data, (int)len) != (int)len)
		log_panic("TLS: memory BIO write failed");
}

bool conn_tls_has_buffered(const struct conn *c)
{
	const struct conn_tls *t = c->tls;
	if (t == NULL || t->phase != TLS_PHASE_UP)
		return false;
	return BIO_ctrl_pending(t->rbio) > 0 || SSL_pending(t->ssl) > 0;
}

static void conn_tls_failed(struct conn *c, const char *what)
{
	char err[256];
	const char *reason = tls_error_string(err, sizeof(err));
	log_info("TLS %s failed with %s[%s]: %s", what, conn_listener_name(c) ?: "peer", c->peer_ip,
	         reason);
	c->tls->phase = TLS_PHASE_DOWN;
	/* Let an alert OpenSSL queued go out, but stop all further I/O. */
	conn_tls_drain(c);
	if (c->state == CONN_HANDSHAKE)
		conn_destroy(c);
	else
		conn_close(c);
}

static int conn_tls_handshake(struct conn *c)
{
	struct conn_tls *t = c->tls;
	ERR_clear_error();
	int r = SSL_do_handshake(t->ssl);
	conn_tls_drain(c);
	if (r != 1) {
		int e = SSL_get_error(t->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return 0;
		conn_tls_failed(c, "handshake");
		return -1;
	}
	t->phase = TLS_PHASE_UP;
	t->established = true;
	log_debug("conn %llu: %s with cipher %s", (unsigned long long)c->id,
	          SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl));
	if (c->state == CONN_HANDSHAKE) {
		conn_notify_open(c);
		if (c->state != CONN_OPEN)
			return -1;
	} else {
		conn_arm_idle_timer(c);
	}
	if (t->plain_out.len > 0) {
		/* Writes made while the handshake ran, in order. */
		struct buf held = t->plain_out;
		buf_init(&t->plain_out, 0);
		int w = conn_tls_write(c, held.data, held.len);
		buf_free(&held);
		if (w < 0)
			return -1;
		conn_flush(c);
	}
	return 0;
}

int conn_tls_pump(struct conn *c)
{
	struct conn_tls *t = c->tls;
	if (t->phase == TLS_PHASE_HANDSHAKE && conn_tls_handshake(c) < 0)
		return -1;
	if (t->phase != TLS_PHASE_UP || c->state != CONN_OPEN)
		return 0;
	struct buf *target = conn_input_target(c);
	while (buf_room(target) > 0 && !c->peer_eof) {
		size_t want = buf_room(target);
		if (want > sizeof(tls_scratch))
			want = sizeof(tls_scratch);
		ERR_clear_error();
		int n = SSL_read(t->ssl, tls_scratch, (int)want);
		if (n > 0) {
			(void)buf_append(target, tls_scratch, (size_t)n);
			c->fresh_input = c->z == NULL; /* compressed input is news once inflated */
			continue;
		}
		int e = SSL_get_error(t->ssl, n);
		if (e == SSL_ERROR_WANT_READ)
			break;
		conn_tls_drain(c);
		if (e == SSL_ERROR_ZERO_RETURN) {
			/* close_notify: deliver what came before it, then close (our own
			 * close_notify answers it). */
			c->peer_eof = true;
			return 0;
		}
		conn_tls_failed(c, "read");
		return -1;
	}
	conn_tls_drain(c);
	return 0;
}

int conn_tls_write(struct conn *c, const void *data, size_t len)
{
	struct conn_tls *t = c->tls;
	if (t->phase == TLS_PHASE_FLUSH_PLAIN || t->phase == TLS_PHASE_HANDSHAKE) {
		if (buf_append(&t->plain_out, data, len) < 0)
			log_panic("TLS: held output overflow");
		return 0;
	}
	if (t->phase != TLS_PHASE_UP)
		return 0; /* being torn down: the bytes would never be read */
	const char *p = data;
	while (len > 0) {
		int chunk = len > (1 << 30) ? (1 << 30) : (int)len;
		ERR_clear_error();
		int n = SSL_write(t->ssl, p, chunk);
		if (n <= 0) {
			conn_tls_failed(c, "write");
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	conn_tls_drain(c);
	return 0;
}

void conn_tls_plain_flushed(struct conn *c)
{
	struct conn_tls *t = c->tls;
	if (c->discarded > 0)
		log_info("conn %llu: discarded %zu bytes of plaintext sent with STARTTLS by %s",
		         (unsigned long long)c->id, c->discarded, c->peer_ip);
	t->phase = TLS_PHASE_HANDSHAKE;
	/* The ClientHello, when it comes, is fed to OpenSSL by the next read. */
	conn_arm_handshake_timer(c);
}

void conn_tls_close_notify(struct conn *c)
{
	struct conn_tls *t = c->tls;
	if (t->phase == TLS_PHASE_UP) {
		ERR_clear_error();
		(void)SSL_shutdown(t->ssl);
		conn_tls_drain(c);
	}
	t->phase = TLS_PHASE_DOWN;
}

static int conn_tls_begin(struct conn *c, struct tls_ctx *tls, bool server, const char *sni)
{
	/* TLS goes under COMPRESS, never over it: after COMPRESS the stream is DEFLATE. */
	if (tls == NULL || c->tls != NULL || c->z != NULL || c->state != CONN_OPEN)
		return -1;
	if (tls_ctx_is_server(tls) != server)
		return -1;
	/* Whatever plaintext the peer sent along with the command is not trusted. */
	if (c->in.len > 0) {
		c->discarded += c->in.len;
		buf_reset(&c->in);
	}
	c->fresh_input = false;
	if (conn_tls_setup(c, tls, server, server ? TLS_PHASE_FLUSH_PLAIN : TLS_PHASE_HANDSHAKE,
	                   sni) < 0)
		return -1;
	return 0;
}

int conn_starttls(struct conn *c, struct tls_ctx *tls)
{
	if (conn_tls_begin(c, tls, true, NULL) < 0)
		return -1;
	/* When nothing is queued the reply is already out: the handshake starts now. */
	conn_flush(c);
	return 0;
}

int conn_start_tls_client(struct conn *c, struct tls_ctx *tls, const char *sni)
{
	if (conn_tls_begin(c, tls, false, sni) < 0)
		return -1;
	if (c->discarded > 0)
		log_info("conn %llu: discarded %zu bytes sent by %s after its STARTTLS reply",
		         (unsigned long long)c->id, c->discarded, c->peer_ip);
	conn_arm_handshake_timer(c);
	/* The ClientHello goes out behind whatever plaintext is still queued. */
	if (conn_tls_handshake(c) < 0)
		return 0; /* the conn is closing; on_close tells the protocol */
	return 0;
}

bool conn_is_tls(const struct conn *c)
{
	return c->tls != NULL && c->tls->established;
}

const char *conn_tls_version(const struct conn *c)
{
	return conn_is_tls(c) ? SSL_get_version(c->tls->ssl) : NULL;
}

const char *conn_tls_cipher(const struct conn *c)
{
	return conn_is_tls(c) ? SSL_get_cipher_name(c->tls->ssl) : NULL;
}
