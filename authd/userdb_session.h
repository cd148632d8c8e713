/*
 * One auth-userdb connection: authd sends "VERSION 1 0" and "SPID"; the client sends its
 * VERSION, then USER lookups:
 *
 *   C: USER <id> <user> service=<s>
 *   S: USER <id> <canonical user> home=<mail_root>/<domain>/<user> mail=maildir:<home>
 *      [uid=..] [gid=..] [quota_bytes=N] [quota_messages=N]
 *    | NOTFOUND <id>
 *    | FAIL <id> <reason>
 *
 * Transport-agnostic like auth_session (the peer-credential check is done by the glue
 * before a session exists). A malformed line closes the connection.
 */
#ifndef TERN_AUTHD_USERDB_SESSION_H
#define TERN_AUTHD_USERDB_SESSION_H

#include "auth_session.h"

struct userdb_session;

/* Writes the greeting at once. */
struct userdb_session *userdb_session_new(struct authd *a, const struct auth_session_io *io,
                                          void *io_context);
void userdb_session_feed(struct userdb_session *s, struct buf *in);
void userdb_session_free(struct userdb_session **s);

#endif
