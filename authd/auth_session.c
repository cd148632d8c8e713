/*
 * The auth-client protocol state machine: handshake, AUTH/CONT/CANCEL dispatch, SASL steps
 * in the thread pool, penalty-delayed FAIL replies, and the log lines fail2ban reads.
 */
#include "auth_session.h"

#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth_proto.h"
#include "auth/base64.h"
#include "authd.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "passdb_file.h"
#include "penalty.h"
#include "sasl_exchange.h"

#define AUTH_MAX_MECHS 8
#define AUTH_MAX_RESPONSE (AUTH_PROTO_MAX_LINE)

enum req_state {
	REQ_WORKING,   /* a SASL step is in the thread pool */
	REQ_WAIT_CONT, /* a CONT was sent; waiting for the client */
	REQ_DELAYING,  /* the FAIL waits for the penalty delay */
};

struct auth_req {
	struct auth_session *session; /* NULL once the session is gone */
	struct auth_req *next;
	unsigned id;
	enum req_state state;
	char mech[32];
	char service[32];
	char rip[64], lip[64];
	struct sasl_exchange *x;
	struct buf in;  /* decoded client data for the next step */
	bool in_null;   /* "no data" (AUTH without resp=) */
	struct buf out; /* challenge from the last step */
	enum sasl_step_result result;
	bool cancelled;
	uv_work_t work;
	uv_timer_t timer;
};

struct auth_session {
	struct authd *authd;
	const struct auth_session_io *io;
	void *io_context;
	bool got_version;
	bool failed; /* protocol error: closing, input ignored */
	unsigned cuid;
	struct auth_req *reqs;
	unsigned n_reqs;
};

static void session_write(struct auth_session *s, const struct buf *b)
{
	if (!s->failed)
		s->io->write(s->io_context, b->data, b->len);
}

static void session_error(struct auth_session *s, const char *what)
{
	if (s->failed)
		return;
	log_warn("auth-client %u: %s; disconnecting", s->cuid, what);
	s->failed = true;
	s->io->close(s->io_context);
}

/* A name for logs: printable ASCII without spaces, commas or brackets. */
static const char *log_name(struct buf *b, const char *name)
{
	if (name == NULL)
		return "?";
	log_sanitize(b, name, strlen(name), 128);
	for (size_t i = 0; i < b->len; i++) {
		if (b->data[i] == ' ' || b->data[i] == ',' || b->data[i] == '<' ||
		    b->data[i] == '>')
			b->data[i] = '?';
	}
	return buf_cstr(b);
}

static void on_timer_closed(uv_handle_t *h)
{
	struct auth_req *r = h->data;

	sasl_exchange_free(&r->x);
	if (r->in.data != NULL)
		secure_zero(r->in.data, r->in.len);
	buf_free(&r->in);
	buf_free(&r->out);
	free(r);
}

static void req_unlink(struct auth_req *r)
{
	struct auth_session *s = r->session;

	if (s == NULL)
		return;
	for (struct auth_req **p = &s->reqs; *p != NULL; p = &(*p)->next) {
		if (*p == r) {
			*p = r->next;
			s->n_reqs--;
			break;
		}
	}
	r->session = NULL;
}

/* Frees a request that is not in the thread pool. */
static void req_destroy(struct auth_req *r)
{
	req_unlink(r);
	uv_timer_stop(&r->timer);
	uv_close((uv_handle_t *)&r->timer, on_timer_closed);
}

static struct auth_req *req_find(struct auth_session *s, unsigned id)
{
	for (struct auth_req *r = s->reqs; r != NULL; r = r->next) {
		if (r->id == id)
			return r;
	}
	return NULL;
}

static void work_step(uv_work_t *w)
{
	struct auth_req *r = w->data;

	buf_reset(&r->out);
	r->result = sasl_exchange_step(r->x, r->in_null ? NULL : r->in.data, r->in.len, &r->out);
	if (r->in.data != NULL)
		secure_zero(r->in.data, r->in.len);
	buf_reset(&r->in);
}

