/*
 * Submission: read the message from stdin (headers first, so -t can find the recipients),
 * add what a message must have (From, Date, Message-ID), and hand it to deliverd over
 * LMTP, dot-stuffed, line ends as CRLF.
 */
#include "submit.h"

#include "queue_maildrop.h"

#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "config/config.h"
#include "headers.h"
#include "sendmail.h"

#define SUBMIT_TIMEOUT_MS (5 * 60 * 1000)

int submit_connect(const struct config *cfg, struct submit_tx *tx, const char *helo)
{
	const char *path = config_str(cfg, "deliverd", "submit_socket");
	if (lmtp_client_connect(&tx->client, path, SUBMIT_TIMEOUT_MS, &tx->error) < 0)
		return -1;
	tx->connected = true;
	struct buf reply;
	buf_init(&reply, 0);
	char *cmd = xasprintf("LHLO %s", helo);
	int code = lmtp_client_command(&tx->client, cmd, &reply, &tx->error);
	free(cmd);
	if (code != 250 && code >= 0)
		tx->error = xasprintf("LHLO: %s", buf_cstr(&reply));
	buf_free(&reply);
	return code == 250 ? 0 : -1;
}

int submit_envelope(struct submit_tx *tx, const char *sender, char **rcpts, size_t n, FILE *err,
                    char **mail_reply)
{
	struct buf reply;
	buf_init(&reply, 0);
	char *cmd = xasprintf("MAIL FROM:<%s> BODY=8BITMIME", sender);
	int code = lmtp_client_command(&tx->client, cmd, &reply, &tx->error);
	free(cmd);
	if (code != 250) {
		if (code >= 0)
			*mail_reply = xstrdup(buf_cstr(&reply));
		buf_free(&reply);
		return -1;
	}
	tx->rcpts = rcpts;
	tx->n_rcpts = n;
	tx->rcpt_code = xcalloc(n + 1, sizeof(int));
	for (size_t i = 0; i < n; i++) {
		cmd = xasprintf("RCPT TO:<%s>", rcpts[i]);
		code = lmtp_client_command(&tx->client, cmd, &reply, &tx->error);
		free(cmd);
		if (code < 0) {
			buf_free(&reply);
			return -1;
		}
		tx->rcpt_code[i] = code;
		if (code == 250) {
			tx->n_accepted++;
		} else {
			fprintf(err, "sendmail: <%s>: %s\n", rcpts[i], buf_cstr(&reply));
			if (code >= 500)
				tx->n_perm++;
			else
				tx->n_temp++;
		}
	}
	buf_free(&reply);
	return (int)tx->n_accepted;
}

int submit_data(struct submit_tx *tx)
{
	struct buf reply;
	buf_init(&reply, 0);
	int code = lmtp_client_command(&tx->client, "DATA", &reply, &tx->error);
	if (code != 354 && code >= 0)
		tx->error = xasprintf("DATA: %s", buf_cstr(&reply));
	buf_free(&reply);
	return code == 354 ? 0 : -1;
}

int submit_write(struct submit_tx *tx, const void *data, size_t len)
{
	return lmtp_client_send(&tx->client, data, len, &tx->error);
}

int submit_finish(struct submit_tx *tx, FILE *err)
{
	if (lmtp_client_send(&tx->client, ".\r\n", 3, &tx->error) < 0 ||
	    lmtp_client_flush(&tx->client, &tx->error) < 0)
		return -1;
	struct buf reply;
	buf_init(&reply, 0);
	/* RFC 2033 4.2: one reply per accepted RCPT, in order. */
	for (size_t i = 0; i < tx->n_rcpts; i++) {
		if (tx->rcpt_code[i] != 250)
			continue;
		int code = lmtp_client_reply(&tx->client, &reply, &tx->error);
		if (code < 0) {
			/* Unknown outcome: treat the rest as temporary failures. */
			tx->n_temp += (unsigned)(tx->n_accepted - tx->n_ok);
			buf_free(&reply);
			return -1;
		}
		if (code == 250) {
			tx->n_ok++;
			continue;
		}
		fprintf(err, "sendmail: <%s>: %s\n", tx->rcpts[i], buf_cstr(&reply));
		if (code >= 500)
			tx->n_perm++;
		else
			tx->n_temp++;
	}
	buf_free(&reply);
	struct buf bye;
	buf_init(&bye, 0);
	char *ignored = NULL;
	(void)lmtp_client_command(&tx->client, "QUIT", &bye, &ignored);
	free(ignored);
	buf_free(&bye);
	return 0;
}

void submit_close(struct submit_tx *tx)
{
	if (tx->connected)
		lmtp_client_close(&tx->client);
	free(tx->rcpt_code);
	free(tx->error);
	memset(tx, 0, sizeof(*tx));
}

