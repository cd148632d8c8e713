/*
 * IMAP sequence sets (RFC 3501 section 9 "sequence-set", RFC 5182 "$" for SEARCHRES):
 * "1,3:5,10:*". Parsing keeps '*' symbolic; resolving against the largest sequence
 * number or UID gives sorted, merged, non-overlapping ranges that can be searched.
 * Per RFC 3501 a range's ends may come in any order, and "*" stands for the largest
 * value even when the other end is larger ("UID 1000:*" in a mailbox whose largest UID
 * is 500 means 500).
 */
#ifndef TERN_IMAPD_IMAP_SEQSET_H
#define TERN_IMAPD_IMAP_SEQSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IMAP_SEQ_STAR 0 /* nz-number is never 0, so 0 stands for '*' */

struct seq_range {
	uint32_t lo;
	uint32_t hi;
};

struct imap_seqset {
	struct seq_range *ranges;
	size_t count;
	bool dollar; /* "$": the saved search result */
};

/* Parses s; returns 0 or -1 (invalid syntax, zero, overflow, or more than max_ranges). */
int imap_seqset_parse(const char *s, size_t max_ranges, struct imap_seqset *set_r);
void imap_seqset_free(struct imap_seqset *set);

/*
 * Replaces '*' by star, orders each range, sorts and merges. With star == 0 (empty
 * mailbox) the result is empty. The result is valid for imap_seqset_contains().
 */
void imap_seqset_resolve(struct imap_seqset *set, uint32_t star);
bool imap_seqset_contains(const struct imap_seqset *set, uint32_t value);
/* Number of values a resolved set covers. */
uint64_t imap_seqset_size(const struct imap_seqset *set);

#endif
