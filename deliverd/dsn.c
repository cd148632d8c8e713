/* RFC 3464 delivery status notifications (dsn.h). */
#include "dsn.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/xalloc.h"

bool dsn_wanted(const struct queue_msg *msg, const struct queue_rcpt *r, enum dsn_kind kind)
{
	if (msg->env.sender == NULL || msg->env.sender[0] == '\0' || msg->env.is_dsn)
		return false;
	if (r->notify == 0)
		return true; /* RFC 3461 4.1: FAILURE,DELAY by default */
	if (r->notify & QUEUE_NOTIFY_NEVER)
		return false;
	return (r->notify & (kind == DSN_FAILED ? QUEUE_NOTIFY_FAILURE : QUEUE_NOTIFY_DELAY)) != 0;
}

/* RFC 5322 3.3 date, in UTC. */
static void append_date(struct buf *out, uint64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	char s[64];
	strftime(s, sizeof(s), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	buf_append_str(out, s);
}

/* Header and DSN field values must not carry line breaks or non-ASCII we did not vet. */
static void append_clean(struct buf *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
		buf_append_char(out, *p >= 32 && *p < 127 ? (char)*p : '?');
}

/* Reads the original message's header block (up to the empty line, capped). */
static int read_headers(const struct queue_msg *msg, int fd, struct buf *out, char **error_r)
{
	uint64_t want = msg->body_size < DSN_MAX_HEADERS ? msg->body_size : DSN_MAX_HEADERS;
	char *h = xmalloc(want + 1);
	ssize_t n = want > 0 ? pread(fd, h, want, (off_t)msg->body_offset) : 0;
	if (n < 0 || (uint64_t)n != want) {
		*error_r = xasprintf("read original: %s", n < 0 ? strerror(errno) : "short file");
		free(h);
		return -1;
	}
	/* Stop at the first empty line (CRLF CRLF or LF LF). */
	size_t end = (size_t)n;
	for (size_t i = 0; i + 1 < (size_t)n; i++) {
		if (h[i] == '\n' && (h[i + 1] == '\n' ||
		                     (h[i + 1] == '\r' && i + 2 < (size_t)n && h[i + 2] == '\n'))) {
			end = i + 1;
			break;
		}
	}
	/* Normalise to CRLF so the DSN itself has clean line ends. */
	for (size_t i = 0; i < end; i++) {
		if (h[i] == '\n' && (i == 0 || h[i - 1] != '\r'))
			buf_append_char(out, '\r');
		else if (h[i] == '\r' && (i + 1 >= end || h[i + 1] != '\n'))
			continue; /* a bare CR has no place in a header block */
		buf_append_char(out, h[i]);
	}
	if (out->len > 0 && out->data[out->len - 1] != '\n')
		buf_append_str(out, "\r\n");
	free(h);
	return 0;
}

static int append_full(const struct queue_msg *msg, int fd, struct buf *out, char **error_r)
{
	char *b = xmalloc(msg->body_size + 1);
	ssize_t n = msg->body_size > 0 ? pread(fd, b, msg->body_size, (off_t)msg->body_offset) : 0;
	if (n < 0 || (uint64_t)n != msg->body_size) {
		*error_r = xasprintf("read original: %s", n < 0 ? strerror(errno) : "short file");
		free(b);
		return -1;
	}
	for (size_t i = 0; i < (size_t)n; i++) {
		if (b[i] == '\n' && (i == 0 || b[i - 1] != '\r'))
			buf_append_char(out, '\r');
		buf_append_char(out, b[i]);
	}
	if (n > 0 && b[n - 1] != '\n')
		buf_append_str(out, "\r\n");
	free(b);
	return 0;
}

static void append_human(struct buf *out, const struct dsn_params *p,
                         const struct queue_rcpt *const *rcpts, size_t n)
{
	if (p->kind == DSN_FAILED) {
		buf_printf(out,
		           "This is the mail system at host %s.\r\n\r\n"
		           "I'm sorry to have to inform you that your message could not\r\n"
		           "be delivered to one or more recipients. It's attached below.\r\n\r\n",
		           p->reporting_mta);
	} else {
		buf_printf(
		    out,
		    "This is the mail system at host %s.\r\n\r\n"
		    "####################################################################\r\n"
		    "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\r\n"
		    "####################################################################\r\n\r\n"
		    "Your message could not be delivered yet. The mail system will keep\r\n"
		    "trying until ",
		    p->reporting_mta);
		append_date(out, p->retry_until_ms);
		buf_append_str(out, ".\r\n\r\n");
	}
	for (size_t i = 0; i < n; i++) {
		buf_append_str(out, "<");
		append_clean(out, rcpts[i]->address);
		buf_append_str(out, ">: ");
		append_clean(out, rcpts[i]->diag != NULL ? rcpts[i]->diag : "unknown failure");
		buf_append_str(out, "\r\n");
	}
}

static void append_status(struct buf *out, const struct dsn_params *p, const struct queue_msg *msg,
                          const struct queue_rcpt *const *rcpts, size_t n)
{
	/* RFC 3464 2.2: per-message fields. */
	buf_append_str(out, "Reporting-MTA: dns; ");
	append_clean(out, p->reporting_mta);
	buf_printf(out, "\r\nX-Tern-Queue-ID: %s\r\n", msg->qid);
	if (msg->env.envid != NULL) {
		buf_append_str(out, "Original-Envelope-Id: ");
		append_clean(out, msg->env.envid);
		buf_append_str(out, "\r\n");
	}
	buf_append_str(out, "Arrival-Date: ");
	append_date(out, msg->env.arrival_ms);
	buf_append_str(out, "\r\n");
	for (size_t i = 0; i < n; i++) {
		const struct queue_rcpt *r = rcpts[i];
		/* RFC 3464 2.3: per-recipient fields, each group after an empty line. */
		buf_append_str(out, "\r\n");
		if (r->orcpt != NULL) {
			buf_append_str(out, "Original-Recipient: ");
			append_clean(out, r->orcpt);
			buf_append_str(out, "\r\n");
		}
		buf_append_str(out, "Final-Recipient: rfc822; ");
		append_clean(out, r->address);
		const char *status = r->dsn != NULL          ? r->dsn
		                     : p->kind == DSN_FAILED ? "5.0.0"
		                                             : "4.0.0";
		buf_printf(out, "\r\nAction: %s\r\nStatus: ",
		           p->kind == DSN_FAILED ? "failed" : "delayed");
		append_clean(out, status);
		buf_append_str(out, "\r\n");
		if (r->diag != NULL) {
			/* The diagnostic keeps the remote reply when there was one. */
			buf_append_str(out, "Diagnostic-Code: smtp; ");
			append_clean(out, r->diag);
			buf_append_str(out, "\r\n");
		}
		buf_append_str(out, "Last-Attempt-Date: ");
		append_date(out, p->now_ms);
		buf_append_str(out, "\r\n");
		if (p->kind == DSN_DELAYED) {
			buf_append_str(out, "Will-Retry-Until: ");
			append_date(out, p->retry_until_ms);
			buf_append_str(out, "\r\n");
		}
	}
}

int dsn_build(const struct dsn_params *p, const struct queue_msg *msg,
              const struct queue_rcpt *const *rcpts, size_t n, int body_fd, struct buf *out,
              char **error_r)
{
	char boundary[96];
	snprintf(boundary, sizeof(boundary), "%s.%" PRIu64 "/%s", p->boundary_seed, p->now_ms,
	         p->reporting_mta);
	/* The boundary must not contain characters a header line or MIME would choke on. */
	for (char *c = boundary; *c != '\0'; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '.' || *c == '/' || *c == '-'))
			*c = '-';
	buf_append_str(out, "From: MAILER-DAEMON@");
	append_clean(out, p->reporting_mta);
	buf_append_str(out, " (Mail Delivery System)\r\nTo: <");
	append_clean(out, msg->env.sender);
	buf_printf(out, ">\r\nSubject: %s\r\nDate: ",
	           p->kind == DSN_FAILED ? "Undelivered Mail Returned to Sender"
	                                 : "Delayed Mail (still being retried)");
	append_date(out, p->now_ms);
	buf_printf(out, "\r\nMessage-ID: <%s.%" PRIu64 "@", p->boundary_seed, p->now_ms);
	append_clean(out, p->reporting_mta);
	buf_printf(out,
	           ">\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
	           "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	           "\tboundary=\"%s\"\r\n\r\n"
	           "This is a MIME-encapsulated message.\r\n\r\n",
	           boundary);
	buf_printf(out,
	           "--%s\r\nContent-Description: Notification\r\n"
	           "Content-Type: text/plain; charset=us-ascii\r\n\r\n",
	           boundary);
	append_human(out, p, rcpts, n);
	buf_printf(out,
	           "\r\n--%s\r\nContent-Description: Delivery report\r\n"
	           "Content-Type: message/delivery-status\r\n\r\n",
	           boundary);
	append_status(out, p, msg, rcpts, n);
	bool full = msg->env.ret == QUEUE_RET_FULL && p->kind == DSN_FAILED &&
	            msg->body_size <= DSN_MAX_FULL;
	buf_printf(out, "\r\n--%s\r\nContent-Description: %s\r\nContent-Type: %s\r\n\r\n", boundary,
	           full ? "Undelivered Message" : "Undelivered Message Headers",
	           full ? "message/rfc822" : "text/rfc822-headers");
	int r = full ? append_full(msg, body_fd, out, error_r)
	             : read_headers(msg, body_fd, out, error_r);
	if (r < 0)
		return -1;
	buf_printf(out, "\r\n--%s--\r\n", boundary);
	return 0;
}

