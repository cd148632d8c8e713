/*
 * The streaming MIME parser. Input is cut into lines (a line may span any number of
 * feed calls); only a short prefix of each line is kept, which is all a boundary test
 * needs, and header blocks are kept up to a cap. Per RFC 2046 5.1.1 the line break
 * before a boundary line belongs to the boundary, so a part ends where that break starts.
 */
#include "mime/mime_parser.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "mime/mime_fields.h"
#include "mime/mime_header.h"

/* A boundary line may carry trailing white space (RFC 2046 5.1.1 transport padding). */
#define LINE_PREFIX_SLACK 64

enum parser_state {
	STATE_HEADER,
	STATE_BODY,
};

struct boundary {
	char *text;
	size_t len;
	struct mime_part *multipart;
};

/* Where something starts: physical offset, virtual offset, LFs before it. */
struct mark {
	uint64_t pos, vpos, lfs;
};

struct mime_parser {
	struct mime_limits lim;
	struct mime_part *root, *cur;
	enum parser_state state;
	unsigned int parts;

	struct buf header; /* cur's header block, capped */
	size_t header_line_start;
	struct mark header_start;

	struct mark now;        /* the next byte */
	struct mark line_start; /* the current line */
	struct mark prev_eol;   /* the line break before the current line */
	bool have_prev_eol;
	bool prev_line_boundary;
	bool last_cr;
	char *line;
	size_t line_len, line_cap;
	bool line_long;

	struct boundary *stack;
	unsigned int stack_len;
};

static const struct mime_limits default_limits = {
    .max_depth = 20,
    .max_parts = 1000,
    .max_header_size = 64 * 1024,
    .max_boundary_len = 200,
};

const char *mime_param_get(const struct mime_param *params, const char *name)
{
	for (; params != NULL; params = params->next) {
		if (strcasecmp(params->name, name) == 0)
			return params->value;
	}
	return NULL;
}

static struct mime_part *part_new(struct mime_parser *p, struct mime_part *parent)
{
	struct mime_part *part = xcalloc(1, sizeof(*part));
	part->parent = parent;
	part->depth = parent != NULL ? parent->depth + 1 : 0;
	part->header_offset = p->now.pos;
	if (parent != NULL) {
		struct mime_part **tail = &parent->children;
		while (*tail != NULL)
			tail = &(*tail)->next;
		*tail = part;
	}
	p->parts++;
	p->cur = part;
	p->state = STATE_HEADER;
	p->header_start = p->now;
	buf_reset(&p->header);
	return part;
}

struct mime_parser *mime_parser_new(const struct mime_limits *limits)
{
	struct mime_parser *p = xcalloc(1, sizeof(*p));
	p->lim = limits != NULL ? *limits : default_limits;
	if (p->lim.max_depth == 0)
		p->lim.max_depth = 1;
	if (p->lim.max_parts == 0)
		p->lim.max_parts = 1;
	p->line_cap = p->lim.max_boundary_len + 4 + LINE_PREFIX_SLACK;
	p->line = xmalloc(p->line_cap);
	p->stack = xcalloc(p->lim.max_depth + 1, sizeof(*p->stack));
	/* One byte of slack so the cap test sees "more than max" (then truncated). */
	buf_init(&p->header, p->lim.max_header_size);
	p->root = part_new(p, NULL);
	p->root->is_message = true;
	return p;
}

static void size_between(struct mime_size *size, const struct mark *from, const struct mark *to)
{
	if (to->pos <= from->pos) {
		*size = (struct mime_size){0, 0, 0};
		return;
	}
	size->physical = to->pos - from->pos;
	size->virtual_size = to->vpos - from->vpos;
	size->lines = to->lfs - from->lfs;
}

static void stack_push(struct mime_parser *p, struct mime_part *multipart, const char *boundary)
{
	struct boundary *b = &p->stack[p->stack_len++];
	b->text = xstrdup(boundary);
	b->len = strlen(boundary);
	b->multipart = multipart;
}

static void stack_pop_to(struct mime_parser *p, unsigned int len)
{
	while (p->stack_len > len)
		free(p->stack[--p->stack_len].text);
}

