/*
 * Relay and sender policy. See policy.h; everything that decides "may this client send
 * mail to that address" is in this file.
 */
#include "policy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "base/xalloc.h"

int policy_parse_network(const char *text, struct policy_network *net_r)
{
	char host[64];
	const char *slash = strchr(text, '/');
	size_t hlen = slash != NULL ? (size_t)(slash - text) : strlen(text);
	unsigned maxp;

	if (hlen == 0 || hlen >= sizeof(host))
		return -1;
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	memset(net_r, 0, sizeof(*net_r));
	if (inet_pton(AF_INET, host, net_r->addr) == 1) {
		net_r->family = AF_INET;
		maxp = 32;
	} else if (inet_pton(AF_INET6, host, net_r->addr) == 1) {
		net_r->family = AF_INET6;
		maxp = 128;
	} else {
		return -1;
	}
	net_r->prefix = maxp;
	if (slash != NULL) {
		char *end;
		if (!isdigit((unsigned char)slash[1]))
			return -1;
		unsigned long v = strtoul(slash + 1, &end, 10);
		if (*end != '\0' || v > maxp)
			return -1;
		net_r->prefix = (unsigned)v;
	}
	return 0;
}

int policy_init(struct policy *p, const char *const *domains, size_t n_domains,
                const char *const *networks, size_t n_networks, char **error_r)
{
	memset(p, 0, sizeof(*p));
	p->local_domains = xcalloc(n_domains + 1, sizeof(char *));
	for (size_t i = 0; i < n_domains; i++) {
		char *d = xstrdup(domains[i]);
		for (char *c = d; *c != '\0'; c++)
			*c = (char)tolower((unsigned char)*c);
		p->local_domains[p->n_local_domains++] = d;
	}
	p->networks = xcalloc(n_networks + 1, sizeof(*p->networks));
	for (size_t i = 0; i < n_networks; i++) {
		if (policy_parse_network(networks[i], &p->networks[i]) < 0) {
			*error_r = xasprintf("mynetworks: bad network \"%s\"", networks[i]);
			policy_free(p);
			return -1;
		}
		p->n_networks++;
	}
	return 0;
}

void policy_free(struct policy *p)
{
	for (size_t i = 0; i < p->n_local_domains; i++)
		free(p->local_domains[i]);
	free(p->local_domains);
	free(p->networks);
	memset(p, 0, sizeof(*p));
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned bytes = prefix / 8, bits = prefix % 8;

	if (memcmp(a, b, bytes) != 0)
		return false;
	if (bits == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - bits));
	return (a[bytes] & mask) == (b[bytes] & mask);
}

bool policy_ip_in_networks(const struct policy *p, const char *ip)
{
	uint8_t addr[16];
	int family;

	if (ip == NULL)
		return false;
	if (inet_pton(AF_INET, ip, addr) == 1) {
		family = AF_INET;
	} else if (inet_pton(AF_INET6, ip, addr) == 1) {
		family = AF_INET6;
		/* An IPv4-mapped IPv6 address is matched as IPv4. */
		static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		if (memcmp(addr, mapped, 12) == 0) {
			memmove(addr, addr + 12, 4);
			family = AF_INET;
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < p->n_networks; i++) {
		const struct policy_network *n = &p->networks[i];
		if (n->family == family && prefix_match(addr, n->addr, n->prefix))
			return true;
	}
	return false;
}

bool policy_domain_is_local(const struct policy *p, const char *domain)
{
	size_t len = strlen(domain);

	/* A trailing dot names the same domain (RFC 1034 3.1). */
	if (len > 0 && domain[len - 1] == '.')
		len--;
	for (size_t i = 0; i < p->n_local_domains; i++) {
		if (strlen(p->local_domains[i]) == len &&
		    strncasecmp(p->local_domains[i], domain, len) == 0)
			return true;
	}
	return false;
}

enum policy_rcpt policy_check_rcpt(const struct policy *p, const char *rcpt, bool authenticated,
                                   const char *client_ip)
{
	if (strchr(rcpt, '@') == NULL)
		return POLICY_RCPT_LOCAL; /* bare postmaster, the only form the parser lets by */
	if (policy_domain_is_local(p, strrchr(rcpt, '@') + 1))
		return POLICY_RCPT_LOCAL;
	if (authenticated || policy_ip_in_networks(p, client_ip))
		return POLICY_RCPT_RELAY;
	return POLICY_RCPT_DENIED;
}

bool policy_sender_owned(const struct policy *p, const char *user, const char *sender)
{
	if (sender[0] == '\0')
		return true;
	if (strchr(user, '@') != NULL)
		return strcasecmp(user, sender) == 0;
	const char *at = strrchr(sender, '@');
	size_t ulen = strlen(user);
	if (at == NULL || (size_t)(at - sender) != ulen || strncasecmp(sender, user, ulen) != 0)
		return false;
	return policy_domain_is_local(p, at + 1);
}
