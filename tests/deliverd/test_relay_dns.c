/*
 * MX resolution through c-ares on libuv (libcommon/dns), against a tiny DNS responder that
 * runs on the same loop on 127.0.0.1: MX ordering by preference, implicit MX, null MX
 * (RFC 7505), NXDOMAIN, SERVFAIL and silence, hosts without addresses, relayhost lookups,
 * and cancelling by freeing the resolver. (It lives here because tests/CMakeLists.txt
 * registers no tests/libcommon/dns directory.)
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>
#include <cmocka.h>

#include "dns/dns.h"

/* --- the responder ------------------------------------------------------------------- */

struct rr {
	const char *name;
	int type;         /* 1 A, 28 AAAA, 15 MX */
	const char *data; /* address, or "pref exchange" */
};

static const struct rr zone[] = {
    {"alice.test", 15, "20 mx2.alice.test"},
    {"alice.test", 15, "10 mx1.alice.test"},
    {"alice.test", 15, "30 gone.alice.test"},
    {"alice.test", 15, "10 mx1b.alice.test"},
    {"mx1.alice.test", 1, "127.0.0.11"},
    {"mx1b.alice.test", 1, "127.0.0.12"},
    {"mx1b.alice.test", 28, "::1"},
    {"mx2.alice.test", 1, "127.0.0.13"},
    {"mx2.alice.test", 1, "127.0.0.14"},
    {"implicit.test", 1, "127.0.0.20"},
    {"nullmx.test", 15, "0 ."},
    {"noaddr.test", 15, "10 nowhere.noaddr.test"},
    {"tempaddr.test", 15, "10 servfail.test"},
    {"relay.test", 1, "127.0.0.30"},
};

struct responder {
	uv_udp_t udp;
	int port;
	unsigned queries;
};

static size_t put_name(unsigned char *out, const char *name)
{
	size_t o = 0;
	while (*name != '\0' && strcmp(name, ".") != 0) {
		const char *dot = strchr(name, '.');
		size_t l = dot != NULL ? (size_t)(dot - name) : strlen(name);
		out[o++] = (unsigned char)l;
		memcpy(out + o, name, l);
		o += l;
		name += l + (dot != NULL ? 1 : 0);
	}
	out[o++] = 0;
	return o;
}

static bool name_exists(const char *name)
{
	for (size_t i = 0; i < sizeof(zone) / sizeof(zone[0]); i++)
		if (strcasecmp(zone[i].name, name) == 0)
			return true;
	return false;
}

static void on_send(uv_udp_send_t *req, int status)
{
	(void)status;
	free(req->data);
	free(req);
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *b)
{
	(void)h;
	b->base = malloc(size);
	b->len = size;
}

static void on_query(uv_udp_t *udp, ssize_t n, const uv_buf_t *b, const struct sockaddr *from,
                     unsigned flags)
{
	(void)flags;
	struct responder *rs = udp->data;
	const unsigned char *q = (const unsigned char *)b->base;
	if (n < 17 || from == NULL) {
		free(b->base);
		return;
	}
	rs->queries++;
	/* The question: labels, then type and class. */
	char name[256] = "";
	size_t o = 12, nl = 0;
	while (o < (size_t)n && q[o] != 0 && nl < 200) {
		size_t l = q[o++];
		if (nl > 0)
			name[nl++] = '.';
		memcpy(name + nl, q + o, l);
		nl += l;
		o += l;
	}
	name[nl] = '\0';
	o++;
	int qtype = q[o] << 8 | q[o + 1];
	size_t qend = o + 4;
	if (strcmp(name, "silent.test") == 0) {
		free(b->base);
		return;
	}
	unsigned char *out = calloc(1, 4096);
	memcpy(out, q, qend);
	out[2] = 0x84 | (q[2] & 0x01); /* QR, AA, RD copied */
	out[3] = 0x80;                 /* RA */
	size_t w = qend;
	unsigned an = 0;
	if (strcmp(name, "servfail.test") == 0) {
		out[3] |= 2;
	} else if (!name_exists(name)) {
		out[3] |= 3; /* NXDOMAIN */
	} else {
		for (size_t i = 0; i < sizeof(zone) / sizeof(zone[0]); i++) {
			if (strcasecmp(zone[i].name, name) != 0 || zone[i].type != qtype)
				continue;
			out[w++] = 0xc0;
			out[w++] = 12;
			out[w++] = 0;
			out[w++] = (unsigned char)qtype;
			out[w++] = 0;
			out[w++] = 1;
			out[w++] = 0, out[w++] = 0, out[w++] = 0, out[w++] = 60;
			size_t rdlen_at = w;
			w += 2;
			size_t start = w;
			if (qtype == 1) {
				inet_pton(AF_INET, zone[i].data, out + w);
				w += 4;
			} else if (qtype == 28) {
				inet_pton(AF_INET6, zone[i].data, out + w);
				w += 16;
			} else {
				unsigned pref = (unsigned)atoi(zone[i].data);
				out[w++] = (unsigned char)(pref >> 8);
				out[w++] = (unsigned char)pref;
				w += put_name(out + w, strchr(zone[i].data, ' ') + 1);
			}
			out[rdlen_at] = (unsigned char)((w - start) >> 8);
			out[rdlen_at + 1] = (unsigned char)(w - start);
			an++;
		}
	}
	out[6] = (unsigned char)(an >> 8);
	out[7] = (unsigned char)an;
	uv_udp_send_t *req = malloc(sizeof(*req));
	req->data = out;
	uv_buf_t ob = uv_buf_init((char *)out, (unsigned)w);
	uv_udp_send(req, udp, &ob, 1, from, on_send);
	free(b->base);
}

