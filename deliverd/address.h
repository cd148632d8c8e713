/*
 * Mail addresses as LMTP gives them: the <path> of MAIL FROM / RCPT TO, split and
 * normalised for lookups. Nothing here touches a file; the results are plain strings the
 * caller owns (free with address_free()).
 */
#ifndef TERN_DELIVERD_ADDRESS_H
#define TERN_DELIVERD_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>

#define ADDRESS_MAX_LOCAL 64
#define ADDRESS_MAX_DOMAIN 255
#define ADDRESS_MAX_PATH 256

struct address {
	char *full;   /* "user+detail@domain", local part as sent, domain lower-cased */
	char *user;   /* lower-cased local part without the detail: "user" */
	char *detail; /* "detail" (case kept) or NULL when there is no delimiter */
	char *domain; /* lower-cased; "" when the address had none (sendmail local names) */
};

/*
 * Parses "<path>" at the start of s (RFC 5321 4.1.2: an optional source route is
 * ignored). The null path "<>" is accepted only when allow_null (MAIL FROM); it gives
 * full = "". utf8 allows non-ASCII bytes (SMTPUTF8). require_domain refuses "<user>".
 * delimiter is the recipient delimiter character ('\0' = none). On success returns 0,
 * fills *a and sets *rest_r to what follows the '>' (the ESMTP parameters). On failure
 * returns -1 with a static *error_r suitable for a 501 reply text.
 */
int address_parse_path(const char *s, size_t len, bool allow_null, bool utf8, bool require_domain,
                       char delimiter, struct address *a, size_t *rest_r, const char **error_r);
/* Parses a bare "local@domain" or "local" (alias targets, sendmail arguments). */
int address_parse_plain(const char *s, bool utf8, char delimiter, struct address *a,
                        const char **error_r);
void address_free(struct address *a);

/* True when detail may name a Maildir++ folder: [A-Za-z0-9_-] and inner dots, <= 64
 * bytes, no "..": nothing that can leave the user's directory. */
bool address_detail_is_safe_folder(const char *detail);

#endif
