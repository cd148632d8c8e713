/*
 * The imapd process: its listeners, TLS context, authd clients and limits. One per
 * process; sessions reach it through imap_server (set up once by imap_server_setup()).
 */
#ifndef TERN_IMAPD_IMAP_SERVER_H
#define TERN_IMAPD_IMAP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "imap_args.h"
#include "imap_reader.h"

struct auth_client;
struct config;
struct listener;
struct store_pool;
struct tls_ctx;
struct userdb_client;

struct imap_server {
	uv_loop_t *loop;
	struct tls_ctx *tls; /* NULL when no certificate is configured */
	struct auth_client *auth;
	struct userdb_client *userdb;
	struct listener **listeners;
	size_t n_listeners;
	struct imap_reader_limits reader_limits;
	struct imap_args_limits args_limits;
	uint64_t idle_timeout_ms;  /* authenticated; RFC 3501 5.4: at least 30 min */
	uint64_t login_timeout_ms; /* before authentication */
	unsigned max_bad_commands; /* then BYE */
	bool literal_plus;         /* LITERAL+ advertised; else LITERAL- with its 4096 cap */
	bool shutting_down;
	/* Loaded folders shared by the sessions (SELECT, STATUS, APPEND, COPY targets). */
	struct store_pool *pool;
};

extern struct imap_server imap_server;

int imap_server_setup(uv_loop_t *loop, const struct config *cfg, char **error_r);
int imap_server_reload(const struct config *cfg, char **error_r);
void imap_server_shutdown(void);

#endif
