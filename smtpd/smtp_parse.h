/*
 * SMTP command syntax (RFC 5321 4.1, RFC 6531 for SMTPUTF8): splitting a command line into
 * its verb and argument, and parsing the MAIL FROM / RCPT TO path with its ESMTP
 * parameters. Pure functions over one line; framing (CRLF, caps) is done by the session.
 *
 * The forgiving mode accepts what real clients and telnet users type (`mail from:
 * user@example.org`, no angle brackets, spaces after the colon); the strict mode accepts
 * only RFC 5321 syntax (`MAIL FROM:<path>`).
 */
#ifndef TERN_SMTPD_SMTP_PARSE_H
#define TERN_SMTPD_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#define SMTP_PATH_MAX 256   /* RFC 5321 4.5.3.1.3 */
#define SMTP_LOCAL_MAX 64   /* RFC 5321 4.5.3.1.1 */
#define SMTP_DOMAIN_MAX 255 /* RFC 5321 4.5.3.1.2 */
#define SMTP_PARAMS_MAX 10

struct smtp_param {
	char *keyword; /* upper-cased */
	char *value;   /* NULL when the parameter has no "=value" */
};

struct smtp_path {
	char *address; /* "" for the null sender <>, else local@domain (or "postmaster") */
	struct smtp_param params[SMTP_PARAMS_MAX];
	size_t n_params;
	bool utf8; /* the address holds non-ASCII bytes */
};

/*
 * Splits "VERB args" in place: *verb_r points at the verb (NUL-terminated, case kept),
 * *args_r at the argument text (after one or more spaces; "" when none). line must be
 * NUL-terminated and contain no other NUL.
 */
void smtp_split_command(char *line, char **verb_r, char **args_r);

/*
 * Parses the argument of MAIL or RCPT: `prefix` is "FROM:" or "TO:" (matched without
 * regard to case). On success returns 0 and fills *path_r (free with smtp_path_clear).
 * On failure returns -1 with *error_r set to a complete reply line without CRLF
 * ("501 5.1.7 Bad sender address syntax").
 */
int smtp_parse_path(const char *args, const char *prefix, bool is_sender, bool strict,
                    struct smtp_path *path_r, const char **error_r);
void smtp_path_clear(struct smtp_path *path);
/* The value of a parameter (keyword upper-case), or NULL; *present_r tells whether the
 * keyword was given at all (a parameter may have no value). */
const char *smtp_path_param(const struct smtp_path *path, const char *keyword, bool *present_r);

/* True when the address (local@domain) is syntactically valid; utf8 allows non-ASCII. */
bool smtp_address_valid(const char *addr, size_t len, bool allow_utf8);
/* The domain part of an address (after the last '@'), or "" when there is none. */
const char *smtp_address_domain(const char *addr);

/* xtext (RFC 3461 4): true when s is valid xtext. */
bool smtp_xtext_valid(const char *s);

#endif
