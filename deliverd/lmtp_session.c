/*
 * The LMTP session core: input loop, replies, the transaction's lifetime, the body and
 * the per-recipient replies after it (RFC 2033 4.2: one reply per accepted RCPT, in RCPT
 * order, each sent only once every mailbox behind that RCPT has its copy durable).
 * The command handlers live in lmtp_commands.c.
 */
#include "lmtp_private.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/xalloc.h"

struct lmtp_session *lmtp_session_new(const struct lmtp_backend *backend,
                                      const struct lmtp_limits *limits, const char *hostname,
                                      const char *peer_desc)
{
	struct lmtp_session *s = xcalloc(1, sizeof(*s));
	s->be = backend;
	s->limits = *limits;
	s->maps = &s->no_maps;
	s->hostname = xstrdup(hostname);
	s->peer = xstrdup(peer_desc);
	lmtp_parser_init(&s->parser, limits->max_line);
	s->state = LMTP_STATE_INIT;
	return s;
}

void lmtp_session_set_maps(struct lmtp_session *s, const struct recipient_maps *maps)
{
	s->maps = maps != NULL ? maps : &s->no_maps;
}

void lmtp_session_start(struct lmtp_session *s)
{
	lmtp_reply(s, "220 %s LMTP tern ready", s->hostname);
}

bool lmtp_session_busy(const struct lmtp_session *s)
{
	return s->wait != LMTP_WAIT_NONE;
}

void lmtp_reply(struct lmtp_session *s, const char *fmt, ...)
{
	if (s->orphaned)
		return;
	struct buf b;
	buf_init(&b, 0);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	buf_append(&b, "\r\n", 2);
	s->be->write(s->be->ctx, b.data, b.len);
	buf_free(&b);
}

void lmtp_error(struct lmtp_session *s, const char *fmt, ...)
{
	struct buf b;
	buf_init(&b, 0);
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	lmtp_reply(s, "%s", buf_cstr(&b));
	buf_free(&b);
	if (++s->errors >= s->limits.max_errors && !s->closing) {
		log_info("too many errors from %s", s->peer);
		lmtp_reply(s, "421 4.7.0 %s Too many errors, closing", s->hostname);
		s->closing = true;
		s->be->close(s->be->ctx);
	}
}

void lmtp_new_qid(struct lmtp_session *s)
{
	/* Postfix-like queue id: one token, no ':' (logs.md 4.1). */
	static uint32_t counter;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(s->qid, sizeof(s->qid), "%08llX%05X%03X", (unsigned long long)now.tv_sec,
	         (unsigned)(now.tv_nsec / 1000) & 0xfffff, ++counter & 0xfff);
	clock_gettime(CLOCK_MONOTONIC, &s->started);
}

double lmtp_elapsed(const struct lmtp_session *s)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - s->started.tv_sec) +
	       (double)(now.tv_nsec - s->started.tv_nsec) / 1e9;
}

const char *lmtp_log_text(struct buf *b, const char *text)
{
	buf_reset(b);
	return log_sanitize(b, text, strlen(text), 300);
}

void lmtp_target_free(struct lmtp_target *t)
{
	free(t->key);
	free(t->address);
	free(t->home);
	free(t->detail);
	free(t->prefix);
	free(t->orig);
	free(t->folder_used);
	free(t->orcpt);
	memset(t, 0, sizeof(*t));
}

void lmtp_pending_free(struct lmtp_pending_rcpt *p)
{
	address_free(&p->addr);
	recipient_targets_free(&p->t);
	for (size_t i = 0; i < p->n_found; i++)
		lmtp_target_free(&p->found[i]);
	free(p->found);
	memset(p, 0, sizeof(*p));
}

static void targets_free(struct lmtp_session *s)
{
	for (size_t i = 0; i < s->n_targets; i++)
		lmtp_target_free(&s->targets[i]);
	free(s->targets);
	s->targets = NULL;
	s->n_targets = 0;
}

