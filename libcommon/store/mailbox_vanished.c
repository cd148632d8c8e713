/*
 * Expunge tombstones for RFC 7162 QRESYNC: which UIDs vanished since a MODSEQ. Every
 * expunge already has its own log record with a new MODSEQ; replaying it adds the UID
 * here, merged into UID ranges (a range spans UIDs with no message of the folder between
 * them, and keeps the highest MODSEQ of its expunges, so it may be reported a little
 * early: a superset, which VANISHED (EARLIER) allows). The list is bounded: past
 * MBOX_VANISHED_MAX ranges the oldest goes and the floor rises to its MODSEQ; below the
 * floor the answer is "every UID < UIDNEXT not in the folder". The list is written into
 * each snapshot as one INDEX_REC_VANISHED frame after the messages (older readers stop at
 * the header's message count and never see it).
 */
#include "store/mailbox_private.h"

#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"

/* Messages skipped when looking for one still in the folder between two UIDs. */
#define VANISHED_SCAN_MAX 64

void mbox_vanished_free(struct mbox_vanished *van)
{
	free(van->ranges);
	memset(van, 0, sizeof(*van));
}

void mbox_vanished_reset(struct mbox_vanished *van, uint64_t floor)
{
	van->count = 0;
	van->floor = floor;
}

