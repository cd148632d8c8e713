/*
 * Recipient resolution before the mailbox lookup: which addresses an RCPT stands for
 * after the alias maps (DESIGN: one level of expansion, duplicates delivered once).
 *
 *   1. virtual map: "user+detail@domain", then "user@domain";
 *   2. local map (only for the local `domains`): "user";
 *   3. otherwise the address itself.
 * The catch-all "@domain" of the virtual map is used only when the address itself is not a
 * known mailbox (recipient_catchall(), after the userdb said NOTFOUND).
 * Targets are not expanded again: a target that is itself an alias, or the alias itself
 * ("a@d: a@d, b@d"), is delivered to the mailbox of that name, so loops cannot form.
 * A bare target takes the recipient's domain; a target without a detail inherits the
 * recipient's (+detail propagation, as Postfix does).
 */
#ifndef TERN_DELIVERD_RECIPIENT_H
#define TERN_DELIVERD_RECIPIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "address.h"

struct alias_map;

struct recipient_maps {
	struct alias_map *virtual_map;
	struct alias_map *local_map;
	const char *const *domains; /* local domains (lower-case) */
	size_t n_domains;
	char delimiter; /* '\0' = none */
};

struct recipient_targets {
	struct address *v;
	size_t n;
	bool aliased; /* true when a map matched */
};

bool recipient_domain_is_local(const struct recipient_maps *m, const char *domain);
/* Fills t with the resolved targets (at least one, deduplicated). */
void recipient_expand(const struct recipient_maps *m, const struct address *rcpt,
                      struct recipient_targets *t);
/* The catch-all targets for rcpt's domain; returns false (t empty) when there is none. */
bool recipient_catchall(const struct recipient_maps *m, const struct address *rcpt,
                        struct recipient_targets *t);
void recipient_targets_free(struct recipient_targets *t);
/* The lookup key for the userdb: "user@domain" (lower-case, no detail). */
char *recipient_mailbox_key(const struct address *a);

#endif
