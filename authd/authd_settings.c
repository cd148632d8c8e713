/* Reading authd's settings from the config, and user-name canonicalisation. */
#include "authd_settings.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "config/config.h"
#include "password_scheme.h"

int authd_settings_load(const struct config *cfg, struct authd_settings *s, char **error_r)
{
	size_t n_domains;
	const char *const *domains = config_list(cfg, "global", "domains", &n_domains);

	size_t n_mechs;
	const char *const *mechs = config_list(cfg, "authd", "auth_mechanisms", &n_mechs);

	/* Copies: requests in the thread pool may outlive a config swapped by SIGHUP. */
	memset(s, 0, sizeof(*s));
	s->passwd_file = xstrdup(config_str(cfg, "global", "passwd_file"));
	s->mail_root = xstrdup(config_str(cfg, "global", "mail_root"));
	const char *dom = config_str(cfg, "authd", "auth_default_domain");
	if (dom[0] == '\0' && n_domains > 0)
		dom = domains[0];
	s->default_domain = xstrdup(dom);
	for (char *p = (char *)s->default_domain; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	s->username_lowercase = config_bool(cfg, "authd", "auth_username_lowercase");
	s->default_scheme = xstrdup(config_str(cfg, "authd", "auth_default_scheme"));
	char **m = xcalloc(n_mechs + 1, sizeof(*m));
	for (size_t i = 0; i < n_mechs; i++) {
		m[i] = xstrdup(mechs[i]);
		for (char *p = m[i]; *p != '\0'; p++)
			*p = (char)toupper((unsigned char)*p);
	}
	s->mechanisms = (const char *const *)m;
	s->n_mechanisms = n_mechs;
	s->allow_plaintext_insecure = config_bool(cfg, "authd", "auth_allow_plaintext_insecure");
	s->failure_delay_ms = config_time_ms(cfg, "authd", "auth_failure_delay");
	s->failure_delay_max_ms = config_time_ms(cfg, "authd", "auth_failure_delay_max");
	s->request_timeout_ms = config_time_ms(cfg, "authd", "auth_request_timeout");
	s->max_requests_per_conn = (unsigned)config_int(cfg, "authd", "auth_max_requests_per_conn");
	s->cache_size = (size_t)config_int(cfg, "authd", "auth_cache_size");
	s->cache_ttl_ms = config_time_ms(cfg, "authd", "auth_cache_ttl");
	if (!password_scheme_is_known(s->default_scheme)) {
		*error_r = xasprintf("auth_default_scheme: unknown scheme %s", s->default_scheme);
		return -1;
	}
	if (s->failure_delay_max_ms < s->failure_delay_ms) {
		*error_r = xstrdup("auth_failure_delay_max is below auth_failure_delay");
		return -1;
	}
	return 0;
}

void authd_settings_free(struct authd_settings *s)
{
	free((char *)s->passwd_file);
	free((char *)s->mail_root);
	free((char *)s->default_domain);
	free((char *)s->default_scheme);
	for (size_t i = 0; i < s->n_mechanisms; i++)
		free((char *)s->mechanisms[i]);
	free((void *)s->mechanisms);
	memset(s, 0, sizeof(*s));
}

static bool name_part_ok(const char *p, size_t len)
{
	if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c <= ' ' || c == 0x7f || c == ':' || c == '/' || c == '@' || c == '\\')
			return false;
	}
	return true;
}

char *authd_user_canonicalize(const struct authd_settings *s, const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > 255)
		return NULL;
	const char *at = strchr(name, '@');
	char *out;
	if (at == NULL && s->default_domain != NULL && s->default_domain[0] != '\0')
		out = xasprintf("%s@%s", name, s->default_domain);
	else
		out = xstrdup(name);
	char *dom = strchr(out, '@');
	size_t local_len = dom != NULL ? (size_t)(dom - out) : strlen(out);
	if (!name_part_ok(out, local_len) ||
	    (dom != NULL && (!name_part_ok(dom + 1, strlen(dom + 1)) || strlen(out) > 255))) {
		free(out);
		return NULL;
	}
	char *lower_from = s->username_lowercase ? out : dom;
	for (char *p = lower_from; p != NULL && *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return out;
}

char *authd_user_home(const struct authd_settings *s, const char *canonical_user)
{
	const char *at = strchr(canonical_user, '@');

	if (at == NULL)
		return NULL;
	return xasprintf("%s/%s/%.*s", s->mail_root, at + 1, (int)(at - canonical_user),
	                 canonical_user);
}
