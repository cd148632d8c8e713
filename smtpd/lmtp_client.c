/*
 * LMTP client towards deliverd (see lmtp_client.h). A transaction (struct lmtp_tx) rides
 * on one LMTP connection (struct lmtp_conn); the connection owes replies in order
 * (a small queue, plus a count for the per-recipient replies after the final dot).
 * After a clean transaction the connection is RSET and kept in a small idle pool, so the
 * next transaction starts with MAIL instead of connect + greeting + LHLO. Any failure
 * fills every reply the session still waits for with 451 4.3.0, delivered from the loop.
 */
#include "lmtp_client.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "net/conn.h"

#define LMTP_FAIL_REPLY "451 4.3.0 Error: delivery service unavailable, try again later"
#define LMTP_MAX_LINE 4096
#define LMTP_EXPECT_MAX 16

enum expect {
	EXPECT_GREETING, /* internal; stands for the session's MAIL reply until LHLO is done */
	EXPECT_LHLO,     /* internal; likewise */
	EXPECT_SESSION,  /* one reply for the session */
	EXPECT_RCPT,     /* the same, and a 2xx counts an accepted recipient */
	EXPECT_RSET,     /* internal: back to the pool */
	EXPECT_QUIT,     /* internal, ignored */
};

struct lmtp_tx;

struct lmtp_conn {
	struct lmtp_client_config *cfg;
	struct conn *conn;
	struct lmtp_tx *tx; /* NULL when idle */
	struct lmtp_conn *next_idle;
	bool connected, greeted, closing, pooled;
	unsigned caps;
	enum expect expect[LMTP_EXPECT_MAX];
	size_t n_expect;
	size_t end_owed; /* per-recipient replies owed after the final dot */
	size_t accepted; /* recipients deliverd accepted in this transaction */
	bool at_bol, in_data;
	struct buf reply;
};

struct lmtp_tx {
	struct lmtp_client_config *cfg;
	struct smtp_session *session; /* NULL once freed by the session */
	struct lmtp_conn *lc;         /* NULL once the connection is gone */
	uv_timer_t defer;
	size_t synthetic; /* failure replies still to deliver from the timer */
	bool failed;
	size_t accepted; /* recipients deliverd accepted (also known once lc is gone) */
	char *mail_line;
};

/* --- failure replies, always from the loop -------------------------------------------- */

static void on_defer(uv_timer_t *t)
{
	struct lmtp_tx *tx = t->data;

	while (tx->synthetic > 0 && tx->session != NULL) {
		tx->synthetic--;
		smtp_session_delivery_reply(tx->session, LMTP_FAIL_REPLY);
	}
	tx->synthetic = 0;
}

static void owe_failures(struct lmtp_tx *tx, size_t n)
{
	tx->synthetic += n;
	if (tx->synthetic > 0 && tx->session != NULL)
		uv_timer_start(&tx->defer, on_defer, 0, 0);
}

/* The connection failed or went away: every reply its transaction waits for fails. */
static void lc_detach_failed(struct lmtp_conn *lc, const char *why)
{
	struct lmtp_tx *tx = lc->tx;
	size_t owed = 0;
	bool mail_counted = false;

	if (tx == NULL)
		return;
	for (size_t i = 0; i < lc->n_expect; i++) {
		if (lc->expect[i] == EXPECT_SESSION || lc->expect[i] == EXPECT_RCPT) {
			owed++;
		} else if ((lc->expect[i] == EXPECT_GREETING || lc->expect[i] == EXPECT_LHLO) &&
		           !mail_counted) {
			owed++;
			mail_counted = true;
		}
	}
	owed += lc->end_owed;
	lc->n_expect = 0;
	lc->end_owed = 0;
	lc->tx = NULL;
	tx->lc = NULL;
	tx->failed = true;
	if (tx->session != NULL)
		log_warn("delivery service: %s", why);
	owe_failures(tx, owed);
}

static void pool_remove(struct lmtp_conn *lc)
{
	struct lmtp_conn **p = &lc->cfg->idle;

	if (!lc->pooled)
		return;
	for (; *p != NULL; p = &(*p)->next_idle) {
		if (*p == lc) {
			*p = lc->next_idle;
			lc->cfg->n_idle--;
			break;
		}
	}
	lc->pooled = false;
	lc->next_idle = NULL;
}

static void lc_fail(struct lmtp_conn *lc, const char *why)
{
	lc_detach_failed(lc, why);
	pool_remove(lc);
	if (!lc->closing) {
		lc->closing = true;
		conn_abort(lc->conn);
	}
}

static void push(struct lmtp_conn *lc, enum expect e)
{
	if (lc->n_expect == LMTP_EXPECT_MAX)
		log_panic("lmtp client: more than %d replies owed", LMTP_EXPECT_MAX);
	lc->expect[lc->n_expect++] = e;
}

