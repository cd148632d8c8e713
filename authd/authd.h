/*
 * authd's process-wide state, shared by the auth-client and userdb sessions. Lives on
 * the loop thread; created in setup, kept until exit.
 */
#ifndef TERN_AUTHD_AUTHD_H
#define TERN_AUTHD_AUTHD_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "authd_settings.h"

struct auth_cache;
struct passdb_file;
struct penalty;

struct authd {
	uv_loop_t *loop;
	struct authd_settings set;
	struct passdb_file *passdb;
	struct penalty *penalty;
	struct auth_cache *cache; /* verified passwords (NULL when auth_cache_size is 0) */
	char *dummy_hash;         /* verified for unknown users (same timing as a wrong password) */
	char hostname[256];
	unsigned next_cuid;
};

/* Opens the passwd-file and initialises libsasl2. set is taken over (freed by
 * authd_deinit). Returns 0, or -1 with *error_r (caller frees). */
int authd_init(struct authd *a, uv_loop_t *loop, const struct authd_settings *set, char **error_r);
void authd_deinit(struct authd *a);

/* The mechanisms to advertise now: configured, provided by libsasl2, and (for the
 * shared-secret ones) usable by every user. Writes at most max names to names_r. */
size_t authd_mechs(struct authd *a, const char **names_r, size_t max);
/* True for PLAIN and LOGIN. */
bool authd_mech_is_plaintext(const char *mech);

#endif
