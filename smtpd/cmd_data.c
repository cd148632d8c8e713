/*
 * DATA and BDAT (RFC 5321 4.1.1.4, RFC 3030): the message is framed here, passes
 * through headers.c, and streams to deliverd as it arrives (at most one input chunk is
 * held). The client hears 250 only when deliverd answered 2xx for every recipient.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "smtp_internal.h"

/* Input bytes handled per step, so one client cannot hold the loop for long. */
#define SMTP_DATA_STEP 65536

static int msg_out(void *ctx, const char *data, size_t len)
{
	struct smtp_session *s = ctx;
	int r;

	if (s->tx.failed)
		return -1;
	r = s->dlv->write(s->tx.dlv, data, len);
	if (r < 0) {
		s->tx.failed = true;
		return -1;
	}
	if (r > 0)
		s->tx.backpressure = true;
	return 0;
}

static void start_message(struct smtp_session *s)
{
	struct smtp_tx *tx = &s->tx;
	struct smtp_msg_info info;
	const char *version = NULL, *cipher = NULL;

	if (s->tls)
		s->io->tls_info(s->io_ctx, &version, &cipher);
	memset(&info, 0, sizeof(info));
	info.hostname = s->set->hostname;
	info.helo = s->helo;
	info.client_ip = s->client.ip;
	info.protocol = smtp_protocol_name(s);
	info.queue_id = tx->queue_id;
	info.tls_version = version;
	info.tls_cipher = cipher;
	info.auth_user = s->auth_user;
	info.for_rcpt = tx->n_rcpts == 1 ? tx->rcpts[0] : NULL;
	info.add_missing = s->client.role != SMTP_ROLE_SMTP && s->set->add_missing_headers;
	info.max_header_size = s->set->max_header_size;
	info.max_message_size = s->set->max_message_size;
	info.now = time(NULL);
	tx->data_open = true;
	tx->msg_started = true;
	smtp_msg_begin(&tx->msg, &info, msg_out, s);
}

void cmd_data(struct smtp_session *s, char *args)
{
	if (args[0] != '\0') {
		smtp_reply_error(s, "501 5.5.4 Syntax: DATA");
		return;
	}
	if (s->tx.n_rcpts == 0) {
		smtp_log_reject(s, "DATA", "554 5.5.1 Error: no valid recipients", NULL);
		smtp_reply_error(s, "554 5.5.1 Error: no valid recipients");
		return;
	}
	if (s->tx.is_bdat) {
		smtp_reply_error(s, "503 5.5.1 Error: DATA after BDAT");
		return;
	}
	s->wait = SMTP_WAIT_DATA;
	s->dlv->data(s->tx.dlv);
}

static void refuse_bare(struct smtp_session *s, enum smtp_data_result r)
{
	const char *what = r == SMTP_DATA_BARE_LF ? "LF" : "CR";

	/* Never guess where such a message ends (SMTP smuggling): drop the transaction
	 * (deliverd sees no final dot, so nothing is stored) and the connection. */
	log_info("warning: %s: bare <%s> received after %s", s->client_name, what, s->last_verb);
	smtp_tx_reset(s);
	s->mode = SMTP_MODE_COMMAND;
	smtp_reply(s, "521 5.5.2 %s Error: bare <%s> received", s->set->hostname, what);
	smtp_close(s);
}

static void log_delivered(struct smtp_session *s, const char *status)
{
	struct smtp_tx *tx = &s->tx;
	struct timespec now;
	char *from = smtp_sanitize(tx->mail.address);

	clock_gettime(CLOCK_MONOTONIC, &now);
	double delay = (double)(now.tv_sec - tx->start.tv_sec) +
	               (double)(now.tv_nsec - tx->start.tv_nsec) / 1e9;
	log_info_as("qmgr", "%s: from=<%s>, size=%llu, nrcpt=%zu (queue active)", tx->queue_id,
	            from, (unsigned long long)tx->msg.size, tx->n_rcpts);
	for (size_t i = 0; i < tx->n_rcpts; i++) {
		const char *text = tx->end_texts[i] != NULL ? tx->end_texts[i] : "";
		char *to = smtp_sanitize(tx->rcpts[i]);
		char *t = smtp_sanitize(text);
		char dsn[16] = "4.3.0";
		const char *sp = strchr(text, ' ');
		if (sp != NULL && sp[1] >= '2' && sp[1] <= '5' && sp[2] == '.')
			snprintf(dsn, sizeof(dsn), "%.*s", (int)strcspn(sp + 1, " "), sp + 1);
		const char *st = text[0] == '2' ? "sent" : text[0] == '5' ? "bounced" : "deferred";
		if (strcmp(status, "deferred") == 0 && text[0] == '2')
			st = "sent";
		log_info_as(
		    "lmtp",
		    "%s: to=<%s>, relay=deliverd[lmtp], delay=%.2f, delays=0/0/0/%.2f, dsn=%s, "
		    "status=%s (%s)",
		    tx->queue_id, to, delay, delay, dsn, st, t);
		free(to);
		free(t);
	}
	log_info_as("qmgr", "%s: removed", tx->queue_id);
	free(from);
}

