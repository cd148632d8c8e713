/*
 * SASL mechanisms through libsasl2's server API (protocols.md 3.3). libsasl2 is fed from
 * the passwd-file in-process: plaintext mechanisms (PLAIN, LOGIN) verify through the
 * SASL_CB_SERVER_USERDB_CHECKPASS callback, so every scheme works; shared-secret
 * mechanisms read credentials through a built-in auxprop plugin ("tern") that returns
 * *userPassword only for plaintext-equivalent users (CRAM-MD5, SCRAM) and *authPassword
 * for stored SCRAM-SHA-256 secrets (RFC 5803 form, which the SCRAM plugin reads).
 *
 * An exchange's steps run in the libuv thread pool (hashing is slow); one exchange is
 * used by one thread at a time. Everything an exchange reads (passdb snapshot, settings)
 * is immutable while it runs.
 */
#ifndef TERN_AUTHD_SASL_EXCHANGE_H
#define TERN_AUTHD_SASL_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>

struct authd_settings;
struct buf;
struct passdb;

enum sasl_step_result {
	SASL_STEP_OK,       /* authenticated: sasl_exchange_user() is the canonical name */
	SASL_STEP_CONTINUE, /* send the challenge in `out` (raw bytes) */
	SASL_STEP_FAIL,     /* bad credentials, unknown user, or a malformed exchange */
	SASL_STEP_TEMPFAIL, /* libsasl2 or the passdb failed */
};

/* Calls sasl_server_init() once. Returns 0, or -1 with *error_r (caller frees). */
int sasl_exchange_global_init(char **error_r);
/* True when libsasl2 has a plugin for mech (upper case). */
bool sasl_exchange_mech_available(const char *mech);

struct sasl_exchange;

/* db gets a reference (the caller keeps its own); dummy_hash is verified for unknown
 * users so they take as long as a wrong password. hostname is used by CRAM-MD5. */
struct sasl_exchange *sasl_exchange_new(const struct authd_settings *set, struct passdb *db,
                                        const char *dummy_hash, const char *hostname,
                                        const char *mech);
/* One step. in == NULL means "no data" (no initial response); otherwise in[0 .. len)
 * (may be empty). The challenge is appended to out. Thread-pool safe. */
enum sasl_step_result sasl_exchange_step(struct sasl_exchange *x, const void *in, size_t len,
                                         struct buf *out);
struct auth_cache;
/* Lets plaintext mechanisms (PLAIN, LOGIN) skip the hash for a password verified
 * recently (auth_cache.h); cache may be NULL. Call before the first step. */
void sasl_exchange_set_cache(struct sasl_exchange *x, struct auth_cache *cache);

/* The canonical user after OK; after a failure the best name known for logs (may be
 * NULL). */
const char *sasl_exchange_user(const struct sasl_exchange *x);
/* The user exists but is marked nologin. */
bool sasl_exchange_user_disabled(const struct sasl_exchange *x);
/* Short reason of the last failure for logs: "unknown user", "invalid credentials", ... */
const char *sasl_exchange_failure(const struct sasl_exchange *x);
/* Must run on the loop thread (drops the passdb reference). */
void sasl_exchange_free(struct sasl_exchange **x);

#endif
