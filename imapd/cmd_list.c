/*
 * LIST and LSUB (RFC 3501 6.3.8-6.3.9) with LIST-EXTENDED selection and return options
 * (RFC 5258), CHILDREN attributes (RFC 3348) and SPECIAL-USE attributes (RFC 6154).
 * The candidates are the existing folders, their missing parents (\Noselect) and the
 * subscriptions; each is matched against every pattern.
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "imap_commands.h"
#include "imap_match.h"
#include "imap_status.h"
#include "proto/imap_string.h"
#include "store/folder.h"
#include "store/folder_name.h"
#include "store/subscriptions.h"

enum list_select {
	LIST_SEL_SUBSCRIBED = 1 << 0,
	LIST_SEL_RECURSIVEMATCH = 1 << 1,
	LIST_SEL_SPECIAL_USE = 1 << 2,
};

enum list_return {
	LIST_RET_SUBSCRIBED = 1 << 0,
	LIST_RET_CHILDREN = 1 << 1,
	LIST_RET_SPECIAL_USE = 1 << 2,
};

struct list_candidate {
	char *name;
	bool exists;
	bool subscribed;
	bool has_children;
	bool subscribed_child; /* RECURSIVEMATCH: a descendant is subscribed */
};

struct list_set {
	struct list_candidate *items;
	size_t count;
};

static struct list_candidate *set_find(struct list_set *set, const char *name)
{
	for (size_t i = 0; i < set->count; i++) {
		if (strcmp(set->items[i].name, name) == 0)
			return &set->items[i];
	}
	return NULL;
}

static struct list_candidate *set_add(struct list_set *set, const char *name)
{
	struct list_candidate *c = set_find(set, name);
	if (c != NULL)
		return c;
	set->items = xreallocarray(set->items, set->count + 1, sizeof(*set->items));
	c = &set->items[set->count++];
	memset(c, 0, sizeof(*c));
	c->name = xstrdup(name);
	return c;
}

/* Marks every ancestor of name as having children (adding missing ones). */
static void set_add_parents(struct list_set *set, const char *name, bool subscribed_child)
{
	char *copy = xstrdup(name);
	char *sep;
	while ((sep = strrchr(copy, FOLDER_SEPARATOR)) != NULL) {
		*sep = '\0';
		struct list_candidate *parent = set_add(set, copy);
		parent->has_children = true;
		if (subscribed_child)
			parent->subscribed_child = true;
	}
	free(copy);
}

static int set_build(const char *home, struct list_set *set)
{
	char **names;
	size_t n;
	memset(set, 0, sizeof(*set));
	if (folder_list(home, &names, &n) != STORE_OK)
		return -1;
	for (size_t i = 0; i < n; i++)
		set_add(set, names[i])->exists = true;
	for (size_t i = 0; i < n; i++)
		set_add_parents(set, names[i], false);
	folder_list_free(names, n);
	if (subscriptions_read(home, &names, &n) != STORE_OK)
		return -1;
	for (size_t i = 0; i < n; i++) {
		set_add(set, names[i])->subscribed = true;
		set_add_parents(set, names[i], true);
	}
	subscriptions_free(names, n);
	return 0;
}

static void set_free(struct list_set *set)
{
	for (size_t i = 0; i < set->count; i++)
		free(set->items[i].name);
	free(set->items);
}

static int parse_options(const struct imap_arg *arg, const char *const *names, const unsigned *bits,
                         size_t n, unsigned *out)
{
	if (arg->type != IMAP_ARG_LIST)
		return -1;
	for (size_t i = 0; i < arg->count; i++) {
		size_t j;
		for (j = 0; j < n; j++) {
			if (imap_arg_atom_is(&arg->list[i], names[j])) {
				*out |= bits[j];
				break;
			}
		}
		if (j == n)
			return -1;
	}
	return 0;
}