void lmtp_transaction_reset(struct lmtp_session *s)
{
	if (s->spool_open) {
		s->be->spool_discard(s->be->ctx);
		s->spool_open = false;
	}
	address_free(&s->sender);
	for (size_t i = 0; i < s->n_rcpts; i++) {
		free(s->rcpts[i].address);
		free(s->rcpts[i].targets);
	}
	free(s->rcpts);
	s->rcpts = NULL;
	s->n_rcpts = 0;
	targets_free(s);
	lmtp_pending_free(&s->pending);
	s->smtputf8 = false;
	free(s->dsn_ret);
	free(s->dsn_envid);
	free(s->rcpt_orcpt);
	s->dsn_ret = s->dsn_envid = s->rcpt_orcpt = NULL;
	s->rcpt_notify = 0;
	s->declared_size = 0;
	s->in_body = false;
	s->spool_failed = false;
	s->too_big = false;
	s->body_size = 0;
	s->next_reply = 0;
	s->qid[0] = '\0';
	if (s->state != LMTP_STATE_INIT)
		s->state = LMTP_STATE_READY;
}

static void session_free(struct lmtp_session *s)
{
	lmtp_transaction_reset(s);
	const struct lmtp_backend *be = s->be;
	free(s->hostname);
	free(s->peer);
	free(s);
	if (be->destroyed != NULL)
		be->destroyed(be->ctx);
}

void lmtp_session_close(struct lmtp_session *s)
{
	if (s->wait == LMTP_WAIT_DELIVERY) {
		/* The copies being written stay valid; the last callback frees. */
		s->orphaned = true;
		return;
	}
	if (s->wait == LMTP_WAIT_LOOKUP)
		s->be->lookup_abort(s->be->ctx, s);
	if (s->in_body && !s->body_discard)
		log_info("%s: lost connection after DATA from %s, nothing delivered",
		         s->qid[0] ? s->qid : "NOQUEUE", s->peer);
	session_free(s);
}

void lmtp_body_begin(struct lmtp_session *s, bool bdat, uint64_t size, bool last, bool discard)
{
	s->in_body = true;
	s->body_is_bdat = bdat;
	s->body_discard = discard;
	s->body_last = last;
	s->chunk_size = size;
	if (bdat)
		lmtp_parser_begin_bdat(&s->parser, size, last);
	else
		lmtp_parser_begin_data(&s->parser);
}

static void body_bytes(struct lmtp_session *s, const char *data, size_t len)
{
	if (s->body_discard || s->too_big || s->spool_failed)
		return;
	if (len > s->limits.max_message - s->body_size) {
		s->too_big = true;
		return;
	}
	s->body_size += len;
	char *err = NULL;
	if (s->be->spool_write(s->be->ctx, data, len, &err) < 0) {
		log_warn("%s: spool write: %s", s->qid, err);
		free(err);
		s->spool_failed = true;
	}
}

/* Every recipient gets the same reply (the message as a whole was refused). */
static void reply_all(struct lmtp_session *s, const char *reply)
{
	for (size_t i = 0; i < s->n_rcpts; i++)
		lmtp_reply(s, "%s", reply);
}

static void start_delivery(struct lmtp_session *s)
{
	struct buf from;
	buf_init(&from, 0);
	log_info("%s: from=<%s>, size=%llu, nrcpt=%zu (queue active)", s->qid,
	         lmtp_log_text(&from, s->sender.full), (unsigned long long)s->body_size,
	         s->n_rcpts);
	buf_free(&from);
	s->wait = LMTP_WAIT_DELIVERY;
	s->next_reply = 0;
	s->n_delivered_pending = s->n_targets;
	s->be->deliver(s->be->ctx, s, s->targets, s->n_targets);
}

