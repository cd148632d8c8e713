/*
 * UTF8=ACCEPT (RFC 6855, RFC 9755): what changes once a session has sent
 * "ENABLE UTF8=ACCEPT".
 *
 * Input is translated at one boundary, before the command's handler runs
 * (imap_utf8_command_in): mailbox-name arguments arrive as UTF-8 and are replaced by their
 * modified UTF-7 form, so handlers and the store only ever see the internal (mUTF-7,
 * Dovecot-compatible) names; quoted strings must be valid UTF-8; SEARCH with a CHARSET and
 * SORT/THREAD with a charset other than UTF-8 are refused (RFC 6855 3 and erratum 4029).
 * LIST/LSUB patterns stay UTF-8 and are matched against UTF-8 names in cmd_list.c, since
 * a prefix of a UTF-8 name is not a prefix of its mUTF-7 form.
 *
 * Output: imap_utf8_name_append writes an internal name as the session wants it (UTF-8
 * after ENABLE, mUTF-7 before).
 */
#ifndef TERN_IMAPD_IMAP_UTF8_H
#define TERN_IMAPD_IMAP_UTF8_H

#include <stdbool.h>
#include <stddef.h>

#include "imap_args.h"

struct buf;
struct imap_session;

/* Why a UTF-8 mailbox name was refused. */
enum imap_utf8_name_error {
	IMAP_UTF8_NAME_OK = 0,
	IMAP_UTF8_NAME_INVALID = -1,   /* not UTF-8 (overlong, surrogate, truncated, > U+10FFFF) */
	IMAP_UTF8_NAME_FORBIDDEN = -2, /* valid UTF-8 with a character names may not hold */
};

/* True when s[0..len) is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF). NUL counts as valid here; callers that care check for it. */
bool imap_utf8_valid(const char *s, size_t len);

/*
 * Appends the internal (modified UTF-7) form of a mailbox name sent by a UTF8=ACCEPT
 * client. Refuses invalid UTF-8, NUL, and the characters RFC 6855 3 forbids in names that
 * survive mUTF-7 encoding unnoticed (U+2028, U+2029); C0/C1 controls and DEL are left to
 * the store's name check (folder_name.h), which refuses them with its own message.
 * out is unchanged on error.
 */
enum imap_utf8_name_error imap_utf8_name_to_internal(const char *utf8, size_t len, struct buf *out);

/*
 * Applies UTF8=ACCEPT to a parsed command (see above), in place. Returns 0, or -1 with
 * *status_r ("BAD" or "NO") and *error_r (static text) for the tagged reply.
 */
int imap_utf8_command_in(struct imap_command *cmd, const char **status_r, const char **error_r);

/* Appends an internal mailbox name as an astring: UTF-8 when the session enabled
 * UTF8=ACCEPT, else as stored (mUTF-7). */
void imap_utf8_name_append(const struct imap_session *s, struct buf *out, const char *name);

#endif
