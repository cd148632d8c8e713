/* Address lists to IMAP envelope addresses. Linear in the input (CVE-2024-23184). */
#include "mime/mime_address.h"

#include <string.h>

#include "base/buf.h"
#include "proto/imap_string.h"
#include "mime/mime_header.h"

struct addr_parser {
	const char *p, *end;
	struct buf *out;
	unsigned int count;
	struct buf name, route, local, domain;
};

/* RFC 5322 specials: ()<>@,;:\".[] (a switch, not strchr: this runs for every byte). */
static bool is_special(char c)
{
	switch (c) {
	case '(':
	case ')':
	case '<':
	case '>':
	case '@':
	case ',':
	case ';':
	case ':':
	case '\\':
	case '"':
	case '.':
	case '[':
	case ']':
		return true;
	default:
		return false;
	}
}

/* One word (atom or quoted string); appended to out. Returns false when none is here. */
static bool read_word(struct addr_parser *a, struct buf *out)
{
	a->p = rfc822_skip_cfws(a->p, a->end);
	if (a->p >= a->end)
		return false;
	if (*a->p == '"') {
		a->p = rfc822_read_quoted(a->p, a->end, out);
		return true;
	}
	const char *start = a->p;
	while (a->p < a->end && (unsigned char)*a->p > ' ' && !is_special(*a->p))
		a->p++;
	buf_append(out, start, (size_t)(a->p - start));
	return a->p > start;
}

/* A phrase: words and dots, with one space wherever the input had white space or a
 * comment between them ("J. R. Doe"); a quoted local part keeps its spaces. */
static void read_phrase(struct addr_parser *a, struct buf *out)
{
	for (;;) {
		const char *before_ws = a->p;
		a->p = rfc822_skip_cfws(a->p, a->end);
		bool space = a->p > before_ws && out->len > 0;
		size_t before = out->len;
		if (space)
			buf_append_char(out, ' ');
		if (a->p < a->end && *a->p == '.') {
			buf_append_char(out, '.');
			a->p++;
			continue;
		}
		if (!read_word(a, out)) {
			buf_truncate(out, before);
			return;
		}
	}
}

/* local-part or domain: words and dots without spaces; a domain may be a [literal]. */
static void read_dotted(struct addr_parser *a, struct buf *out, const char *stops)
{
	for (;;) {
		a->p = rfc822_skip_cfws(a->p, a->end);
		if (a->p >= a->end || strchr(stops, *a->p) != NULL)
			return;
		if (*a->p == '.') {
			buf_append_char(out, '.');
			a->p++;
		} else if (*a->p == '[') {
			while (a->p < a->end && *a->p != ']')
				buf_append_char(out, *a->p++);
			if (a->p < a->end)
				buf_append_char(out, *a->p++);
		} else if (!read_word(a, out)) {
			a->p++; /* a stray special: skip it */
		}
	}
}

/* The text of the last top-level comment in [p, end): "addr (Name)" names the address. */
static void last_comment(const char *p, const char *end, struct buf *out)
{
	const char *start = NULL, *best = NULL, *best_end = NULL;
	int depth = 0;
	bool quoted = false;
	for (; p < end; p++) {
		if (*p == '\\' && p + 1 < end) {
			p++;
		} else if (quoted) {
			quoted = *p != '"';
		} else if (*p == '"' && depth == 0) {
			quoted = true;
		} else if (*p == '(') {
			if (depth++ == 0)
				start = p + 1;
		} else if (*p == ')' && depth > 0 && --depth == 0) {
			best = start;
			best_end = p;
		}
	}
	if (best != NULL) {
		buf_reset(out);
		mime_header_unfold(best, best_end, out);
	}
}

