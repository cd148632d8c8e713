/*
 * The libsasl2 glue: global init with our getopt/log callbacks and the "tern" auxprop
 * plugin, per-exchange sasl_conn_t with the checkpass callback, and the mapping of
 * libsasl2 results to OK / CONTINUE / FAIL / TEMPFAIL.
 */
#include "sasl_exchange.h"

#include <pthread.h>
#include <sasl/sasl.h>
#include <sasl/saslplug.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth_cache.h"
#include "authd_settings.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "passdb_file.h"
#include "password_scheme.h"

struct sasl_exchange {
	const struct authd_settings *set;
	struct passdb *db;
	const char *dummy_hash;
	sasl_conn_t *conn;
	char *mech;
	bool started;
	char *user; /* canonical name of the user found, or the attempt */
	bool user_found;
	bool user_disabled;
	bool temp_failure; /* the passdb could not answer */
	const char *failure;
	struct auth_cache *cache; /* may be NULL */
	sasl_callback_t callbacks[2];
};

/* libsasl2 stores every callback as int (*)(void); the detour through void (*)(void)
 * is the cast GCC accepts as deliberate. */
#define SASL_CB_FN(f) ((sasl_callback_ft)(void (*)(void))(f))

/* The exchange whose step runs on this thread, for the auxprop plugin. */
static __thread struct sasl_exchange *current_exchange;

static int on_sasl_log(void *context, int level, const char *message)
{
	(void)context;
	if (level <= SASL_LOG_ERR)
		log_warn("sasl: %s", message);
	else if (level <= SASL_LOG_NOTE)
		log_debug("sasl: %s", message);
	return SASL_OK;
}

static int on_sasl_getopt(void *context, const char *plugin, const char *option,
                          const char **result, unsigned *len)
{
	(void)context;
	(void)plugin;
	*result = NULL;
	if (strcmp(option, "auxprop_plugin") == 0)
		*result = "tern";
	else if (strcmp(option, "pwcheck_method") == 0)
		*result = "auxprop";
	else if (strcmp(option, "log_level") == 0)
		*result = "2";
	else if (strcmp(option, "mech_list") == 0)
		*result = "PLAIN LOGIN CRAM-MD5 SCRAM-SHA-256";
	if (*result == NULL)
		return SASL_FAIL;
	if (len != NULL)
		*len = (unsigned)strlen(*result);
	return SASL_OK;
}

/* Finds the user behind a name libsasl2 hands us; records it in the exchange. */
static const struct passdb_user *exchange_find_user(struct sasl_exchange *x, const char *name,
                                                    size_t len)
{
	char *raw = xstrndup(name, len);
	char *canon = strlen(raw) == len ? authd_user_canonicalize(x->set, raw) : NULL;
	const struct passdb_user *u = canon != NULL ? passdb_lookup(x->db, canon) : NULL;

	free(x->user);
	x->user = canon != NULL ? canon : raw;
	if (canon != NULL)
		free(raw);
	x->user_found = u != NULL;
	x->user_disabled = u != NULL && u->nologin;
	return u;
}

static int on_checkpass(sasl_conn_t *conn, void *context, const char *user, const char *pass,
                        unsigned passlen, struct propctx *propctx)
{
	struct sasl_exchange *x = context;
	const char *error = NULL;
	(void)conn;
	(void)propctx;

	const struct passdb_user *u = exchange_find_user(x, user, strlen(user));
	if (u == NULL || u->password == NULL) {
		/* Same work as a wrong password, so timing does not tell the two apart. */
		(void)password_verify(x->dummy_hash, pass, passlen, &error);
		x->failure = u == NULL ? "unknown user" : "invalid credentials";
		return u == NULL ? SASL_NOUSER : SASL_BADAUTH;
	}
	if (auth_cache_check(x->cache, u->name, u->password, pass, passlen)) {
		x->failure = NULL;
		return SASL_OK;
	}
	enum password_verify_result r = password_verify(u->password, pass, passlen, &error);
	if (r == PASSWORD_MATCH) {
		auth_cache_store(x->cache, u->name, u->password, pass, passlen);
		x->failure = NULL;
		return SASL_OK;
	}
	if (r == PASSWORD_INVALID) {
		log_warn("passwd-file(%s): stored password unusable: %s", u->name, error);
		x->failure = "invalid stored password";
		return SASL_BADAUTH;
	}
	x->failure = "invalid credentials";
	return SASL_BADAUTH;
}

