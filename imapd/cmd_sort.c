/*
 * SORT and THREAD (RFC 5256, with SORT=DISPLAY from RFC 5957): the messages a search
 * program selects, ordered by the criteria, or grouped into threads by ORDEREDSUBJECT
 * (base subject) or REFERENCES (Message-ID / References / In-Reply-To links, then the
 * base subject of the roots).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "imap_commands.h"
#include "imap_mailbox.h"
#include "imap_msgkeys.h"
#include "imap_search_eval.h"
#include "imap_search_parse.h"
#include "mime/mime_decode.h"
#include "store/mailbox.h"

enum sort_key {
	SORT_ARRIVAL,
	SORT_CC,
	SORT_DATE,
	SORT_FROM,
	SORT_SIZE,
	SORT_SUBJECT,
	SORT_TO,
	SORT_DISPLAYFROM,
	SORT_DISPLAYTO,
};

static const char *const sort_names[] = {"ARRIVAL", "CC", "DATE",        "FROM",     "SIZE",
                                         "SUBJECT", "TO", "DISPLAYFROM", "DISPLAYTO"};

struct sort_entry {
	size_t seq;
	uint32_t uid;
	time_t date, arrival;
	uint64_t size;
	char *text[SORT_DISPLAYTO + 1]; /* folded compare strings, by key */
	char *msgid;
	char **refs;
	size_t n_refs;
	bool is_reply; /* the subject had a leader */
};

struct sort_criterion {
	enum sort_key key;
	bool reverse;
};

static char *folded(const char *s)
{
	struct buf out;
	buf_init(&out, 0);
	mime_utf8_fold(s, strlen(s), &out);
	return buf_steal(&out);
}

static char *decoded(const char *raw)
{
	struct buf out;
	buf_init(&out, 0);
	if (raw != NULL)
		mime_header_decode(raw, strlen(raw), &out);
	return buf_steal(&out);
}

/* Which values entry_fill computes: a bit per sort key, plus the thread ids. */
#define NEED_KEY(k) (1u << (k))
#define NEED_IDS (1u << 16)

/* One cached header field of message seq, decoded later as needed (caller frees). */
static char *cached_field(struct store_mailbox *box, size_t seq, enum mime_field field)
{
	struct buf v;
	bool present = false;
	buf_init(&v, 0);
	if (store_mailbox_cache_field(box, seq, field, &v, &present) != STORE_OK || !present) {
		buf_free(&v);
		return NULL;
	}
	return buf_steal(&v);
}