static void on_req_timeout(uv_timer_t *t)
{
	struct auth_req *r = t->data;
	struct auth_session *s = r->session;

	if (s != NULL) {
		struct buf b;
		buf_init(&b, 0);
		buf_printf(&b, "FAIL\t%u\treason=Authentication timed out\n", r->id);
		session_write(s, &b);
		buf_free(&b);
	}
	req_destroy(r);
}

static void on_fail_delay_done(uv_timer_t *t)
{
	struct auth_req *r = t->data;
	struct auth_session *s = r->session;

	if (s != NULL) {
		struct buf b;
		buf_init(&b, 0);
		buf_printf(&b, "FAIL\t%u", r->id);
		const char *user = sasl_exchange_user(r->x);
		if (user != NULL && r->result == SASL_STEP_FAIL &&
		    sasl_exchange_user_disabled(r->x)) {
			buf_append_str(&b, "\tcode=user_disabled");
		}
		if (user != NULL) {
			buf_append_str(&b, "\tuser=");
			auth_tab_escape(&b, user);
		}
		/* One text for every failure: it must not tell an unknown user from a wrong
		 * password (Postfix shows it to the SMTP client). */
		buf_append_str(&b, "\treason=Authentication failed\n");
		session_write(s, &b);
		buf_free(&b);
	}
	req_destroy(r);
}

static void req_log_result(struct auth_req *r, bool ok)
{
	struct buf u, m, rip, svc;
	const char *rip_s = r->rip[0] != '\0' ? r->rip : "unix";

	buf_init(&u, 0);
	buf_init(&m, 0);
	buf_init(&rip, 0);
	buf_init(&svc, 0);
	const char *service = log_name(&svc, r->service);
	const char *user = log_name(&u, sasl_exchange_user(r->x));
	const char *mech = log_name(&m, r->mech);
	rip_s = log_name(&rip, rip_s);
	if (ok) {
		log_info("login: user=<%s>, method=%s, rip=%s, lip=%s, service=%s", user, mech,
		         rip_s, r->lip[0] != '\0' ? r->lip : "unix", service);
	} else {
		const char *why = sasl_exchange_failure(r->x);
		/* The fail2ban dovecot filter matches "<driver>(<user>,<ip>): unknown user"
		 * and "...: invalid credentials" (logs.md 4.3). */
		if (strcmp(why, "unknown user") == 0 || strcmp(why, "invalid credentials") == 0)
			log_info("passwd-file(%s,%s): %s", user, rip_s, why);
		log_info("auth failed: user=<%s>, method=%s, rip=%s, lip=%s, service=%s, reason=%s",
		         user, mech, rip_s, r->lip[0] != '\0' ? r->lip : "unix", service, why);
	}
	buf_free(&u);
	buf_free(&m);
	buf_free(&rip);
	buf_free(&svc);
}

static void after_step(uv_work_t *w, int status)
{
	struct auth_req *r = w->data;
	struct auth_session *s = r->session;
	struct authd *a;
	struct buf b;

	if (s == NULL || r->cancelled || status != 0) {
		req_destroy(r);
		return;
	}
	a = s->authd;
	buf_init(&b, 0);
	switch (r->result) {
	case SASL_STEP_CONTINUE:
		r->state = REQ_WAIT_CONT;
		buf_printf(&b, "CONT\t%u\t", r->id);
		base64_encode(&b, r->out.data, r->out.len);
		buf_append_char(&b, '\n');
		session_write(s, &b);
		uv_timer_start(&r->timer, on_req_timeout, a->set.request_timeout_ms, 0);
		break;
	case SASL_STEP_OK:
		req_log_result(r, true);
		if (r->rip[0] != '\0')
			penalty_success(a->penalty, r->rip);
		buf_printf(&b, "OK\t%u\tuser=", r->id);
		auth_tab_escape(&b, sasl_exchange_user(r->x));
		buf_append_char(&b, '\n');
		session_write(s, &b);
		req_destroy(r);
		break;
	case SASL_STEP_FAIL: {
		req_log_result(r, false);
		uint64_t delay = penalty_failure(a->penalty, r->rip[0] != '\0' ? r->rip : "unix",
		                                 uv_now(a->loop));
		r->state = REQ_DELAYING;
		uv_timer_start(&r->timer, on_fail_delay_done, delay, 0);
		break;
	}
	case SASL_STEP_TEMPFAIL:
		log_warn("auth-client %u: request %u: temporary failure: %s", s->cuid, r->id,
		         sasl_exchange_failure(r->x));
		buf_printf(&b,
		           "FAIL\t%u\tcode=temp_fail\treason=Temporary authentication failure\n",
		           r->id);
		session_write(s, &b);
		req_destroy(r);
		break;
	}
	buf_free(&b);
}

