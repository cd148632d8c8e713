/*
 * One outgoing SMTP session of the relay (relay_private.h): resolve the destination, try
 * its MX hosts' addresses in order until one talks, EHLO (HELO as a fallback), STARTTLS
 * (opportunistic or required), AUTH PLAIN at a relayhost, then one transaction per job
 * (PIPELINING when offered), and keep the connection for the destination's next job.
 *
 * Every recipient of a job is reported to the scheduler exactly once: sent, deferred or
 * bounced. Replies: 2xx sent, 4xx deferred, 5xx bounced (RFC 5321 4.2.1); a lost
 * connection or a timeout defers whatever was not answered yet.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/base64.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "dns/dns.h"
#include "net/conn.h"
#include "relay.h"
#include "relay_private.h"
#include "relay_reply.h"

#define MAX_CANDIDATES 10
#define BODY_CHUNK 65536

enum rs_state {
	RS_RESOLVING,
	RS_CONNECTING,
	RS_GREETING,
	RS_EHLO,
	RS_HELO,
	RS_STARTTLS,
	RS_AUTH,
	RS_READY, /* between transactions, or parked */
	RS_TXN,   /* MAIL / RCPT / DATA replies outstanding */
	RS_BODY,  /* sending the message */
	RS_DOT,   /* waiting for the reply to the final dot */
	RS_RSET,
	RS_QUIT,
};

static const char *const stage_names[] = {
    "resolving",
    "connecting",
    "receiving the initial server greeting",
    "receiving the initial server greeting",
    "performing the HELO handshake",
    "performing the STARTTLS handshake",
    "performing the AUTH handshake",
    "idle",
    "sending MAIL FROM",
    "sending message body",
    "sending end of data",
    "sending RSET",
    "sending QUIT",
};

struct candidate {
	char *host;
	char *ip;
};

struct relay_session {
	struct relay_dest *d;
	struct relay_job *job;
	struct conn *c;
	enum rs_state st;
	struct candidate cands[MAX_CANDIDATES];
	size_t n_cands, next_cand;
	const struct candidate *cur;
	char relay_desc[320];
	char *cand_error; /* why the current candidate failed (for the next one's log) */
	char *cand_dsn;
	struct smtp_reply_parser parser;
	struct smtp_reply reply;
	struct smtp_ehlo ehlo;
	bool tls_done, tls_refused, authed, pipelining;
	unsigned msgs_done;
	uv_timer_t timer;
	bool parked, ending;
	bool ready; /* the handshake is done: failures now defer, no next candidate */
	struct relay_session *next_parked;
	/* The transaction. */
	size_t replies_seen;
	bool mail_ok, data_sent;
	bool *reported, *accepted;
	size_t n_accepted;
	int body_fd;
	uint64_t body_pos;
	struct relay_body_encoder enc;
	bool expect_dot_reply_ignored;
};

static const struct conn_ops session_ops;

static void session_end(struct relay_session *s);
static void connect_next(struct relay_session *s);
static void next_job(struct relay_session *s);
static void begin_txn(struct relay_session *s);

struct relay_session *relay_session_next_parked(struct relay_session *s)
{
	return s->next_parked;
}

void relay_session_set_next_parked(struct relay_session *s, struct relay_session *next)
{
	s->next_parked = next;
}

static enum relay_outcome outcome_of(int code)
{
	return code < 400 ? RELAY_SENT : code < 500 ? RELAY_DEFERRED : RELAY_BOUNCED;
}

/* --- reporting ---------------------------------------------------------------------------- */

static void report(struct relay_session *s, size_t k, enum relay_outcome o, const char *dsn,
                   const char *diag)
{
	if (s->reported[k])
		return;
	s->reported[k] = true;
	relay_job_result(s->job, k, o, dsn, diag, s->cur != NULL ? s->relay_desc : "none");
}

static void report_rest(struct relay_session *s, enum relay_outcome o, const char *dsn,
                        const char *diag)
{
	for (size_t k = 0; k < s->job->n; k++)
		report(s, k, o, dsn, diag);
}

