/*
 * c-ares on libuv (dns.h): one ares channel per resolver, its sockets watched by uv_poll
 * handles and its timeouts by one uv_timer; MX, A and AAAA queries chained per request.
 */
#include "dns/dns.h"

#include <arpa/inet.h>
#include <ares.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "base/xalloc.h"

#ifndef T_MX
#define T_MX 15
#endif
#define DNS_CLASS_IN 1
#define DNS_TYPE_A 1
#define DNS_TYPE_AAAA 28
#define DNS_TYPE_MX 15

struct dns_sock {
	uv_poll_t poll;
	ares_socket_t fd;
	struct dns_resolver *r;
	struct dns_sock *next;
};

struct dns_resolver {
	uv_loop_t *loop;
	ares_channel ch;
	uv_timer_t timer;
	struct dns_sock *socks;
	unsigned open_handles; /* freed when the last close callback ran */
	bool freeing;
};

struct dns_request {
	struct dns_resolver *r;
	char *name;
	dns_mx_cb *cb;
	void *ctx;
	struct dns_mx_result res;
	struct buf_hosts {
		char **v4;
		size_t n4;
		char **v6;
		size_t n6;
	} * addrs; /* per host */
	unsigned pending;
	bool launching;
	bool any_temp;
	bool delivered; /* the callback ran (through the idle handle) */
	uv_idle_t idle;
	char *error;
};

const char *dns_status_name(enum dns_status s)
{
	switch (s) {
	case DNS_OK:
		return "ok";
	case DNS_NOTFOUND:
		return "not found";
	case DNS_NULL_MX:
		return "null MX";
	case DNS_TEMPFAIL:
		return "temporary failure";
	}
	return "?";
}

/* --- libuv glue -------------------------------------------------------------------------- */

static void resolver_maybe_free(struct dns_resolver *r)
{
	if (r->freeing && r->open_handles == 0)
		free(r);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct dns_resolver *r = h->data;
	if (h->type == UV_POLL)
		free((struct dns_sock *)(void *)h);
	r->open_handles--;
	resolver_maybe_free(r);
}

static void reschedule(struct dns_resolver *r);

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct dns_sock *s = (struct dns_sock *)(void *)h; /* poll is the first member */
	struct dns_resolver *r = s->r;
	ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;
	if (status < 0 || (events & UV_READABLE))
		rfd = s->fd;
	if (status < 0 || (events & UV_WRITABLE))
		wfd = s->fd;
	/* s may be freed inside (the socket state callback closes it). */
	ares_process_fd(r->ch, rfd, wfd);
	reschedule(r);
}

static void on_timer(uv_timer_t *t)
{
	struct dns_resolver *r = t->data;
	ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	reschedule(r);
}

static void reschedule(struct dns_resolver *r)
{
	if (r->freeing)
		return;
	struct timeval tv;
	struct timeval *t = ares_timeout(r->ch, NULL, &tv);
	if (t == NULL) {
		uv_timer_stop(&r->timer);
		return;
	}
	uint64_t ms = (uint64_t)t->tv_sec * 1000 + (uint64_t)t->tv_usec / 1000;
	uv_timer_start(&r->timer, on_timer, ms > 0 ? ms : 1, 0);
}

static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct dns_resolver *r = data;
	struct dns_sock **pp = &r->socks, *s;
	while ((s = *pp) != NULL && s->fd != fd)
		pp = &s->next;
	if (!readable && !writable) {
		if (s != NULL) {
			*pp = s->next;
			uv_poll_stop(&s->poll);
			uv_close((uv_handle_t *)&s->poll, on_handle_closed);
		}
		return;
	}
	if (s == NULL) {
		s = xcalloc(1, sizeof(*s));
		s->fd = fd;
		s->r = r;
		if (uv_poll_init_socket(r->loop, &s->poll, fd) < 0) {
			log_warn("dns: cannot watch socket %d", (int)fd);
			free(s);
			return;
		}
		s->poll.data = r;
		r->open_handles++;
		s->next = r->socks;
		r->socks = s;
	}
	int ev = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);
	uv_poll_start(&s->poll, ev, on_poll);
}

