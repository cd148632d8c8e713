/* RFC 7162 QRESYNC: the select parameter, the VANISHED (EARLIER) set, UID set output. */
#include "imap_qresync.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "imap_args.h"
#include "store/mailbox.h"

/* A decimal number without sign or leading garbage, 1..max; false otherwise. */
static bool parse_number(const struct imap_arg *a, uint64_t max, uint64_t *v_r)
{
	if (a->type != IMAP_ARG_ATOM || a->str[0] < '1' || a->str[0] > '9')
		return false;
	uint64_t v = 0;
	for (const char *p = a->str; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return false;
		uint64_t d = (uint64_t)(*p - '0');
		if (v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*v_r = v;
	return true;
}

/* A sequence set of known numbers: no "*", no "$" (RFC 7162 known-uids etc.). */
static bool parse_known_set(const struct imap_arg *a, struct imap_seqset *set)
{
	if (a->type != IMAP_ARG_ATOM ||
	    imap_seqset_parse(a->str, IMAP_QRESYNC_MAX_RANGES, set) < 0 || set->dollar)
		return false;
	for (size_t i = 0; i < set->count; i++) {
		if (set->ranges[i].lo == IMAP_SEQ_STAR || set->ranges[i].hi == IMAP_SEQ_STAR)
			return false;
	}
	imap_seqset_resolve(set, UINT32_MAX); /* no "*": only orders and merges */
	return true;
}

int imap_qresync_parse(const struct imap_arg *list, struct imap_qresync *q, const char **error_r)
{
	memset(q, 0, sizeof(*q));
	uint64_t v;
	if (list->type != IMAP_ARG_LIST || list->count < 2 || list->count > 4) {
		*error_r = "QRESYNC needs (uidvalidity modseq [known-uids [seq-match-data]])";
		return -1;
	}
	if (!parse_number(&list->list[0], UINT32_MAX, &v)) {
		*error_r = "Invalid QRESYNC uidvalidity";
		return -1;
	}
	q->uidvalidity = (uint32_t)v;
	/* RFC 7162 mod-sequence-value: 1 <= n <= 9,223,372,036,854,775,807. */
	if (!parse_number(&list->list[1], INT64_MAX, &q->modseq)) {
		*error_r = "Invalid QRESYNC modseq";
		return -1;
	}
	if (list->count >= 3) {
		q->has_known_uids = true;
		if (!parse_known_set(&list->list[2], &q->known_uids)) {
			*error_r = "Invalid QRESYNC known-uids";
			return -1;
		}
	}
	if (list->count == 4) {
		const struct imap_arg *m = &list->list[3];
		q->has_match = true;
		if (m->type != IMAP_ARG_LIST || m->count != 2 ||
		    !parse_known_set(&m->list[0], &q->match_seqs) ||
		    !parse_known_set(&m->list[1], &q->match_uids)) {
			*error_r = "Invalid QRESYNC seq-match-data";
			return -1;
		}
		if (imap_seqset_size(&q->match_seqs) != imap_seqset_size(&q->match_uids)) {
			*error_r = "QRESYNC seq-match-data sets differ in size";
			return -1;
		}
	}
	return 0;
}

void imap_qresync_free(struct imap_qresync *q)
{
	imap_seqset_free(&q->known_uids);
	imap_seqset_free(&q->match_seqs);
	imap_seqset_free(&q->match_uids);
}

/* Steps through the values of a resolved set in order. */
struct set_iter {
	const struct imap_seqset *set;
	size_t r;
	uint64_t v;
};

static bool set_next(struct set_iter *it, uint32_t *v_r)
{
	while (it->r < it->set->count) {
		const struct seq_range *range = &it->set->ranges[it->r];
		if (it->v < range->lo)
			it->v = range->lo;
		if (it->v <= range->hi) {
			*v_r = (uint32_t)it->v++;
			return true;
		}
		it->r++;
	}
	return false;
}

/*
 * The largest UID u of a (sequence, UID) pair the folder still agrees with: no message
 * at or below u can have been expunged since the client saw that numbering (UIDs only
 * grow), so VANISHED need not go down there. Bounded by the messages in the view.
 */
static uint32_t match_point(struct store_mailbox *box, const struct imap_qresync *q)
{
	struct set_iter seqs = {&q->match_seqs, 0, 0}, uids = {&q->match_uids, 0, 0};
	size_t count = store_mailbox_count(box);
	uint32_t seq, uid, point = 0;
	while (set_next(&seqs, &seq) && set_next(&uids, &uid) && seq <= count) {
		if (store_mailbox_msg(box, seq)->uid == uid)
			point = uid;
	}
	return point;
}

size_t imap_qresync_vanished(struct store_mailbox *box, const struct imap_qresync *q,
                             struct buf *out)
{
	struct store_uid_range *r;
	bool exact;
	size_t n = store_mailbox_vanished_since(box, q->modseq, &r, &exact);
	if (!exact && q->has_match) {
		uint32_t point = match_point(box, q);
		size_t kept = 0;
		for (size_t i = 0; i < n; i++) {
			if (r[i].last <= point)
				continue;
			if (r[i].first <= point)
				r[i].first = point + 1;
			r[kept++] = r[i];
		}
		n = kept;
	}
	size_t written =
	    imap_uid_ranges_append(out, r, n, q->has_known_uids ? &q->known_uids : NULL);
	free(r);
	return written;
}

/* Appends first:last to out, the way a UID set writes it. */
static void range_append(struct buf *out, size_t *written, uint32_t first, uint32_t last)
{
	const char *sep = *written > 0 ? "," : "";
	if (first == last)
		(void)buf_printf(out, "%s%u", sep, first);
	else
		(void)buf_printf(out, "%s%u:%u", sep, first, last);
	(*written)++;
}

size_t imap_uid_ranges_append(struct buf *out, const struct store_uid_range *r, size_t n,
                              const struct imap_seqset *limit)
{
	size_t written = 0;
	if (limit == NULL) {
		for (size_t i = 0; i < n; i++)
			range_append(out, &written, r[i].first, r[i].last);
		return written;
	}
	/* Both sorted and disjoint: intersect in one pass. */
	size_t i = 0, k = 0;
	while (i < n && k < limit->count) {
		uint32_t lo = r[i].first > limit->ranges[k].lo ? r[i].first : limit->ranges[k].lo;
		uint32_t hi = r[i].last < limit->ranges[k].hi ? r[i].last : limit->ranges[k].hi;
		if (lo <= hi)
			range_append(out, &written, lo, hi);
		if (r[i].last < limit->ranges[k].hi)
			i++;
		else
			k++;
	}
	return written;
}

void imap_uids_append(struct buf *out, const uint32_t *uids, size_t n)
{
	size_t written = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && uids[j + 1] == uids[j] + 1)
			j++;
		range_append(out, &written, uids[i], uids[j]);
		i = j + 1;
	}
}