/* Remember the body start of a part whose header just ended (see part_close). */
static void body_mark(struct mime_part *part, const struct mark *start)
{
	part->body.virtual_size = start->vpos;
	part->body.lines = start->lfs;
}

/* The header block of cur ended at `end`; its body begins there. */
static void header_end(struct mime_parser *p, const struct mark *end)
{
	struct mime_part *part = p->cur;
	size_between(&part->header, &p->header_start, end);
	part->body_offset = end->pos;
	body_mark(part, end);
	mime_fields_apply(part, p->header.data != NULL ? p->header.data : "", p->header.len);
	p->state = STATE_BODY;
	if (p->header.len >= p->lim.max_header_size)
		part->truncated = true;

	bool room = part->depth + 1 < p->lim.max_depth && p->parts < p->lim.max_parts;
	if (strcasecmp(part->type, "multipart") == 0) {
		const char *boundary = mime_param_get(part->params, "boundary");
		if (boundary == NULL || boundary[0] == '\0' ||
		    strlen(boundary) > p->lim.max_boundary_len || !room)
			part->truncated = true;
		else
			stack_push(p, part, boundary);
	} else if (strcasecmp(part->type, "message") == 0 &&
	           (strcasecmp(part->subtype, "rfc822") == 0 ||
	            strcasecmp(part->subtype, "global") == 0)) {
		if (room)
			part_new(p, part)->is_message = true;
		else
			part->truncated = true;
	}
}

/* Each part remembers its body start in body.* until it ends (then sizes replace it). */
static void part_close(struct mime_parser *p, struct mime_part *part, const struct mark *end)
{
	if (part == p->cur && p->state == STATE_HEADER) {
		/* A boundary right after the one that opened this part: empty part. */
		if (end->pos < p->header_start.pos)
			end = &p->header_start;
		header_end(p, end);
	}
	struct mark start = {part->body_offset, part->body.virtual_size, part->body.lines};
	if (end->pos < start.pos)
		end = &start;
	size_between(&part->body, &start, end);
}

/* Closes cur and its ancestors up to (not including) stop. */
static void close_up_to(struct mime_parser *p, struct mime_part *stop, const struct mark *end)
{
	while (p->cur != NULL && p->cur != stop) {
		struct mime_part *part = p->cur;
		bool header = p->state == STATE_HEADER;
		part_close(p, part, end);
		/* header_end may have opened a child (message/rfc822): close it too. */
		if (header && p->cur != part) {
			part_close(p, p->cur, end);
			p->cur = part;
		}
		for (unsigned int i = p->stack_len; i > 0; i--) {
			if (p->stack[i - 1].multipart == part) {
				stack_pop_to(p, i - 1);
				break;
			}
		}
		p->cur = part->parent;
		p->state = STATE_BODY;
	}
}

/*
 * Index in the stack of the boundary this line is, or -1; *close_r for "--b--". As in
 * Dovecot, a line that starts with "--" and the boundary is a boundary whatever follows,
 * and it closes the multipart when "--" follows.
 */
static int line_boundary(struct mime_parser *p, bool *close_r)
{
	if (p->line_len < 2 || p->line[0] != '-' || p->line[1] != '-')
		return -1;
	size_t len = p->line_len;
	for (unsigned int i = p->stack_len; i > 0; i--) {
		const struct boundary *b = &p->stack[i - 1];
		if (len < 2 + b->len || memcmp(p->line + 2, b->text, b->len) != 0)
			continue;
		size_t rest = len - 2 - b->len;
		*close_r = rest >= 2 && memcmp(p->line + 2 + b->len, "--", 2) == 0;
		return (int)i - 1;
	}
	return -1;
}

static void on_boundary(struct mime_parser *p, unsigned int idx, bool close)
{
	struct mime_part *multipart = p->stack[idx].multipart;
	if (!close && p->parts >= p->lim.max_parts) {
		/* No room for another part: the line stays in the current one. */
		multipart->truncated = true;
		return;
	}
	/* The line break before a boundary belongs to it, unless it ends a boundary line. */
	struct mark end = p->have_prev_eol && !p->prev_line_boundary ? p->prev_eol : p->line_start;
	close_up_to(p, multipart, &end);
	p->cur = multipart;
	p->state = STATE_BODY;
	if (close) {
		stack_pop_to(p, idx);
		return;
	}
	stack_pop_to(p, idx + 1);
	part_new(p, multipart);
}

