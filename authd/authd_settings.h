/*
 * authd's settings, read once from the config (authd_settings_load) so the rest of authd
 * does not look keys up by name. The strings are copies owned by the struct (requests in
 * the thread pool may outlive a config that SIGHUP replaced); authd_settings_free()
 * releases them.
 */
#ifndef TERN_AUTHD_SETTINGS_H
#define TERN_AUTHD_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct config;

struct authd_settings {
	const char *passwd_file;
	const char *mail_root;
	const char *default_domain; /* appended to names without '@'; "" = none */
	bool username_lowercase;
	const char *default_scheme;
	const char *const *mechanisms; /* configured SASL mechanisms, upper case */
	size_t n_mechanisms;
	bool allow_plaintext_insecure;
	uint64_t failure_delay_ms;
	uint64_t failure_delay_max_ms;
	uint64_t request_timeout_ms;
	unsigned max_requests_per_conn;
	size_t cache_size;     /* auth_cache_size: 0 = no cache */
	uint64_t cache_ttl_ms; /* auth_cache_ttl */
};

/* Fills s from cfg. Returns 0, or -1 with *error_r (caller frees). */
int authd_settings_load(const struct config *cfg, struct authd_settings *s, char **error_r);
void authd_settings_free(struct authd_settings *s);

/*
 * The canonical form of a user name: trimmed of nothing, lower-cased when configured (the
 * domain always), "@default_domain" appended to a bare name when one is set. Refuses
 * names that are empty, longer than 255 bytes, contain control characters, spaces, ':',
 * '/', or more than one '@', or whose local part or domain is empty, "." or "..".
 * Returns a new string (caller frees) or NULL.
 */
char *authd_user_canonicalize(const struct authd_settings *s, const char *name);

/* The Maildir root of a canonical user: <mail_root>/<domain>/<local part> (caller frees);
 * NULL when the name has no domain. */
char *authd_user_home(const struct authd_settings *s, const char *canonical_user);

#endif
