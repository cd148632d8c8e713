/* SEARCH evaluation (see imap_search_eval.h). */
#include "imap_search_eval.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "imap_mailbox.h"
#include "imap_search_parse.h"
#include "imap_session.h"
#include "store/mailbox.h"
#include "store/maildir_name.h"
#include "store/search.h"

struct eval_ctx {
	struct imap_session *s;
	struct store_mailbox *box;
	size_t seq;
	const struct store_msg *msg;
	struct store_cache cache;
	bool cache_loaded;
	uint32_t max_uid;
	size_t count;
};

static const struct {
	unsigned search;
	uint32_t store;
} flag_map[] = {
    {SEARCH_FLAG_ANSWERED, STORE_FLAG_ANSWERED}, {SEARCH_FLAG_DELETED, STORE_FLAG_DELETED},
    {SEARCH_FLAG_DRAFT, STORE_FLAG_DRAFT},       {SEARCH_FLAG_FLAGGED, STORE_FLAG_FLAGGED},
    {SEARCH_FLAG_SEEN, STORE_FLAG_SEEN},
};

static const struct store_cache *ctx_cache(struct eval_ctx *c)
{
	if (!c->cache_loaded) {
		if (store_mailbox_cache(c->box, c->seq, &c->cache) != STORE_OK)
			memset(&c->cache, 0, sizeof(c->cache));
		c->cache_loaded = true;
	}
	return &c->cache;
}

static int idate_day(time_t t)
{
	struct tm tm;
	localtime_r(&t, &tm);
	return (int)((t + tm.tm_gmtoff) / 86400 - (t + tm.tm_gmtoff < 0 ? 1 : 0));
}

static bool eval_key(struct eval_ctx *c, const struct search_key *k);

static bool eval_all(struct eval_ctx *c, const struct search_key *k)
{
	for (size_t i = 0; i < k->count; i++) {
		if (!eval_key(c, &k->children[i]))
			return false;
	}
	return true;
}

static bool eval_set(struct eval_ctx *c, const struct imap_seqset *set, bool uid)
{
	struct imap_seqset copy = {.count = set->count};
	copy.ranges = xreallocarray(NULL, set->count + 1, sizeof(*copy.ranges));
	memcpy(copy.ranges, set->ranges, set->count * sizeof(*copy.ranges));
	imap_seqset_resolve(&copy, uid ? c->max_uid : (uint32_t)c->count);
	bool in = imap_seqset_contains(&copy, uid ? c->msg->uid : (uint32_t)c->seq);
	imap_seqset_free(&copy);
	return in;
}

static bool eval_key(struct eval_ctx *c, const struct search_key *k)
{
	int day;
	switch (k->type) {
	case SK_ALL:
		return true;
	case SK_AND:
		return eval_all(c, k);
	case SK_OR:
		return eval_key(c, &k->children[0]) || eval_key(c, &k->children[1]);
	case SK_NOT:
		return !eval_key(c, &k->children[0]);
	case SK_SEQSET:
		return eval_set(c, &k->set, false);
	case SK_UIDSET:
		return eval_set(c, &k->set, true);
	case SK_SAVED:
		return c->s->sel->saved_valid &&
		       imap_seqset_contains(&c->s->sel->saved, c->msg->uid);
	case SK_FLAG:
		for (size_t i = 0; i < sizeof(flag_map) / sizeof(flag_map[0]); i++) {
			if (k->flag == flag_map[i].search)
				return (c->msg->flags & flag_map[i].store) != 0;
		}
		return false; /* \Recent is not tracked: no message is recent */
	case SK_NEW:
		return false;
	case SK_KEYWORD: {
		int idx = store_mailbox_keyword(c->box, k->str, false);
		return idx >= 0 && (c->msg->keywords & (1u << idx)) != 0;
	}
	case SK_HEADER: {
		bool match = false;
		(void)store_search_header(c->box, c->seq, k->str, k->str2, &match);
		return match;
	}
	case SK_BODY:
	case SK_TEXT: {
		bool match = false;
		(void)store_search_body(c->box, c->seq, k->str, k->type == SK_TEXT, &match);
		return match;
	}
	case SK_BEFORE:
		return idate_day(store_mailbox_msg_info(c->box, c->seq)->idate) < k->day;
	case SK_ON:
		return idate_day(store_mailbox_msg_info(c->box, c->seq)->idate) == k->day;
	case SK_SINCE:
		return idate_day(store_mailbox_msg_info(c->box, c->seq)->idate) >= k->day;
	case SK_SENTBEFORE:
	case SK_SENTON:
	case SK_SENTSINCE: {
		const char *date = ctx_cache(c)->fields[MIME_FIELD_DATE];
		if (date == NULL || imap_rfc822_date_day(date, &day) < 0)
			day = idate_day(store_mailbox_msg_info(c->box, c->seq)
			                    ->idate); /* as Dovecot: no Date: -> internal date */
		return k->type == SK_SENTBEFORE ? day < k->day
		       : k->type == SK_SENTON   ? day == k->day
		                                : day >= k->day;
	}
	case SK_LARGER:
		return store_mailbox_msg_info(c->box, c->seq)->vsize > k->num;
	case SK_SMALLER:
		return store_mailbox_msg_info(c->box, c->seq)->vsize < k->num;
	case SK_MODSEQ:
		return c->msg->modseq >= k->num;
	case SK_OLDER:
		return (uint64_t)(time(NULL) - store_mailbox_msg_info(c->box, c->seq)->idate) >=
		       k->num;
	case SK_YOUNGER:
		return (uint64_t)(time(NULL) - store_mailbox_msg_info(c->box, c->seq)->idate) <=
		       k->num;
	}
	return false;
}

size_t *imap_search_eval(struct imap_session *s, const struct search_program *prog, size_t *count_r)
{
	struct eval_ctx c = {.s = s, .box = s->sel->box};
	c.count = store_mailbox_count(c.box);
	c.max_uid = c.count > 0 ? store_mailbox_msg(c.box, c.count)->uid : 0;
	size_t *seqs = NULL, n = 0;
	for (size_t seq = 1; seq <= c.count; seq++) {
		c.seq = seq;
		c.msg = store_mailbox_msg(c.box, seq);
		c.cache_loaded = false;
		bool match = !c.msg->expunged && eval_key(&c, &prog->root);
		if (c.cache_loaded)
			store_cache_free(&c.cache);
		if (match) {
			seqs = xreallocarray(seqs, n + 1, sizeof(*seqs));
			seqs[n++] = seq;
		}
	}
	*count_r = n;
	return seqs;
}
