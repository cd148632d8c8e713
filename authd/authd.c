/* authd's shared state: settings, the passdb, the penalty table, the mechanism list. */
#include "authd.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth_cache.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "passdb_file.h"
#include "password_scheme.h"
#include "penalty.h"
#include "sasl_exchange.h"

#define PENALTY_MAX_ENTRIES 65536

int authd_init(struct authd *a, uv_loop_t *loop, const struct authd_settings *set, char **error_r)
{
	const char *error = NULL;

	memset(a, 0, sizeof(*a));
	a->loop = loop;
	a->set = *set;
	if (sasl_exchange_global_init(error_r) < 0)
		return -1;
	a->passdb = passdb_file_open(&a->set, a->set.passwd_file, error_r);
	if (a->passdb == NULL)
		return -1;
	a->dummy_hash = password_generate(a->set.default_scheme, "tern dummy password", &error);
	if (a->dummy_hash == NULL) {
		*error_r = xasprintf("cannot hash with %s: %s", a->set.default_scheme, error);
		return -1;
	}
	a->penalty =
	    penalty_new(a->set.failure_delay_ms, a->set.failure_delay_max_ms, PENALTY_MAX_ENTRIES);
	a->cache = auth_cache_new(a->set.cache_size, a->set.cache_ttl_ms);
	if (a->cache == NULL && a->set.cache_size > 0)
		log_warn("auth cache not available (no memory or no HMAC); continuing without");
	if (gethostname(a->hostname, sizeof(a->hostname) - 1) < 0)
		strcpy(a->hostname, "localhost");
	a->next_cuid = 1;
	return 0;
}

void authd_deinit(struct authd *a)
{
	passdb_file_free(&a->passdb);
	penalty_free(&a->penalty);
	auth_cache_free(&a->cache);
	free(a->dummy_hash);
	authd_settings_free(&a->set);
}

bool authd_mech_is_plaintext(const char *mech)
{
	return strcmp(mech, "PLAIN") == 0 || strcmp(mech, "LOGIN") == 0;
}

size_t authd_mechs(struct authd *a, const char **names_r, size_t max)
{
	static const char *const supported[] = {"PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256"};
	struct passdb *db = passdb_file_get(a->passdb);
	size_t n = 0;

	for (size_t i = 0; i < a->set.n_mechanisms && n < max; i++) {
		const char *m = a->set.mechanisms[i];
		const char *name = NULL;
		for (size_t k = 0; k < sizeof(supported) / sizeof(supported[0]); k++) {
			if (strcmp(m, supported[k]) == 0)
				name = supported[k];
		}
		if (name == NULL || !sasl_exchange_mech_available(name))
			continue;
		/* Never advertise a mechanism that cannot succeed for some user: clients
		 * such as Roundcube pick the strongest one offered. */
		if (strcmp(name, "CRAM-MD5") == 0 && !db->all_plaintext)
			continue;
		if (strcmp(name, "SCRAM-SHA-256") == 0 && !db->all_scram)
			continue;
		names_r[n++] = name;
	}
	passdb_unref(&db);
	return n;
}