static void finish_message(struct smtp_session *s)
{
	struct smtp_tx *tx = &s->tx;
	enum smtp_msg_error e = smtp_msg_end(&tx->msg);
	const char *reply = NULL;

	s->mode = SMTP_MODE_COMMAND;
	if (e == SMTP_MSG_TOO_BIG)
		reply = "552 5.3.4 Message size exceeds fixed limit";
	else if (e == SMTP_MSG_HEADER_TOO_BIG)
		reply = "552 5.3.4 Message header size exceeds limit";
	else if (e != SMTP_MSG_OK || tx->failed)
		reply = "451 4.3.0 Error: delivery service failed, try again later";
	if (reply != NULL) {
		smtp_log_reject(s, "END-OF-MESSAGE", reply, NULL);
		smtp_reply_error(s, "%s", reply);
		smtp_tx_reset(s);
		return;
	}
	tx->end_texts = xcalloc(tx->n_rcpts, sizeof(char *));
	s->wait = SMTP_WAIT_END;
	s->dlv->end(tx->dlv);
}

static void end_reply(struct smtp_session *s, int code, const char *reply)
{
	struct smtp_tx *tx = &s->tx;

	if (tx->end_replies < tx->n_rcpts)
		tx->end_texts[tx->end_replies] = xstrdup(reply);
	tx->end_replies++;
	if (code / 100 == 2) {
		tx->end_ok++;
	} else {
		if (code / 100 == 5)
			tx->end_perm++;
		else
			tx->end_temp++;
		if (tx->end_fail_reply == NULL)
			tx->end_fail_reply = xstrdup(reply);
	}
	if (tx->end_replies < tx->n_rcpts)
		return;
	s->wait = SMTP_WAIT_NONE;
	if (tx->end_ok == tx->n_rcpts) {
		log_delivered(s, "sent");
		smtp_reply(s, "250 2.0.0 Ok: queued as %s", tx->queue_id);
		smtp_cmd_ok(s);
	} else if (tx->end_perm == tx->n_rcpts) {
		log_delivered(s, "bounced");
		smtp_reply_error(s, "%s", tx->end_fail_reply);
	} else if (tx->end_temp == tx->n_rcpts) {
		log_delivered(s, "deferred");
		smtp_reply_error(s, "%s", tx->end_fail_reply);
	} else {
		/* Some copies may be durable and some not: 4xx keeps the message with the
		 * client; a 250 here could lose mail, a retry can only duplicate it. */
		log_delivered(s, "deferred");
		smtp_reply_error(s, "451 4.3.0 Error: delivery failed for some recipients, try "
		                    "again later");
	}
	smtp_tx_reset(s);
}

void smtp_data_delivery_reply(struct smtp_session *s, int code, const char *reply)
{
	struct smtp_tx *tx = &s->tx;

	switch (s->wait) {
	case SMTP_WAIT_DATA:
		s->wait = SMTP_WAIT_NONE;
		if (code / 100 == 3) {
			start_message(s);
			if (tx->is_bdat) {
				s->mode = SMTP_MODE_BDAT;
			} else {
				smtp_data_decoder_init(&tx->dec);
				s->mode = SMTP_MODE_DATA;
				smtp_reply(s, "354 End data with <CR><LF>.<CR><LF>");
				smtp_flush(s);
			}
		} else if (tx->is_bdat) {
			free(tx->end_fail_reply);
			tx->end_fail_reply = xstrdup(code / 100 == 5 ? reply
			                                             : "451 4.3.0 Error: delivery "
			                                               "service unavailable");
			tx->bdat_error = tx->end_fail_reply;
			s->mode = SMTP_MODE_BDAT;
		} else {
			smtp_reply_error(s, "%s",
			                 code / 100 == 5 ? reply
			                                 : "451 4.3.0 Error: delivery service "
			                                   "unavailable, try again later");
			smtp_tx_reset(s);
		}
		break;
	case SMTP_WAIT_DRAIN:
		/* deliverd gave up in the middle of the message. */
		tx->failed = true;
		s->wait = SMTP_WAIT_NONE;
		break;
	case SMTP_WAIT_END:
		end_reply(s, code, reply);
		break;
	default:
		break;
	}
}