static void body_end(struct lmtp_session *s)
{
	bool bad_eol = !s->body_is_bdat && s->parser.body_bad_eol;
	s->in_body = false;
	if (s->body_discard) {
		/* A chunk that arrived outside a usable transaction (RFC 3030 2: it is read
		 * in full, then refused). */
		lmtp_error(s, "503 5.5.1 Error: no valid transaction for BDAT");
		return;
	}
	if (s->body_is_bdat && !s->body_last) {
		if (s->too_big || s->spool_failed) {
			lmtp_reply(s, s->too_big ? "552 5.3.4 Message too big"
			                         : "451 4.3.0 Temporary failure writing the spool");
			lmtp_transaction_reset(s);
			return;
		}
		lmtp_reply(s, "250 2.0.0 %llu octets received", (unsigned long long)s->chunk_size);
		return;
	}
	if (bad_eol) {
		log_info("%s: reject: bare LF or CR in message data from %s", s->qid, s->peer);
		reply_all(s, "550 5.6.0 Bare LF or CR in message data refused");
	} else if (s->too_big) {
		log_info("%s: reject: message too big from %s", s->qid, s->peer);
		reply_all(s, "552 5.3.4 Message too big");
	} else if (s->spool_failed) {
		reply_all(s, "451 4.3.0 Temporary failure writing the spool");
	} else {
		start_delivery(s);
		return;
	}
	lmtp_transaction_reset(s);
}

static const char *status_reply(enum lmtp_delivery_status st)
{
	switch (st) {
	case LMTP_DELIVERED:
		return "250 2.0.0";
	case LMTP_DELIVERY_NOSPACE:
		return "452 4.3.1";
	case LMTP_DELIVERY_OVERQUOTA:
		return "552 5.2.2";
	case LMTP_DELIVERY_PERMFAIL:
		return "550 5.2.0";
	case LMTP_DELIVERY_TEMPFAIL:
		break;
	}
	return "451 4.3.0";
}

static const char *status_text(enum lmtp_delivery_status st)
{
	switch (st) {
	case LMTP_DELIVERED:
		return "Saved";
	case LMTP_DELIVERY_NOSPACE:
		return "Insufficient system storage";
	case LMTP_DELIVERY_OVERQUOTA:
		return "Mailbox full";
	case LMTP_DELIVERY_PERMFAIL:
		return "Mailbox unavailable";
	case LMTP_DELIVERY_TEMPFAIL:
		break;
	}
	return "Temporary local problem, try again later";
}

const char *lmtp_session_sender(const struct lmtp_session *s)
{
	return s->sender.full;
}

bool lmtp_session_smtputf8(const struct lmtp_session *s)
{
	return s->smtputf8;
}

const char *lmtp_session_dsn_ret(const struct lmtp_session *s)
{
	return s->dsn_ret;
}

const char *lmtp_session_dsn_envid(const struct lmtp_session *s)
{
	return s->dsn_envid;
}

static void log_target(struct lmtp_session *s, const struct lmtp_target *t)
{
	const char *dsn = status_reply(t->status) + 4;
	const char *status = t->status == LMTP_DELIVERED ? "sent"
	                     : dsn[0] == '5'             ? "bounced"
	                                                 : "deferred";
	struct buf orig, to, tmp;
	buf_init(&orig, 0);
	buf_init(&to, 0);
	buf_init(&tmp, 0);
	if (t->orig != NULL && strcmp(t->orig, t->address) != 0)
		buf_printf(&orig, "orig_to=<%s>, ", lmtp_log_text(&tmp, t->orig));
	lmtp_log_text(&to, t->address);
	bool inbox = t->folder_used == NULL || strcmp(t->folder_used, "INBOX") == 0;
	if (t->remote && t->status == LMTP_DELIVERED)
		log_info(
		    "%s: to=<%s>, %srelay=queue, delay=%.2f, dsn=%s, status=queued (queued as %s)",
		    s->qid, buf_cstr(&to), buf_cstr(&orig), lmtp_elapsed(s), dsn,
		    t->folder_used != NULL ? t->folder_used : "?");
	else if (t->status == LMTP_DELIVERED)
		log_info("%s: to=<%s>, %srelay=local, delay=%.2f, dsn=%s, status=sent "
		         "(delivered to maildir%s%s)",
		         s->qid, buf_cstr(&to), buf_cstr(&orig), lmtp_elapsed(s), dsn,
		         inbox ? "" : ", folder ", inbox ? "" : t->folder_used);
	else
		log_info("%s: to=<%s>, %srelay=local, delay=%.2f, dsn=%s, status=%s (%s)", s->qid,
		         buf_cstr(&to), buf_cstr(&orig), lmtp_elapsed(s), dsn, status,
		         status_text(t->status));
	buf_free(&orig);
	buf_free(&to);
	buf_free(&tmp);
}