static uv_loop_t loop;
static struct responder resp;
static char servers[64];

static int setup(void **state)
{
	(void)state;
	uv_loop_init(&loop);
	uv_udp_init(&loop, &resp.udp);
	resp.udp.data = &resp;
	struct sockaddr_in sa;
	uv_ip4_addr("127.0.0.1", 0, &sa);
	assert_int_equal(uv_udp_bind(&resp.udp, (const struct sockaddr *)&sa, 0), 0);
	struct sockaddr_in got;
	int len = sizeof(got);
	uv_udp_getsockname(&resp.udp, (struct sockaddr *)&got, &len);
	resp.port = ntohs(got.sin_port);
	uv_udp_recv_start(&resp.udp, on_alloc, on_query);
	snprintf(servers, sizeof(servers), "127.0.0.1:%d", resp.port);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	uv_close((uv_handle_t *)&resp.udp, NULL);
	for (int i = 0; i < 100 && uv_loop_alive(&loop); i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	assert_int_equal(uv_loop_close(&loop), 0);
	return 0;
}

/* --- the client side ------------------------------------------------------------------ */

struct answer {
	bool done;
	unsigned calls;
	enum dns_status status;
	char hosts[512]; /* "name/pref=addr,addr;..." */
	char error[512];
	bool implicit;
};

static void on_answer(void *ctx, const struct dns_mx_result *res)
{
	struct answer *a = ctx;
	a->done = true;
	a->calls++;
	a->status = res->status;
	a->implicit = res->implicit;
	snprintf(a->error, sizeof(a->error), "%s", res->error != NULL ? res->error : "");
	size_t o = 0;
	for (size_t i = 0; i < res->n_hosts; i++) {
		o += (size_t)snprintf(a->hosts + o, sizeof(a->hosts) - o, "%s%s/%u=", i ? ";" : "",
		                      res->hosts[i].name, res->hosts[i].preference);
		for (size_t j = 0; j < res->hosts[i].n_addrs; j++)
			o += (size_t)snprintf(a->hosts + o, sizeof(a->hosts) - o, "%s%s",
			                      j ? "," : "", res->hosts[i].addrs[j]);
	}
}

static void run_until(struct answer *a)
{
	uint64_t start = uv_now(&loop);
	for (int i = 0; i < 100000 && !a->done; i++) {
		uv_run(&loop, UV_RUN_ONCE);
		uv_update_time(&loop);
		if (uv_now(&loop) - start > 20000)
			break;
	}
	assert_true(a->done);
}

static struct answer resolve(const char *name, bool mx, unsigned timeout_ms)
{
	struct dns_resolver *r;
	char *err = NULL;
	assert_int_equal(dns_resolver_new(&loop, servers, timeout_ms, 1, &r, &err), 0);
	struct answer a = {0};
	dns_resolve(r, name, mx, on_answer, &a);
	/* Never from inside dns_resolve(). */
	assert_false(a.done);
	run_until(&a);
	dns_resolver_free(&r);
	for (int i = 0; i < 100; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	assert_int_equal(a.calls, 1);
	return a;
}

static void test_mx_order(void **state)
{
	(void)state;
	bool seen_first[2] = {false, false};
	/* Equal preferences come in random order; over a few runs both orders show up, and
	 * preference 20 is always after both 10s. gone.alice.test has no address: dropped. */
	for (int run = 0; run < 40 && !(seen_first[0] && seen_first[1]); run++) {
		struct answer a = resolve("alice.test", true, 2000);
		assert_int_equal(a.status, DNS_OK);
		assert_false(a.implicit);
		const char *x = "mx1.alice.test/10=127.0.0.11;mx1b.alice.test/10=127.0.0.12,::1;"
		                "mx2.alice.test/20=127.0.0.13,127.0.0.14";
		const char *y = "mx1b.alice.test/10=127.0.0.12,::1;mx1.alice.test/10=127.0.0.11;"
		                "mx2.alice.test/20=127.0.0.13,127.0.0.14";
		if (strcmp(a.hosts, x) == 0)
			seen_first[0] = true;
		else if (strcmp(a.hosts, y) == 0)
			seen_first[1] = true;
		else
			fail_msg("unexpected order %s", a.hosts);
	}
	assert_true(seen_first[0] && seen_first[1]);
}

static void test_implicit_mx(void **state)
{
	(void)state;
	struct answer a = resolve("implicit.test.", true, 2000);
	assert_int_equal(a.status, DNS_OK);
	assert_true(a.implicit);
	assert_string_equal(a.hosts, "implicit.test/0=127.0.0.20");
}

static void test_null_mx(void **state)
{
	(void)state;
	struct answer a = resolve("nullmx.test", true, 2000);
	assert_int_equal(a.status, DNS_NULL_MX);
	assert_non_null(strstr(a.error, "nullMX"));
}

static void test_nxdomain_and_noaddr(void **state)
{
	(void)state;
	struct answer a = resolve("nx.test", true, 2000);
	assert_int_equal(a.status, DNS_NOTFOUND);
	assert_non_null(strstr(a.error, "not found"));
	a = resolve("noaddr.test", true, 2000);
	assert_int_equal(a.status, DNS_NOTFOUND);
}

static void test_temporary(void **state)
{
	(void)state;
	struct answer a = resolve("servfail.test", true, 2000);
	assert_int_equal(a.status, DNS_TEMPFAIL);
	/* The MX host's own lookup fails temporarily: the message must wait, not bounce. */
	a = resolve("tempaddr.test", true, 2000);
	assert_int_equal(a.status, DNS_TEMPFAIL);
	uint64_t t0 = uv_now(&loop);
	a = resolve("silent.test", true, 300);
	assert_int_equal(a.status, DNS_TEMPFAIL);
	/* At least the configured timeout passed before giving up. */
	assert_true(uv_now(&loop) - t0 >= 250);
}

static void test_host_lookup(void **state)
{
	(void)state;
	struct answer a = resolve("relay.test", false, 2000);
	assert_int_equal(a.status, DNS_OK);
	assert_string_equal(a.hosts, "relay.test/0=127.0.0.30");
	/* A host lookup does not ask for MX: alice.test has no A record. */
	a = resolve("alice.test", false, 2000);
	assert_int_equal(a.status, DNS_NOTFOUND);
}

static void test_cancel(void **state)
{
	(void)state;
	struct dns_resolver *r;
	char *err = NULL;
	assert_int_equal(dns_resolver_new(&loop, servers, 5000, 1, &r, &err), 0);
	struct answer a = {0}, b = {0};
	dns_resolve(r, "silent.test", true, on_answer, &a);
	dns_resolve(r, "alice.test", true, on_answer, &b);
	for (int i = 0; i < 3; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	dns_resolver_free(&r);
	run_until(&a);
	run_until(&b);
	assert_int_equal(a.calls, 1);
	assert_int_equal(a.status, DNS_TEMPFAIL);
	assert_int_equal(b.calls, 1);
	for (int i = 0; i < 100; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mx_order),  cmocka_unit_test(test_implicit_mx),
	    cmocka_unit_test(test_null_mx),   cmocka_unit_test(test_nxdomain_and_noaddr),
	    cmocka_unit_test(test_temporary), cmocka_unit_test(test_host_lookup),
	    cmocka_unit_test(test_cancel),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