static void job_finish(struct relay_session *s)
{
	if (s->job == NULL)
		return;
	if (s->body_fd >= 0) {
		close(s->body_fd);
		s->body_fd = -1;
	}
	free(s->reported);
	free(s->accepted);
	s->reported = s->accepted = NULL;
	struct relay_job *j = s->job;
	s->job = NULL;
	relay_job_done(j);
}

static void job_attach(struct relay_session *s, struct relay_job *job)
{
	s->job = job;
	s->reported = xcalloc(job->n, sizeof(bool));
	s->accepted = xcalloc(job->n, sizeof(bool));
}

/* "host X[ip] said: 550 5.1.1 ... (in reply to RCPT TO command)" */
static char *said(struct relay_session *s, const struct smtp_reply *r, const char *command)
{
	struct buf b;
	buf_init(&b, 0);
	buf_printf(&b, "host %s[%s] said: ", s->cur->host, s->cur->ip);
	smtp_reply_format(r, &b, 400);
	if (command != NULL)
		buf_printf(&b, " (in reply to %s command)", command);
	return buf_steal(&b);
}

/* --- connecting --------------------------------------------------------------------------- */

static void set_cand_error(struct relay_session *s, const char *dsn, char *error)
{
	/* dsn may be the current s->cand_dsn: copy before freeing. */
	char *d = xstrdup(dsn);
	free(s->cand_error);
	free(s->cand_dsn);
	s->cand_error = error;
	s->cand_dsn = d;
}

static void on_connect_timeout(uv_timer_t *t)
{
	struct relay_session *s = t->data;
	if (s->st == RS_CONNECTING && s->c != NULL) {
		set_cand_error(s, "4.4.1",
		               xasprintf("connect to %s[%s]:%d: Connection timed out", s->cur->host,
		                         s->cur->ip, s->d->port));
		conn_abort(s->c);
	}
}

static void connect_next(struct relay_session *s)
{
	const struct relay_settings *set = relay_settings();
	if (s->next_cand >= s->n_cands) {
		/* Every address failed: the last reason decides, as a temporary failure (a
		 * 5xx greeting from one MX host says nothing about the recipient). */
		report_rest(s, RELAY_DEFERRED, s->cand_dsn != NULL ? s->cand_dsn : "4.4.1",
		            s->cand_error != NULL ? s->cand_error : "no MX host answered");
		job_finish(s);
		session_end(s);
		return;
	}
	s->cur = &s->cands[s->next_cand++];
	snprintf(s->relay_desc, sizeof(s->relay_desc), "%s[%s]:%d", s->cur->host, s->cur->ip,
	         s->d->port);
	s->tls_done = s->tls_refused = s->authed = s->ready = false;
	smtp_reply_parser_free(&s->parser);
	smtp_reply_parser_init(&s->parser, 0, 0);
	s->st = RS_CONNECTING;
	struct conn_limits lim = {0};
	lim.max_input = 64 * 1024;
	lim.idle_ms = set->command_timeout_ms;
	if (s->d->is_local) {
		snprintf(s->relay_desc, sizeof(s->relay_desc), "local");
		s->c = conn_connect_unix(relay_loop(), s->d->name, &session_ops, &lim, s);
	} else {
		s->c =
		    conn_connect_tcp(relay_loop(), s->cur->ip, s->d->port, &session_ops, &lim, s);
	}
	if (s->c == NULL) {
		set_cand_error(s, "4.4.1",
		               xasprintf("connect to %s: cannot open a socket", s->relay_desc));
		connect_next(s);
		return;
	}
	conn_set_data(s->c, s);
	uv_timer_start(&s->timer, on_connect_timeout, set->connect_timeout_ms, 0);
}

