/*
 * Mail routing lookups through c-ares on the libuv loop: the MX hosts of a domain, ordered
 * by preference, each with its A and AAAA addresses (RFC 5321 5.1).
 *
 *   - MX records sorted by preference, ties in random order (RFC 5321 5.1);
 *   - no MX records (NODATA): the domain itself is the implicit MX, preference 0;
 *   - a null MX ("0 .", RFC 7505) or a name that does not exist (NXDOMAIN): a permanent
 *     failure, the message bounces at once;
 *   - a server failure or timeout: a temporary failure, the message is deferred.
 * MX hosts whose addresses cannot be found are dropped; when none is left the result is
 * temporary if any lookup failed temporarily, else permanent.
 *
 * Memory: a result passed to a callback is valid only during the call. Callbacks always
 * run from the loop, never from inside dns_resolve_mx(); dns_resolver_free() cancels what is
 * in flight (each callback then runs once with DNS_TEMPFAIL) and closes its handles later.
 */
#ifndef TERN_DNS_DNS_H
#define TERN_DNS_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#define DNS_MAX_MX_HOSTS 16
#define DNS_MAX_ADDRS 16

enum dns_status {
	DNS_OK,
	DNS_NOTFOUND, /* permanent: no such domain, or no address at all */
	DNS_NULL_MX,  /* permanent: the domain accepts no mail (RFC 7505) */
	DNS_TEMPFAIL, /* try again later */
};

struct dns_host {
	char *name;
	unsigned preference;
	char **addrs; /* numeric: "192.0.2.1", "2001:db8::1"; IPv4 first */
	size_t n_addrs;
};

struct dns_mx_result {
	enum dns_status status;
	const char *error; /* for the logs and the DSN, when status != DNS_OK */
	bool implicit;     /* no MX: the domain itself (or a host lookup) */
	struct dns_host *hosts;
	size_t n_hosts;
};

typedef void dns_mx_cb(void *ctx, const struct dns_mx_result *res);

struct dns_resolver;
struct dns_request;

/*
 * servers: NULL or "" for the system's resolv.conf, else a c-ares server list such as
 * "127.0.0.1:5353,[::1]:53". timeout_ms and tries bound each query.
 */
int dns_resolver_new(uv_loop_t *loop, const char *servers, unsigned timeout_ms, unsigned tries,
                     struct dns_resolver **r_r, char **error_r);
void dns_resolver_free(struct dns_resolver **r);

/* The MX hosts of domain (mx = true), or the addresses of one host name (mx = false, for
 * a relayhost: the result is then one host, marked implicit). */
void dns_resolve(struct dns_resolver *r, const char *name, bool mx, dns_mx_cb *cb, void *ctx);

const char *dns_status_name(enum dns_status s);

#endif
