/*
 * The tern-pop3d daemon: listeners on pop3_listen (STLS offered) and pop3s_listen
 * (implicit TLS), one pop3_session per connection, authd through pop3_auth.
 */
#ifndef TERN_POP3D_SERVER_H
#define TERN_POP3D_SERVER_H

#include "net/daemon.h"

extern const struct daemon_hooks pop3_server_hooks;

#endif