/* The "tern" auxprop plugin: credentials for shared-secret mechanisms. */
static int tern_auxprop_lookup(void *glob_context, sasl_server_params_t *sparams, unsigned flags,
                               const char *user, unsigned ulen)
{
	struct sasl_exchange *x = current_exchange;
	(void)glob_context;

	if (x == NULL || (flags & SASL_AUXPROP_AUTHZID) != 0)
		return SASL_OK;
	const struct passdb_user *u = exchange_find_user(x, user, ulen);
	if (u == NULL || u->password == NULL) {
		x->failure = "unknown user";
		return SASL_NOUSER;
	}
	x->failure = "invalid credentials";
	const struct propval *props = sparams->utils->prop_get(sparams->propctx);
	for (const struct propval *p = props; p != NULL && p->name != NULL; p++) {
		if (p->name[0] != '*')
			continue;
		if (p->values != NULL && (flags & SASL_AUXPROP_OVERRIDE) == 0)
			continue;
		const char *plain = password_plaintext(u->password);
		struct buf scram;
		buf_init(&scram, 0);
		if (strcmp(p->name, SASL_AUX_PASSWORD) == 0 && plain != NULL) {
			if (p->values != NULL)
				sparams->utils->prop_erase(sparams->propctx, p->name);
			sparams->utils->prop_set(sparams->propctx, p->name, plain,
			                         (int)strlen(plain));
		} else if (strcmp(p->name, "*authPassword") == 0 &&
		           password_scram_authpassword(u->password, &scram) == 0) {
			if (p->values != NULL)
				sparams->utils->prop_erase(sparams->propctx, p->name);
			sparams->utils->prop_set(sparams->propctx, p->name, buf_cstr(&scram),
			                         (int)scram.len);
		}
		if (scram.data != NULL)
			secure_zero(scram.data, scram.len);
		buf_free(&scram);
	}
	return SASL_OK;
}

static int tern_auxprop_init(const sasl_utils_t *utils, int max_version, int *out_version,
                             sasl_auxprop_plug_t **plug, const char *plugname)
{
	static sasl_auxprop_plug_t tern_plug = {
	    .name = "tern",
	    .auxprop_lookup = tern_auxprop_lookup,
	};
	(void)utils;
	(void)plugname;
	if (max_version < SASL_AUXPROP_PLUG_VERSION)
		return SASL_BADVERS;
	*out_version = SASL_AUXPROP_PLUG_VERSION;
	*plug = &tern_plug;
	return SASL_OK;
}

static const char *const *available_mechs;

int sasl_exchange_global_init(char **error_r)
{
	static sasl_callback_t callbacks[] = {
	    {SASL_CB_LOG, SASL_CB_FN(on_sasl_log), NULL},
	    {SASL_CB_GETOPT, SASL_CB_FN(on_sasl_getopt), NULL},
	    {SASL_CB_LIST_END, NULL, NULL},
	};
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static int done = 0;
	int r;

	pthread_mutex_lock(&lock);
	if (done) {
		pthread_mutex_unlock(&lock);
		return 0;
	}
	r = sasl_server_init(callbacks, "tern-authd");
	if (r == SASL_OK)
		r = sasl_auxprop_add_plugin("tern", tern_auxprop_init);
	if (r != SASL_OK) {
		pthread_mutex_unlock(&lock);
		*error_r = xasprintf("sasl_server_init: %s", sasl_errstring(r, NULL, NULL));
		return -1;
	}
	available_mechs = sasl_global_listmech();
	done = 1;
	pthread_mutex_unlock(&lock);
	return 0;
}

bool sasl_exchange_mech_available(const char *mech)
{
	for (const char *const *m = available_mechs; m != NULL && *m != NULL; m++) {
		if (strcmp(*m, mech) == 0)
			return true;
	}
	return false;
}

