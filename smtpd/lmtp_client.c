/*
 * LMTP client towards deliverd, one connection per SMTP transaction (see lmtp_client.h).
 * The state of a transaction is a queue of answers owed to the session; replies from
 * deliverd pop it in order. Errors fill every owed answer with 451 4.3.0.
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

enum expect {
	EXPECT_GREETING, /* internal */
	EXPECT_LHLO,     /* internal */
	EXPECT_SESSION,  /* one reply for the session */
	EXPECT_RCPT,     /* the same, and a 2xx counts an accepted recipient */
	EXPECT_QUIT,     /* internal, ignored */
};

struct lmtp_tx {
	struct lmtp_client_config *cfg;
	struct smtp_session *session; /* NULL once freed by the session */
	struct conn *conn;
	uv_timer_t defer;
	int handles; /* open libuv handles that must close before the memory goes */
	bool failed, connected, closing;
	unsigned caps;
	char *mail_line;
	/* The session sends one command at a time, so at most a handful of replies are
	 * owed in order; the per-recipient replies after the final dot are a count. */
	enum expect expect[16];
	size_t n_expect;
	size_t end_owed;
	size_t synthetic; /* failure replies still to deliver from the timer */
	bool at_bol;
	bool in_data;
	size_t accepted;  /* recipients deliverd accepted: replies owed after the dot */
	struct buf reply; /* multi-line reply text being collected (last line kept) */
};

static void tx_release(struct lmtp_tx *tx)
{
	if (--tx->handles > 0)
		return;
	free(tx->mail_line);
	buf_free(&tx->reply);
	free(tx);
}

static void on_defer_closed(uv_handle_t *h)
{
	tx_release(h->data);
}

static void push(struct lmtp_tx *tx, enum expect e)
{
	if (tx->n_expect == sizeof(tx->expect) / sizeof(tx->expect[0]))
		log_panic("lmtp client: more than %zu replies owed",
		          sizeof(tx->expect) / sizeof(tx->expect[0]));
	tx->expect[tx->n_expect++] = e;
}

static void on_defer(uv_timer_t *t)
{
	struct lmtp_tx *tx = t->data;

	while (tx->synthetic > 0 && tx->session != NULL) {
		tx->synthetic--;
		smtp_session_delivery_reply(tx->session, LMTP_FAIL_REPLY);
	}
	tx->synthetic = 0;
}

/* Owe the session `n` failure replies, delivered from the loop. */
static void owe_failures(struct lmtp_tx *tx, size_t n)
{
	tx->synthetic += n;
	if (tx->synthetic > 0 && tx->session != NULL)
		uv_timer_start(&tx->defer, on_defer, 0, 0);
}

static void tx_fail(struct lmtp_tx *tx, const char *why)
{
	if (tx->failed)
		return;
	tx->failed = true;
	if (tx->session != NULL)
		log_warn("delivery service: %s", why);
	/* The greeting and LHLO stand for the MAIL reply the session waits for. */
	size_t owed = 0;
	bool mail_counted = false;
	for (size_t i = 0; i < tx->n_expect; i++) {
		if (tx->expect[i] == EXPECT_SESSION || tx->expect[i] == EXPECT_RCPT)
			owed++;
		else if ((tx->expect[i] == EXPECT_GREETING || tx->expect[i] == EXPECT_LHLO) &&
		         !mail_counted) {
			owed++;
			mail_counted = true;
		}
	}
	owed += tx->end_owed;
	tx->n_expect = 0;
	tx->end_owed = 0;
	owe_failures(tx, owed);
	if (tx->conn != NULL && !tx->closing) {
		tx->closing = true;
		conn_abort(tx->conn);
	}
}