static void emit(struct addr_parser *a, const char *name, const char *adl, const char *mailbox,
                 const char *host)
{
	if (a->count++ >= MIME_ADDRESS_MAX)
		return;
	if (a->count == 1)
		buf_append_char(a->out, '(');
	buf_append_char(a->out, '(');
	imap_append_nstring(a->out, name);
	buf_append_char(a->out, ' ');
	imap_append_nstring(a->out, adl);
	buf_append_char(a->out, ' ');
	imap_append_nstring(a->out, mailbox);
	buf_append_char(a->out, ' ');
	imap_append_nstring(a->out, host);
	buf_append_char(a->out, ')');
}

static const char *or_null(const struct buf *b)
{
	return b->len > 0 ? buf_cstr(b) : NULL;
}

/* <[@route,@route:]local@domain> */
static void read_angle(struct addr_parser *a)
{
	a->p++;
	a->p = rfc822_skip_cfws(a->p, a->end);
	if (a->p < a->end && *a->p == '@') {
		while (a->p < a->end && *a->p != ':' && *a->p != '>')
			buf_append_char(&a->route, *a->p++);
		if (a->p < a->end && *a->p == ':')
			a->p++;
	}
	read_dotted(a, &a->local, "@>,;");
	if (a->p < a->end && *a->p == '@') {
		a->p++;
		read_dotted(a, &a->domain, ">,;");
	}
	if (a->p < a->end && *a->p == '>')
		a->p++;
}

static void read_address(struct addr_parser *a, bool *in_group)
{
	buf_reset(&a->name);
	buf_reset(&a->route);
	buf_reset(&a->local);
	buf_reset(&a->domain);
	read_phrase(a, &a->name);
	a->p = rfc822_skip_cfws(a->p, a->end);
	char c = a->p < a->end ? *a->p : '\0';
	if (c == ':' && !*in_group) {
		a->p++;
		*in_group = true;
		emit(a, NULL, NULL, or_null(&a->name) ? buf_cstr(&a->name) : "", NULL);
		return;
	}
	bool angle = c == '<';
	if (angle) {
		read_angle(a);
	} else if (c == '@') {
		/* addr-spec: what we read as a phrase was the local part. */
		buf_append(&a->local, a->name.data, a->name.len);
		buf_reset(&a->name);
		a->p++;
		const char *domain_start = a->p;
		read_dotted(a, &a->domain, ",;<>");
		last_comment(domain_start, a->p, &a->name);
	} else if (a->name.len > 0) {
		buf_append(&a->local, a->name.data, a->name.len);
		buf_reset(&a->name);
	}
	/* Anything left up to the separator is junk. */
	while (a->p < a->end && *a->p != ',' && *a->p != ';')
		a->p++;
	if (a->local.len > 0 || a->domain.len > 0 || angle)
		emit(a, or_null(&a->name), or_null(&a->route),
		     a->local.len > 0 ? buf_cstr(&a->local) : "MISSING_MAILBOX",
		     a->domain.len > 0 ? buf_cstr(&a->domain) : "MISSING_DOMAIN");
	if (a->p < a->end && *a->p == ';') {
		a->p++;
		if (*in_group)
			emit(a, NULL, NULL, NULL, NULL);
		*in_group = false;
	} else if (a->p < a->end) {
		a->p++; /* ',' */
	}
}

void mime_address_list_append(struct buf *out, const char *value)
{
	/* No arithmetic on NULL (an absent header): UB even when adding 0. */
	struct addr_parser a = {
	    .p = value, .end = value != NULL ? value + strlen(value) : NULL, .out = out};
	buf_init(&a.name, 0);
	buf_init(&a.route, 0);
	buf_init(&a.local, 0);
	buf_init(&a.domain, 0);
	bool in_group = false;
	while (a.p < a.end) {
		const char *before = a.p;
		read_address(&a, &in_group);
		if (a.p == before)
			a.p++;
	}
	if (in_group)
		emit(&a, NULL, NULL, NULL, NULL);
	if (a.count == 0)
		buf_append_str(out, "NIL");
	else
		buf_append_char(out, ')');
	buf_free(&a.name);
	buf_free(&a.route);
	buf_free(&a.local);
	buf_free(&a.domain);
}