/* Index of the first range with first > uid. */
static size_t range_after(const struct mbox_vanished *van, uint32_t uid)
{
	size_t lo = 0, hi = van->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (van->ranges[mid].first <= uid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* True when no message still in the folder has a UID in (lo, hi): the two can share a
 * range. Gives up (false) after VANISHED_SCAN_MAX expunged messages. */
static bool nothing_between(const struct index_state *st, uint32_t lo, uint32_t hi)
{
	if (hi <= lo + 1)
		return true;
	size_t a = 0, b = st->count;
	while (a < b) {
		size_t mid = a + (b - a) / 2;
		if (st->msgs[mid]->m.uid <= lo)
			a = mid + 1;
		else
			b = mid;
	}
	for (size_t n = 0; a < st->count && n < VANISHED_SCAN_MAX; a++, n++) {
		const struct mbox_msg *m = st->msgs[a];
		if (m->m.uid >= hi)
			return true;
		if (!m->m.expunged)
			return false;
	}
	return a == st->count;
}

static void drop_oldest(struct mbox_vanished *van)
{
	size_t oldest = 0;
	for (size_t i = 1; i < van->count; i++) {
		if (van->ranges[i].modseq < van->ranges[oldest].modseq)
			oldest = i;
	}
	if (van->ranges[oldest].modseq > van->floor)
		van->floor = van->ranges[oldest].modseq;
	memmove(&van->ranges[oldest], &van->ranges[oldest + 1],
	        (van->count - oldest - 1) * sizeof(*van->ranges));
	van->count--;
}

void mbox_vanished_add(struct index_state *st, uint32_t uid, uint64_t modseq)
{
	struct mbox_vanished *van = &st->van;
	if (uid == 0 || modseq <= van->floor)
		return;
	size_t p = range_after(van, uid);
	struct mbox_vanished_range *a = p > 0 ? &van->ranges[p - 1] : NULL;
	struct mbox_vanished_range *b = p < van->count ? &van->ranges[p] : NULL;
	if (a != NULL && uid <= a->last) {
		a->modseq = modseq > a->modseq ? modseq : a->modseq;
		return;
	}
	bool join_a = a != NULL && nothing_between(st, a->last, uid);
	bool join_b = b != NULL && nothing_between(st, uid, b->first);
	if (join_a && join_b) {
		a->last = b->last;
		a->modseq = a->modseq > b->modseq ? a->modseq : b->modseq;
		a->modseq = modseq > a->modseq ? modseq : a->modseq;
		memmove(b, b + 1, (van->count - p - 1) * sizeof(*b));
		van->count--;
		return;
	}
	if (join_a || join_b) {
		struct mbox_vanished_range *r = join_a ? a : b;
		if (join_a)
			r->last = uid;
		else
			r->first = uid;
		r->modseq = modseq > r->modseq ? modseq : r->modseq;
		return;
	}
	if (van->count == van->cap) {
		van->cap = van->cap * 2 + 16;
		van->ranges = xreallocarray(van->ranges, van->cap, sizeof(*van->ranges));
	}
	memmove(&van->ranges[p + 1], &van->ranges[p], (van->count - p) * sizeof(*van->ranges));
	van->ranges[p] = (struct mbox_vanished_range){uid, uid, modseq};
	van->count++;
	if (van->count > MBOX_VANISHED_MAX)
		drop_oldest(van);
}

void mbox_vanished_snapshot_append(const struct mbox_vanished *van, struct buf *b)
{
	struct buf payload;
	buf_init(&payload, 0);
	buf_append_char(&payload, INDEX_REC_VANISHED);
	index_put_u64(&payload, van->floor);
	index_put_u32(&payload, (uint32_t)van->count);
	for (size_t i = 0; i < van->count; i++) {
		index_put_u32(&payload, van->ranges[i].first);
		index_put_u32(&payload, van->ranges[i].last);
		index_put_u64(&payload, van->ranges[i].modseq);
	}
	index_frame(b, &payload);
	buf_free(&payload);
}

/* Decodes one VANISHED payload into van; false when malformed (van untouched). */
static bool vanished_decode(const unsigned char *p, size_t len, struct mbox_vanished *van)
{
	if (len < 13 || p[0] != INDEX_REC_VANISHED)
		return false;
	uint32_t n = index_get_u32(p + 9);
	if (n > MBOX_VANISHED_MAX || len != 13 + (size_t)n * 16)
		return false;
	uint32_t prev_last = 0;
	for (uint32_t i = 0; i < n; i++) {
		const unsigned char *r = p + 13 + (size_t)i * 16;
		uint32_t first = index_get_u32(r), last = index_get_u32(r + 4);
		if (first == 0 || first > last || first <= prev_last)
			return false;
		prev_last = last;
	}
	van->floor = index_get_u64(p + 1);
	van->count = van->cap = n;
	van->ranges = n > 0 ? xreallocarray(NULL, n, sizeof(*van->ranges)) : NULL;
	for (uint32_t i = 0; i < n; i++) {
		const unsigned char *r = p + 13 + (size_t)i * 16;
		van->ranges[i] = (struct mbox_vanished_range){
		    index_get_u32(r), index_get_u32(r + 4), index_get_u64(r + 8)};
	}
	return true;
}

void mbox_vanished_snapshot_load(struct index_state *st, const unsigned char *p, size_t len)
{
	mbox_vanished_free(&st->van);
	size_t pos = 0;
	while (pos < len) {
		const unsigned char *payload;
		size_t plen, flen;
		if (!index_unframe(p + pos, len - pos, &payload, &plen, &flen))
			break;
		pos += flen;
		if (payload[0] == INDEX_REC_VANISHED && vanished_decode(payload, plen, &st->van))
			return;
	}
	st->van.floor = st->hdr.highestmodseq;
}

/* Appends [first, last] minus the UIDs still in the view or the folder to out. */
static void ranges_push(struct store_uid_range **out, size_t *n, size_t *cap, uint32_t first,
                        uint32_t last)
{
	if (*n > 0 && (*out)[*n - 1].last + 1 >= first) {
		if (last > (*out)[*n - 1].last)
			(*out)[*n - 1].last = last;
		return;
	}
	if (*n == *cap) {
		*cap = *cap * 2 + 16;
		*out = xreallocarray(*out, *cap, sizeof(**out));
	}
	(*out)[(*n)++] = (struct store_uid_range){first, last};
}

/*
 * The next UID at or above uid the session still knows (in its view, or in the folder and
 * not expunged), or 0. *si and *vi walk st->msgs and the view's messages forward; a
 * message may have left the folder's state while an older view still shows it.
 */
static uint32_t next_present(const struct store_mailbox *box, uint32_t uid, size_t *si, size_t *vi)
{
	const struct index_state *st = &box->f->st;
	const struct mbox_view *v = box->view;
	while (*si < st->count && (st->msgs[*si]->m.uid < uid || st->msgs[*si]->m.expunged))
		(*si)++;
	while (v != NULL && *vi < v->count && v->msgs[*vi]->m.uid < uid)
		(*vi)++;
	uint32_t a = *si < st->count ? st->msgs[*si]->m.uid : 0;
	uint32_t b = v != NULL && *vi < v->count ? v->msgs[*vi]->m.uid : 0;
	if (a == 0)
		return b;
	if (b == 0)
		return a;
	return a < b ? a : b;
}

static void subtract_present(const struct store_mailbox *box, uint32_t first, uint32_t last,
                             size_t *si, size_t *vi, struct store_uid_range **out, size_t *n,
                             size_t *cap)
{
	uint32_t from = first;
	for (;;) {
		uint32_t uid = next_present(box, from, si, vi);
		if (uid == 0 || uid > last)
			break;
		if (uid > from)
			ranges_push(out, n, cap, from, uid - 1);
		if (uid == UINT32_MAX)
			return;
		from = uid + 1;
	}
	if (from <= last && from != 0)
		ranges_push(out, n, cap, from, last);
}

size_t store_mailbox_vanished_since(const struct store_mailbox *box, uint64_t modseq,
                                    struct store_uid_range **ranges_r, bool *exact_r)
{
	const struct index_state *st = &box->f->st;
	const struct mbox_vanished *van = &st->van;
	bool exact = modseq >= van->floor && modseq <= st->hdr.highestmodseq;
	struct store_uid_range *out = NULL;
	size_t n = 0, cap = 0, si = 0, vi = 0;
	if (!exact) {
		if (st->hdr.uidnext > 1)
			subtract_present(box, 1, st->hdr.uidnext - 1, &si, &vi, &out, &n, &cap);
	} else {
		for (size_t r = 0; r < van->count; r++) {
			uint32_t first = van->ranges[r].first, last = van->ranges[r].last;
			if (van->ranges[r].modseq <= modseq || first >= st->hdr.uidnext)
				continue;
			if (last >= st->hdr.uidnext)
				last = st->hdr.uidnext - 1;
			subtract_present(box, first, last, &si, &vi, &out, &n, &cap);
		}
	}
	if (exact_r != NULL)
		*exact_r = exact;
	*ranges_r = out;
	return n;
}
