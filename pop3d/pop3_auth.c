/*
 * Maps the session's auth table onto auth_client (logins) and userdb_client (homes).
 * Both clients fail closed: authd down gives TEMPFAIL, which the session answers with
 * -ERR [SYS/TEMP].
 */
#include "pop3_auth.h"

#include <stdlib.h>

#include "auth/userdb_client.h"
#include "base/xalloc.h"

struct pop3_auth {
	struct auth_client *auth;
	struct userdb_client *userdb;
};

struct pop3_home_lookup {
	struct userdb_lookup *lookup;
	pop3_home_callback_t *callback;
	void *context;
};

struct pop3_auth *pop3_auth_new(uv_loop_t *loop, const char *auth_socket, const char *userdb_socket)
{
	struct pop3_auth *pa = xcalloc(1, sizeof(*pa));

	pa->auth = auth_client_new(loop, auth_socket);
	pa->userdb = userdb_client_new(loop, userdb_socket);
	/* Learn the mechanisms before the first CAPA. */
	auth_client_connect(pa->auth);
	return pa;
}

void pop3_auth_free(struct pop3_auth **pap)
{
	struct pop3_auth *pa = *pap;

	if (pa == NULL)
		return;
	auth_client_free(&pa->auth);
	userdb_client_free(&pa->userdb);
	free(pa);
	*pap = NULL;
}

bool pop3_auth_ready(const struct pop3_auth *pa)
{
	return auth_client_is_ready(pa->auth);
}

static size_t pa_mechs(void *ctx, const struct auth_mech **mechs_r)
{
	struct pop3_auth *pa = ctx;
	return auth_client_mechs(pa->auth, mechs_r);
}

static struct auth_request *pa_begin(void *ctx, const struct auth_request_info *info,
                                     auth_callback_t *callback, void *context)
{
	struct pop3_auth *pa = ctx;
	return auth_client_begin(pa->auth, info, callback, context);
}

static void pa_cont(struct auth_request *req, const char *response_b64)
{
	auth_request_continue(req, response_b64);
}

static void pa_abort(struct auth_request **req)
{
	auth_request_abort(req);
}

static void on_userdb_reply(enum userdb_result result, const struct userdb_reply *reply,
                            void *context)
{
	struct pop3_home_lookup *hl = context;
	pop3_home_callback_t *callback = hl->callback;
	void *cb_context = hl->context;

	free(hl);
	switch (result) {
	case USERDB_FOUND:
		if (reply->home != NULL && reply->home[0] == '/') {
			callback(POP3_HOME_FOUND, reply->home, cb_context);
			return;
		}
		/* No usable home: the user cannot have a maildrop. */
		callback(POP3_HOME_NOTFOUND, NULL, cb_context);
		return;
	case USERDB_NOTFOUND:
		callback(POP3_HOME_NOTFOUND, NULL, cb_context);
		return;
	case USERDB_TEMPFAIL:
		callback(POP3_HOME_TEMPFAIL, NULL, cb_context);
		return;
	}
}

static void *pa_lookup_home(void *ctx, const char *user, pop3_home_callback_t *callback,
                            void *context)
{
	struct pop3_auth *pa = ctx;
	struct pop3_home_lookup *hl = xcalloc(1, sizeof(*hl));

	hl->callback = callback;
	hl->context = context;
	hl->lookup = userdb_client_lookup(pa->userdb, user, "pop3", on_userdb_reply, hl);
	return hl;
}

static void pa_lookup_abort(void **handle)
{
	struct pop3_home_lookup *hl = *handle;

	if (hl != NULL) {
		userdb_lookup_abort(&hl->lookup);
		free(hl);
	}
	*handle = NULL;
}

const struct pop3_auth_ops pop3_auth_ops = {pa_mechs, pa_begin,       pa_cont,
                                            pa_abort, pa_lookup_home, pa_lookup_abort};
