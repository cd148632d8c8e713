/*
 * The production pop3_auth_ops: authd's auth-client socket for logins (USER/PASS as SASL
 * PLAIN, AUTH as given) and its auth-userdb socket for the user's Maildir. One per
 * daemon, shared by every session.
 */
#ifndef TERN_POP3D_POP3_AUTH_H
#define TERN_POP3D_POP3_AUTH_H

#include <stdbool.h>

#include <uv.h>

#include "session.h"

struct pop3_auth;

/* authd's auth-client and userdb sockets ([authd] auth_socket, userdb_socket).
 * Connects lazily. */
struct pop3_auth *pop3_auth_new(uv_loop_t *loop, const char *auth_socket,
                                const char *userdb_socket);
void pop3_auth_free(struct pop3_auth **pa);
/* True once authd answered the handshake (its mechanisms are known). */
bool pop3_auth_ready(const struct pop3_auth *pa);

extern const struct pop3_auth_ops pop3_auth_ops;

#endif
