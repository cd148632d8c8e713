/*
 * RFC 7162 QRESYNC pieces shared by SELECT/EXAMINE, UID FETCH (VANISHED) and the untagged
 * updates: parsing the QRESYNC select parameter, working out the VANISHED (EARLIER) set,
 * and writing UID sets.
 */
#ifndef TERN_IMAPD_IMAP_QRESYNC_H
#define TERN_IMAPD_IMAP_QRESYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "imap_seqset.h"

struct buf;
struct imap_arg;
struct store_mailbox;
struct store_uid_range;

/* Ranges one of the sets below may have (a command line cannot hold more anyway). */
#define IMAP_QRESYNC_MAX_RANGES 100000

/* "(uidvalidity modseq [known-uids [(known-sequence-set known-uid-set)]])", resolved:
 * every set is sorted and merged. */
struct imap_qresync {
	uint32_t uidvalidity;
	uint64_t modseq;
	bool has_known_uids;
	struct imap_seqset known_uids;
	bool has_match;
	struct imap_seqset match_seqs, match_uids; /* the same number of values */
};

/*
 * Parses the list following the QRESYNC select parameter (RFC 7162 3.2.5 and its
 * grammar: nz-number uidvalidity, mod-sequence-value 1..2^63-1, sets without "*" or "$").
 * Returns 0, or -1 with *error_r (the text of a BAD reply). Free with imap_qresync_free
 * either way.
 */
int imap_qresync_parse(const struct imap_arg *list, struct imap_qresync *q, const char **error_r);
void imap_qresync_free(struct imap_qresync *q);

/*
 * The UIDs to send in "* VANISHED (EARLIER)" for a QRESYNC select of box (already
 * synced): what the store knows vanished since q->modseq; when the store only has a
 * superset, UIDs up to the last (sequence, UID) pair of seq-match data that still holds
 * are left out (RFC 7162 3.2.5.2); then limited to the known UIDs. Appends the set to out
 * ("" when empty) and returns the number of ranges written.
 */
size_t imap_qresync_vanished(struct store_mailbox *box, const struct imap_qresync *q,
                             struct buf *out);

/* Appends ranges r[0..n) as an IMAP UID set ("3,5:7"), keeping only the UIDs in limit
 * (a resolved set; NULL: all). Returns the number of ranges written. */
size_t imap_uid_ranges_append(struct buf *out, const struct store_uid_range *r, size_t n,
                              const struct imap_seqset *limit);

/* Appends sorted UIDs uids[0..n) as a UID set, merging runs. */
void imap_uids_append(struct buf *out, const uint32_t *uids, size_t n);

#endif