static void send_line(struct lmtp_tx *tx, const char *line, enum expect e)
{
	if (tx->failed) {
		if (e == EXPECT_SESSION || e == EXPECT_RCPT)
			owe_failures(tx, 1);
		return;
	}
	push(tx, e);
	if (conn_printf(tx->conn, "%s\r\n", line) < 0)
		tx_fail(tx, "write to deliverd failed");
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

/* One complete reply (last line in text) arrived for the head of the queue. */
static void on_reply(struct lmtp_tx *tx, int code, const char *text)
{
	if (tx->end_owed > 0) {
		/* RFC 2033 4.2: one reply per accepted recipient after the final dot. */
		tx->end_owed--;
		if (tx->session != NULL)
			smtp_session_delivery_reply(tx->session, text);
		return;
	}
	if (tx->n_expect == 0) {
		tx_fail(tx, "unexpected reply from deliverd");
		return;
	}
	enum expect e = tx->expect[0];
	memmove(tx->expect, tx->expect + 1, (tx->n_expect - 1) * sizeof(tx->expect[0]));
	tx->n_expect--;
	switch (e) {
	case EXPECT_GREETING:
		if (code != 220) {
			tx_fail(tx, "deliverd greeting refused");
			return;
		}
		push(tx, EXPECT_LHLO);
		if (conn_printf(tx->conn, "LHLO %s\r\n", tx->cfg->hostname) < 0)
			tx_fail(tx, "write to deliverd failed");
		break;
	case EXPECT_LHLO: {
		if (code != 250) {
			tx_fail(tx, "LHLO refused by deliverd");
			return;
		}
		char *line = lmtp_filter_params(tx->mail_line, tx->caps);
		send_line(tx, line, EXPECT_SESSION);
		free(line);
		break;
	}
	case EXPECT_RCPT:
		if (code / 100 == 2)
			tx->accepted++;
		/* fall through */
	case EXPECT_SESSION:
		if (tx->session != NULL)
			smtp_session_delivery_reply(tx->session, text);
		break;
	case EXPECT_QUIT:
		break;
	}
}

static void on_open(struct conn *c)
{
	struct lmtp_tx *tx = conn_data(c);
	tx->connected = true;
}

static void on_data(struct conn *c, struct buf *in)
{
	struct lmtp_tx *tx = conn_data(c);

	while (!tx->failed && in->len > 0) {
		const char *lf = memchr(in->data, '\n', in->len);
		if (lf == NULL) {
			if (in->len > LMTP_MAX_LINE)
				tx_fail(tx, "reply line from deliverd too long");
			return;
		}
		size_t n = (size_t)(lf - in->data);
		if (n > 0 && in->data[n - 1] == '\r')
			n--;
		if (n < 3 || !isdigit((unsigned char)in->data[0]) ||
		    !isdigit((unsigned char)in->data[1]) || !isdigit((unsigned char)in->data[2]) ||
		    (n > 3 && in->data[3] != ' ' && in->data[3] != '-')) {
			tx_fail(tx, "malformed reply from deliverd");
			return;
		}
		bool more = n > 3 && in->data[3] == '-';
		int code =
		    (in->data[0] - '0') * 100 + (in->data[1] - '0') * 10 + (in->data[2] - '0');
		buf_reset(&tx->reply);
		buf_append(&tx->reply, in->data, n);
		if (tx->n_expect > 0 && tx->expect[0] == EXPECT_LHLO && n > 4)
			tx->caps |= parse_cap(buf_cstr(&tx->reply) + 4);
		buf_consume(in, (size_t)(lf - in->data) + 1);
		if (!more)
			on_reply(tx, code, buf_cstr(&tx->reply));
	}
	if (tx->failed)
		buf_reset(in);
}

static void on_drain(struct conn *c)
{
	struct lmtp_tx *tx = conn_data(c);
	if (tx->session != NULL)
		smtp_session_delivery_drained(tx->session);
}

static void on_timeout(struct conn *c)
{
	tx_fail(conn_data(c), "timeout waiting for deliverd");
}

static void on_close(struct conn *c)
{
	struct lmtp_tx *tx = conn_data(c);

	if (!tx->connected && tx->session != NULL)
		log_warn("cannot connect to deliverd at %s", tx->cfg->socket_path);
	tx->conn = NULL;
	tx_fail(tx, "connection to deliverd lost");
	tx_release(tx);
}

static const struct conn_ops lmtp_conn_ops = {
    .on_open = on_open,
    .on_data = on_data,
    .on_drain = on_drain,
    .on_timeout = on_timeout,
    .on_close = on_close,
};

static struct conn *connect_to(struct lmtp_tx *tx)
{
	const char *path = tx->cfg->socket_path;
	struct conn_limits limits = {
	    .max_input = 64 * 1024,
	    .max_output = 4 * 1024 * 1024,
	    .output_lowat = 256 * 1024,
	    .idle_ms = tx->cfg->timeout_ms,
	};

	if (strncmp(path, "unix:", 5) == 0)
		path += 5;
	if (path[0] != '/') {
		/* "127.0.0.1:24" */
		const char *colon = strrchr(path, ':');
		if (colon != NULL) {
			char *ip = xstrndup(path, (size_t)(colon - path));
			struct conn *c = conn_connect_tcp(tx->cfg->loop, ip, atoi(colon + 1),
			                                  &lmtp_conn_ops, &limits, tx);
			free(ip);
			return c;
		}
	}
	return conn_connect_unix(tx->cfg->loop, path, &lmtp_conn_ops, &limits, tx);
}

static void *lmtp_begin(void *ctx, struct smtp_session *s, const char *mail_line)
{
	struct lmtp_tx *tx = xcalloc(1, sizeof(*tx));

	tx->cfg = ctx;
	tx->session = s;
	tx->mail_line = xstrdup(mail_line);
	tx->at_bol = true;
	buf_init(&tx->reply, LMTP_MAX_LINE);
	uv_timer_init(tx->cfg->loop, &tx->defer);
	tx->defer.data = tx;
	tx->handles = 1;
	push(tx, EXPECT_GREETING);
	tx->conn = connect_to(tx);
	if (tx->conn == NULL) {
		log_warn("cannot connect to deliverd at %s", tx->cfg->socket_path);
		tx_fail(tx, "connect failed");
	} else {
		tx->handles++;
	}
	return tx;
}

static void lmtp_rcpt(void *t, const char *rcpt_line)
{
	struct lmtp_tx *tx = t;
	char *line = lmtp_filter_params(rcpt_line, tx->caps);
	send_line(tx, line, EXPECT_RCPT);
	free(line);
}

static void lmtp_data(void *t)
{
	struct lmtp_tx *tx = t;
	tx->in_data = true;
	tx->at_bol = true;
	send_line(tx, "DATA", EXPECT_SESSION);
}

static int lmtp_write(void *t, const char *data, size_t len)
{
	struct lmtp_tx *tx = t;
	int r = 0;

	if (tx->failed || tx->conn == NULL)
		return -1;
	/* RFC 5321 4.5.2: a line starting with '.' gets another one. */
	while (len > 0) {
		if (tx->at_bol && data[0] == '.') {
			if (conn_write(tx->conn, ".", 1) < 0)
				return -1;
		}
		const char *lf = memchr(data, '\n', len);
		size_t n = lf != NULL ? (size_t)(lf - data) + 1 : len;
		r = conn_write(tx->conn, data, n);
		if (r < 0) {
			tx_fail(tx, "write to deliverd failed");
			return -1;
		}
		tx->at_bol = lf != NULL;
		data += n;
		len -= n;
	}
	return r > 0 ? 1 : 0;
}

static void lmtp_end(void *t)
{
	struct lmtp_tx *tx = t;
	/* The message ends with CRLF (headers.c makes sure of it). */
	tx->in_data = false;
	if (tx->failed) {
		owe_failures(tx, tx->accepted);
		return;
	}
	/* RFC 2033 4.2: one reply per accepted recipient, in RCPT order. */
	tx->end_owed = tx->accepted;
	if (conn_write_str(tx->conn, ".\r\n") < 0)
		tx_fail(tx, "write to deliverd failed");
}

static void lmtp_free(void *t)
{
	struct lmtp_tx *tx = t;

	tx->session = NULL;
	uv_timer_stop(&tx->defer);
	if (tx->conn != NULL && !tx->closing) {
		tx->closing = true;
		if (tx->in_data) {
			/* Mid-message: drop the connection so deliverd never sees a final dot
			 * and stores nothing. */
			conn_abort(tx->conn);
		} else {
			push(tx, EXPECT_QUIT);
			conn_write_str(tx->conn, "QUIT\r\n");
			conn_close(tx->conn);
		}
	}
	uv_close((uv_handle_t *)&tx->defer, on_defer_closed);
}

const struct smtp_delivery_ops lmtp_delivery_ops = {
    lmtp_begin, lmtp_rcpt, lmtp_data, lmtp_write, lmtp_end, lmtp_free,
};
