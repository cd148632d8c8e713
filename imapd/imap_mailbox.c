/* The selected mailbox and its untagged updates (see imap_mailbox.h). */
#include "imap_mailbox.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "imap_args.h"
#include "imap_qresync.h"
#include "imap_server.h"
#include "imap_session.h"
#include "store/folder.h"
#include "store/mailbox.h"
#include "store/maildir_name.h"

static const struct {
	uint32_t flag;
	const char *name;
} system_flags[] = {
    {STORE_FLAG_ANSWERED, "\\Answered"}, {STORE_FLAG_FLAGGED, "\\Flagged"},
    {STORE_FLAG_DELETED, "\\Deleted"},   {STORE_FLAG_SEEN, "\\Seen"},
    {STORE_FLAG_DRAFT, "\\Draft"},
};

enum store_error imap_mailbox_open(const char *path, struct store_mailbox **box_r,
                                   const char **error_r)
{
	if (imap_server.pool != NULL)
		return store_mailbox_open_pooled(imap_server.pool, path, box_r, error_r);
	return store_mailbox_open(path, box_r, error_r);
}

enum store_error imap_mailbox_select(struct imap_session *s, const char *name, bool readonly,
                                     struct store_mailbox *opened, const char **error_r)
{
	imap_mailbox_unselect(s);
	char *path = folder_path(s->home, name);
	if (path == NULL || !folder_exists(s->home, name)) {
		store_mailbox_close(&opened);
		*error_r = path == NULL ? "Invalid mailbox name" : "Mailbox doesn't exist";
		enum store_error e = path == NULL ? STORE_EINVAL : STORE_ENOENT;
		free(path);
		return e;
	}
	struct store_mailbox *box = opened;
	enum store_error err = STORE_OK;
	if (box != NULL && imap_server.pool != NULL)
		err = store_pool_adopt(imap_server.pool, path, &box, error_r);
	else if (box == NULL)
		err = imap_mailbox_open(path, &box, error_r);
	free(path);
	if (err != STORE_OK)
		return err;
	struct imap_selected *sel = xcalloc(1, sizeof(*sel));
	sel->box = box;
	sel->name = xstrdup(name);
	sel->readonly = readonly;
	sel->exists = store_mailbox_count(box);
	s->sel = sel;
	s->state = IMAP_STATE_SELECTED;
	return STORE_OK;
}

void imap_mailbox_unselect(struct imap_session *s)
{
	struct imap_selected *sel = s->sel;
	if (sel == NULL)
		return;
	store_mailbox_close(&sel->box);
	imap_seqset_free(&sel->saved);
	free(sel->name);
	free(sel);
	s->sel = NULL;
	if (s->state == IMAP_STATE_SELECTED)
		s->state = IMAP_STATE_AUTH;
}

void imap_mailbox_flags_append(struct store_mailbox *box, const struct store_msg *msg,
                               struct buf *out)
{
	size_t start = out->len;
	(void)buf_append_char(out, '(');
	for (size_t i = 0; i < sizeof(system_flags) / sizeof(system_flags[0]); i++) {
		if (msg->flags & system_flags[i].flag)
			(void)buf_printf(out, "%s%s", out->len > start + 1 ? " " : "",
			                 system_flags[i].name);
	}
	for (unsigned k = 0; k < STORE_KEYWORDS_MAX; k++) {
		const char *kw =
		    (msg->keywords & (1u << k)) ? store_mailbox_keyword_name(box, k) : NULL;
		if (kw != NULL)
			(void)buf_printf(out, "%s%s", out->len > start + 1 ? " " : "", kw);
	}
	(void)buf_append_char(out, ')');
}

void imap_mailbox_known_flags_append(struct store_mailbox *box, struct buf *out)
{
	(void)buf_append_str(out, "\\Answered \\Flagged \\Deleted \\Seen \\Draft");
	for (unsigned k = 0; k < STORE_KEYWORDS_MAX; k++) {
		const char *kw = store_mailbox_keyword_name(box, k);
		if (kw != NULL)
			(void)buf_printf(out, " %s", kw);
	}
}

