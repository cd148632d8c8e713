/*
 * Listener address syntax ("127.0.0.1:25", "[::1]:143", "*:25", "unix:/run/tern/lmtp")
 * and the numeric text of socket addresses for logs and caps.
 */
#include "net/conn_int.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "base/xalloc.h"

static int net_port_parse(const char *s, int *port_r)
{
	if (*s == '\0' || strlen(s) > 5)
		return -1;
	int port = 0;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		port = port * 10 + (*s - '0');
	}
	if (port > 65535)
		return -1;
	*port_r = port;
	return 0;
}

int net_addr_parse(const char *text, struct net_addr *a, char **error_r)
{
	memset(a, 0, sizeof(*a));
	if (strncmp(text, "unix:", 5) == 0) {
		const char *path = text + 5;
		struct sockaddr_un sun;
		if (path[0] != '/') {
			*error_r = xasprintf("%s: a Unix socket path must be absolute", text);
			return -1;
		}
		if (strlen(path) >= sizeof(sun.sun_path) || strlen(path) >= sizeof(a->path)) {
			*error_r = xasprintf("%s: Unix socket path too long", text);
			return -1;
		}
		a->is_unix = true;
		strcpy(a->path, path);
		return 0;
	}
	const char *colon = strrchr(text, ':');
	if (colon == NULL || net_port_parse(colon + 1, &a->port) < 0) {
		*error_r =
		    xasprintf("%s: expected host:port, [ipv6]:port, *:port or unix:/path", text);
		return -1;
	}
	size_t hlen = (size_t)(colon - text);
	const char *host = text;
	if (hlen >= 2 && host[0] == '[' && host[hlen - 1] == ']') {
		host++;
		hlen -= 2;
	} else if (memchr(host, ':', hlen) != NULL) {
		*error_r = xasprintf("%s: an IPv6 address needs brackets: [addr]:port", text);
		return -1;
	}
	if (hlen == 1 && host[0] == '*') {
		a->any = true;
		return 0;
	}
	if (hlen == 0 || hlen >= sizeof(a->host)) {
		*error_r = xasprintf("%s: bad address", text);
		return -1;
	}
	memcpy(a->host, host, hlen);
	a->host[hlen] = '\0';
	unsigned char tmp[sizeof(struct in6_addr)];
	if (inet_pton(AF_INET, a->host, tmp) != 1 && inet_pton(AF_INET6, a->host, tmp) != 1) {
		*error_r = xasprintf("%s: not a numeric IP address", text);
		return -1;
	}
	return 0;
}

void net_addr_to_text(const struct sockaddr *sa, char ip_r[INET6_ADDRSTRLEN], int *port_r)
{
	ip_r[0] = '\0';
	*port_r = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip_r, INET6_ADDRSTRLEN);
		*port_r = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
			inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], ip_r, INET6_ADDRSTRLEN);
		else
			inet_ntop(AF_INET6, &in6->sin6_addr, ip_r, INET6_ADDRSTRLEN);
		*port_r = ntohs(in6->sin6_port);
	}
}

bool net_ip_is_loopback(const char *ip)
{
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, ip, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, ip, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}