/* RETURN (...) options; "STATUS (items)" is LIST-STATUS (RFC 5819). */
static int parse_return(const struct imap_arg *arg, const char *const *names, const unsigned *bits,
                        unsigned *out, unsigned *status_r)
{
	if (arg->type != IMAP_ARG_LIST)
		return -1;
	for (size_t i = 0; i < arg->count; i++) {
		if (imap_arg_atom_is(&arg->list[i], "STATUS") && i + 1 < arg->count) {
			if (imap_status_parse_items(&arg->list[++i], status_r) < 0)
				return -1;
			continue;
		}
		struct imap_arg one = {
		    .type = IMAP_ARG_LIST, .list = (struct imap_arg *)&arg->list[i], .count = 1};
		if (parse_options(&one, names, bits, 3, out) < 0)
			return -1;
	}
	return 0;
}

/* shown: the name as the session sees it (UTF-8 after ENABLE UTF8=ACCEPT, else mUTF-7). */
static void send_entry(struct imap_session *s, const char *verb, const struct list_candidate *c,
                       const char *shown, unsigned sel, unsigned ret)
{
	struct buf line;
	buf_init(&line, 0);
	(void)buf_printf(&line, "* %s (", verb);
	size_t start = line.len;
#define ATTR(text) (void)buf_printf(&line, "%s%s", line.len > start ? " " : "", text)
	if (!c->exists)
		ATTR(sel & LIST_SEL_SUBSCRIBED ? "\\NonExistent" : "\\Noselect");
	if ((sel & LIST_SEL_SUBSCRIBED || ret & LIST_RET_SUBSCRIBED) && c->subscribed)
		ATTR("\\Subscribed");
	if (c->exists || !(sel & LIST_SEL_SUBSCRIBED))
		ATTR(c->has_children ? "\\HasChildren" : "\\HasNoChildren");
	const char *special = folder_special_use(c->name);
	if (special != NULL)
		ATTR(special);
#undef ATTR
	(void)buf_append_str(&line, ") \"/\" ");
	(void)imap_string_append(&line, shown, strlen(shown),
	                         IMAP_STRING_ALLOW_ATOM | (s->utf8_enabled ? IMAP_STRING_UTF8 : 0));
	if ((sel & LIST_SEL_RECURSIVEMATCH) && !c->subscribed && c->subscribed_child)
		(void)buf_append_str(&line, " (\"CHILDINFO\" (\"SUBSCRIBED\"))");
	imap_session_send(s, "%s", buf_cstr(&line));
	buf_free(&line);
}

static bool candidate_selected(const struct list_candidate *c, unsigned sel, bool lsub)
{
	if (lsub)
		return c->subscribed || c->subscribed_child;
	if (sel & LIST_SEL_SUBSCRIBED)
		return c->subscribed || ((sel & LIST_SEL_RECURSIVEMATCH) && c->subscribed_child);
	if (sel & LIST_SEL_SPECIAL_USE)
		return c->exists && folder_special_use(c->name) != NULL;
	return c->exists || c->has_children;
}

