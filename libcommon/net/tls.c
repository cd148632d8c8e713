/*
 * TLS contexts (see tls.h). The policy lives here and only here: TLS 1.2 minimum, the
 * Mozilla "intermediate" (v5) cipher lists, X25519/P-256/P-384, no compression, no
 * renegotiation, no session tickets or server-side session cache (nothing to rotate,
 * nothing to leak across a reload).
 */
#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "net/conn_int.h"

/* Mozilla Server Side TLS v5, "intermediate" (AEAD only, forward secrecy only). */
#define TLS12_CIPHERS                                                                              \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                               \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                               \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                               \
	"DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384"
#define TLS13_CIPHERSUITES                                                                         \
	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS_GROUPS "X25519:P-256:P-384"

struct tls_ctx {
	SSL_CTX *ctx;
	unsigned refs;
	bool server;
	bool verify;
};

const char *tls_error_string(char *buf, size_t size)
{
	unsigned long e, last = 0;
	while ((e = ERR_get_error()) != 0)
		last = e;
	if (last == 0) {
		snprintf(buf, size, "unexpected EOF or protocol error");
		return buf;
	}
	ERR_error_string_n(last, buf, size);
	return buf;
}

static char *tls_fail(const char *what, const char *file)
{
	char err[256];
	tls_error_string(err, sizeof(err));
	return file != NULL ? xasprintf("%s %s: %s", what, file, err)
	                    : xasprintf("%s: %s", what, err);
}

static SSL_CTX *tls_ctx_common(const SSL_METHOD *method, char **error_r)
{
	SSL_CTX *ctx = SSL_CTX_new(method);
	if (ctx == NULL) {
		*error_r = tls_fail("cannot create a TLS context", NULL);
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, TLS13_CIPHERSUITES) != 1 ||
	    SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1) {
		*error_r = tls_fail("cannot apply the TLS policy", NULL);
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx,
	                    SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
	/* Mozilla v5 intermediate: the client's order wins (all suites are strong). */
	SSL_CTX_clear_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	return ctx;
}

static struct tls_ctx *tls_ctx_wrap(SSL_CTX *ctx, bool server, bool verify)
{
	struct tls_ctx *t = xcalloc(1, sizeof(*t));
	t->ctx = ctx;
	t->refs = 1;
	t->server = server;
	t->verify = verify;
	return t;
}

struct tls_ctx *tls_ctx_server_new(const char *cert_file, const char *key_file, char **error_r)
{
	ERR_clear_error();
	SSL_CTX *ctx = tls_ctx_common(TLS_server_method(), error_r);
	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_dh_auto(ctx, 1);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		*error_r = tls_fail("cannot load certificate", cert_file);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		*error_r = tls_fail("cannot load private key", key_file);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		*error_r = tls_fail("private key does not match certificate", key_file);
		goto fail;
	}
	return tls_ctx_wrap(ctx, true, false);
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

struct tls_ctx *tls_ctx_client_new(const char *ca_file, bool verify, char **error_r)
{
	ERR_clear_error();
	SSL_CTX *ctx = tls_ctx_common(TLS_client_method(), error_r);
	if (ctx == NULL)
		return NULL;
	if (verify) {
		int ok = ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
		                         : SSL_CTX_set_default_verify_paths(ctx);
		if (ok != 1) {
			*error_r = tls_fail("cannot load CA certificates", ca_file);
			SSL_CTX_free(ctx);
			return NULL;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	return tls_ctx_wrap(ctx, false, verify);
}

struct tls_ctx *tls_ctx_ref(struct tls_ctx *t)
{
	if (t != NULL)
		t->refs++;
	return t;
}

void tls_ctx_unref(struct tls_ctx **tp)
{
	struct tls_ctx *t = *tp;
	*tp = NULL;
	if (t == NULL || --t->refs > 0)
		return;
	/* Connections keep the SSL_CTX alive through their own SSL references. */
	SSL_CTX_free(t->ctx);
	free(t);
}

SSL_CTX *tls_ctx_ssl(const struct tls_ctx *t)
{
	return t->ctx;
}

bool tls_ctx_is_server(const struct tls_ctx *t)
{
	return t->server;
}

bool tls_ctx_verifies(const struct tls_ctx *t)
{
	return t->verify;
}