/* A whole line has been seen (now is just past its LF, or at the end of input). */
static void on_line(struct mime_parser *p, bool has_eol, bool crlf)
{
	if (!p->line_long && has_eol)
		p->line_len -= crlf ? 2 : 1; /* the line break is not content */
	bool close = false;
	int idx = line_boundary(p, &close);
	if (idx >= 0) {
		if (p->state == STATE_HEADER)
			buf_truncate(&p->header, p->header_line_start);
		on_boundary(p, (unsigned int)idx, close);
	} else if (p->state == STATE_HEADER && p->line_len == 0 && !p->line_long && has_eol) {
		header_end(p, &p->now);
	}
	p->prev_line_boundary = idx >= 0;
	if (has_eol) {
		p->prev_eol.pos = p->now.pos - (crlf ? 2 : 1);
		p->prev_eol.vpos = p->now.vpos - 2;
		p->prev_eol.lfs = p->now.lfs - 1;
		p->have_prev_eol = true;
	}
	p->line_len = 0;
	p->line_long = false;
	p->line_start = p->now;
	p->header_line_start = p->header.len;
}

static void line_append(struct mime_parser *p, const char *data, size_t len)
{
	size_t room = p->line_cap - p->line_len;
	size_t n = len < room ? len : room;
	memcpy(p->line + p->line_len, data, n);
	p->line_len += n;
	if (n < len)
		p->line_long = true;
	if (p->state == STATE_HEADER && buf_append(&p->header, data, len) < 0) {
		/* Past the cap: keep what fits, count the rest. */
		buf_append(&p->header, data, buf_room(&p->header));
		p->cur->truncated = true;
	}
}

void mime_parser_feed(struct mime_parser *p, const void *data, size_t len)
{
	const char *s = data, *end = s + len;
	while (s < end) {
		const char *lf = memchr(s, '\n', (size_t)(end - s));
		const char *stop = lf != NULL ? lf + 1 : end;
		size_t n = (size_t)(stop - s);
		line_append(p, s, n);
		p->now.pos += n;
		p->now.vpos += n;
		if (lf != NULL) {
			bool crlf = (lf > s) ? lf[-1] == '\r' : p->last_cr;
			if (!crlf)
				p->now.vpos++; /* a bare LF is sent as CRLF */
			p->now.lfs++;
			p->last_cr = false;
			on_line(p, true, crlf);
		} else {
			p->last_cr = s[n - 1] == '\r';
		}
		s = stop;
	}
}

struct mime_part *mime_parser_finish(struct mime_parser **pp)
{
	struct mime_parser *p = *pp;
	if (p->line_len > 0 || p->line_long)
		on_line(p, false, false);
	struct mark end = p->now;
	close_up_to(p, NULL, &end);
	struct mime_part *root = p->root;
	p->root = NULL;
	mime_parser_free(pp);
	return root;
}

void mime_parser_free(struct mime_parser **pp)
{
	struct mime_parser *p = *pp;
	if (p == NULL)
		return;
	stack_pop_to(p, 0);
	free(p->stack);
	free(p->line);
	buf_free(&p->header);
	mime_part_free(&p->root);
	free(p);
	*pp = NULL;
}

void mime_part_free(struct mime_part **pp)
{
	struct mime_part *part = *pp;
	while (part != NULL) {
		struct mime_part *next = part->next;
		mime_part_free(&part->children);
		mime_fields_clear(part);
		free(part);
		part = next;
	}
	*pp = NULL;
}

struct mime_part *mime_parse_buffer(const void *data, size_t len, const struct mime_limits *limits)
{
	struct mime_parser *p = mime_parser_new(limits);
	mime_parser_feed(p, data, len);
	return mime_parser_finish(&p);
}
