/*
 * STATUS data of a mailbox (RFC 3501 6.3.10, RFC 8438 SIZE, RFC 7162 HIGHESTMODSEQ),
 * shared by STATUS and LIST-STATUS (RFC 5819).
 */
#ifndef TERN_IMAPD_IMAP_STATUS_H
#define TERN_IMAPD_IMAP_STATUS_H

struct buf;
struct imap_arg;
struct imap_session;

/* Parses "(MESSAGES UNSEEN ...)" into item bits; -1 when invalid or empty. */
int imap_status_parse_items(const struct imap_arg *list, unsigned *items_r);
/* Appends "* STATUS <name> (...)"; -1 when the mailbox can't be opened. */
int imap_status_line(struct imap_session *s, const char *name, unsigned items, struct buf *line);

#endif
