/*
 * FETCH data items (RFC 3501 6.4.5 and 7.4.2, RFC 3516 BINARY, RFC 7162 MODSEQ): parses
 * the item list of a FETCH command into a plan the fetch code executes. Body sections
 * keep the name the response must carry: BODY.PEEK[HEADER.FIELDS (From)]<0.100> is
 * answered as BODY[HEADER.FIELDS (From)]<0>.
 */
#ifndef TERN_IMAPD_IMAP_FETCH_ITEMS_H
#define TERN_IMAPD_IMAP_FETCH_ITEMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct imap_arg;

enum imap_fetch_flag {
	FETCH_FLAGS = 1 << 0,
	FETCH_INTERNALDATE = 1 << 1,
	FETCH_RFC822_SIZE = 1 << 2,
	FETCH_ENVELOPE = 1 << 3,
	FETCH_BODY = 1 << 4, /* the non-extensible BODYSTRUCTURE */
	FETCH_BODYSTRUCTURE = 1 << 5,
	FETCH_UID = 1 << 6,
	FETCH_RFC822 = 1 << 7,
	FETCH_RFC822_HEADER = 1 << 8,
	FETCH_RFC822_TEXT = 1 << 9,
	FETCH_MODSEQ = 1 << 10,
};

enum imap_section_text {
	SECTION_ALL, /* BODY[] or BODY[1.2] */
	SECTION_HEADER,
	SECTION_HEADER_FIELDS,
	SECTION_HEADER_FIELDS_NOT,
	SECTION_TEXT,
	SECTION_MIME,
};

enum imap_body_kind {
	BODY_KIND_BODY,        /* BODY[...] / BODY.PEEK[...] */
	BODY_KIND_BINARY,      /* BINARY[...] / BINARY.PEEK[...] */
	BODY_KIND_BINARY_SIZE, /* BINARY.SIZE[...] */
};

struct imap_fetch_body {
	enum imap_body_kind kind;
	bool peek;      /* does not set \Seen */
	uint32_t *part; /* "1.2.3" -> {1,2,3}; NULL/0 for the whole message */
	size_t n_part;
	enum imap_section_text text;
	char **fields; /* HEADER.FIELDS(.NOT) names as the client wrote them */
	size_t n_fields;
	bool partial;
	uint32_t origin;
	uint32_t length;
	char *response_name; /* "BODY[HEADER.FIELDS (From)]<0>" */
};

struct imap_fetch_items {
	unsigned flags; /* enum imap_fetch_flag bits */
	struct imap_fetch_body *bodies;
	size_t n_bodies;
};

/*
 * args is either one atom (an item or the macros ALL, FAST, FULL) or a list of items.
 * Returns 0, or -1 with *error_r (static text for a BAD reply).
 */
int imap_fetch_items_parse(const struct imap_arg *args, struct imap_fetch_items *items_r,
                           const char **error_r);
void imap_fetch_items_free(struct imap_fetch_items *items);
/* True when any item would set \Seen (a non-PEEK body section, RFC822, RFC822.TEXT). */
bool imap_fetch_items_set_seen(const struct imap_fetch_items *items);

#endif
