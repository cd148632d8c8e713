/* Sequence-set parsing and resolution (see imap_seqset.h). */
#include "imap_seqset.h"

#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"

static int parse_number(const char **p, uint32_t *v_r)
{
	if (**p == '*') {
		(*p)++;
		*v_r = IMAP_SEQ_STAR;
		return 0;
	}
	if (**p < '1' || **p > '9')
		return -1;
	uint64_t v = 0;
	while (**p >= '0' && **p <= '9') {
		v = v * 10 + (uint64_t)(**p - '0');
		if (v > UINT32_MAX)
			return -1;
		(*p)++;
	}
	*v_r = (uint32_t)v;
	return 0;
}

int imap_seqset_parse(const char *s, size_t max_ranges, struct imap_seqset *set_r)
{
	memset(set_r, 0, sizeof(*set_r));
	if (strcmp(s, "$") == 0) {
		set_r->dollar = true;
		return 0;
	}
	size_t cap = 0;
	const char *p = s;
	for (;;) {
		struct seq_range r;
		if (parse_number(&p, &r.lo) < 0)
			goto fail;
		r.hi = r.lo;
		if (*p == ':') {
			p++;
			if (parse_number(&p, &r.hi) < 0)
				goto fail;
		}
		if (set_r->count == max_ranges)
			goto fail;
		if (set_r->count == cap) {
			cap = cap == 0 ? 4 : cap * 2;
			set_r->ranges = xreallocarray(set_r->ranges, cap, sizeof(r));
		}
		set_r->ranges[set_r->count++] = r;
		if (*p == '\0')
			return 0;
		if (*p != ',')
			goto fail;
		p++;
	}
fail:
	imap_seqset_free(set_r);
	return -1;
}

void imap_seqset_free(struct imap_seqset *set)
{
	free(set->ranges);
	memset(set, 0, sizeof(*set));
}

static int range_cmp(const void *a, const void *b)
{
	const struct seq_range *x = a, *y = b;
	return x->lo < y->lo ? -1 : x->lo > y->lo;
}

void imap_seqset_resolve(struct imap_seqset *set, uint32_t star)
{
	if (star == 0) {
		set->count = 0;
		return;
	}
	for (size_t i = 0; i < set->count; i++) {
		struct seq_range *r = &set->ranges[i];
		if (r->lo == IMAP_SEQ_STAR)
			r->lo = star;
		if (r->hi == IMAP_SEQ_STAR)
			r->hi = star;
		if (r->lo > r->hi) {
			uint32_t t = r->lo;
			r->lo = r->hi;
			r->hi = t;
		}
	}
	qsort(set->ranges, set->count, sizeof(*set->ranges), range_cmp);
	size_t out = 0;
	for (size_t i = 0; i < set->count; i++) {
		struct seq_range r = set->ranges[i];
		if (out > 0 && (uint64_t)set->ranges[out - 1].hi + 1 >= r.lo) {
			if (r.hi > set->ranges[out - 1].hi)
				set->ranges[out - 1].hi = r.hi;
		} else {
			set->ranges[out++] = r;
		}
	}
	set->count = out;
}

bool imap_seqset_contains(const struct imap_seqset *set, uint32_t value)
{
	size_t lo = 0, hi = set->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (value < set->ranges[mid].lo)
			hi = mid;
		else if (value > set->ranges[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

uint64_t imap_seqset_size(const struct imap_seqset *set)
{
	uint64_t n = 0;
	for (size_t i = 0; i < set->count; i++)
		n += (uint64_t)set->ranges[i].hi - set->ranges[i].lo + 1;
	return n;
}
