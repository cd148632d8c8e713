/*
 * The selected mailbox of a session: open/close, the flag strings IMAP uses, resolving
 * sequence sets and UID sets against the view, and the untagged updates (EXPUNGE,
 * EXISTS, FETCH FLAGS) that report what other sessions and deliverd changed.
 */
#ifndef TERN_IMAPD_IMAP_MAILBOX_H
#define TERN_IMAPD_IMAP_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap_date.h" /* imap_date_time_append */
#include "imap_seqset.h"
#include "store/store_error.h"

struct buf;
struct imap_session;
struct store_mailbox;
struct store_msg;

struct imap_selected {
	struct store_mailbox *box;
	char *name;
	bool readonly;
	size_t exists;            /* the count the client knows */
	struct imap_seqset saved; /* SEARCH RETURN (SAVE) result, as UIDs */
	bool saved_valid;
};

/* Opens the folder at path through the process's pool (imap_server.pool), or on its own
 * when there is no pool. */
enum store_error imap_mailbox_open(const char *path, struct store_mailbox **box_r,
                                   const char **error_r);

/* Opens name for the session (closing any selected one). Returns a store error.
 * opened: a handle of the folder already opened elsewhere (imap_select_warm), taken
 * over (into the pool), or NULL. */
enum store_error imap_mailbox_select(struct imap_session *s, const char *name, bool readonly,
                                     struct store_mailbox *opened, const char **error_r);
void imap_mailbox_unselect(struct imap_session *s);

/* Appends "(\Seen \Answered ... keyword)" for a message. */
void imap_mailbox_flags_append(struct store_mailbox *box, const struct store_msg *msg,
                               struct buf *out);
/* Appends the "\Answered \Flagged ... keywords" list of flags this folder knows. */
void imap_mailbox_known_flags_append(struct store_mailbox *box, struct buf *out);
/* Parses a flag list argument into system flags and keyword bits (creating keywords
 * when create is set). Returns 0, or -1 with *error_r. */
struct imap_arg;
int imap_mailbox_parse_flags(struct store_mailbox *box, const struct imap_arg *arg, bool create,
                             uint32_t *flags_r, uint32_t *keywords_r, const char **error_r);

/*
 * Resolves a sequence set (uid=false) or UID set (uid=true) against the view into the
 * list of sequence numbers it names, in ascending order. For sequence numbers a number
 * past the view is an error (-1, *error_r). "$" uses the saved search result.
 */
int imap_mailbox_resolve(struct imap_session *s, const char *set_text, bool uid, size_t **seqs_r,
                         size_t *count_r, const char **error_r);

/*
 * Syncs with the files and other sessions and sends what changed: EXPUNGE (only when
 * allow_expunge: never during FETCH, STORE or SEARCH, RFC 3501 7.4.1), FETCH FLAGS for
 * changed messages, EXISTS when the count grew.
 */
void imap_mailbox_report_changes(struct imap_session *s, bool allow_expunge);

#endif