struct sasl_exchange *sasl_exchange_new(const struct authd_settings *set, struct passdb *db,
                                        const char *dummy_hash, const char *hostname,
                                        const char *mech)
{
	struct sasl_exchange *x = xcalloc(1, sizeof(*x));
	sasl_security_properties_t secprops = {
	    .min_ssf = 0, .max_ssf = 0, .maxbufsize = 0, .security_flags = 0};

	x->set = set;
	x->db = db;
	db->refcount++;
	x->dummy_hash = dummy_hash;
	x->mech = xstrdup(mech);
	x->callbacks[0] =
	    (sasl_callback_t){SASL_CB_SERVER_USERDB_CHECKPASS, SASL_CB_FN(on_checkpass), x};
	x->callbacks[1] = (sasl_callback_t){SASL_CB_LIST_END, NULL, NULL};
	/* No SASL_SUCCESS_DATA: libsasl2 then sends the final server data (SCRAM's v=) as
	 * one more challenge and answers OK to the empty response, which every front end
	 * (SMTP 334, IMAP +) can carry. */
	if (sasl_server_new("tern", hostname, NULL, NULL, NULL, x->callbacks, 0, &x->conn) !=
	        SASL_OK ||
	    sasl_setprop(x->conn, SASL_SEC_PROPS, &secprops) != SASL_OK) {
		if (x->conn != NULL)
			sasl_dispose(&x->conn);
		x->conn = NULL;
	}
	return x;
}

void sasl_exchange_set_cache(struct sasl_exchange *x, struct auth_cache *cache)
{
	x->cache = cache;
}

enum sasl_step_result sasl_exchange_step(struct sasl_exchange *x, const void *in, size_t len,
                                         struct buf *out)
{
	const char *sout = NULL;
	unsigned soutlen = 0;
	int r;

	if (x->conn == NULL) {
		x->failure = "SASL setup failed";
		return SASL_STEP_TEMPFAIL;
	}
	if (len > UINT32_MAX / 2) {
		x->failure = "response too long";
		return SASL_STEP_FAIL;
	}
	current_exchange = x;
	if (!x->started) {
		x->started = true;
		r = sasl_server_start(x->conn, x->mech, in, (unsigned)len, &sout, &soutlen);
	} else {
		r = sasl_server_step(x->conn, in != NULL ? in : "", (unsigned)len, &sout, &soutlen);
	}
	current_exchange = NULL;
	if (r == SASL_CONTINUE) {
		if (soutlen > 0 && buf_append(out, sout, soutlen) < 0) {
			x->failure = "challenge too long";
			return SASL_STEP_FAIL;
		}
		return SASL_STEP_CONTINUE;
	}
	if (r == SASL_OK) {
		/* Plaintext mechanisms found the user in checkpass; others in the auxprop. */
		if (!x->user_found || x->user == NULL) {
			x->failure = "user not resolved";
			return SASL_STEP_TEMPFAIL;
		}
		if (x->user_disabled) {
			x->failure = "login disabled";
			return SASL_STEP_FAIL;
		}
		x->failure = NULL;
		return SASL_STEP_OK;
	}
	if (x->temp_failure || r == SASL_NOMEM || r == SASL_TRYAGAIN || r == SASL_UNAVAIL) {
		if (x->failure == NULL)
			x->failure = sasl_errstring(r, NULL, NULL);
		return SASL_STEP_TEMPFAIL;
	}
	if (x->failure == NULL || r == SASL_BADPROT)
		x->failure = r == SASL_BADPROT ? "malformed SASL exchange" : "invalid credentials";
	return SASL_STEP_FAIL;
}

const char *sasl_exchange_user(const struct sasl_exchange *x)
{
	return x->user;
}

bool sasl_exchange_user_disabled(const struct sasl_exchange *x)
{
	return x->user_disabled;
}

const char *sasl_exchange_failure(const struct sasl_exchange *x)
{
	return x->failure != NULL ? x->failure : "invalid credentials";
}

void sasl_exchange_free(struct sasl_exchange **xp)
{
	struct sasl_exchange *x = *xp;

	if (x == NULL)
		return;
	*xp = NULL;
	if (x->conn != NULL)
		sasl_dispose(&x->conn);
	passdb_unref(&x->db);
	free(x->user);
	free(x->mech);
	free(x);
}
