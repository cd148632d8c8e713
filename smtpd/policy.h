/*
 * Relay policy, in one place (the open-relay question must have one obvious answer):
 * mail for a local domain is taken from anyone (deliverd then says whether the user
 * exists); mail for any other domain only from an authenticated client or from an address
 * in mynetworks. Also the sender-login check for authenticated submission.
 */
#ifndef TERN_SMTPD_POLICY_H
#define TERN_SMTPD_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct policy_network {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	unsigned prefix;
};

struct policy {
	char **local_domains; /* lower-case */
	size_t n_local_domains;
	struct policy_network *networks;
	size_t n_networks;
};

/* Builds the policy from config lists. Returns 0, or -1 with *error_r (caller frees) for a
 * network that does not parse ("10.0.0.0/33"). */
int policy_init(struct policy *p, const char *const *domains, size_t n_domains,
                const char *const *networks, size_t n_networks, char **error_r);
void policy_free(struct policy *p);

/* Parses "192.0.2.0/24", "2001:db8::/32" or a bare address. */
int policy_parse_network(const char *text, struct policy_network *net_r);
bool policy_ip_in_networks(const struct policy *p, const char *ip);
bool policy_domain_is_local(const struct policy *p, const char *domain);

enum policy_rcpt {
	POLICY_RCPT_LOCAL,  /* a local domain (or bare postmaster) */
	POLICY_RCPT_RELAY,  /* another domain, and the client may relay */
	POLICY_RCPT_DENIED, /* another domain, and the client may not relay */
};

enum policy_rcpt policy_check_rcpt(const struct policy *p, const char *rcpt, bool authenticated,
                                   const char *client_ip);

/* Sender-login check: may `user` (canonical name from authd) use `sender` as envelope
 * sender? The null sender is allowed; a user "bob@example.org" owns exactly that address,
 * a user "bob" owns bob@<every local domain>. Case-insensitive. */
bool policy_sender_owned(const struct policy *p, const char *user, const char *sender);

#endif