static enum imap_cmd_result list_run(struct imap_session *s, const struct imap_command *cmd,
                                     bool lsub)
{
	static const char *const sel_names[] = {"SUBSCRIBED", "RECURSIVEMATCH", "SPECIAL-USE",
	                                        "REMOTE"};
	static const unsigned sel_bits[] = {LIST_SEL_SUBSCRIBED, LIST_SEL_RECURSIVEMATCH,
	                                    LIST_SEL_SPECIAL_USE, 0};
	static const char *const ret_names[] = {"SUBSCRIBED", "CHILDREN", "SPECIAL-USE"};
	static const unsigned ret_bits[] = {LIST_RET_SUBSCRIBED, LIST_RET_CHILDREN,
	                                    LIST_RET_SPECIAL_USE};
	unsigned sel = 0, ret = 0;
	size_t i = 0;
	const struct imap_arg *args = cmd->args;

	if (!lsub && cmd->count > 0 && args[0].type == IMAP_ARG_LIST) {
		if (parse_options(&args[0], sel_names, sel_bits, 4, &sel) < 0)
			goto bad;
		i++;
	}
	/* RFC 5258 3: RECURSIVEMATCH alone is invalid. */
	if ((sel & LIST_SEL_RECURSIVEMATCH) && !(sel & LIST_SEL_SUBSCRIBED))
		goto bad;
	if (cmd->count < i + 2)
		goto bad;
	const char *ref = imap_arg_astring(&args[i]);
	const struct imap_arg *pats = &args[i + 1];
	size_t n_pats = pats->type == IMAP_ARG_LIST ? pats->count : 1;
	if (ref == NULL || n_pats == 0 || (lsub && pats->type == IMAP_ARG_LIST))
		goto bad;
	unsigned status_items = 0;
	if (cmd->count == i + 4 && !lsub && imap_arg_atom_is(&args[i + 2], "RETURN")) {
		if (parse_return(&args[i + 3], ret_names, ret_bits, &ret, &status_items) < 0)
			goto bad;
	} else if (cmd->count != i + 2) {
		goto bad;
	}

	const char *single = pats->type == IMAP_ARG_LIST ? NULL : imap_arg_astring(pats);
	if (!lsub && single != NULL && *single == '\0' && sel == 0) {
		/* RFC 3501 6.3.8: the empty pattern asks for the hierarchy delimiter. */
		imap_session_send(s, "* LIST (\\Noselect) \"/\" \"\"");
		imap_session_tagged(s, "OK", "List completed.");
		return IMAP_CMD_DONE;
	}
	struct list_set set;
	if (set_build(s->home, &set) < 0) {
		imap_session_tagged(s, "NO", "[SERVERBUG] Could not list the mailboxes.");
		return IMAP_CMD_DONE;
	}
	struct buf utf8;
	buf_init(&utf8, 0);
	for (size_t c = 0; c < set.count; c++) {
		const struct list_candidate *cand = &set.items[c];
		bool matched = false;
		/* RFC 6855: a UTF8=ACCEPT client's patterns are UTF-8; match them against the
		 * UTF-8 name (a UTF-8 prefix is not an mUTF-7 prefix). */
		const char *match_name = cand->name;
		buf_reset(&utf8);
		if (s->utf8_enabled && folder_name_to_utf8(cand->name, &utf8) == 0)
			match_name = buf_cstr(&utf8);
		for (size_t p = 0; p < n_pats && !matched; p++) {
			const char *pat =
			    pats->type == IMAP_ARG_LIST ? imap_arg_astring(&pats->list[p]) : single;
			if (pat == NULL)
				continue;
			struct buf full;
			buf_init(&full, 0);
			(void)buf_printf(&full, "%s%s", ref, pat);
			matched = imap_match(full.data, match_name, FOLDER_SEPARATOR);
			buf_free(&full);
		}
		/* RFC 3501 6.3.9: an unsubscribed parent shows in LSUB only through '%'. */
		if (lsub && !cand->subscribed && (single == NULL || strchr(single, '%') == NULL))
			matched = false;
		if (matched && candidate_selected(cand, sel, lsub)) {
			struct list_candidate shown = *cand;
			if (lsub)
				shown.exists = cand->subscribed;
			send_entry(s, lsub ? "LSUB" : "LIST", &shown, match_name, sel, ret);
			/* RFC 5819: LIST-STATUS, for selectable mailboxes only. */
			struct buf st;
			buf_init(&st, 0);
			if (status_items != 0 && cand->exists &&
			    imap_status_line(s, cand->name, status_items, &st) == 0)
				imap_session_send(s, "%s", buf_cstr(&st));
			buf_free(&st);
		}
	}
	buf_free(&utf8);
	set_free(&set);
	imap_session_tagged(s, "OK", "%s completed.", lsub ? "Lsub" : "List");
	return IMAP_CMD_DONE;
bad:
	imap_session_tagged(s, "BAD", "Invalid %s arguments.", lsub ? "LSUB" : "LIST");
	return IMAP_CMD_DONE;
}

enum imap_cmd_result cmd_list(struct imap_session *s, const struct imap_command *cmd)
{
	return list_run(s, cmd, false);
}

enum imap_cmd_result cmd_lsub(struct imap_session *s, const struct imap_command *cmd)
{
	return list_run(s, cmd, true);
}
