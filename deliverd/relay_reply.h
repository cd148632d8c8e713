/*
 * The relay client's reply reader (RFC 5321 4.2): an incremental parser for SMTP replies,
 * single- and multi-line, with RFC 3463 enhanced status codes (RFC 2034), and the EHLO
 * capability list read from a 250 reply.
 *
 * Limits come first: a line longer than max_line (without CRLF) or a reply with more than
 * max_lines lines is an error before any byte of it is interpreted, so a hostile server
 * cannot make the client hold more than max_line * max_lines bytes. Lines end in CRLF; a
 * bare LF is accepted as well (servers in the wild send it), a bare CR is not an end.
 */
#ifndef TERN_DELIVERD_RELAY_REPLY_H
#define TERN_DELIVERD_RELAY_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define SMTP_REPLY_MAX_LINE 2048
#define SMTP_REPLY_MAX_LINES 64

struct smtp_reply {
	int code;        /* 200..599 */
	char enh[12];    /* "2.0.0", or "" when the first line had none */
	struct buf text; /* each line's text after code and enhanced code, '\n' between lines */
	size_t n_lines;
};

enum smtp_reply_result {
	SMTP_REPLY_MORE,  /* a reply is incomplete: feed more bytes */
	SMTP_REPLY_DONE,  /* *reply is complete */
	SMTP_REPLY_ERROR, /* the server broke the protocol; close the connection */
};

struct smtp_reply_parser {
	size_t max_line;
	size_t max_lines;
	struct smtp_reply cur;
	bool in_reply;
};

/* max_line/max_lines 0 = the defaults above. */
void smtp_reply_parser_init(struct smtp_reply_parser *p, size_t max_line, size_t max_lines);
void smtp_reply_parser_free(struct smtp_reply_parser *p);

/*
 * Consumes complete lines from in. On DONE the reply is moved into *reply_r (which must be
 * initialised with smtp_reply_init() and is reset first); the rest of `in` may hold the next
 * pipelined reply, so call again. On ERROR *error_r is a static description.
 */
enum smtp_reply_result smtp_reply_parse(struct smtp_reply_parser *p, struct buf *in,
                                        struct smtp_reply *reply_r, const char **error_r);

void smtp_reply_init(struct smtp_reply *r);
void smtp_reply_free(struct smtp_reply *r);

/* The enhanced code, or a default one derived from the basic code when there was none
 * ("2.0.0", "4.0.0", "5.0.0"). */
const char *smtp_reply_dsn(const struct smtp_reply *r);

/* "250 2.0.0 Ok: queued as X" on one line (lines joined with spaces), sanitised, at most
 * max bytes of text; appended to out. */
void smtp_reply_format(const struct smtp_reply *r, struct buf *out, size_t max);

struct smtp_ehlo {
	bool pipelining, starttls, eightbitmime, smtputf8, dsn, chunking, enhancedstatuscodes;
	bool size;
	uint64_t max_size; /* 0 = no limit announced */
	bool auth_plain, auth_login;
};

/* Reads the keywords of a 250 EHLO reply (every line but the first). */
void smtp_ehlo_parse(const struct smtp_reply *r, struct smtp_ehlo *e);

#endif