int dns_resolver_new(uv_loop_t *loop, const char *servers, unsigned timeout_ms, unsigned tries,
                     struct dns_resolver **r_r, char **error_r)
{
	static bool lib_ready;
	if (!lib_ready) {
		int e = ares_library_init(ARES_LIB_INIT_ALL);
		if (e != ARES_SUCCESS) {
			*error_r = xasprintf("c-ares init: %s", ares_strerror(e));
			return -1;
		}
		lib_ready = true;
	}
	struct dns_resolver *r = xcalloc(1, sizeof(*r));
	r->loop = loop;
	struct ares_options o;
	memset(&o, 0, sizeof(o));
	o.sock_state_cb = on_sock_state;
	o.sock_state_cb_data = r;
	o.timeout = (int)(timeout_ms > 0 ? timeout_ms : 5000);
	o.tries = (int)(tries > 0 ? tries : 2);
	/* No search list: a mail domain is always fully qualified. */
	o.flags = ARES_FLAG_NOSEARCH;
	int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS;
	int e = ares_init_options(&r->ch, &o, mask);
	if (e == ARES_SUCCESS && servers != NULL && servers[0] != '\0')
		e = ares_set_servers_ports_csv(r->ch, servers);
	if (e != ARES_SUCCESS) {
		*error_r = xasprintf("c-ares: %s", ares_strerror(e));
		if (r->ch != NULL)
			ares_destroy(r->ch);
		free(r);
		return -1;
	}
	uv_timer_init(loop, &r->timer);
	r->timer.data = r;
	r->open_handles = 1;
	*r_r = r;
	return 0;
}

void dns_resolver_free(struct dns_resolver **rp)
{
	struct dns_resolver *r = *rp;
	if (r == NULL)
		return;
	*rp = NULL;
	/* Runs every pending callback with ARES_EDESTRUCTION (-> DNS_TEMPFAIL). */
	ares_destroy(r->ch);
	r->freeing = true;
	while (r->socks != NULL) {
		struct dns_sock *s = r->socks;
		r->socks = s->next;
		uv_poll_stop(&s->poll);
		uv_close((uv_handle_t *)&s->poll, on_handle_closed);
	}
	uv_timer_stop(&r->timer);
	uv_close((uv_handle_t *)&r->timer, on_handle_closed);
}

/* --- requests ---------------------------------------------------------------------------- */

static void request_free(struct dns_request *q)
{
	for (size_t i = 0; i < q->res.n_hosts; i++) {
		free(q->res.hosts[i].name);
		for (size_t j = 0; j < q->res.hosts[i].n_addrs; j++)
			free(q->res.hosts[i].addrs[j]);
		free(q->res.hosts[i].addrs);
		if (q->addrs != NULL) {
			free(q->addrs[i].v4);
			free(q->addrs[i].v6);
		}
	}
	free(q->addrs);
	free(q->res.hosts);
	free(q->name);
	free(q->error);
	free(q);
}

static void on_idle_closed(uv_handle_t *h)
{
	struct dns_request *q = h->data;
	struct dns_resolver *r = q->r;
	request_free(q);
	r->open_handles--;
	resolver_maybe_free(r);
}

static void on_idle(uv_idle_t *h)
{
	struct dns_request *q = h->data;
	uv_idle_stop(h);
	q->res.error = q->error;
	q->cb(q->ctx, &q->res);
	uv_close((uv_handle_t *)h, on_idle_closed);
}

/* Delivers the result from the loop on its next turn, never from inside ares. */
static void finish(struct dns_request *q, enum dns_status st, char *error)
{
	q->res.status = st;
	if (error != NULL) {
		free(q->error);
		q->error = error;
	}
	if (q->delivered)
		return;
	q->delivered = true;
	uv_idle_start(&q->idle, on_idle);
}

