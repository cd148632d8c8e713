/* Recipient resolution through the alias maps (see recipient.h for the rules). */
#include "recipient.h"

#include <stdlib.h>
#include <string.h>

#include "aliases.h"
#include "base/log.h"
#include "base/xalloc.h"

bool recipient_domain_is_local(const struct recipient_maps *m, const char *domain)
{
	for (size_t i = 0; i < m->n_domains; i++)
		if (strcmp(m->domains[i], domain) == 0)
			return true;
	return false;
}

char *recipient_mailbox_key(const struct address *a)
{
	if (a->domain[0] == '\0')
		return xstrdup(a->user);
	return xasprintf("%s@%s", a->user, a->domain);
}

static void add_address(struct recipient_targets *t, struct address *a)
{
	for (size_t i = 0; i < t->n; i++) {
		if (strcmp(t->v[i].user, a->user) == 0 && strcmp(t->v[i].domain, a->domain) == 0 &&
		    ((t->v[i].detail == NULL && a->detail == NULL) ||
		     (t->v[i].detail != NULL && a->detail != NULL &&
		      strcmp(t->v[i].detail, a->detail) == 0))) {
			address_free(a);
			return;
		}
	}
	t->v = xreallocarray(t->v, t->n + 1, sizeof(*t->v));
	t->v[t->n++] = *a;
}

static void add_copy(struct recipient_targets *t, const struct address *src)
{
	struct address a = {
	    .full = xstrdup(src->full),
	    .user = xstrdup(src->user),
	    .detail = src->detail != NULL ? xstrdup(src->detail) : NULL,
	    .domain = xstrdup(src->domain),
	};
	add_address(t, &a);
}

static void add_targets(const struct recipient_maps *m, const struct address *rcpt,
                        const char *const *targets, size_t n, struct recipient_targets *t)
{
	for (size_t i = 0; i < n; i++) {
		struct address a;
		const char *err;
		/* Map files were validated at load time; a failure here is our bug. */
		if (address_parse_plain(targets[i], true, m->delimiter, &a, &err) < 0)
			log_panic("alias target %s: %s", targets[i], err);
		if (a.domain[0] == '\0') {
			free(a.domain);
			a.domain = xstrdup(rcpt->domain);
			free(a.full);
			a.full = xasprintf("%s@%s", targets[i], a.domain);
		}
		if (a.detail == NULL && rcpt->detail != NULL && m->delimiter != '\0') {
			a.detail = xstrdup(rcpt->detail);
			free(a.full);
			a.full = xasprintf("%s%c%s@%s", a.user, m->delimiter, a.detail, a.domain);
		}
		add_address(t, &a);
	}
	t->aliased = true;
}

void recipient_expand(const struct recipient_maps *m, const struct address *rcpt,
                      struct recipient_targets *t)
{
	memset(t, 0, sizeof(*t));
	size_t n = 0;
	const char *const *targets = NULL;
	char *base = recipient_mailbox_key(rcpt);
	if (rcpt->detail != NULL && m->delimiter != '\0') {
		char *with_detail =
		    xasprintf("%s%c%s@%s", rcpt->user, m->delimiter, rcpt->detail, rcpt->domain);
		for (char *p = with_detail; *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		targets = alias_map_lookup(m->virtual_map, with_detail, &n);
		free(with_detail);
	}
	if (targets == NULL)
		targets = alias_map_lookup(m->virtual_map, base, &n);
	if (targets == NULL && recipient_domain_is_local(m, rcpt->domain))
		targets = alias_map_lookup(m->local_map, rcpt->user, &n);
	free(base);
	if (targets != NULL)
		add_targets(m, rcpt, targets, n, t);
	else
		add_copy(t, rcpt);
}

bool recipient_catchall(const struct recipient_maps *m, const struct address *rcpt,
                        struct recipient_targets *t)
{
	memset(t, 0, sizeof(*t));
	char *key = xasprintf("@%s", rcpt->domain);
	size_t n = 0;
	const char *const *targets = alias_map_lookup(m->virtual_map, key, &n);
	free(key);
	if (targets == NULL)
		return false;
	add_targets(m, rcpt, targets, n, t);
	return true;
}

void recipient_targets_free(struct recipient_targets *t)
{
	for (size_t i = 0; i < t->n; i++)
		address_free(&t->v[i]);
	free(t->v);
	memset(t, 0, sizeof(*t));
}