static void req_queue_step(struct auth_req *r)
{
	r->state = REQ_WORKING;
	uv_timer_stop(&r->timer);
	r->work.data = r;
	if (uv_queue_work(r->session->authd->loop, &r->work, work_step, after_step) < 0) {
		r->result = SASL_STEP_TEMPFAIL;
		r->work.data = r;
		after_step(&r->work, 0);
	}
}

static void reply_fail_now(struct auth_session *s, unsigned id, const char *params)
{
	struct buf b;

	buf_init(&b, 0);
	buf_printf(&b, "FAIL\t%u\t%s\n", id, params);
	session_write(s, &b);
	buf_free(&b);
}

static bool mech_advertised(struct authd *a, const char *mech)
{
	const char *names[AUTH_MAX_MECHS];
	size_t n = authd_mechs(a, names, AUTH_MAX_MECHS);

	for (size_t i = 0; i < n; i++) {
		if (strcmp(names[i], mech) == 0)
			return true;
	}
	return false;
}

static bool ip_is_loopback(const char *ip)
{
	return strncmp(ip, "127.", 4) == 0 || strcmp(ip, "::1") == 0 ||
	       strncmp(ip, "::ffff:127.", 11) == 0;
}

static void copy_field(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src != NULL ? src : "");
}

/* IP addresses come from the client: keep them to address characters for logs and the
 * penalty table. */
static void copy_ip(char *dst, size_t size, const char *src)
{
	copy_field(dst, size, src);
	for (char *p = dst; *p != '\0'; p++) {
		if (strchr("0123456789abcdefABCDEF:.", *p) == NULL)
			*p = '?';
	}
}

/* What an AUTH line asks for; pointers into the line. */
struct auth_params {
	unsigned id;
	char mech[32];
	const char *service, *rip, *lip;
	const char *resp; /* NULL: no initial response */
	bool secured;
};

/* AUTH <id> <mech> service=<s> [params...] [resp=<b64>]. Returns -1 after a protocol
 * error (the connection is closing). */
static int auth_params_parse(struct auth_session *s, char **f, int n, struct auth_params *p)
{
	memset(p, 0, sizeof(*p));
	if (n < 3 || auth_parse_uint(f[1], &p->id) < 0 || p->id == 0) {
		session_error(s, "invalid AUTH line");
		return -1;
	}
	/* resp= must be the last parameter; anything after it is ignored. */
	int nparams = n;
	for (int i = 3; i < n; i++) {
		if (strncmp(f[i], "resp=", 5) == 0) {
			p->resp = f[i] + 5;
			nparams = i;
			break;
		}
	}
	for (int i = 2; i < nparams; i++) {
		if (auth_tab_unescape(f[i]) < 0 || strlen(f[i]) == 0) {
			session_error(s, "invalid escaping in AUTH");
			return -1;
		}
	}
	char **params = f + 3;
	size_t np = (size_t)nparams - 3;
	p->service = auth_field_find(params, np, "service");
	if (p->service == NULL) /* Dovecot 2.4's name */
		p->service = auth_field_find(params, np, "protocol");
	if (p->service == NULL || p->service[0] == '\0') {
		session_error(s, "AUTH without service");
		return -1;
	}
	/* An over-long name stays unterminated in 31 bytes and matches no mechanism. */
	copy_field(p->mech, sizeof(p->mech), f[2]);
	for (char *c = p->mech; *c != '\0'; c++)
		*c = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
	if (strlen(f[2]) >= sizeof(p->mech))
		p->mech[0] = '\0';
	p->rip = auth_field_find(params, np, "rip");
	p->lip = auth_field_find(params, np, "lip");
	p->secured = auth_field_find(params, np, "secured") != NULL;
	return 0;
}