/* Moves the addresses found into each host (IPv4 first) and drops hosts without any. */
static void collect(struct dns_request *q)
{
	size_t kept = 0;
	for (size_t i = 0; i < q->res.n_hosts; i++) {
		struct dns_host *h = &q->res.hosts[i];
		struct buf_hosts *a = &q->addrs[i];
		h->addrs = xcalloc(a->n4 + a->n6 + 1, sizeof(char *));
		for (size_t j = 0; j < a->n4; j++)
			h->addrs[h->n_addrs++] = a->v4[j];
		for (size_t j = 0; j < a->n6; j++)
			h->addrs[h->n_addrs++] = a->v6[j];
		free(a->v4);
		free(a->v6);
		a->v4 = a->v6 = NULL;
		a->n4 = a->n6 = 0;
		if (h->n_addrs == 0) {
			free(h->name);
			free(h->addrs);
			continue;
		}
		q->res.hosts[kept++] = *h;
	}
	q->res.n_hosts = kept;
	if (kept > 0)
		finish(q, DNS_OK, NULL);
	else if (q->any_temp)
		finish(q, DNS_TEMPFAIL,
		       xasprintf("Host or domain name lookup failed for %s "
		                 "(temporary failure)",
		                 q->name));
	else
		finish(q, DNS_NOTFOUND,
		       xasprintf("Host or domain name not found. Name service "
		                 "error for name=%s type=%s: Host not found",
		                 q->name, q->res.implicit ? "A" : "MX"));
}

struct addr_query {
	struct dns_request *q;
	size_t host;
	bool v6;
};

static void on_addr(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	(void)timeouts;
	struct addr_query *aq = arg;
	struct dns_request *q = aq->q;
	struct buf_hosts *a = &q->addrs[aq->host];
	if (status == ARES_SUCCESS) {
		char txt[INET6_ADDRSTRLEN];
		if (!aq->v6) {
			struct ares_addrttl ttls[DNS_MAX_ADDRS];
			int n = DNS_MAX_ADDRS;
			if (ares_parse_a_reply(abuf, alen, NULL, ttls, &n) == ARES_SUCCESS) {
				a->v4 = xcalloc((size_t)n + 1, sizeof(char *));
				for (int i = 0; i < n; i++)
					if (inet_ntop(AF_INET, &ttls[i].ipaddr, txt, sizeof(txt)) !=
					    NULL)
						a->v4[a->n4++] = xstrdup(txt);
			}
		} else {
			struct ares_addr6ttl ttls[DNS_MAX_ADDRS];
			int n = DNS_MAX_ADDRS;
			if (ares_parse_aaaa_reply(abuf, alen, NULL, ttls, &n) == ARES_SUCCESS) {
				a->v6 = xcalloc((size_t)n + 1, sizeof(char *));
				for (int i = 0; i < n; i++)
					if (inet_ntop(AF_INET6, &ttls[i].ip6addr, txt,
					              sizeof(txt)) != NULL)
						a->v6[a->n6++] = xstrdup(txt);
			}
		}
	} else if (status != ARES_ENODATA && status != ARES_ENOTFOUND) {
		q->any_temp = true;
	}
	free(aq);
	if (--q->pending == 0 && !q->launching)
		collect(q);
}

static void lookup_addresses(struct dns_request *q)
{
	q->addrs = xcalloc(q->res.n_hosts, sizeof(*q->addrs));
	q->launching = true;
	for (size_t i = 0; i < q->res.n_hosts; i++) {
		for (int v6 = 0; v6 < 2; v6++) {
			struct addr_query *aq = xcalloc(1, sizeof(*aq));
			aq->q = q;
			aq->host = i;
			aq->v6 = v6 != 0;
			q->pending++;
			ares_query(q->r->ch, q->res.hosts[i].name, DNS_CLASS_IN,
			           v6 ? DNS_TYPE_AAAA : DNS_TYPE_A, on_addr, aq);
		}
	}
	q->launching = false;
	if (q->pending == 0)
		collect(q);
}

