/*
 * TLS contexts on OpenSSL 3: TLS 1.2 and 1.3 only, modern cipher defaults (Mozilla
 * "intermediate"), server preference, no compression, no renegotiation.
 * A tls_ctx is reference-counted so a reload can swap it while connections use the old one.
 */
#ifndef TERN_NET_TLS_H
#define TERN_NET_TLS_H

#include <stdbool.h>

struct tls_ctx;

/* Server context from PEM files. Returns NULL with *error_r set on failure. */
struct tls_ctx *tls_ctx_server_new(const char *cert_file, const char *key_file, char **error_r);
/* Client context; ca_file NULL = system store; verify=false for opportunistic TLS. */
struct tls_ctx *tls_ctx_client_new(const char *ca_file, bool verify, char **error_r);
struct tls_ctx *tls_ctx_ref(struct tls_ctx *t);
void tls_ctx_unref(struct tls_ctx **t);

#endif
