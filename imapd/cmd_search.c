/* SEARCH and UID SEARCH (RFC 3501 6.4.4) with ESEARCH (RFC 4731) and SEARCHRES (RFC 5182). */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "imap_commands.h"
#include "imap_mailbox.h"
#include "imap_search_eval.h"
#include "imap_search_parse.h"
#include "store/mailbox.h"

/* Appends values as a compact sequence set. */
static void set_append(struct buf *out, const uint32_t *v, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j + 1 < n && v[j + 1] == v[j] + 1)
			j++;
		(void)buf_printf(out, "%s%u", i > 0 ? "," : "", v[i]);
		if (j > i)
			(void)buf_printf(out, ":%u", v[j]);
		i = j + 1;
	}
}

static bool uses_modseq(const struct search_key *k)
{
	if (k->type == SK_MODSEQ)
		return true;
	for (size_t i = 0; i < k->count; i++) {
		if (uses_modseq(&k->children[i]))
			return true;
	}
	return false;
}

static void save_result(struct imap_session *s, const uint32_t *uids, size_t n)
{
	struct imap_selected *sel = s->sel;
	imap_seqset_free(&sel->saved);
	sel->saved.ranges = xreallocarray(NULL, n + 1, sizeof(*sel->saved.ranges));
	for (size_t i = 0; i < n; i++)
		sel->saved.ranges[i] = (struct seq_range){uids[i], uids[i]};
	sel->saved.count = n;
	imap_seqset_resolve(&sel->saved, UINT32_MAX);
	sel->saved_valid = true;
}

enum imap_cmd_result imap_search_run(struct imap_session *s, const struct imap_arg *args,
                                     size_t count, bool uid)
{
	struct search_program prog;
	const char *error;
	int ret = imap_search_parse(args, count, &prog, &error);
	if (ret < 0) {
		imap_session_tagged(s, ret == -2 ? "NO" : "BAD", "%s", error);
		return IMAP_CMD_DONE;
	}
	if (uses_modseq(&prog.root))
		s->condstore_enabled = true;
	if (imap_search_to_utf8(&prog) < 0) {
		imap_search_free(&prog);
		imap_session_tagged(s, "BAD", "Search string is not valid in its charset.");
		return IMAP_CMD_DONE;
	}
	size_t n;
	size_t *seqs = imap_search_eval(s, &prog, &n);
	uint32_t *vals = xreallocarray(NULL, n + 1, sizeof(uint32_t));
	uint32_t *uids = xreallocarray(NULL, n + 1, sizeof(uint32_t));
	for (size_t i = 0; i < n; i++) {
		uids[i] = store_mailbox_msg(s->sel->box, seqs[i])->uid;
		vals[i] = uid ? uids[i] : (uint32_t)seqs[i];
	}
	struct buf line;
	buf_init(&line, 0);
	if (!prog.esearch) {
		(void)buf_append_str(&line, "* SEARCH");
		for (size_t i = 0; i < n; i++)
			(void)buf_printf(&line, " %u", vals[i]);
		/* RFC 7162 3.1.5: a search with MODSEQ reports the highest mod-sequence found. */
		if (uses_modseq(&prog.root) && n > 0) {
			uint64_t high = 0;
			for (size_t i = 0; i < n; i++) {
				uint64_t m = store_mailbox_msg(s->sel->box, seqs[i])->modseq;
				high = m > high ? m : high;
			}
			(void)buf_printf(&line, " (MODSEQ %llu)", (unsigned long long)high);
		}
		imap_session_send(s, "%s", buf_cstr(&line));
	} else {
		unsigned r = prog.returns;
		if (r & SEARCH_RETURN_SAVE)
			save_result(s, uids, n);
		if (r != SEARCH_RETURN_SAVE) {
			(void)buf_printf(&line, "* ESEARCH (TAG \"%s\")%s", s->cmd.tag,
			                 uid ? " UID" : "");
			if ((r & SEARCH_RETURN_MIN) && n > 0)
				(void)buf_printf(&line, " MIN %u", vals[0]);
			if ((r & SEARCH_RETURN_MAX) && n > 0)
				(void)buf_printf(&line, " MAX %u", vals[n - 1]);
			if (r & SEARCH_RETURN_COUNT)
				(void)buf_printf(&line, " COUNT %zu", n);
			if ((r & SEARCH_RETURN_ALL) && n > 0) {
				(void)buf_append_str(&line, " ALL ");
				set_append(&line, vals, n);
			}
			imap_session_send(s, "%s", buf_cstr(&line));
		}
	}
	buf_free(&line);
	free(vals);
	free(uids);
	free(seqs);
	imap_search_free(&prog);
	imap_session_tagged(s, "OK", "Search completed.");
	return IMAP_CMD_DONE;
}

enum imap_cmd_result cmd_search(struct imap_session *s, const struct imap_command *cmd)
{
	return imap_search_run(s, cmd->args, cmd->count, false);
}