/* Fills the keys of `need` only: a SORT by date must not decode every subject. */
static void entry_fill(struct store_mailbox *box, struct sort_entry *e, size_t seq, unsigned need)
{
	const struct store_msg *m = store_mailbox_msg(box, seq);
	memset(e, 0, sizeof(*e));
	e->seq = seq;
	e->uid = m->uid;
	const struct store_msg_info *info = store_mailbox_msg_info(box, seq);
	e->arrival = info->idate;
	e->size = info->vsize;
	int64_t sent;
	if ((need & NEED_KEY(SORT_DATE)) && store_mailbox_sort_date(box, seq, &sent)) {
		e->date = (time_t)sent; /* parsed by an earlier SORT/THREAD of any session */
	} else if (need & NEED_KEY(SORT_DATE)) {
		char *date = cached_field(box, seq, MIME_FIELD_DATE);
		e->date = date != NULL ? imap_rfc822_date_parse(date) : -1;
		if (e->date == -1)
			e->date = info->idate; /* RFC 5256: no usable Date: -> internal date */
		free(date);
		store_mailbox_set_sort_date(box, seq, (int64_t)e->date);
	}
	if (need & NEED_KEY(SORT_SUBJECT)) {
		char *raw = cached_field(box, seq, MIME_FIELD_SUBJECT);
		char *subject = decoded(raw);
		struct buf base;
		buf_init(&base, 0);
		imap_base_subject(subject, &base);
		e->is_reply = strcmp(buf_cstr(&base), subject) != 0 && subject[0] != '\0';
		e->text[SORT_SUBJECT] = folded(buf_cstr(&base));
		buf_free(&base);
		free(subject);
		free(raw);
	}

	static const struct {
		enum sort_key key;
		enum mime_field field;
		bool display;
	} addr[] = {{SORT_FROM, MIME_FIELD_FROM, false},
	            {SORT_TO, MIME_FIELD_TO, false},
	            {SORT_CC, MIME_FIELD_CC, false},
	            {SORT_DISPLAYFROM, MIME_FIELD_FROM, true},
	            {SORT_DISPLAYTO, MIME_FIELD_TO, true}};
	for (size_t i = 0; i < sizeof(addr) / sizeof(addr[0]); i++) {
		if (!(need & NEED_KEY(addr[i].key)))
			continue;
		struct buf v;
		buf_init(&v, 0);
		char *raw = cached_field(box, seq, addr[i].field);
		if (raw != NULL) {
			if (addr[i].display)
				imap_first_display(raw, &v);
			else
				imap_first_mailbox(raw, &v);
		}
		free(raw);
		e->text[addr[i].key] = folded(buf_cstr(&v));
		buf_free(&v);
	}
	if (!(need & NEED_IDS))
		return;
	char **ids;
	char *msgid = cached_field(box, seq, MIME_FIELD_MESSAGE_ID);
	size_t n = imap_msgid_list(msgid, &ids);
	free(msgid);
	if (n > 0)
		e->msgid = ids[0];
	for (size_t i = 1; i < n; i++)
		free(ids[i]);
	free(ids);
	char *refs = cached_field(box, seq, MIME_FIELD_REFERENCES);
	if (refs == NULL)
		refs = cached_field(box, seq, MIME_FIELD_IN_REPLY_TO);
	e->n_refs = imap_msgid_list(refs, &e->refs);
	free(refs);
}

static void entry_free(struct sort_entry *e)
{
	for (size_t i = 0; i <= SORT_DISPLAYTO; i++)
		free(e->text[i]);
	for (size_t i = 0; i < e->n_refs; i++)
		free(e->refs[i]);
	free(e->refs);
	free(e->msgid);
}

static const struct sort_criterion *sort_crit;
static size_t sort_n_crit;

static int cmp_key(const struct sort_entry *a, const struct sort_entry *b, enum sort_key k)
{
	switch (k) {
	case SORT_ARRIVAL:
		return (a->arrival > b->arrival) - (a->arrival < b->arrival);
	case SORT_DATE:
		return (a->date > b->date) - (a->date < b->date);
	case SORT_SIZE:
		return (a->size > b->size) - (a->size < b->size);
	default:
		return strcmp(a->text[k], b->text[k]);
	}
}

static int cmp_entries(const void *x, const void *y)
{
	const struct sort_entry *a = x, *b = y;
	for (size_t i = 0; i < sort_n_crit; i++) {
		int c = cmp_key(a, b, sort_crit[i].key);
		if (c != 0)
			return sort_crit[i].reverse ? -c : c;
	}
	return (a->seq > b->seq) - (a->seq < b->seq); /* RFC 5256: ties by sequence number */
}

/*
 * What qsort moves: the first key when it is a number (DATE, ARRIVAL, SIZE; negated for
 * REVERSE), else 0, and the entry. Compact and contiguous, so sorting 100,000 messages by
 * date does not chase entry pointers; equal keys fall back to the full comparison.
 */
struct sort_ref {
	int64_t key;
	const struct sort_entry *e;
};

static int cmp_refs(const void *x, const void *y)
{
	const struct sort_ref *a = x, *b = y;
	if (a->key != b->key)
		return a->key < b->key ? -1 : 1;
	return cmp_entries(a->e, b->e);
}

static int64_t first_key(const struct sort_entry *e)
{
	if (sort_n_crit == 0)
		return 0;
	int64_t k;
	switch (sort_crit[0].key) {
	case SORT_DATE:
		k = (int64_t)e->date;
		break;
	case SORT_ARRIVAL:
		k = (int64_t)e->arrival;
		break;
	case SORT_SIZE:
		k = e->size > INT64_MAX ? INT64_MAX : (int64_t)e->size;
		break;
	default:
		return 0;
	}
	/* Dates and sizes are far from INT64_MIN, so negating is safe. */
	return sort_crit[0].reverse ? -k : k;
}