/* Sends the replies of every recipient, in order, whose mailboxes all have an answer. */
static void flush_replies(struct lmtp_session *s)
{
	while (s->next_reply < s->n_rcpts) {
		struct lmtp_rcpt *r = &s->rcpts[s->next_reply];
		const struct lmtp_target *worst = NULL;
		for (size_t i = 0; i < r->n_targets; i++) {
			const struct lmtp_target *t = &s->targets[r->targets[i]];
			if (!t->done)
				return;
			if (worst == NULL ||
			    (worst->status == LMTP_DELIVERED && t->status != LMTP_DELIVERED))
				worst = t;
		}
		enum lmtp_delivery_status st = worst != NULL ? worst->status : LMTP_DELIVERED;
		lmtp_reply(s, "%s <%s> %s %s", status_reply(st), r->address, s->qid,
		           status_text(st));
		s->next_reply++;
	}
}

void lmtp_session_delivery_done(struct lmtp_session *s, size_t index,
                                enum lmtp_delivery_status status, const char *folder_used)
{
	struct lmtp_target *t = &s->targets[index];
	t->done = true;
	t->status = status;
	if (folder_used != NULL)
		t->folder_used = xstrdup(folder_used);
	log_target(s, t);
	flush_replies(s);
	if (--s->n_delivered_pending > 0)
		return;
	s->wait = LMTP_WAIT_NONE;
	if (s->orphaned) {
		session_free(s);
		return;
	}
	lmtp_transaction_reset(s);
	s->be->resume(s->be->ctx);
}

void lmtp_session_input(struct lmtp_session *s, struct buf *in)
{
	/* The work per call is bounded by the input buffer's cap (conn_limits.max_input). */
	for (;;) {
		if (s->closing || s->wait != LMTP_WAIT_NONE)
			return;
		/* A finished BDAT chunk ends without needing another byte. */
		bool chunk_done = s->parser.mode == LMTP_MODE_BDAT && s->parser.bdat_left == 0;
		if (in->len == 0 && !chunk_done)
			return;
		struct lmtp_token tok;
		size_t used = 0;
		enum lmtp_event ev = lmtp_parser_next(&s->parser, in->data, in->len, &tok, &used);
		switch (ev) {
		case LMTP_EV_NEED_MORE:
			buf_consume(in, used);
			return;
		case LMTP_EV_COMMAND: {
			/* The command handler may start a body; consume first so the body
			 * bytes are next in the buffer. */
			char *line = xstrndup(tok.data, tok.len);
			buf_consume(in, used);
			lmtp_command(s, line, strlen(line) == tok.len ? tok.len : 0);
			free(line);
			break;
		}
		case LMTP_EV_LINE_TOO_LONG:
			buf_consume(in, used);
			lmtp_error(s, "500 5.5.2 Error: line too long");
			break;
		case LMTP_EV_BAD_LINE:
			buf_consume(in, used);
			lmtp_error(s, "500 5.5.2 Error: bare LF or CR in command line");
			break;
		case LMTP_EV_BODY:
			body_bytes(s, tok.data, tok.len);
			buf_consume(in, used);
			break;
		case LMTP_EV_BODY_END:
			buf_consume(in, used);
			body_end(s);
			break;
		}
	}
}
