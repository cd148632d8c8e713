/*
 * The message as it passes from the client to deliverd: a Received: line is put in front
 * (RFC 5321 4.4), the header section is held (up to max_header_size) until its end so that
 * Message-ID: and Date: can be added on submission when missing (RFC 6409 8.2, 8.3), and
 * the body then streams through without being kept. Size and header caps are checked here.
 *
 * Input must already have clean CRLF line ends (DATA decoder or BDAT CRLF check). Output
 * goes to `out`, a plain byte sink (the LMTP client dot-stuffs it).
 */
#ifndef TERN_SMTPD_HEADERS_H
#define TERN_SMTPD_HEADERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/buf.h"

struct smtp_msg_info {
	const char *hostname; /* ours */
	const char *helo;     /* the client's HELO/EHLO name (may be NULL) */
	const char *client_ip;
	const char *protocol; /* "ESMTPSA", "UTF8SMTPS", ... (RFC 3848, RFC 6531) */
	const char *queue_id;
	const char *tls_version; /* NULL when plaintext */
	const char *tls_cipher;
	const char *auth_user; /* NULL when not authenticated */
	const char *for_rcpt;  /* set when the message has exactly one recipient */
	bool add_missing;      /* submission: add Message-ID and Date when missing */
	size_t max_header_size;
	uint64_t max_message_size;
	time_t now;
};

enum smtp_msg_error {
	SMTP_MSG_OK,
	SMTP_MSG_TOO_BIG,
	SMTP_MSG_HEADER_TOO_BIG,
	SMTP_MSG_SINK_FAILED,
};

/* Returns 0, or -1 when the sink cannot take more (the message is then failed). */
typedef int smtp_msg_out_fn(void *ctx, const char *data, size_t len);

struct smtp_msg {
	struct smtp_msg_info info;
	smtp_msg_out_fn *out;
	void *out_ctx;
	struct buf hdr;    /* the header section so far */
	size_t line_start; /* offset in hdr of the line being received */
	bool in_body;
	bool has_message_id, has_date;
	uint64_t size; /* client bytes, unstuffed */
	char last[2];  /* the last two bytes written to out */
	enum smtp_msg_error error;
};

/* Writes the Received: line at once. info's strings must stay valid until smtp_msg_end. */
void smtp_msg_begin(struct smtp_msg *m, const struct smtp_msg_info *info, smtp_msg_out_fn *out,
                    void *out_ctx);
/* Passes message bytes on. After an error (sticky, see m->error) input is only counted. */
void smtp_msg_write(struct smtp_msg *m, const char *data, size_t len);
/* Flushes a header section still held, and ends the message with CRLF. Returns m->error. */
enum smtp_msg_error smtp_msg_end(struct smtp_msg *m);
void smtp_msg_free(struct smtp_msg *m);

/* RFC 5322 3.3 date-time for t in local time ("Sun, 22 Nov 2026 00:04:16 +0000"). */
void smtp_format_date(time_t t, char *out, size_t size);

#endif