/* Runs the search program (args) and fills entries for the matches. */
static struct sort_entry *collect(struct imap_session *s, const struct imap_arg *args, size_t count,
                                  unsigned need, size_t *n_r, int *err_r, const char **error_r)
{
	struct search_program prog;
	*n_r = 0;
	*err_r = imap_search_parse(args, count, &prog, error_r);
	if (*err_r < 0)
		return NULL;
	if (imap_search_to_utf8(&prog) < 0) {
		imap_search_free(&prog);
		*err_r = -1;
		*error_r = "Search string is not valid in its charset";
		return NULL;
	}
	size_t n;
	size_t *seqs = imap_search_eval(s, &prog, &n);
	imap_search_free(&prog);
	struct sort_entry *e = xreallocarray(NULL, n + 1, sizeof(*e));
	for (size_t i = 0; i < n; i++)
		entry_fill(s->sel->box, &e[i], seqs[i], need);
	free(seqs);
	*n_r = n;
	return e;
}

/* "(criteria) charset search..." -> criteria, then the search part with CHARSET. */
static int parse_sort_criteria(const struct imap_arg *a, struct sort_criterion **crit_r,
                               size_t *n_r)
{
	*crit_r = NULL;
	*n_r = 0;
	if (a->type != IMAP_ARG_LIST || a->count == 0)
		return -1;
	struct sort_criterion *crit = xreallocarray(NULL, a->count, sizeof(*crit));
	size_t n = 0;
	bool reverse = false;
	for (size_t i = 0; i < a->count; i++) {
		if (imap_arg_atom_is(&a->list[i], "REVERSE") && !reverse) {
			reverse = true;
			continue;
		}
		size_t k;
		for (k = 0; k < sizeof(sort_names) / sizeof(sort_names[0]); k++) {
			if (imap_arg_atom_is(&a->list[i], sort_names[k]))
				break;
		}
		if (k == sizeof(sort_names) / sizeof(sort_names[0])) {
			free(crit);
			return -1;
		}
		crit[n++] = (struct sort_criterion){(enum sort_key)k, reverse};
		reverse = false;
	}
	if (reverse || n == 0) {
		free(crit);
		return -1;
	}
	*crit_r = crit;
	*n_r = n;
	return 0;
}

/* SORT's and THREAD's charset comes before the search keys: build "CHARSET x keys...". */
static struct imap_arg *with_charset(const struct imap_arg *args, size_t count)
{
	struct imap_arg *a = xcalloc(count + 1, sizeof(*a));
	a[0].type = IMAP_ARG_ATOM;
	a[0].str = (char *)"CHARSET";
	a[0].len = 7;
	memcpy(a + 1, args, count * sizeof(*a));
	return a;
}

/* The messages matching "<charset> <search keys>" (SORT and THREAD put the charset first);
 * NULL after replying BAD/NO. */
static struct sort_entry *collect_matches(struct imap_session *s, const struct imap_arg *args,
                                          size_t count, unsigned need, size_t *n_r)
{
	struct imap_arg *search_args = with_charset(args, count);
	int err;
	const char *error;
	struct sort_entry *e = collect(s, search_args, count + 1, need, n_r, &err, &error);
	free(search_args);
	if (err < 0) {
		imap_session_tagged(s, err == -2 ? "NO" : "BAD", "%s", error);
		return NULL;
	}
	return e;
}