static void set_implicit(struct dns_request *q)
{
	q->res.implicit = true;
	q->res.hosts = xcalloc(1, sizeof(*q->res.hosts));
	q->res.hosts[0].name = xstrdup(q->name);
	q->res.n_hosts = 1;
}

static int cmp_pref(const void *a, const void *b)
{
	const struct dns_host *x = a, *y = b;
	return x->preference < y->preference ? -1 : x->preference > y->preference;
}

/* RFC 5321 5.1: equal preferences in random order, then sorted (qsort on the shuffled
 * array is not stable, but every order of equals is as good as another). */
static void order_hosts(struct dns_host *h, size_t n)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)random() % i;
		struct dns_host t = h[i - 1];
		h[i - 1] = h[j];
		h[j] = t;
	}
	qsort(h, n, sizeof(*h), cmp_pref);
}

static void on_mx(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	(void)timeouts;
	struct dns_request *q = arg;
	if (status == ARES_ENODATA) {
		set_implicit(q);
		lookup_addresses(q);
		return;
	}
	if (status == ARES_ENOTFOUND) {
		finish(q, DNS_NOTFOUND,
		       xasprintf("Host or domain name not found. Name service error for name=%s "
		                 "type=MX: Host not found",
		                 q->name));
		return;
	}
	struct ares_mx_reply *mx = NULL;
	if (status == ARES_SUCCESS)
		status = ares_parse_mx_reply(abuf, alen, &mx);
	if (status == ARES_ENODATA) {
		set_implicit(q);
		lookup_addresses(q);
		return;
	}
	if (status != ARES_SUCCESS) {
		finish(q, DNS_TEMPFAIL,
		       xasprintf("Host or domain name lookup failed for %s type=MX: %s", q->name,
		                 ares_strerror(status)));
		return;
	}
	bool null_mx = false;
	for (struct ares_mx_reply *m = mx; m != NULL; m = m->next) {
		if (m->host[0] == '\0' || strcmp(m->host, ".") == 0) {
			null_mx = true;
			continue;
		}
		if (q->res.n_hosts >= DNS_MAX_MX_HOSTS)
			continue;
		q->res.hosts =
		    xreallocarray(q->res.hosts, q->res.n_hosts + 1, sizeof(*q->res.hosts));
		struct dns_host *h = &q->res.hosts[q->res.n_hosts++];
		memset(h, 0, sizeof(*h));
		h->name = xstrdup(m->host);
		h->preference = m->priority;
	}
	ares_free_data(mx);
	if (null_mx) {
		/* RFC 7505 3: a null MX means the domain accepts no mail; 5.1.10. */
		finish(q, DNS_NULL_MX,
		       xasprintf("Domain %s does not accept mail (nullMX)", q->name));
		return;
	}
	if (q->res.n_hosts == 0) {
		set_implicit(q);
	} else {
		order_hosts(q->res.hosts, q->res.n_hosts);
	}
	lookup_addresses(q);
}

void dns_resolve(struct dns_resolver *r, const char *name, bool mx, dns_mx_cb *cb, void *ctx)
{
	struct dns_request *q = xcalloc(1, sizeof(*q));
	q->r = r;
	q->cb = cb;
	q->ctx = ctx;
	size_t len = strlen(name);
	/* A trailing dot names the root explicitly; the names we keep go without it. */
	q->name = xstrndup(name, len > 1 && name[len - 1] == '.' ? len - 1 : len);
	uv_idle_init(r->loop, &q->idle);
	q->idle.data = q;
	r->open_handles++;
	if (mx) {
		ares_query(r->ch, q->name, DNS_CLASS_IN, DNS_TYPE_MX, on_mx, q);
	} else {
		set_implicit(q);
		lookup_addresses(q);
	}
	reschedule(r);
}