static struct auth_req *req_new(struct auth_session *s, const struct auth_params *p)
{
	struct authd *a = s->authd;
	struct auth_req *r = xcalloc(1, sizeof(*r));

	r->id = p->id;
	copy_field(r->mech, sizeof(r->mech), p->mech);
	copy_field(r->service, sizeof(r->service), p->service);
	copy_ip(r->rip, sizeof(r->rip), p->rip);
	copy_ip(r->lip, sizeof(r->lip), p->lip);
	buf_init(&r->in, AUTH_MAX_RESPONSE);
	buf_init(&r->out, AUTH_MAX_RESPONSE);
	uv_timer_init(a->loop, &r->timer);
	r->timer.data = r;
	r->in_null = p->resp == NULL;
	return r;
}

static void cmd_auth(struct auth_session *s, char **f, int n)
{
	struct authd *a = s->authd;
	struct auth_params p;

	if (auth_params_parse(s, f, n, &p) < 0)
		return;
	if (req_find(s, p.id) != NULL) {
		session_error(s, "duplicate request id");
		return;
	}
	if (s->n_reqs >= a->set.max_requests_per_conn) {
		session_error(s, "too many requests in flight");
		return;
	}
	if (!mech_advertised(a, p.mech)) {
		reply_fail_now(s, p.id, "reason=Unsupported authentication mechanism");
		return;
	}
	bool secured = p.secured || p.rip == NULL || ip_is_loopback(p.rip);
	if (authd_mech_is_plaintext(p.mech) && !secured && !a->set.allow_plaintext_insecure) {
		reply_fail_now(s, p.id,
		               "reason=Plaintext authentication disallowed on non-secure "
		               "(SSL/TLS) connections.");
		return;
	}
	struct auth_req *r = req_new(s, &p);
	if (p.resp != NULL && (auth_tab_unescape((char *)p.resp) < 0 ||
	                       base64_decode(&r->in, p.resp, strlen(p.resp)) < 0)) {
		req_destroy(r); /* not linked into the session yet */
		reply_fail_now(s, p.id, "code=invalid_base64\treason=Invalid base64 data");
		return;
	}
	passdb_file_refresh(a->passdb);
	struct passdb *db = passdb_file_get(a->passdb);
	r->x = sasl_exchange_new(&a->set, db, a->dummy_hash, a->hostname, p.mech);
	sasl_exchange_set_cache(r->x, a->cache);
	passdb_unref(&db);
	r->session = s;
	r->next = s->reqs;
	s->reqs = r;
	s->n_reqs++;
	req_queue_step(r);
}

/* CONT <id> <b64> */
static void cmd_cont(struct auth_session *s, char **f, int n)
{
	unsigned id;

	if (n < 2 || auth_parse_uint(f[1], &id) < 0 || id == 0) {
		session_error(s, "invalid CONT line");
		return;
	}
	struct auth_req *r = req_find(s, id);
	if (r == NULL) {
		/* Timed out or never started: the client learns it like Dovecot tells it. */
		reply_fail_now(s, id, "reason=Authentication request timed out");
		return;
	}
	if (r->state != REQ_WAIT_CONT) {
		session_error(s, "CONT for a request that is not waiting for one");
		return;
	}
	const char *data = n >= 3 ? f[2] : "";
	buf_reset(&r->in);
	r->in_null = false;
	if (auth_tab_unescape(f[2 < n ? 2 : 1]) < 0 ||
	    base64_decode(&r->in, data, strlen(data)) < 0) {
		req_destroy(r);
		reply_fail_now(s, id, "code=invalid_base64\treason=Invalid base64 data");
		return;
	}
	req_queue_step(r);
}

static void cmd_cancel(struct auth_session *s, char **f, int n)
{
	unsigned id;

	if (n < 2 || auth_parse_uint(f[1], &id) < 0) {
		session_error(s, "invalid CANCEL line");
		return;
	}
	struct auth_req *r = req_find(s, id);
	if (r == NULL)
		return;
	if (r->state == REQ_WORKING) {
		r->cancelled = true;
		req_unlink(r);
		return;
	}
	req_destroy(r);
}

