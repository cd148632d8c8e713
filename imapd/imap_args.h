/*
 * Parsing one complete IMAP command (the normalised text from imap_reader) into its tag,
 * name and argument tree (RFC 3501 section 9 grammar, the parts shared by all commands):
 * atoms, quoted strings, literals (and literal8 "~{N}"), streamed literals, and
 * parenthesised lists. Command-specific meaning (sequence sets, fetch items, search keys)
 * is left to the command handlers.
 *
 * Atoms follow Dovecot's reading of the grammar so real clients work: a backslash may
 * start an atom (flags), '*' and '%' are allowed (LIST patterns, "1:*"), and inside "[...]"
 * anything but CR, LF and NUL is part of the atom, so BODY[HEADER.FIELDS (FROM TO)]<0.512>
 * is one argument.
 *
 * Memory: everything hangs off struct imap_command and is released by
 * imap_command_free(). Strings are NUL-terminated copies; literals may contain NUL
 * (use len).
 */
#ifndef TERN_IMAPD_IMAP_ARGS_H
#define TERN_IMAPD_IMAP_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap_reader.h"

enum imap_arg_type {
	IMAP_ARG_ATOM,
	IMAP_ARG_QUOTED,
	IMAP_ARG_LITERAL,
	IMAP_ARG_STREAMED, /* a literal whose bytes went to the session's sink */
	IMAP_ARG_LIST,
};

struct imap_arg {
	enum imap_arg_type type;
	bool literal8; /* "~{N}": may contain NUL (RFC 3516) */
	char *str;     /* ATOM, QUOTED, LITERAL (NUL-terminated copy) */
	size_t len;
	struct imap_arg *list; /* LIST */
	size_t count;
	size_t stream_index; /* STREAMED: index into the reader's streamed literals */
	uint64_t stream_size;
};

struct imap_command {
	char *tag;
	char *name; /* upper-cased */
	struct imap_arg *args;
	size_t count;
};

struct imap_args_limits {
	unsigned max_depth; /* nesting of parenthesised lists */
	unsigned max_args;  /* arguments in all lists together */
};

/*
 * Parses text[0..len) (ending in CRLF). Returns 0, or -1 with *error_r set to the text of
 * a BAD reply (static string) and *tag_r to the tag when one could be read (NULL
 * otherwise; caller frees).
 */
int imap_args_parse(const char *text, size_t len, const struct imap_streamed_literal *streamed,
                    size_t n_streamed, const struct imap_args_limits *limits,
                    struct imap_command *cmd_r, const char **error_r, char **tag_r);
void imap_command_free(struct imap_command *cmd);

/* Helpers for handlers. */
/* An astring (atom, quoted or literal) as text: NULL for other types or an embedded NUL. */
const char *imap_arg_astring(const struct imap_arg *arg);
/* An atom equal to word, case-insensitively. */
bool imap_arg_atom_is(const struct imap_arg *arg, const char *word);
/* NIL as an atom. */
bool imap_arg_is_nil(const struct imap_arg *arg);

#endif