int submit_exit_code(const struct submit_tx *tx)
{
	if (tx->n_temp > 0)
		return EX_TEMPFAIL;
	if (tx->n_perm > 0)
		return EX_NOUSER; /* some or all recipients refused; the others have it */
	return EX_OK;
}

/*
 * Where the message goes: deliverd over LMTP (dot-stuffed), or the maildrop when deliverd
 * is down (the bytes as they are).
 */
struct body_sink {
	struct submit_tx *tx;             /* LMTP, or NULL */
	struct maildrop_writer *maildrop; /* or the maildrop */
	char *error;
};

static int sink_write(struct body_sink *out, const void *data, size_t len)
{
	if (out->tx != NULL)
		return submit_write(out->tx, data, len);
	char *error = NULL;
	if (maildrop_write(out->maildrop, data, len, &error) < 0) {
		free(out->error);
		out->error = error;
		return -1;
	}
	return 0;
}

/* Writes one line (without its line end), dot-stuffed for LMTP. */
static int write_line(struct body_sink *out, const char *line, size_t len, bool at_start)
{
	/* RFC 5321 4.5.2: a line starting with "." gets one more. */
	if (out->tx != NULL && at_start && len > 0 && line[0] == '.' && sink_write(out, ".", 1) < 0)
		return -1;
	return sink_write(out, line, len);
}

/* Streams stdin's body: LF or CRLF line ends become CRLF; reads in bounded chunks. */
static int stream_body(struct body_sink *tx, FILE *in, bool ignore_dots)
{
	char chunk[8192];
	bool at_start = true;
	while (fgets(chunk, sizeof(chunk), in) != NULL) {
		size_t len = strlen(chunk);
		bool eol = len > 0 && chunk[len - 1] == '\n';
		if (eol)
			len--;
		if (eol && len > 0 && chunk[len - 1] == '\r')
			len--;
		if (at_start && eol && !ignore_dots && len == 1 && chunk[0] == '.')
			return 0;
		if (write_line(tx, chunk, len, at_start) < 0)
			return -1;
		if (eol && sink_write(tx, "\r\n", 2) < 0)
			return -1;
		at_start = eol;
	}
	if (!at_start && sink_write(tx, "\r\n", 2) < 0)
		return -1;
	return 0;
}

/* The header block, the rest of stdin. */
static int write_message(struct body_sink *out, struct header_block *h, FILE *in, bool ignore_dots)
{
	int r = 0;
	for (size_t i = 0; i < h->n && r == 0; i++) {
		/* Continuation lines inside a field are already CRLF-joined. */
		r = write_line(out, h->lines[i], strlen(h->lines[i]), true);
		if (r == 0)
			r = sink_write(out, "\r\n", 2);
	}
	if (r == 0)
		r = sink_write(out, "\r\n", 2);
	if (r == 0 && h->first_body_line != NULL) {
		r = write_line(out, h->first_body_line, strlen(h->first_body_line), true);
		if (r == 0)
			r = sink_write(out, "\r\n", 2);
	}
	if (r == 0 && !h->eof)
		r = stream_body(out, in, ignore_dots);
	return r;
}

/* DATA, the message, the end; returns the exit code. */
static int send_content(struct submit_tx *tx, struct header_block *h, FILE *in, bool ignore_dots)
{
	struct body_sink out = {.tx = tx};
	int r = submit_data(tx);
	if (r == 0)
		r = write_message(&out, h, in, ignore_dots);
	if (r == 0)
		r = submit_finish(tx, stderr);
	if (r < 0) {
		fprintf(stderr, "sendmail: fatal: %s\n", tx->error ? tx->error : "I/O error");
		return EX_TEMPFAIL;
	}
	return submit_exit_code(tx);
}

/*
 * deliverd is down: the message goes to the maildrop, which deliverd picks up when it
 * runs again, so cron mail is never lost (deliverd decides the sender from the file's
 * owner, not from what is written here).
 */