void smtp_data_drained(struct smtp_session *s)
{
	s->tx.backpressure = false;
	s->wait = SMTP_WAIT_NONE;
}

void smtp_data_input(struct smtp_session *s)
{
	struct smtp_tx *tx = &s->tx;
	struct buf *in = s->in;
	size_t n = in->len < SMTP_DATA_STEP ? in->len : SMTP_DATA_STEP;
	char *out = xmalloc(n + 2);
	size_t out_len, used;
	enum smtp_data_result r;

	r = smtp_data_decode(&tx->dec, in->data, n, out, &out_len, &used);
	if (out_len > 0 && r != SMTP_DATA_BARE_LF && r != SMTP_DATA_BARE_CR)
		smtp_msg_write(&tx->msg, out, out_len);
	free(out);
	buf_consume(in, used);
	switch (r) {
	case SMTP_DATA_MORE:
		if (tx->backpressure)
			s->wait = SMTP_WAIT_DRAIN;
		break;
	case SMTP_DATA_END:
		finish_message(s);
		break;
	default:
		refuse_bare(s, r);
		break;
	}
}

void cmd_bdat(struct smtp_session *s, char *args)
{
	struct smtp_tx *tx = &s->tx;
	unsigned long long size;
	bool last;

	if (smtp_bdat_parse(args, 999999999999999999ULL, &size, &last) < 0) {
		/* Without a valid size the chunk cannot be skipped: the stream is lost. */
		smtp_reply(s, "501 5.5.4 Syntax: BDAT count [LAST]");
		smtp_close(s);
		return;
	}
	tx->bdat_remaining = size;
	tx->bdat_last = last;
	tx->bdat_error = NULL;
	s->mode = SMTP_MODE_BDAT;
	/* RFC 3030 2: the chunk is read even when the command fails. */
	if (s->state == SMTP_STATE_INIT)
		tx->bdat_error = "503 5.5.1 Error: send HELO/EHLO first";
	else if (!s->in_tx)
		tx->bdat_error = "503 5.5.1 Error: need MAIL command";
	else if (tx->n_rcpts == 0)
		tx->bdat_error = "554 5.5.1 Error: no valid recipients";
	else if (tx->data_open && !tx->is_bdat)
		tx->bdat_error = "503 5.5.1 Error: BDAT after DATA";
	if (tx->bdat_error != NULL || tx->data_open)
		return;
	tx->is_bdat = true;
	s->mode = SMTP_MODE_COMMAND;
	s->wait = SMTP_WAIT_DATA;
	s->dlv->data(tx->dlv);
}

static void bdat_chunk_done(struct smtp_session *s)
{
	struct smtp_tx *tx = &s->tx;

	s->mode = SMTP_MODE_COMMAND;
	if (tx->bdat_error != NULL) {
		const char *err = tx->bdat_error;
		char *copy = xstrdup(err);
		tx->bdat_error = NULL;
		tx->bdat_remaining = 0;
		smtp_tx_reset(s);
		smtp_reply_error(s, "%s", copy);
		free(copy);
		return;
	}
	if (!tx->bdat_last) {
		smtp_reply(s, "250 2.0.0 Ok: %llu octets received",
		           (unsigned long long)tx->msg.size);
		smtp_cmd_ok(s);
		return;
	}
	enum smtp_data_result r = smtp_crlf_check_end(&tx->crlf);
	if (r != SMTP_DATA_MORE) {
		refuse_bare(s, r);
		return;
	}
	finish_message(s);
}

void smtp_bdat_input(struct smtp_session *s)
{
	struct smtp_tx *tx = &s->tx;
	struct buf *in = s->in;
	size_t n = in->len < SMTP_DATA_STEP ? in->len : SMTP_DATA_STEP;

	if (n > tx->bdat_remaining)
		n = (size_t)tx->bdat_remaining;
	if (tx->bdat_error == NULL && n > 0) {
		enum smtp_data_result r = smtp_crlf_check(&tx->crlf, in->data, n);
		if (r != SMTP_DATA_MORE) {
			refuse_bare(s, r);
			return;
		}
		smtp_msg_write(&tx->msg, in->data, n);
	}
	buf_consume(in, n);
	tx->bdat_remaining -= n;
	if (tx->bdat_remaining == 0)
		bdat_chunk_done(s);
	else if (tx->backpressure)
		s->wait = SMTP_WAIT_DRAIN;
}