static void send_handshake(struct auth_session *s)
{
	struct authd *a = s->authd;
	const char *names[AUTH_MAX_MECHS];
	unsigned char cookie[16];
	struct buf b;

	buf_init(&b, 0);
	buf_append_str(&b, "VERSION\t1\t2\n");
	size_t n = authd_mechs(a, names, AUTH_MAX_MECHS);
	for (size_t i = 0; i < n; i++) {
		const char *flags = authd_mech_is_plaintext(names[i])   ? "\tplaintext"
		                    : strcmp(names[i], "CRAM-MD5") == 0 ? "\tdictionary\tactive"
		                                                        : "\tmutual-auth";
		buf_printf(&b, "MECH\t%s%s\n", names[i], flags);
	}
	if (RAND_bytes(cookie, sizeof(cookie)) != 1)
		memset(cookie, 0, sizeof(cookie));
	buf_printf(&b, "SPID\t%ld\nCUID\t%u\nCOOKIE\t", (long)getpid(), s->cuid);
	for (size_t i = 0; i < sizeof(cookie); i++)
		buf_printf(&b, "%02x", cookie[i]);
	buf_append_str(&b, "\nDONE\n");
	session_write(s, &b);
	buf_free(&b);
}

static void session_line(struct auth_session *s, char *line, size_t len)
{
	char *f[AUTH_PROTO_MAX_FIELDS];

	if (strlen(line) != len) {
		session_error(s, "NUL byte in line");
		return;
	}
	int n = auth_split_fields(line, f, AUTH_PROTO_MAX_FIELDS);
	if (n < 1) {
		session_error(s, "too many fields");
		return;
	}
	if (!s->got_version) {
		if (strcmp(f[0], "VERSION") != 0 || n < 3) {
			session_error(s, "first line is not VERSION");
			return;
		}
		if (strcmp(f[1], "1") != 0) {
			session_error(s, "unsupported protocol major version");
			return;
		}
		s->got_version = true;
		send_handshake(s);
		return;
	}
	if (strcmp(f[0], "AUTH") == 0)
		cmd_auth(s, f, n);
	else if (strcmp(f[0], "CONT") == 0)
		cmd_cont(s, f, n);
	else if (strcmp(f[0], "CANCEL") == 0)
		cmd_cancel(s, f, n);
	else if (strcmp(f[0], "CPID") == 0 || strcmp(f[0], "VERSION") == 0)
		; /* CPID may follow VERSION; nothing to do with it */
	else
		session_error(s, "unknown command");
}

void auth_session_feed(struct auth_session *s, struct buf *in)
{
	while (!s->failed && in->len > 0) {
		char *nl = memchr(in->data, '\n', in->len);
		if (nl == NULL) {
			if (in->len > AUTH_PROTO_MAX_LINE)
				session_error(s, "line too long");
			break;
		}
		size_t len = (size_t)(nl - in->data);
		if (len > AUTH_PROTO_MAX_LINE) {
			session_error(s, "line too long");
			break;
		}
		*nl = '\0';
		session_line(s, in->data, len);
		secure_zero(in->data, len);
		buf_consume(in, len + 1);
	}
	if (s->failed)
		buf_reset(in);
}

struct auth_session *auth_session_new(struct authd *a, const struct auth_session_io *io,
                                      void *io_context)
{
	struct auth_session *s = xcalloc(1, sizeof(*s));

	s->authd = a;
	s->io = io;
	s->io_context = io_context;
	s->cuid = a->next_cuid++;
	return s;
}

void auth_session_free(struct auth_session **sp)
{
	struct auth_session *s = *sp;

	if (s == NULL)
		return;
	*sp = NULL;
	while (s->reqs != NULL) {
		struct auth_req *r = s->reqs;
		if (r->state == REQ_WORKING) {
			/* after_step frees it once the thread is done. */
			r->cancelled = true;
			req_unlink(r);
		} else {
			req_destroy(r);
		}
	}
	free(s);
}
