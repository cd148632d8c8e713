/*
 * authd's sockets on the net layer: the auth-client listener (auth_session per
 * connection) and the auth-userdb listener (userdb_session per connection, after an
 * SO_PEERCRED check). These are the daemon_hooks of tern-authd (main.c), and tests call
 * them directly on their own loop.
 */
#ifndef TERN_AUTHD_AUTHD_SERVER_H
#define TERN_AUTHD_AUTHD_SERVER_H

#include <uv.h>

struct config;

/* Loads the settings, opens the passwd-file, binds both sockets. Returns 0, or -1 with
 * *error_r (caller frees). */
int authd_server_setup(uv_loop_t *loop, const struct config *cfg, char **error_r);
/* SIGHUP: the passwd-file reloads by itself; settings need a restart (logged). */
int authd_server_reload(const struct config *cfg, char **error_r);
/* Stops both listeners and closes every connection. */
void authd_server_shutdown(void);
/* Frees what setup allocated, once the loop has no more authd handles (tests). */
void authd_server_free(void);

#endif
