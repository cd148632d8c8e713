/*
 * RCPT resolution: the alias expansion gave one or more mailbox addresses; each is looked
 * up in the userdb in turn (one lookup in flight per session), then the RCPT is answered
 * once: 250 when at least one mailbox exists, 550 5.1.1 when none does, 451 4.3.0 when the
 * userdb could not answer (fail closed: never accept what we could not check).
 */
#include "lmtp_private.h"

#include "aliases.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/xalloc.h"

void lmtp_rcpt_lookup_next(struct lmtp_session *s);

static void add_found(struct lmtp_pending_rcpt *p, const struct address *a, const char *home,
                      uint64_t quota_bytes, uint64_t quota_messages)
{
	p->found = xreallocarray(p->found, p->n_found + 1, sizeof(*p->found));
	struct lmtp_target *t = &p->found[p->n_found++];
	memset(t, 0, sizeof(*t));
	t->key = recipient_mailbox_key(a);
	t->address = xstrdup(a->full);
	t->home = xstrdup(home);
	/* The detail names a folder only when it cannot leave the user's directory. */
	if (a->detail != NULL && address_detail_is_safe_folder(a->detail))
		t->detail = xstrdup(a->detail);
	t->quota_bytes = quota_bytes;
	t->quota_messages = quota_messages;
}

static bool same_target(const struct lmtp_target *a, const struct lmtp_target *b)
{
	if (a->remote || b->remote)
		return a->remote && b->remote && strcmp(a->address, b->address) == 0;
	if (strcmp(a->home, b->home) != 0)
		return false;
	if (a->detail == NULL || b->detail == NULL)
		return a->detail == b->detail;
	return strcmp(a->detail, b->detail) == 0;
}

/* Moves the pending mailboxes into the transaction, each mailbox once. */
static void accept_rcpt(struct lmtp_session *s)
{
	struct lmtp_pending_rcpt *p = &s->pending;
	s->rcpts = xreallocarray(s->rcpts, s->n_rcpts + 1, sizeof(*s->rcpts));
	struct lmtp_rcpt *r = &s->rcpts[s->n_rcpts++];
	memset(r, 0, sizeof(*r));
	r->address = xstrdup(p->addr.full);
	r->targets = xcalloc(p->n_found, sizeof(size_t));
	for (size_t i = 0; i < p->n_found; i++) {
		struct lmtp_target *t = &p->found[i];
		size_t idx = s->n_targets;
		for (size_t j = 0; j < s->n_targets; j++)
			if (same_target(&s->targets[j], t))
				idx = j;
		if (idx == s->n_targets) {
			t->prefix = xasprintf("Return-Path: <%s>\r\nDelivered-To: %s\r\n",
			                      s->sender.full, t->address);
			t->orig = xstrdup(p->addr.full);
			s->targets =
			    xreallocarray(s->targets, s->n_targets + 1, sizeof(*s->targets));
			s->targets[s->n_targets++] = *t;
			memset(t, 0, sizeof(*t));
		}
		bool dup = false;
		for (size_t k = 0; k < r->n_targets; k++)
			dup = dup || r->targets[k] == idx;
		if (!dup)
			r->targets[r->n_targets++] = idx;
	}
}

static void finish_rcpt(struct lmtp_session *s)
{
	struct lmtp_pending_rcpt *p = &s->pending;
	s->wait = LMTP_WAIT_NONE;
	struct buf from, to;
	buf_init(&from, 0);
	buf_init(&to, 0);
	lmtp_log_text(&from, s->sender.full);
	lmtp_log_text(&to, p->addr.full);
	if (p->tempfail) {
		log_info("NOQUEUE: reject: RCPT from %s: 451 4.3.0 <%s>: Temporary lookup "
		         "failure; from=<%s> to=<%s>",
		         s->peer, buf_cstr(&to), buf_cstr(&from), buf_cstr(&to));
		lmtp_reply(s, "451 4.3.0 <%s>: Temporary lookup failure", p->addr.full);
	} else if (p->n_found == 0) {
		log_info("NOQUEUE: reject: RCPT from %s: 550 5.1.1 <%s>: Recipient address "
		         "rejected: User unknown; from=<%s> to=<%s>",
		         s->peer, buf_cstr(&to), buf_cstr(&from), buf_cstr(&to));
		lmtp_error(s, "550 5.1.1 <%s>: Recipient address rejected: User unknown",
		           p->addr.full);
	} else if (p->over_quota) {
		lmtp_reply(s, "552 5.2.2 <%s>: Mailbox full", p->addr.full);
	} else {
		accept_rcpt(s);
		lmtp_reply(s, "250 2.1.5 Ok");
	}
	buf_free(&from);
	buf_free(&to);
	lmtp_pending_free(p);
}

