/*
 * The client side of authd's auth-client socket (Dovecot auth protocol v1), used by smtpd,
 * imapd and pop3d. One struct auth_client per daemon holds one connection (reconnecting
 * on its own) and multiplexes any number of requests over it.
 *
 * Fail closed: authd down, slow (per-request timeout) or answering garbage gives
 * AUTH_RESULT_TEMPFAIL, never AUTH_RESULT_OK. An OK that carries nologin/proxy is a FAIL.
 */
#ifndef TERN_AUTH_AUTH_CLIENT_H
#define TERN_AUTH_AUTH_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct auth_client;
struct auth_request;

struct auth_mech {
	const char *name; /* "PLAIN" */
	bool plaintext;   /* the mechanism sends the password in the clear */
};

enum auth_result {
	AUTH_RESULT_OK,       /* data = the canonical user name */
	AUTH_RESULT_CONTINUE, /* data = base64 challenge (may be ""); call auth_request_continue */
	AUTH_RESULT_FAIL,     /* data = reason safe to show the user, or NULL */
	AUTH_RESULT_TEMPFAIL, /* authd unavailable or broken; data = NULL */
};

struct auth_request_info {
	const char *mech;     /* as the client named it; matched case-insensitively */
	const char *service;  /* "smtp", "imap", "pop3" */
	const char *local_ip; /* may be NULL */
	const char *remote_ip;
	int local_port, remote_port;
	bool secured; /* TLS or loopback */
	bool nologin; /* verify only (smtpd) */
	/* NULL = no initial response; "" = empty initial response ("=" in SMTP/IMAP). */
	const char *initial_response_b64;
};

/* The callback may run after the request's caller returned; `data` is valid only during
 * the call. After OK/FAIL/TEMPFAIL the request is finished and freed. */
typedef void auth_callback_t(enum auth_result result, const char *data, void *context);

/* socket_path is authd's auth socket. Connects lazily and reconnects. */
struct auth_client *auth_client_new(uv_loop_t *loop, const char *socket_path);
void auth_client_free(struct auth_client **client);
/* Mechanisms from the last handshake (empty before it or while authd is down; a call
 * while disconnected starts connecting). The array is valid until the next call into
 * the client. After the connection is lost the client reconnects on its own (1 s
 * doubling to 30 s) once auth_client_connect() or this was ever called. */
size_t auth_client_mechs(struct auth_client *client, const struct auth_mech **mechs_r);
/* Starts connecting (if not connected) so mechanisms are known soon. */
void auth_client_connect(struct auth_client *client);
/* True while connected with the handshake done (auth_client_mechs() has the list). */
bool auth_client_is_ready(const struct auth_client *client);

struct auth_request *auth_client_begin(struct auth_client *client,
                                       const struct auth_request_info *info,
                                       auth_callback_t *callback, void *context);
/* Per-request timeout (default AUTH_CLIENT_DEFAULT_TIMEOUT_MS): a request that gets no
 * answer in time finishes with TEMPFAIL. Applies to requests begun afterwards. */
#define AUTH_CLIENT_DEFAULT_TIMEOUT_MS 30000
void auth_client_set_timeout(struct auth_client *client, unsigned timeout_ms);

/* Sends the client's next response (base64) for a request in CONTINUE. */
void auth_request_continue(struct auth_request *req, const char *response_b64);
/* Cancels a pending request; its callback is never called. Sets *req to NULL. */
void auth_request_abort(struct auth_request **req);

#endif
