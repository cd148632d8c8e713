/*
 * The client side of authd's auth-userdb socket: USER lookups that tell deliverd (and
 * ternctl) whether a recipient exists and where its Maildir is. Fail closed: authd down
 * or broken gives USERDB_TEMPFAIL (deliverd answers 4xx), never "found".
 */
#ifndef TERN_AUTH_USERDB_CLIENT_H
#define TERN_AUTH_USERDB_CLIENT_H

#include <stdint.h>
#include <uv.h>

struct userdb_client;

enum userdb_result {
	USERDB_FOUND,
	USERDB_NOTFOUND,
	USERDB_TEMPFAIL,
};

struct userdb_reply {
	const char *user;        /* canonical name, "alice@example.test" */
	const char *home;        /* the user's Maildir root: <mail_root>/<domain>/<user> */
	uint64_t quota_bytes;    /* 0 = unlimited */
	uint64_t quota_messages; /* 0 = unlimited */
};

/* reply is valid only during the callback (NULL unless FOUND). */
typedef void userdb_callback_t(enum userdb_result result, const struct userdb_reply *reply,
                               void *context);

struct userdb_client *userdb_client_new(uv_loop_t *loop, const char *socket_path);
void userdb_client_free(struct userdb_client **client);
/* Looks user up; the callback runs later from the loop (never before this returns).
 * Returns a handle that userdb_lookup_abort() accepts until the callback ran. */
struct userdb_lookup *userdb_client_lookup(struct userdb_client *client, const char *user,
                                           const char *service, userdb_callback_t *callback,
                                           void *context);
void userdb_lookup_abort(struct userdb_lookup **lookup);
/* Per-lookup timeout (default USERDB_CLIENT_DEFAULT_TIMEOUT_MS); past it: TEMPFAIL. */
#define USERDB_CLIENT_DEFAULT_TIMEOUT_MS 15000
void userdb_client_set_timeout(struct userdb_client *client, unsigned timeout_ms);

#endif