enum imap_cmd_result imap_sort_run(struct imap_session *s, const struct imap_arg *args,
                                   size_t count, bool uid)
{
	struct sort_criterion *crit;
	size_t n_crit;
	if (count < 3 || parse_sort_criteria(&args[0], &crit, &n_crit) < 0 ||
	    imap_arg_astring(&args[1]) == NULL) {
		imap_session_tagged(s, "BAD", "Invalid SORT arguments.");
		return IMAP_CMD_DONE;
	}
	unsigned need = 0;
	for (size_t i = 0; i < n_crit; i++)
		need |= NEED_KEY(crit[i].key);
	size_t n;
	struct sort_entry *e = collect_matches(s, args + 1, count - 1, need, &n);
	if (e == NULL) {
		free(crit);
		return IMAP_CMD_DONE;
	}
	sort_crit = crit;
	sort_n_crit = n_crit;
	struct sort_ref *order = xreallocarray(NULL, n + 1, sizeof(*order));
	for (size_t i = 0; i < n; i++)
		order[i] = (struct sort_ref){first_key(&e[i]), &e[i]};
	qsort(order, n, sizeof(*order), cmp_refs);
	/* Numbers written by hand (no printf per UID); the entries are freed after, so the
	 * buffer's growth does not run into a heap full of just-freed small blocks. */
	struct buf line;
	buf_init(&line, 0);
	(void)buf_append_str(&line, "* SORT");
	for (size_t i = 0; i < n; i++) {
		char num[24], *p = num + sizeof(num);
		size_t v = uid ? (size_t)order[i].e->uid : order[i].e->seq;
		do {
			*--p = (char)('0' + v % 10);
			v /= 10;
		} while (v != 0);
		*--p = ' ';
		(void)buf_append(&line, p, (size_t)(num + sizeof(num) - p));
	}
	(void)buf_append(&line, "\r\n", 2);
	imap_session_write(s, line.data, line.len);
	buf_free(&line);
	free(order);
	for (size_t i = 0; i < n; i++)
		entry_free(&e[i]);
	free(e);
	free(crit);
	imap_session_tagged(s, "OK", "Sort completed.");
	return IMAP_CMD_DONE;
}

enum imap_cmd_result cmd_sort(struct imap_session *s, const struct imap_command *cmd)
{
	return imap_sort_run(s, cmd->args, cmd->count, false);
}

/* ---- THREAD ---- */

struct thread_node {
	struct sort_entry *msg; /* NULL for a message known only through References */
	char *id;
	struct thread_node *parent, *child, *next;
};

struct thread_set {
	struct thread_node **nodes;
	size_t n;
};

static struct thread_node *node_for(struct thread_set *t, const char *id)
{
	for (size_t i = 0; id != NULL && i < t->n; i++) {
		if (t->nodes[i]->id != NULL && strcmp(t->nodes[i]->id, id) == 0)
			return t->nodes[i];
	}
	struct thread_node *node = xcalloc(1, sizeof(*node));
	node->id = id != NULL ? xstrdup(id) : NULL;
	t->nodes = xreallocarray(t->nodes, t->n + 1, sizeof(*t->nodes));
	t->nodes[t->n++] = node;
	return node;
}

static bool is_ancestor(const struct thread_node *a, const struct thread_node *b)
{
	for (unsigned guard = 0; b != NULL && guard < 100000; b = b->parent, guard++) {
		if (a == b)
			return true;
	}
	return false;
}