static bool is_ip(const char *s)
{
	unsigned char b[16];
	return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

static void on_dns(void *ctx, const struct dns_mx_result *res)
{
	struct relay_session *s = ctx;
	if (res->status != DNS_OK) {
		bool perm = res->status == DNS_NOTFOUND || res->status == DNS_NULL_MX;
		/* RFC 7505 4.2: 5.1.10 for a null MX; Postfix uses 5.4.4 for unroutable. */
		const char *dsn = res->status == DNS_NULL_MX ? "5.1.10" : perm ? "5.4.4" : "4.4.3";
		report_rest(s, perm ? RELAY_BOUNCED : RELAY_DEFERRED, dsn, res->error);
		job_finish(s);
		session_end(s);
		return;
	}
	for (size_t i = 0; i < res->n_hosts; i++)
		for (size_t j = 0; j < res->hosts[i].n_addrs && s->n_cands < MAX_CANDIDATES; j++) {
			s->cands[s->n_cands].host = xstrdup(res->hosts[i].name);
			s->cands[s->n_cands++].ip = xstrdup(res->hosts[i].addrs[j]);
		}
	connect_next(s);
}

void relay_session_start(struct relay_dest *d, struct relay_job *job)
{
	struct relay_session *s = xcalloc(1, sizeof(*s));
	s->d = d;
	s->body_fd = -1;
	uv_timer_init(relay_loop(), &s->timer);
	s->timer.data = s;
	smtp_reply_parser_init(&s->parser, 0, 0);
	smtp_reply_init(&s->reply);
	job_attach(s, job);
	if (d->is_local || is_ip(d->name)) {
		s->cands[0].host = xstrdup(d->name);
		s->cands[0].ip = xstrdup(d->name);
		s->n_cands = 1;
		connect_next(s);
		return;
	}
	s->st = RS_RESOLVING;
	dns_resolve(relay_dns(), d->name, d->mx, on_dns, s);
}

/* --- the end of a session ----------------------------------------------------------------- */

static void on_timer_closed(uv_handle_t *h)
{
	struct relay_session *s = h->data;
	for (size_t i = 0; i < s->n_cands; i++) {
		free(s->cands[i].host);
		free(s->cands[i].ip);
	}
	free(s->cand_error);
	free(s->cand_dsn);
	smtp_reply_parser_free(&s->parser);
	smtp_reply_free(&s->reply);
	struct relay_dest *d = s->d;
	free(s);
	relay_session_gone(d, NULL);
}

/* Called once the job is finished and the connection gone (or never made). */
static void session_end(struct relay_session *s)
{
	if (s->ending)
		return;
	s->ending = true;
	if (s->parked)
		relay_session_unpark(s->d, s);
	uv_timer_stop(&s->timer);
	uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}

void relay_session_quit(struct relay_session *s)
{
	s->parked = false;
	uv_timer_stop(&s->timer);
	if (s->c == NULL) {
		session_end(s);
		return;
	}
	s->st = RS_QUIT;
	conn_write_str(s->c, "QUIT\r\n");
	conn_close(s->c);
}

static void on_park_timeout(uv_timer_t *t)
{
	struct relay_session *s = t->data;
	relay_session_unpark(s->d, s);
	relay_session_quit(s);
}

static void next_job(struct relay_session *s)
{
	job_finish(s);
	const struct relay_settings *set = relay_settings();
	/* Shutting down: what is still queued stays pending on disk for the next start. */
	if (s->msgs_done < set->max_msgs_per_conn && !relay_stopping()) {
		struct relay_job *j = relay_dest_next_job(s->d);
		if (j != NULL) {
			job_attach(s, j);
			begin_txn(s);
			return;
		}
		if (set->reuse_ms > 0) {
			s->st = RS_READY;
			s->parked = true;
			relay_session_park(s->d, s);
			uv_timer_start(&s->timer, on_park_timeout, set->reuse_ms, 0);
			return;
		}
	}
	relay_session_quit(s);
}

void relay_session_give(struct relay_session *s, struct relay_job *job)
{
	s->parked = false;
	uv_timer_stop(&s->timer);
	job_attach(s, job);
	begin_txn(s);
}

/* The current candidate failed before a transaction: QUIT and try the next one. */
static void candidate_failed(struct relay_session *s, const char *dsn, char *error)
{
	set_cand_error(s, dsn, error);
	s->st = RS_QUIT;
	conn_write_str(s->c, "QUIT\r\n");
	conn_close(s->c); /* on_close moves on to the next candidate */
}

/* --- the handshake ------------------------------------------------------------------------ */

static enum relay_tls tls_policy(const struct relay_session *s)
{
	if (s->d->is_local)
		return RELAY_TLS_NONE;
	return s->d->is_relayhost ? relay_settings()->relayhost_tls : relay_settings()->tls;
}

static void send_auth(struct relay_session *s)
{
	const struct relay_settings *set = relay_settings();
	struct buf raw, enc;
	buf_init(&raw, 0);
	buf_init(&enc, 0);
	/* RFC 4616: authzid NUL authcid NUL passwd */
	buf_append_char(&raw, '\0');
	buf_append_str(&raw, set->relayhost_user);
	buf_append_char(&raw, '\0');
	buf_append_str(&raw, set->relayhost_password);
	base64_encode(&enc, raw.data, raw.len);
	conn_printf(s->c, "AUTH PLAIN %s\r\n", buf_cstr(&enc));
	secure_zero(raw.data, raw.len);
	secure_zero(enc.data, enc.len);
	buf_free(&raw);
	buf_free(&enc);
	s->st = RS_AUTH;
}

static void after_ehlo(struct relay_session *s)
{
	enum relay_tls pol = tls_policy(s);
	if (!s->tls_done && !s->tls_refused && pol != RELAY_TLS_NONE && s->ehlo.starttls) {
		conn_write_str(s->c, "STARTTLS\r\n");
		s->st = RS_STARTTLS;
		return;
	}
	if (!s->tls_done && pol == RELAY_TLS_ENCRYPT) {
		candidate_failed(s, "4.7.4",
		                 xasprintf("TLS is required, but was not offered by host %s[%s]",
		                           s->cur->host, s->cur->ip));
		return;
	}
	const struct relay_settings *set = relay_settings();
	if (s->d->is_relayhost && set->relayhost_user != NULL && !s->authed) {
		if (!s->ehlo.auth_plain) {
			candidate_failed(
			    s, "4.7.0",
			    xasprintf("SASL authentication failed: host %s[%s] offers no "
			              "PLAIN mechanism",
			              s->cur->host, s->cur->ip));
			return;
		}
		send_auth(s);
		return;
	}
	s->pipelining = s->ehlo.pipelining;
	begin_txn(s);
}

static void send_ehlo(struct relay_session *s)
{
	/* RFC 2033 4.1: LMTP says LHLO. */
	conn_printf(s->c, "%s %s\r\n", s->d->is_local ? "LHLO" : "EHLO",
	            relay_settings()->helo_name);
	s->st = RS_EHLO;
}

static void handshake_reply(struct relay_session *s, const struct smtp_reply *r)
{
	switch (s->st) {
	case RS_GREETING:
		if (r->code / 100 == 2)
			send_ehlo(s);
		else
			candidate_failed(s, smtp_reply_dsn(r), said(s, r, NULL));
		return;
	case RS_EHLO:
		if (r->code / 100 == 2) {
			smtp_ehlo_parse(r, &s->ehlo);
			after_ehlo(s);
		} else if (r->code / 100 == 5 && !s->tls_done) {
			conn_printf(s->c, "HELO %s\r\n", relay_settings()->helo_name);
			s->st = RS_HELO;
		} else {
			candidate_failed(s, smtp_reply_dsn(r), said(s, r, "EHLO"));
		}
		return;
	case RS_HELO:
		if (r->code / 100 == 2) {
			memset(&s->ehlo, 0, sizeof(s->ehlo));
			after_ehlo(s);
		} else {
			candidate_failed(s, smtp_reply_dsn(r), said(s, r, "HELO"));
		}
		return;
	case RS_STARTTLS:
		if (r->code == 220) {
			/* With smtp_tls_ca_file, the relayhost context verifies the chain, and the
			 * name too when we connect by name (SNI doubles as the expected host). */
			const char *sni = is_ip(s->cur->host) ? NULL : s->cur->host;
			if (conn_start_tls_client(s->c, relay_tls_ctx(s->d->is_relayhost), sni) <
			    0) {
				candidate_failed(
				    s, "4.7.5",
				    xasprintf("cannot start TLS with %s", s->relay_desc));
				return;
			}
			s->tls_done = true;
			/* RFC 3207 4.2: forget everything learnt before TLS and say EHLO again;
			 * the EHLO waits in the conn until the handshake is done. */
			memset(&s->ehlo, 0, sizeof(s->ehlo));
			smtp_reply_parser_free(&s->parser);
			smtp_reply_parser_init(&s->parser, 0, 0);
			set_cand_error(s, "4.7.5",
			               xasprintf("TLS handshake with %s failed", s->relay_desc));
			send_ehlo(s);
		} else {
			s->tls_refused = true;
			after_ehlo(s);
		}
		return;
	case RS_AUTH:
		if (r->code == 235) {
			s->authed = true;
			s->pipelining = s->ehlo.pipelining;
			begin_txn(s);
		} else {
			char *why = said(s, r, "AUTH");
			candidate_failed(s, "4.7.0",
			                 xasprintf("SASL authentication failed; %s", why));
			free(why);
		}
		return;
	default:
		return;
	}
}

/* --- the transaction ---------------------------------------------------------------------- */

static void append_xtext(struct buf *b, const char *s)
{
	queue_xtext_encode(b, s);
}

static void write_rcpt(struct relay_session *s, size_t k)
{
	const struct queue_msg *m = s->job->msg->m;
	const struct queue_rcpt *r = &m->env.rcpts[s->job->rcpts[k]];
	struct buf b;
	buf_init(&b, 0);
	buf_printf(&b, "RCPT TO:<%s>", r->address);
	if (s->ehlo.dsn) {
		if (r->notify != 0) {
			if (r->notify & QUEUE_NOTIFY_NEVER) {
				buf_append_str(&b, " NOTIFY=NEVER");
			} else {
				const char *sep = " NOTIFY=";
				if (r->notify & QUEUE_NOTIFY_SUCCESS)
					buf_printf(&b, "%sSUCCESS", sep), sep = ",";
				if (r->notify & QUEUE_NOTIFY_FAILURE)
					buf_printf(&b, "%sFAILURE", sep), sep = ",";
				if (r->notify & QUEUE_NOTIFY_DELAY)
					buf_printf(&b, "%sDELAY", sep);
			}
		}
		if (r->orcpt != NULL) {
			const char *semi = strchr(r->orcpt, ';');
			if (semi != NULL) {
				buf_printf(&b, " ORCPT=%.*s;", (int)(semi - r->orcpt), r->orcpt);
				append_xtext(&b, semi + 1);
			}
		}
	}
	buf_append_str(&b, "\r\n");
	conn_write(s->c, b.data, b.len);
	buf_free(&b);
}

static void write_mail(struct relay_session *s)
{
	const struct queue_msg *m = s->job->msg->m;
	struct buf b;
	buf_init(&b, 0);
	buf_printf(&b, "MAIL FROM:<%s>", m->env.sender);
	if (s->ehlo.size)
		buf_printf(&b, " SIZE=%" PRIu64, m->body_size);
	if (m->env.body_8bit && s->ehlo.eightbitmime)
		buf_append_str(&b, " BODY=8BITMIME");
	if (m->env.smtputf8 && s->ehlo.smtputf8)
		buf_append_str(&b, " SMTPUTF8");
	if (s->ehlo.dsn) {
		if (m->env.ret != QUEUE_RET_DEFAULT)
			buf_printf(&b, " RET=%s", m->env.ret == QUEUE_RET_FULL ? "FULL" : "HDRS");
		if (m->env.envid != NULL) {
			buf_append_str(&b, " ENVID=");
			append_xtext(&b, m->env.envid);
		}
	}
	buf_append_str(&b, "\r\n");
	conn_write(s->c, b.data, b.len);
	buf_free(&b);
}

/* Reasons a message cannot go to this server at all (checked before MAIL). */
static bool precheck(struct relay_session *s)
{
	const struct queue_msg *m = s->job->msg->m;
	char *why = NULL;
	const char *dsn = NULL;
	if (s->ehlo.size && s->ehlo.max_size > 0 && m->body_size > s->ehlo.max_size) {
		dsn = "5.3.4";
		why = xasprintf("message size %" PRIu64 " exceeds size limit %" PRIu64
		                " of server %s[%s]",
		                m->body_size, s->ehlo.max_size, s->cur->host, s->cur->ip);
	} else if (m->env.body_8bit && !s->ehlo.eightbitmime) {
		/* RFC 6152 3: no 8-bit data to a server that did not offer 8BITMIME. */
		dsn = "5.6.3";
		why = xasprintf("8-bit message, but host %s[%s] does not offer 8BITMIME",
		                s->cur->host, s->cur->ip);
	} else if (m->env.smtputf8 && !s->ehlo.smtputf8) {
		/* RFC 6531 3.4: a message that needs SMTPUTF8 must not be downgraded. */
		dsn = "5.6.7";
		why = xasprintf("SMTPUTF8 is required, but was not offered by host %s[%s]",
		                s->cur->host, s->cur->ip);
	}
	if (why == NULL)
		return true;
	report_rest(s, RELAY_BOUNCED, dsn, why);
	free(why);
	return false;
}

static void begin_txn(struct relay_session *s)
{
	if (!s->ready) {
		/* Connected: earlier candidates' failures no longer describe anything. */
		free(s->cand_error);
		free(s->cand_dsn);
		s->cand_error = s->cand_dsn = NULL;
	}
	s->ready = true;
	if (!precheck(s)) {
		next_job(s);
		return;
	}
	char *err = NULL;
	s->body_fd = queue_open_body(relay_queue(), s->job->msg->m, &err);
	if (s->body_fd < 0) {
		report_rest(s, RELAY_DEFERRED, "4.3.0", err);
		free(err);
		next_job(s);
		return;
	}
	s->replies_seen = 0;
	s->mail_ok = false;
	s->data_sent = false;
	s->n_accepted = 0;
	s->expect_dot_reply_ignored = false;
	s->st = RS_TXN;
	write_mail(s);
	if (s->pipelining) {
		/* RFC 2920 3.1: MAIL, RCPTs and DATA in one go; replies come in order. */
		for (size_t k = 0; k < s->job->n; k++)
			write_rcpt(s, k);
		conn_write_str(s->c, "DATA\r\n");
		s->data_sent = true;
	}
}

static void send_body(struct relay_session *s)
{
	const struct queue_msg *m = s->job->msg->m;
	char *chunk = xmalloc(BODY_CHUNK);
	struct buf out;
	buf_init(&out, 0);
	for (;;) {
		buf_reset(&out);
		if (s->body_pos >= m->body_size) {
			relay_body_finish(&s->enc, &out);
			conn_write(s->c, out.data, out.len);
			s->st = RS_DOT;
			break;
		}
		uint64_t left = m->body_size - s->body_pos;
		size_t want = left < BODY_CHUNK ? (size_t)left : BODY_CHUNK;
		ssize_t n = pread(s->body_fd, chunk, want, (off_t)(m->body_offset + s->body_pos));
		if (n <= 0) {
			/* The file changed under us: give up this connection, nothing is lost. */
			log_warn("%s: read error while sending to %s", m->qid, s->relay_desc);
			conn_abort(s->c);
			break;
		}
		s->body_pos += (uint64_t)n;
		relay_body_encode(&s->enc, chunk, (size_t)n, &out);
		int w = conn_write(s->c, out.data, out.len);
		if (w != 0)
			break; /* back-pressure (on_drain resumes) or closing (on_close) */
	}
	buf_free(&out);
	free(chunk);
}

static void start_body(struct relay_session *s)
{
	s->st = RS_BODY;
	s->body_pos = 0;
	relay_body_encoder_init(&s->enc);
	send_body(s);
}

static void after_rcpts(struct relay_session *s)
{
	if (s->n_accepted > 0) {
		conn_write_str(s->c, "DATA\r\n");
		s->data_sent = true;
	} else {
		conn_write_str(s->c, "RSET\r\n");
		s->st = RS_RSET;
	}
}

static void txn_reply(struct relay_session *s, const struct smtp_reply *r)
{
	size_t i = s->replies_seen++;
	size_t n = s->job->n;
	if (i == 0) {
		s->mail_ok = r->code / 100 == 2;
		if (!s->mail_ok) {
			char *why = said(s, r, "MAIL FROM");
			report_rest(s, outcome_of(r->code), smtp_reply_dsn(r), why);
			free(why);
			if (!s->pipelining) {
				conn_write_str(s->c, "RSET\r\n");
				s->st = RS_RSET;
			}
			return;
		}
		if (!s->pipelining)
			write_rcpt(s, 0);
		return;
	}
	if (i <= n) {
		size_t k = i - 1;
		if (s->mail_ok) {
			if (r->code / 100 == 2) {
				s->accepted[k] = true;
				s->n_accepted++;
			} else {
				char *why = said(s, r, "RCPT TO");
				report(s, k, outcome_of(r->code), smtp_reply_dsn(r), why);
				free(why);
			}
		}
		if (!s->pipelining) {
			if (k + 1 < n)
				write_rcpt(s, k + 1);
			else
				after_rcpts(s);
		}
		return;
	}
	/* The reply to DATA. */
	if (r->code == 354 && s->mail_ok && s->n_accepted > 0) {
		start_body(s);
		return;
	}
	if (r->code == 354) {
		/* RFC 2920 3.1: DATA was accepted although no recipient was: send an empty
		 * message so the server drops it, and ignore its reply. */
		conn_write_str(s->c, ".\r\n");
		s->st = RS_DOT;
		s->expect_dot_reply_ignored = true;
		return;
	}
	if (s->mail_ok && s->n_accepted > 0) {
		char *why = said(s, r, "DATA");
		report_rest(s, outcome_of(r->code), smtp_reply_dsn(r), why);
		free(why);
	}
	conn_write_str(s->c, "RSET\r\n");
	s->st = RS_RSET;
}

/* RFC 2033 4.2: after the data, LMTP answers once per accepted recipient, in order. */
static void lmtp_dot_reply(struct relay_session *s, const struct smtp_reply *r)
{
	for (size_t k = 0; k < s->job->n; k++) {
		if (!s->accepted[k] || s->reported[k])
			continue;
		struct buf b;
		buf_init(&b, 0);
		smtp_reply_format(r, &b, 400);
		char *why = r->code / 100 == 2 ? buf_steal(&b) : said(s, r, "end of DATA");
		buf_free(&b);
		report(s, k, outcome_of(r->code), smtp_reply_dsn(r), why);
		free(why);
		break;
	}
	for (size_t k = 0; k < s->job->n; k++)
		if (s->accepted[k] && !s->reported[k])
			return; /* more replies to come */
	s->msgs_done++;
	next_job(s);
}

static void dot_reply(struct relay_session *s, const struct smtp_reply *r)
{
	if (s->d->is_local && !s->expect_dot_reply_ignored) {
		lmtp_dot_reply(s, r);
		return;
	}
	if (!s->expect_dot_reply_ignored) {
		struct buf b;
		buf_init(&b, 0);
		if (r->code / 100 == 2)
			smtp_reply_format(r, &b, 400);
		char *why = r->code / 100 == 2 ? buf_steal(&b) : said(s, r, "end of DATA");
		buf_free(&b);
		report_rest(s, outcome_of(r->code), smtp_reply_dsn(r), why);
		free(why);
		s->msgs_done++;
	}
	next_job(s);
}

/* --- connection callbacks ----------------------------------------------------------------- */

static void handle_reply(struct relay_session *s, const struct smtp_reply *r)
{
	switch (s->st) {
	case RS_GREETING:
	case RS_EHLO:
	case RS_HELO:
	case RS_STARTTLS:
	case RS_AUTH:
		handshake_reply(s, r);
		break;
	case RS_TXN:
		txn_reply(s, r);
		break;
	case RS_DOT:
		dot_reply(s, r);
		break;
	case RS_RSET:
		if (r->code / 100 == 2)
			next_job(s);
		else
			relay_session_quit(s);
		break;
	case RS_QUIT:
		break;
	default:
		/* A reply nobody asked for (e.g. while parked): the server is confused. */
		conn_abort(s->c);
		break;
	}
}

static void on_open(struct conn *c)
{
	struct relay_session *s = conn_data(c);
	uv_timer_stop(&s->timer);
	s->st = RS_GREETING;
}

static void on_data(struct conn *c, struct buf *in)
{
	struct relay_session *s = conn_data(c);
	const char *err;
	for (;;) {
		if (conn_is_closing(c) || s->st == RS_QUIT)
			return;
		enum smtp_reply_result res = smtp_reply_parse(&s->parser, in, &s->reply, &err);
		if (res == SMTP_REPLY_MORE)
			return;
		if (res == SMTP_REPLY_ERROR) {
			set_cand_error(s, "4.5.0",
			               xasprintf("host %s[%s] broke the protocol: %s", s->cur->host,
			                         s->cur->ip, err));
			conn_abort(c);
			return;
		}
		handle_reply(s, &s->reply);
	}
}

static void on_drain(struct conn *c)
{
	struct relay_session *s = conn_data(c);
	if (s->st == RS_BODY)
		send_body(s);
}

static void on_timeout(struct conn *c)
{
	struct relay_session *s = conn_data(c);
	set_cand_error(s, "4.4.2",
	               xasprintf("conversation with %s[%s] timed out while %s", s->cur->host,
	                         s->cur->ip, stage_names[s->st]));
}

static void on_close(struct conn *c)
{
	struct relay_session *s = conn_data(c);
	s->c = NULL;
	uv_timer_stop(&s->timer);
	if (s->parked) {
		session_end(s);
		return;
	}
	if (s->job == NULL) {
		session_end(s);
		return;
	}
	if (!s->ready) {
		/* Never got to a transaction with this host: the next one may do better. */
		if (s->st == RS_CONNECTING && conn_connect_error(c) != 0)
			set_cand_error(s, "4.4.1",
			               xasprintf("connect to %s: %s", s->relay_desc,
			                         uv_strerror(conn_connect_error(c))));
		else if (s->st != RS_QUIT && s->st != RS_CONNECTING)
			set_cand_error(s, s->cand_dsn != NULL ? s->cand_dsn : "4.4.2",
			               s->cand_error != NULL
			                   ? xstrdup(s->cand_error)
			                   : xasprintf("lost connection with %s[%s] while %s",
			                               s->cur->host, s->cur->ip,
			                               stage_names[s->st]));
		connect_next(s);
		return;
	}
	if (s->msgs_done > 0 && s->replies_seen == 0 && s->st == RS_TXN) {
		/* A reused connection the server had already dropped: nothing of this job was
		 * answered, so it goes back to the queue for a fresh connection, no try lost. */
		if (s->body_fd >= 0) {
			close(s->body_fd);
			s->body_fd = -1;
		}
		free(s->reported);
		free(s->accepted);
		s->reported = s->accepted = NULL;
		struct relay_job *j = s->job;
		s->job = NULL;
		relay_dest_requeue(s->d, j);
		session_end(s);
		return;
	}
	char *why = s->cand_error != NULL && strstr(s->cand_error, "timed out") != NULL
	                ? xstrdup(s->cand_error)
	                : xasprintf("lost connection with %s[%s] while %s", s->cur->host,
	                            s->cur->ip, stage_names[s->st]);
	report_rest(s, RELAY_DEFERRED, "4.4.2", why);
	free(why);
	job_finish(s);
	session_end(s);
}

static const struct conn_ops session_ops = {
    .on_open = on_open,
    .on_data = on_data,
    .on_drain = on_drain,
    .on_timeout = on_timeout,
    .on_close = on_close,
};