/* relay branch: a non-local address goes to the outbound queue, no userdb lookup. */
static bool add_remote(struct lmtp_session *s, const struct address *a)
{
	if (!s->be->relay_remote || a->domain[0] == '\0' ||
	    recipient_domain_is_local(s->maps, a->domain))
		return false;
	/* A domain with a catch-all in the virtual map is ours (a virtual alias domain). */
	char *catchall = xasprintf("@%s", a->domain);
	size_t n = 0;
	bool virtual_domain = alias_map_lookup(s->maps->virtual_map, catchall, &n) != NULL;
	free(catchall);
	if (virtual_domain)
		return false;
	struct lmtp_pending_rcpt *p = &s->pending;
	p->found = xreallocarray(p->found, p->n_found + 1, sizeof(*p->found));
	struct lmtp_target *t = &p->found[p->n_found++];
	memset(t, 0, sizeof(*t));
	t->address = xstrdup(a->full);
	t->remote = true;
	t->notify = s->rcpt_notify;
	t->orcpt = s->rcpt_orcpt != NULL ? xstrdup(s->rcpt_orcpt) : NULL;
	return true;
}

void lmtp_rcpt_lookup_next(struct lmtp_session *s)
{
	struct lmtp_pending_rcpt *p = &s->pending;
	while (p->next < p->t.n && !p->tempfail && add_remote(s, &p->t.v[p->next]))
		p->next++;
	/* A temporary failure decides the reply; stop asking. */
	if (p->next < p->t.n && !p->tempfail) {
		char *key = recipient_mailbox_key(&p->t.v[p->next]);
		s->be->lookup(s->be->ctx, s, key);
		free(key);
		return;
	}
	finish_rcpt(s);
	if (!s->closing)
		s->be->resume(s->be->ctx);
}

void lmtp_session_lookup_done(struct lmtp_session *s, enum lmtp_lookup_result result,
                              const char *home, uint64_t quota_bytes, uint64_t quota_messages)
{
	lmtp_session_lookup_done_usage(s, result, home, quota_bytes, quota_messages, 0, 0);
}

void lmtp_session_lookup_done_usage(struct lmtp_session *s, enum lmtp_lookup_result result,
                                    const char *home, uint64_t quota_bytes, uint64_t quota_messages,
                                    uint64_t used_bytes, uint64_t used_messages)
{
	struct lmtp_pending_rcpt *p = &s->pending;
	const struct address *a = &p->t.v[p->next];
	switch (result) {
	case LMTP_LOOKUP_FOUND:
		add_found(p, a, home, quota_bytes, quota_messages);
		/* Full already, or the declared SIZE does not fit what is left. */
		if (quota_bytes != 0 &&
		    (used_bytes >= quota_bytes || s->declared_size > quota_bytes - used_bytes))
			p->over_quota = true;
		if (quota_messages != 0 && used_messages >= quota_messages)
			p->over_quota = true;
		break;
	case LMTP_LOOKUP_NOTFOUND:
		if (!p->t.aliased && !p->catchall_tried) {
			struct recipient_targets ct;
			p->catchall_tried = true;
			if (recipient_catchall(s->maps, &p->addr, &ct)) {
				recipient_targets_free(&p->t);
				p->t = ct;
				p->next = 0;
				lmtp_rcpt_lookup_next(s);
				return;
			}
		} else if (p->t.aliased) {
			struct buf x, y;
			buf_init(&x, 0);
			buf_init(&y, 0);
			log_warn("alias target <%s> of <%s> is not a mailbox",
			         lmtp_log_text(&x, a->full), lmtp_log_text(&y, p->addr.full));
			buf_free(&x);
			buf_free(&y);
		}
		break;
	case LMTP_LOOKUP_TEMPFAIL:
		p->tempfail = true;
		break;
	}
	p->next++;
	lmtp_rcpt_lookup_next(s);
}
