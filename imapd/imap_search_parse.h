/*
 * SEARCH programs (RFC 3501 6.4.4, RFC 7162 MODSEQ, RFC 5032 OLDER/YOUNGER, RFC 5182 $,
 * RFC 4731 RETURN options): parses the arguments of SEARCH / UID SEARCH into a tree of
 * keys that the search code evaluates per message. Top-level keys are ANDed.
 * FROM, TO, CC, BCC and SUBJECT become HEADER keys with their field name.
 */
#ifndef TERN_IMAPD_IMAP_SEARCH_PARSE_H
#define TERN_IMAPD_IMAP_SEARCH_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap_date.h" /* imap_date_parse */
#include "imap_seqset.h"

struct imap_arg;

enum search_key_type {
	SK_ALL,
	SK_AND,     /* children */
	SK_OR,      /* children[0] OR children[1] */
	SK_NOT,     /* children[0] */
	SK_SEQSET,  /* set (message sequence numbers) */
	SK_UIDSET,  /* set */
	SK_SAVED,   /* $ */
	SK_FLAG,    /* flag bit set (e.g. SEEN); negated via SK_NOT */
	SK_KEYWORD, /* str */
	SK_NEW,     /* RECENT and not SEEN */
	SK_HEADER,  /* str = field name, str2 = substring ("" = field present) */
	SK_BODY,    /* str */
	SK_TEXT,    /* str: header or body */
	SK_BEFORE,  /* day: internal date */
	SK_ON,
	SK_SINCE,
	SK_SENTBEFORE, /* day: Date: header */
	SK_SENTON,
	SK_SENTSINCE,
	SK_LARGER, /* num */
	SK_SMALLER,
	SK_MODSEQ, /* num */
	SK_OLDER,  /* num seconds */
	SK_YOUNGER,
};

enum search_flag {
	SEARCH_FLAG_ANSWERED = 1 << 0,
	SEARCH_FLAG_DELETED = 1 << 1,
	SEARCH_FLAG_DRAFT = 1 << 2,
	SEARCH_FLAG_FLAGGED = 1 << 3,
	SEARCH_FLAG_SEEN = 1 << 4,
	SEARCH_FLAG_RECENT = 1 << 5,
};

struct search_key {
	enum search_key_type type;
	struct search_key *children;
	size_t count;
	char *str;
	char *str2;
	uint64_t num;
	int32_t day; /* days since 1970-01-01 */
	unsigned flag;
	struct imap_seqset set;
};

enum search_return {
	SEARCH_RETURN_MIN = 1 << 0,
	SEARCH_RETURN_MAX = 1 << 1,
	SEARCH_RETURN_ALL = 1 << 2,
	SEARCH_RETURN_COUNT = 1 << 3,
	SEARCH_RETURN_SAVE = 1 << 4,
};

struct search_program {
	struct search_key root; /* SK_AND */
	char *charset;          /* NULL = US-ASCII/UTF-8 default */
	bool esearch;           /* RETURN (...) was given */
	unsigned returns;       /* enum search_return; RETURN () means ALL */
};

/* args[0..count) after "SEARCH". Returns 0 or -1 with *error_r (static BAD text);
 * an unknown charset gives -2 (the caller answers NO [BADCHARSET]). */
int imap_search_parse(const struct imap_arg *args, size_t count, struct search_program *prog_r,
                      const char **error_r);
void imap_search_free(struct search_program *prog);
/* Converts the program's search strings from its CHARSET to UTF-8 (what the store's
 * search compares); -1 when a string is not valid in that charset. */
int imap_search_to_utf8(struct search_program *prog);

#endif