static void lc_send(struct lmtp_conn *lc, const char *line, enum expect e)
{
	push(lc, e);
	if (conn_printf(lc->conn, "%s\r\n", line) < 0)
		lc_fail(lc, "write to deliverd failed");
}

/* Sends a line for the transaction, or owes a failure when it has no connection. */
static void tx_send(struct lmtp_tx *tx, const char *line, enum expect e)
{
	if (tx->lc == NULL) {
		owe_failures(tx, 1);
		return;
	}
	lc_send(tx->lc, line, e);
}

static unsigned parse_cap(const char *text)
{
	if (strcasecmp(text, "8BITMIME") == 0)
		return LMTP_CAP_8BITMIME;
	if (strcasecmp(text, "SMTPUTF8") == 0)
		return LMTP_CAP_SMTPUTF8;
	if (strcasecmp(text, "DSN") == 0)
		return LMTP_CAP_DSN;
	if (strncasecmp(text, "SIZE", 4) == 0 && (text[4] == '\0' || text[4] == ' '))
		return LMTP_CAP_SIZE;
	return 0;
}

char *lmtp_filter_params(const char *line, unsigned caps)
{
	const char *p = strchr(line, '<');
	bool quoted = false;
	struct buf b;

	if (p == NULL)
		return xstrdup(line);
	for (p++; *p != '\0'; p++) {
		if (quoted && *p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (!quoted && *p == '>')
			break;
	}
	if (*p == '\0')
		return xstrdup(line);
	p++;
	buf_init(&b, 0);
	buf_append(&b, line, (size_t)(p - line));
	while (*p == ' ') {
		p++;
		size_t len = strcspn(p, " ");
		size_t klen = strcspn(p, "= ");
		unsigned need = 0;
		if (klen == 4 && strncasecmp(p, "BODY", 4) == 0)
			need = LMTP_CAP_8BITMIME;
		else if (klen == 8 && strncasecmp(p, "SMTPUTF8", 8) == 0)
			need = LMTP_CAP_SMTPUTF8;
		else if (klen == 4 && strncasecmp(p, "SIZE", 4) == 0)
			need = LMTP_CAP_SIZE;
		else
			need = LMTP_CAP_DSN; /* RET, ENVID, NOTIFY, ORCPT */
		if (caps & need) {
			buf_append_char(&b, ' ');
			buf_append(&b, p, len);
		}
		p += len;
	}
	return buf_steal(&b);
}

static void send_mail(struct lmtp_conn *lc)
{
	char *line = lmtp_filter_params(lc->tx->mail_line, lc->caps);
	lc_send(lc, line, EXPECT_SESSION);
	free(line);
}

/* One complete reply (its last line in text) for the head of the queue. */
static void on_reply(struct lmtp_conn *lc, int code, const char *text)
{
	if (lc->end_owed > 0) {
		/* RFC 2033 4.2: one reply per accepted recipient after the final dot, before
		 * anything sent later. */
		lc->end_owed--;
		if (lc->tx != NULL && lc->tx->session != NULL)
			smtp_session_delivery_reply(lc->tx->session, text);
		return;
	}
	if (lc->n_expect == 0) {
		lc_fail(lc, "unexpected reply from deliverd");
		return;
	}
	enum expect e = lc->expect[0];
	memmove(lc->expect, lc->expect + 1, (lc->n_expect - 1) * sizeof(lc->expect[0]));
	lc->n_expect--;
	switch (e) {
	case EXPECT_GREETING:
		if (code != 220) {
			lc_fail(lc, "deliverd greeting refused");
			return;
		}
		push(lc, EXPECT_LHLO);
		if (conn_printf(lc->conn, "LHLO %s\r\n", lc->cfg->hostname) < 0)
			lc_fail(lc, "write to deliverd failed");
		break;
	case EXPECT_LHLO:
		if (code != 250) {
			lc_fail(lc, "LHLO refused by deliverd");
			return;
		}
		lc->greeted = true;
		if (lc->tx != NULL)
			send_mail(lc);
		break;
	case EXPECT_RCPT:
		if (code / 100 == 2) {
			lc->accepted++;
			if (lc->tx != NULL)
				lc->tx->accepted++;
		}
		/* fall through */
	case EXPECT_SESSION:
		if (lc->tx != NULL && lc->tx->session != NULL)
			smtp_session_delivery_reply(lc->tx->session, text);
		break;
	case EXPECT_RSET:
		if (code != 250)
			lc_fail(lc, "RSET refused by deliverd");
		break;
	case EXPECT_QUIT:
		break;
	}
}

static void on_open(struct conn *c)
{
	struct lmtp_conn *lc = conn_data(c);
	lc->connected = true;
}

static void on_data(struct conn *c, struct buf *in)
{
	struct lmtp_conn *lc = conn_data(c);

	while (!lc->closing && in->len > 0) {
		const char *lf = memchr(in->data, '\n', in->len);
		if (lf == NULL) {
			if (in->len > LMTP_MAX_LINE)
				lc_fail(lc, "reply line from deliverd too long");
			return;
		}
		size_t n = (size_t)(lf - in->data);
		if (n > 0 && in->data[n - 1] == '\r')
			n--;
		if (n < 3 || !isdigit((unsigned char)in->data[0]) ||
		    !isdigit((unsigned char)in->data[1]) || !isdigit((unsigned char)in->data[2]) ||
		    (n > 3 && in->data[3] != ' ' && in->data[3] != '-')) {
			lc_fail(lc, "malformed reply from deliverd");
			return;
		}
		bool more = n > 3 && in->data[3] == '-';
		int code =
		    (in->data[0] - '0') * 100 + (in->data[1] - '0') * 10 + (in->data[2] - '0');
		buf_reset(&lc->reply);
		buf_append(&lc->reply, in->data, n);
		if (lc->n_expect > 0 && lc->expect[0] == EXPECT_LHLO && n > 4)
			lc->caps |= parse_cap(buf_cstr(&lc->reply) + 4);
		buf_consume(in, (size_t)(lf - in->data) + 1);
		if (!more)
			on_reply(lc, code, buf_cstr(&lc->reply));
	}
	if (lc->closing)
		buf_reset(in);
}

static void on_drain(struct conn *c)
{
	struct lmtp_conn *lc = conn_data(c);
	if (lc->tx != NULL && lc->tx->session != NULL)
		smtp_session_delivery_drained(lc->tx->session);
}

static void on_timeout(struct conn *c)
{
	struct lmtp_conn *lc = conn_data(c);
	lc_fail(lc, lc->tx != NULL ? "timeout waiting for deliverd" : "idle");
}

static void on_close(struct conn *c)
{
	struct lmtp_conn *lc = conn_data(c);

	if (!lc->connected && lc->tx != NULL && lc->tx->session != NULL)
		log_warn("cannot connect to deliverd at %s", lc->cfg->socket_path);
	lc_detach_failed(lc, "connection to deliverd lost");
	pool_remove(lc);
	buf_free(&lc->reply);
	free(lc);
}

static const struct conn_ops lmtp_conn_ops = {
    .on_open = on_open,
    .on_data = on_data,
    .on_drain = on_drain,
    .on_timeout = on_timeout,
    .on_close = on_close,
};

static struct lmtp_conn *lc_connect(struct lmtp_client_config *cfg)
{
	const char *path = cfg->socket_path;
	struct lmtp_conn *lc = xcalloc(1, sizeof(*lc));
	struct conn_limits limits = {
	    .max_input = 64 * 1024,
	    .max_output = 4 * 1024 * 1024,
	    .output_lowat = 256 * 1024,
	    .idle_ms = cfg->timeout_ms,
	};

	lc->cfg = cfg;
	buf_init(&lc->reply, LMTP_MAX_LINE);
	push(lc, EXPECT_GREETING);
	if (strncmp(path, "unix:", 5) == 0)
		path += 5;
	const char *colon = strrchr(path, ':');
	if (path[0] != '/' && colon != NULL) {
		/* "127.0.0.1:24" */
		char *ip = xstrndup(path, (size_t)(colon - path));
		lc->conn =
		    conn_connect_tcp(cfg->loop, ip, atoi(colon + 1), &lmtp_conn_ops, &limits, lc);
		free(ip);
	} else {
		lc->conn = conn_connect_unix(cfg->loop, path, &lmtp_conn_ops, &limits, lc);
	}
	if (lc->conn == NULL) {
		buf_free(&lc->reply);
		free(lc);
		return NULL;
	}
	return lc;
}

/* --- the session's delivery backend ---------------------------------------------------- */

static void *lmtp_begin(void *ctx, struct smtp_session *s, const char *mail_line)
{
	struct lmtp_client_config *cfg = ctx;
	struct lmtp_tx *tx = xcalloc(1, sizeof(*tx));
	struct lmtp_conn *lc;

	tx->cfg = cfg;
	tx->session = s;
	tx->mail_line = xstrdup(mail_line);
	uv_timer_init(cfg->loop, &tx->defer);
	tx->defer.data = tx;

	lc = cfg->idle;
	if (lc != NULL) {
		pool_remove(lc);
		conn_set_idle_timeout(lc->conn, cfg->timeout_ms);
	} else {
		lc = lc_connect(cfg);
	}
	if (lc == NULL) {
		log_warn("cannot connect to deliverd at %s", cfg->socket_path);
		tx->failed = true;
		owe_failures(tx, 1);
		return tx;
	}
	lc->tx = tx;
	tx->lc = lc;
	lc->accepted = 0;
	lc->at_bol = true;
	lc->in_data = false;
	if (lc->greeted)
		send_mail(lc);
	return tx;
}

static void lmtp_rcpt(void *t, const char *rcpt_line)
{
	struct lmtp_tx *tx = t;
	char *line = lmtp_filter_params(rcpt_line, tx->lc != NULL ? tx->lc->caps : 0);
	tx_send(tx, line, EXPECT_RCPT);
	free(line);
}

static void lmtp_data(void *t)
{
	struct lmtp_tx *tx = t;
	if (tx->lc != NULL) {
		tx->lc->in_data = true;
		tx->lc->at_bol = true;
	}
	tx_send(tx, "DATA", EXPECT_SESSION);
}

static int lmtp_write(void *t, const char *data, size_t len)
{
	struct lmtp_tx *tx = t;
	struct lmtp_conn *lc = tx->lc;
	int r = 0;

	if (lc == NULL || lc->closing)
		return -1;
	/* RFC 5321 4.5.2: a line starting with '.' gets another one. */
	while (len > 0) {
		if (lc->at_bol && data[0] == '.' && conn_write(lc->conn, ".", 1) < 0) {
			lc_fail(lc, "write to deliverd failed");
			return -1;
		}
		const char *lf = memchr(data, '\n', len);
		size_t n = lf != NULL ? (size_t)(lf - data) + 1 : len;
		r = conn_write(lc->conn, data, n);
		if (r < 0) {
			lc_fail(lc, "write to deliverd failed");
			return -1;
		}
		lc->at_bol = lf != NULL;
		data += n;
		len -= n;
	}
	return r > 0 ? 1 : 0;
}

static void lmtp_end(void *t)
{
	struct lmtp_tx *tx = t;
	struct lmtp_conn *lc = tx->lc;

	/* The message ends with CRLF (headers.c makes sure of it). */
	if (lc == NULL) {
		/* The session waits for one reply per recipient it was told was accepted. */
		owe_failures(tx, tx->accepted);
		return;
	}
	lc->in_data = false;
	lc->end_owed = lc->accepted;
	if (conn_write_str(lc->conn, ".\r\n") < 0)
		lc_fail(lc, "write to deliverd failed");
}

static void on_tx_closed(uv_handle_t *h)
{
	struct lmtp_tx *tx = h->data;
	free(tx->mail_line);
	free(tx);
}

/* May the connection serve another transaction? */
static bool lc_reusable(const struct lmtp_conn *lc)
{
	return !lc->closing && lc->greeted && !lc->in_data && lc->n_expect == 0 &&
	       lc->end_owed == 0 && lc->cfg->n_idle < lc->cfg->max_idle;
}

static void lmtp_free(void *t)
{
	struct lmtp_tx *tx = t;
	struct lmtp_conn *lc = tx->lc;

	tx->session = NULL;
	uv_timer_stop(&tx->defer);
	if (lc != NULL) {
		lc->tx = NULL;
		tx->lc = NULL;
		if (lc_reusable(lc)) {
			/* Pooled at once: the next MAIL is pipelined behind the RSET, whose
			 * reply (on_reply) must be 250 or the connection fails. */
			lc_send(lc, "RSET", EXPECT_RSET);
			if (!lc->closing) {
				conn_set_idle_timeout(lc->conn, lc->cfg->idle_ms);
				lc->next_idle = lc->cfg->idle;
				lc->cfg->idle = lc;
				lc->cfg->n_idle++;
				lc->pooled = true;
			}
		} else if (!lc->closing) {
			lc->closing = true;
			if (lc->in_data) {
				/* Mid-message: drop the connection so deliverd never sees a final
				 * dot and stores nothing. */
				conn_abort(lc->conn);
			} else {
				push(lc, EXPECT_QUIT);
				conn_write_str(lc->conn, "QUIT\r\n");
				conn_close(lc->conn);
			}
		}
	}
	uv_close((uv_handle_t *)&tx->defer, on_tx_closed);
}

void lmtp_client_close_idle(struct lmtp_client_config *cfg)
{
	while (cfg->idle != NULL) {
		struct lmtp_conn *lc = cfg->idle;
		pool_remove(lc);
		if (!lc->closing) {
			lc->closing = true;
			push(lc, EXPECT_QUIT);
			conn_write_str(lc->conn, "QUIT\r\n");
			conn_close(lc->conn);
		}
	}
}

const struct smtp_delivery_ops lmtp_delivery_ops = {
    lmtp_begin, lmtp_rcpt, lmtp_data, lmtp_write, lmtp_end, lmtp_free,
};