static int drop_content(const struct config *cfg, const char *sender, char **rcpts, size_t n,
                        struct header_block *h, FILE *in, bool ignore_dots)
{
	const char *dir = config_str(cfg, "deliverd", "maildrop_dir");
	struct body_sink out = {0};
	char *error = NULL;
	if (maildrop_begin(dir, sender, (const char *const *)rcpts, n, &out.maildrop, &error) < 0) {
		fprintf(stderr,
		        "sendmail: fatal: deliverd is not running and the maildrop %s "
		        "cannot take the message: %s\n",
		        dir, error);
		free(error);
		return EX_TEMPFAIL;
	}
	if (write_message(&out, h, in, ignore_dots) < 0) {
		fprintf(stderr, "sendmail: fatal: maildrop: %s\n",
		        out.error ? out.error : "I/O error");
		free(out.error);
		maildrop_abort(out.maildrop);
		return EX_TEMPFAIL;
	}
	if (maildrop_commit(out.maildrop, &error) < 0) {
		fprintf(stderr, "sendmail: fatal: maildrop: %s\n", error);
		free(error);
		return EX_TEMPFAIL;
	}
	fprintf(stderr, "sendmail: deliverd is not running; the message waits in the maildrop\n");
	return EX_OK;
}

static void qualify(char ***list, size_t n, const struct sendmail_identity *id)
{
	const char *dom = strchr(id->address, '@') + 1;
	for (size_t i = 0; i < n; i++) {
		if (strchr((*list)[i], '@') == NULL) {
			char *q = xasprintf("%s@%s", (*list)[i], dom);
			free((*list)[i]);
			(*list)[i] = q;
		}
	}
}

static void add_missing_headers(struct header_block *h, const struct sendmail_opts *o,
                                const struct sendmail_identity *id, const char *sender)
{
	char *extra[3];
	size_t n = 0;
	if (!headers_has(h, "From")) {
		const char *addr = sender[0] != '\0' ? sender : id->address;
		extra[n++] = o->fullname != NULL && strpbrk(o->fullname, "\r\n\"\\") == NULL
		                 ? xasprintf("From: \"%s\" <%s>", o->fullname, addr)
		                 : xasprintf("From: %s", addr);
	}
	if (!headers_has(h, "Date")) {
		char date[64];
		time_t now = time(NULL);
		struct tm tm;
		localtime_r(&now, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
		extra[n++] = xasprintf("Date: %s", date);
	}
	if (!headers_has(h, "Message-ID")) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		extra[n++] = xasprintf("Message-ID: <%lld.%09ld.%ld@%s>", (long long)ts.tv_sec,
		                       ts.tv_nsec, (long)getpid(), id->hostname);
	}
	h->lines = xreallocarray(h->lines, h->n + n, sizeof(char *));
	memcpy(h->lines + h->n, extra, n * sizeof(char *));
	h->n += n;
}

int sendmail_submit(const struct config *cfg, const struct sendmail_opts *o, FILE *in)
{
	struct sendmail_identity id;
	sendmail_identity(cfg, &id);
	const char *sender = id.address;
	if (o->from != NULL) {
		if (id.trusted)
			sender = strcmp(o->from, "<>") == 0 ? "" : o->from;
		else
			fprintf(stderr,
			        "sendmail: warning: -f %s ignored: user %s may not set the "
			        "sender\n",
			        o->from, id.user);
	}
	struct header_block h;
	if (headers_read(in, o->ignore_dots, &h) < 0) {
		fprintf(stderr, "sendmail: fatal: header block too large\n");
		headers_free(&h);
		sendmail_identity_free(&id);
		return EX_DATAERR;
	}
	char **rcpts = NULL;
	size_t n = 0;
	if (o->extract)
		headers_extract_recipients(&h, true, &rcpts, &n);
	for (size_t i = 0; i < o->n_rcpts; i++)
		headers_parse_address_list(o->rcpts[i], &rcpts, &n);
	qualify(&rcpts, n, &id);
	add_missing_headers(&h, o, &id, sender);
	int rc = EX_OK;
	struct submit_tx tx = {0};
	char *mail_reply = NULL;
	if (n == 0) {
		fprintf(stderr, "sendmail: fatal: no recipients found\n");
		rc = EX_USAGE;
	} else if (submit_connect(cfg, &tx, id.hostname) < 0) {
		rc = drop_content(cfg, sender, rcpts, n, &h, in, o->ignore_dots);
	} else {
		int accepted = submit_envelope(&tx, sender, rcpts, n, stderr, &mail_reply);
		if (accepted < 0) {
			fprintf(stderr, "sendmail: fatal: %s\n",
			        mail_reply ? mail_reply
			        : tx.error ? tx.error
			                   : "MAIL refused");
			rc = mail_reply != NULL && mail_reply[0] == '5' ? EX_NOPERM : EX_TEMPFAIL;
		} else if (accepted == 0) {
			rc = submit_exit_code(&tx);
		} else {
			rc = send_content(&tx, &h, in, o->ignore_dots);
		}
	}
	free(mail_reply);
	submit_close(&tx);
	for (size_t i = 0; i < n; i++)
		free(rcpts[i]);
	free(rcpts);
	headers_free(&h);
	sendmail_identity_free(&id);
	return rc;
}
