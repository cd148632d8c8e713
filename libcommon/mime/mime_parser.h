/*
 * A streaming MIME parser: feed the bytes of one message as they arrive (any split, one
 * byte at a time gives the same result), then finish to get the tree of parts with their
 * header fields, offsets, sizes and line counts. Memory is bounded by the limits, never
 * by the message: bodies are only counted, and header blocks are kept up to a cap.
 *
 * Sizes come in two forms: physical (bytes in the file) and virtual (as sent over IMAP,
 * where every bare LF becomes CRLF). Line counts are the number of LFs.
 */
#ifndef TERN_MIME_MIME_PARSER_H
#define TERN_MIME_MIME_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Header fields kept per message (the top part and each message/rfc822 body). */
enum mime_field {
	MIME_FIELD_DATE,
	MIME_FIELD_SUBJECT,
	MIME_FIELD_FROM,
	MIME_FIELD_SENDER,
	MIME_FIELD_REPLY_TO,
	MIME_FIELD_TO,
	MIME_FIELD_CC,
	MIME_FIELD_BCC,
	MIME_FIELD_IN_REPLY_TO,
	MIME_FIELD_MESSAGE_ID,
	MIME_FIELD_REFERENCES,
	MIME_FIELD_CONTENT_TYPE,
	MIME_FIELD_COUNT
};

struct mime_limits {
	unsigned int max_depth;  /* nesting of multipart and message/rfc822 (default 20) */
	unsigned int max_parts;  /* parts in one message (default 1000) */
	size_t max_header_size;  /* bytes of one part's header block kept (default 64 KiB) */
	size_t max_boundary_len; /* longer boundaries are not honoured (default 200) */
};

struct mime_param {
	struct mime_param *next;
	char *name;
	char *value;
};

struct mime_size {
	uint64_t physical;
	uint64_t virtual_size;
	uint64_t lines;
};

struct mime_part {
	struct mime_part *parent, *children, *next;
	unsigned int depth;
	/* From Content-Type, defaulted as RFC 2045 5.2 says (text/plain; charset=us-ascii,
	 * or message/rfc822 inside multipart/digest). Never NULL. */
	char *type, *subtype;
	struct mime_param *params;
	char *id, *description, *encoding, *md5, *disposition, *language, *location;
	struct mime_param *disposition_params;
	/* Envelope and list fields (unfolded raw values), for messages only; else NULL. */
	char *fields[MIME_FIELD_COUNT];
	bool is_message;        /* the top part, or the body of a message/rfc822 part */
	bool truncated;         /* a cap stopped parsing inside this part */
	uint64_t header_offset; /* physical offset of the header block */
	struct mime_size header;
	uint64_t body_offset; /* physical offset of the body */
	struct mime_size body;
};

struct mime_parser;

/* limits may be NULL for the defaults. */
struct mime_parser *mime_parser_new(const struct mime_limits *limits);
void mime_parser_feed(struct mime_parser *p, const void *data, size_t len);
/* Ends the input and returns the tree (caller frees with mime_part_free); frees p. */
struct mime_part *mime_parser_finish(struct mime_parser **p);
void mime_parser_free(struct mime_parser **p);
void mime_part_free(struct mime_part **part);

/* The first value of param name (case-insensitive), or NULL. */
const char *mime_param_get(const struct mime_param *params, const char *name);
/* Parses a whole message held in memory (tests, ternctl). */
struct mime_part *mime_parse_buffer(const void *data, size_t len, const struct mime_limits *limits);

#endif