static bool has_8bit(const struct buf *b)
{
	for (size_t i = 0; i < b->len; i++)
		if ((unsigned char)b->data[i] >= 0x80)
			return true;
	return false;
}

int dsn_queue(struct queue *q, const struct dsn_params *p, const struct queue_msg *msg,
              const struct queue_rcpt *const *rcpts, size_t n, char *qid_r, char **error_r)
{
	int fd = queue_open_body(q, msg, error_r);
	if (fd < 0)
		return -1;
	struct buf body;
	buf_init(&body, 0);
	int r = dsn_build(p, msg, rcpts, n, fd, &body, error_r);
	close(fd);
	if (r == 0) {
		struct queue_envelope env = {0};
		env.sender = xstrdup("");
		env.is_dsn = true;
		env.arrival_ms = p->now_ms;
		env.ret = QUEUE_RET_HDRS;
		/* The copied headers may carry 8-bit text; say so to the next hop. */
		env.body_8bit = has_8bit(&body);
		env.smtputf8 = msg->env.smtputf8;
		queue_envelope_add_rcpt(&env, msg->env.sender, NULL, QUEUE_NOTIFY_NEVER);
		struct queue_writer *w;
		r = queue_writer_begin(q, &env, &w, error_r);
		if (r == 0 && (r = queue_writer_write(w, body.data, body.len, error_r)) < 0)
			queue_writer_abort(w);
		else if (r == 0)
			r = queue_writer_commit(w, qid_r, error_r);
		queue_envelope_free(&env);
	}
	buf_free(&body);
	return r;
}