/* RFC 3501 flag-keyword: an atom without atom-specials. */
static bool keyword_valid(const char *kw)
{
	if (*kw == '\0' || strlen(kw) > 64)
		return false;
	for (const char *p = kw; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}

int imap_mailbox_parse_flags(struct store_mailbox *box, const struct imap_arg *arg, bool create,
                             uint32_t *flags_r, uint32_t *keywords_r, const char **error_r)
{
	const struct imap_arg *list = arg->type == IMAP_ARG_LIST ? arg->list : arg;
	size_t count = arg->type == IMAP_ARG_LIST ? arg->count : 1;
	*flags_r = 0;
	*keywords_r = 0;
	for (size_t i = 0; i < count; i++) {
		if (list[i].type != IMAP_ARG_ATOM) {
			*error_r = "Invalid flag";
			return -1;
		}
		const char *f = list[i].str;
		size_t j;
		for (j = 0; j < sizeof(system_flags) / sizeof(system_flags[0]); j++) {
			if (strcasecmp(f, system_flags[j].name) == 0) {
				*flags_r |= system_flags[j].flag;
				break;
			}
		}
		if (j < sizeof(system_flags) / sizeof(system_flags[0]))
			continue;
		if (f[0] == '\\') {
			if (strcasecmp(f, "\\Recent") == 0) {
				*error_r = "\\Recent can't be set";
				return -1;
			}
			*error_r = "Invalid system flag";
			return -1;
		}
		if (!keyword_valid(f)) {
			*error_r = "Invalid keyword";
			return -1;
		}
		int idx = store_mailbox_keyword(box, f, create);
		if (idx < 0) {
			if (!create)
				continue; /* removing an unknown keyword changes nothing */
			*error_r = "[LIMIT] Too many keywords in this mailbox";
			return -1;
		}
		*keywords_r |= 1u << idx;
	}
	return 0;
}

int imap_mailbox_resolve(struct imap_session *s, const char *set_text, bool uid, size_t **seqs_r,
                         size_t *count_r, const char **error_r)
{
	struct store_mailbox *box = s->sel->box;
	size_t count = store_mailbox_count(box);
	struct imap_seqset set;
	*seqs_r = NULL;
	*count_r = 0;
	if (imap_seqset_parse(set_text, 100000, &set) < 0) {
		*error_r = "Invalid message set";
		return -1;
	}
	bool by_uid = uid;
	if (set.dollar) {
		imap_seqset_free(&set);
		if (!s->sel->saved_valid) {
			*count_r = 0;
			return 0;
		}
		set.ranges = xreallocarray(NULL, s->sel->saved.count + 1, sizeof(*set.ranges));
		memcpy(set.ranges, s->sel->saved.ranges, s->sel->saved.count * sizeof(*set.ranges));
		set.count = s->sel->saved.count;
		by_uid = true;
	} else if (by_uid) {
		imap_seqset_resolve(&set, count > 0 ? store_mailbox_msg(box, count)->uid : 0);
	} else {
		imap_seqset_resolve(&set, (uint32_t)count);
		if (set.count > 0 && set.ranges[set.count - 1].hi > count) {
			imap_seqset_free(&set);
			*error_r = "Invalid messageset";
			return -1;
		}
	}
	size_t *seqs = NULL, n = 0;
	if (by_uid) {
		for (size_t seq = 1; seq <= count; seq++) {
			if (!imap_seqset_contains(&set, store_mailbox_msg(box, seq)->uid))
				continue;
			seqs = xreallocarray(seqs, n + 1, sizeof(*seqs));
			seqs[n++] = seq;
		}
	} else {
		uint64_t total = imap_seqset_size(&set);
		seqs = xreallocarray(NULL, total > 0 ? total : 1, sizeof(*seqs));
		for (size_t r = 0; r < set.count; r++) {
			for (uint64_t v = set.ranges[r].lo; v <= set.ranges[r].hi; v++)
				seqs[n++] = (size_t)v;
		}
	}
	imap_seqset_free(&set);
	*seqs_r = seqs;
	*count_r = n;
	return 0;
}

void imap_mailbox_report_changes(struct imap_session *s, bool allow_expunge)
{
	struct imap_selected *sel = s->sel;
	if (sel == NULL || !allow_expunge)
		return;
	struct store_sync_result res;
	if (store_mailbox_sync(sel->box, &res) != STORE_OK) {
		log_warn("imap(%s): mailbox %s: sync failed", s->user, sel->name);
		return;
	}
	if (s->qresync_enabled && res.expunged_count > 0) {
		/* RFC 7162 3.2.10: with QRESYNC, expunges are reported as VANISHED (UIDs, in
		 * ascending order as the sync gives them). */
		struct buf line;
		buf_init(&line, 0);
		(void)buf_append_str(&line, "* VANISHED ");
		imap_uids_append(&line, res.expunged_uids, res.expunged_count);
		imap_session_send(s, "%s", buf_cstr(&line));
		buf_free(&line);
		sel->exists -= res.expunged_count;
	}
	for (size_t i = 0; i < res.expunged_count && !s->qresync_enabled; i++) {
		imap_session_send(s, "* %u EXPUNGE", res.expunged_seqs[i]);
		sel->exists--;
	}
	for (size_t i = 0; i < res.changed_count; i++) {
		size_t seq = store_mailbox_seq(sel->box, res.changed_uids[i]);
		if (seq == 0 || seq > sel->exists)
			continue;
		const struct store_msg *msg = store_mailbox_msg(sel->box, seq);
		struct buf line;
		buf_init(&line, 0);
		(void)buf_printf(&line, "* %zu FETCH (UID %u FLAGS ", seq, msg->uid);
		imap_mailbox_flags_append(sel->box, msg, &line);
		if (s->condstore_enabled)
			(void)buf_printf(&line, " MODSEQ (%llu)", (unsigned long long)msg->modseq);
		(void)buf_append_char(&line, ')');
		imap_session_send(s, "%s", buf_cstr(&line));
		buf_free(&line);
	}
	if (res.exists != sel->exists) {
		imap_session_send(s, "* %zu EXISTS", res.exists);
		sel->exists = res.exists;
	}
}