static void node_unlink(struct thread_node *c)
{
	if (c->parent == NULL)
		return;
	for (struct thread_node **p = &c->parent->child; *p != NULL; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
	c->parent = NULL;
	c->next = NULL;
}

static void node_link(struct thread_node *parent, struct thread_node *c)
{
	node_unlink(c);
	c->parent = parent;
	struct thread_node **tail = &parent->child;
	while (*tail != NULL)
		tail = &(*tail)->next;
	*tail = c;
}

/* The date a node sorts by: its message's, or its first child's when it has none. */
static time_t node_date(const struct thread_node *n)
{
	for (unsigned g = 0; n != NULL && g < 100000; n = n->child, g++) {
		if (n->msg != NULL)
			return n->msg->date;
	}
	return 0;
}

static size_t node_seq(const struct thread_node *n)
{
	for (unsigned g = 0; n != NULL && g < 100000; n = n->child, g++) {
		if (n->msg != NULL)
			return n->msg->seq;
	}
	return 0;
}

static int cmp_nodes(const void *x, const void *y)
{
	const struct thread_node *a = *(struct thread_node *const *)x;
	const struct thread_node *b = *(struct thread_node *const *)y;
	time_t da = node_date(a), db = node_date(b);
	if (da != db)
		return da < db ? -1 : 1;
	size_t sa = node_seq(a), sb = node_seq(b);
	return (sa > sb) - (sa < sb);
}

/* Sorts a sibling list by date (RFC 5256: ties by sequence number). */
static struct thread_node *sort_siblings(struct thread_node *first)
{
	size_t n = 0;
	for (struct thread_node *c = first; c != NULL; c = c->next)
		n++;
	if (n < 2)
		return first;
	struct thread_node **v = xreallocarray(NULL, n, sizeof(*v));
	n = 0;
	for (struct thread_node *c = first; c != NULL; c = c->next)
		v[n++] = c;
	qsort(v, n, sizeof(*v), cmp_nodes);
	for (size_t i = 0; i + 1 < n; i++)
		v[i]->next = v[i + 1];
	v[n - 1]->next = NULL;
	first = v[0];
	free(v);
	return first;
}

static void write_node(struct buf *out, struct thread_node *n, bool uid, unsigned depth)
{
	if (depth > 1000)
		return;
	n->child = sort_siblings(n->child);
	if (n->msg != NULL)
		(void)buf_printf(out, "%s%zu", out->data[out->len - 1] == '(' ? "" : " ",
		                 uid ? (size_t)n->msg->uid : n->msg->seq);
	if (n->child != NULL && n->child->next == NULL) {
		write_node(out, n->child, uid, depth + 1); /* a chain continues the same list */
		return;
	}
	for (struct thread_node *c = n->child; c != NULL; c = c->next) {
		char last = out->data[out->len - 1];
		(void)buf_append_str(out, last == '(' || last == ')' ? "(" : " (");
		write_node(out, c, uid, depth + 1);
		(void)buf_append_char(out, ')');
	}
}

/* RFC 5256 REFERENCES steps 1-2: link containers by Message-ID and References. */
static void thread_link(struct thread_set *t, struct sort_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct thread_node *node = node_for(t, e[i].msgid);
		if (node->msg != NULL) /* a duplicate Message-ID: a container of its own */
			node = node_for(t, NULL);
		node->msg = &e[i];
		struct thread_node *prev = NULL;
		for (size_t r = 0; r < e[i].n_refs; r++) {
			struct thread_node *ref = node_for(t, e[i].refs[r]);
			if (prev != NULL && ref->parent == NULL && !is_ancestor(ref, prev))
				node_link(prev, ref);
			prev = ref;
		}
		node_unlink(node);
		if (prev != NULL && prev != node && !is_ancestor(node, prev))
			node_link(prev, node);
	}
}

/* Step 4 (pruning) and 5 (grouping roots by base subject); returns the roots. */
static struct thread_node *thread_roots(struct thread_set *t)
{
	/* Empty containers hand their children to their parent (or the root set). */
	for (size_t i = 0; i < t->n; i++) {
		struct thread_node *c = t->nodes[i];
		if (c->msg != NULL ||
		    (c->parent == NULL && c->child != NULL && c->child->next != NULL))
			continue;
		struct thread_node *parent = c->parent;
		while (c->child != NULL) {
			struct thread_node *k = c->child;
			node_unlink(k);
			if (parent != NULL)
				node_link(parent, k);
		}
		node_unlink(c);
	}
	struct thread_node *roots = NULL, **tail = &roots;
	for (size_t i = 0; i < t->n; i++) {
		struct thread_node *c = t->nodes[i];
		if (c->parent == NULL && (c->msg != NULL || c->child != NULL)) {
			*tail = c;
			tail = &c->next;
		}
	}
	/* Roots with the same base subject join the earliest non-reply one. */
	for (struct thread_node *r = roots; r != NULL; r = r->next) {
		if (r->msg == NULL || r->msg->text[SORT_SUBJECT][0] == '\0')
			continue;
		for (struct thread_node **p = &r->next; *p != NULL;) {
			struct thread_node *o = *p;
			if (o->msg != NULL &&
			    strcmp(o->msg->text[SORT_SUBJECT], r->msg->text[SORT_SUBJECT]) == 0 &&
			    o->msg->is_reply) {
				*p = o->next;
				o->next = NULL;
				node_link(r, o);
			} else {
				p = &o->next;
			}
		}
	}
	return roots;
}

