/*
 * The POP3 session's view of a user's INBOX (RFC 1939 "maildrop"): a snapshot of the
 * messages taken at login, numbered 1..n in delivery order. Messages delivered later are
 * not part of it (they show at the next login). DELE only marks; RSET unmarks; QUIT
 * applies every deletion and every \Seen from RETR in one commit. Freeing a maildrop
 * without commit (dropped connection) changes nothing.
 *
 * The INBOX is the Maildir at home, through the store's folder index (store/mailbox.h):
 * UIDs, CRLF sizes and file locations come from it, so a file another client renamed
 * (flags) is still found, and QUIT's \Seen and expunge go through the index, where IMAP
 * sessions see them. Opening syncs the index (new files get UIDs and move to cur/).
 *
 * One POP3 session per mailbox: maildrop_open() takes an exclusive lock on
 * <home>/tern-pop3.lock (flock, released when the maildrop is freed or the process dies).
 * IMAP sessions and delivery do not take it and keep working.
 */
#ifndef TERN_POP3D_MAILDROP_H
#define TERN_POP3D_MAILDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct maildrop;

enum maildrop_uidl_format {
	MAILDROP_UIDL_UID_VALIDITY, /* Dovecot's default "%08Xu%08Xv": UID, UIDVALIDITY */
	MAILDROP_UIDL_FILENAME,     /* Dovecot's "%f": the Maildir base name */
};

enum maildrop_open_result {
	MAILDROP_OPEN_OK = 0,
	MAILDROP_OPEN_IN_USE = 1, /* another POP3 session holds the lock */
	MAILDROP_OPEN_ERROR = -1, /* *error_r says why (for the log, not the client) */
};

/* home must be an absolute path without "." or ".." components. */
enum maildrop_open_result maildrop_open(const char *home, enum maildrop_uidl_format format,
                                        struct maildrop **md_r, char **error_r);
/* Releases the lock and frees, applying nothing. Sets *md to NULL. */
void maildrop_free(struct maildrop **md);

/* Messages in the snapshot, deleted ones included (numbers never shift). */
unsigned maildrop_count(const struct maildrop *md);
/* Message n (1-based) exists and is not marked deleted. */
bool maildrop_exists(const struct maildrop *md, unsigned n);
bool maildrop_is_deleted(const struct maildrop *md, unsigned n);
/* Size as RETR sends it (CRLF line ends, no dot-stuffing). */
uint64_t maildrop_size(const struct maildrop *md, unsigned n);
/* Count and total size of the messages not marked deleted (STAT). */
void maildrop_stat(const struct maildrop *md, unsigned *count_r, uint64_t *size_r);
/* The unique-id (RFC 1939 UIDL): 1..70 printable characters; valid until free. */
const char *maildrop_uidl(const struct maildrop *md, unsigned n);

/* Opens message n for reading (O_RDONLY|O_NOFOLLOW). Returns an fd (caller closes), or
 * -1 with *error_r when the file is gone or unreadable. */
int maildrop_open_message(struct maildrop *md, unsigned n, char **error_r);

void maildrop_mark_deleted(struct maildrop *md, unsigned n);
/* RSET: unmarks everything. */
void maildrop_reset(struct maildrop *md);
/* RETR: set \Seen when committing. */
void maildrop_mark_seen(struct maildrop *md, unsigned n);

/* QUIT: applies deletions and \Seen flags. Returns 0, or -1 with *error_r when some
 * could not be applied (the rest is still applied). */
int maildrop_commit(struct maildrop *md, unsigned *deleted_r, char **error_r);

#endif