static int cmp_subject_date(const void *x, const void *y)
{
	const struct sort_entry *a = x, *b = y;
	int c = strcmp(a->text[SORT_SUBJECT], b->text[SORT_SUBJECT]);
	if (c != 0)
		return c;
	if (a->date != b->date)
		return a->date < b->date ? -1 : 1;
	return (a->seq > b->seq) - (a->seq < b->seq);
}

/* ORDEREDSUBJECT: per base subject, the first message is the parent of the others. */
static struct thread_node *thread_ordered_subject(struct thread_set *t, struct sort_entry *e,
                                                  size_t n)
{
	qsort(e, n, sizeof(*e), cmp_subject_date);
	struct thread_node *roots = NULL, **tail = &roots, *root = NULL;
	for (size_t i = 0; i < n; i++) {
		struct thread_node *node = node_for(t, NULL);
		node->msg = &e[i];
		if (root != NULL &&
		    strcmp(root->msg->text[SORT_SUBJECT], e[i].text[SORT_SUBJECT]) == 0) {
			node_link(root, node);
			continue;
		}
		root = node;
		*tail = node;
		tail = &node->next;
	}
	return roots;
}

enum imap_cmd_result imap_thread_run(struct imap_session *s, const struct imap_arg *args,
                                     size_t count, bool uid)
{
	bool refs;
	if (count < 3 || args[0].type != IMAP_ARG_ATOM || imap_arg_astring(&args[1]) == NULL) {
		imap_session_tagged(s, "BAD", "Invalid THREAD arguments.");
		return IMAP_CMD_DONE;
	}
	if (strcasecmp(args[0].str, "REFERENCES") == 0)
		refs = true;
	else if (strcasecmp(args[0].str, "ORDEREDSUBJECT") == 0)
		refs = false;
	else {
		imap_session_tagged(s, "BAD", "Unknown threading algorithm.");
		return IMAP_CMD_DONE;
	}
	size_t n;
	unsigned need = NEED_KEY(SORT_DATE) | NEED_KEY(SORT_SUBJECT) | (refs ? NEED_IDS : 0);
	struct sort_entry *e = collect_matches(s, args + 1, count - 1, need, &n);
	if (e == NULL)
		return IMAP_CMD_DONE;
	struct thread_set t = {0};
	struct thread_node *roots;
	if (refs) {
		thread_link(&t, e, n);
		roots = thread_roots(&t);
	} else {
		roots = thread_ordered_subject(&t, e, n);
	}
	roots = sort_siblings(roots);
	struct buf line;
	buf_init(&line, 0);
	(void)buf_append_str(&line, "* THREAD ");
	for (struct thread_node *r = roots; r != NULL; r = r->next) {
		(void)buf_append_char(&line, '(');
		write_node(&line, r, uid, 0);
		(void)buf_append_char(&line, ')');
	}
	if (line.data[line.len - 1] == ' ')
		buf_truncate(&line, line.len - 1);
	imap_session_send(s, "%s", buf_cstr(&line));
	buf_free(&line);
	for (size_t i = 0; i < t.n; i++) {
		free(t.nodes[i]->id);
		free(t.nodes[i]);
	}
	free(t.nodes);
	for (size_t i = 0; i < n; i++)
		entry_free(&e[i]);
	free(e);
	imap_session_tagged(s, "OK", "Thread completed.");
	return IMAP_CMD_DONE;
}

enum imap_cmd_result cmd_thread(struct imap_session *s, const struct imap_command *cmd)
{
	return imap_thread_run(s, cmd->args, cmd->count, false);
}
