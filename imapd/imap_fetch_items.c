/* Parsing FETCH data items into a plan (see imap_fetch_items.h). */
#include "imap_fetch_items.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "imap_args.h"

#define FETCH_MAX_FIELDS 128
#define FETCH_MAX_PART_DEPTH 32
#define FETCH_MAX_BODIES 64

static const struct {
	const char *name;
	unsigned flags;
} simple_items[] = {
    {"FLAGS", FETCH_FLAGS},
    {"INTERNALDATE", FETCH_INTERNALDATE},
    {"RFC822.SIZE", FETCH_RFC822_SIZE},
    {"ENVELOPE", FETCH_ENVELOPE},
    {"BODY", FETCH_BODY},
    {"BODYSTRUCTURE", FETCH_BODYSTRUCTURE},
    {"UID", FETCH_UID},
    {"RFC822", FETCH_RFC822},
    {"RFC822.HEADER", FETCH_RFC822_HEADER},
    {"RFC822.TEXT", FETCH_RFC822_TEXT},
    {"MODSEQ", FETCH_MODSEQ},
};

static const struct {
	const char *name;
	unsigned flags;
} macros[] = {
    {"ALL", FETCH_FLAGS | FETCH_INTERNALDATE | FETCH_RFC822_SIZE | FETCH_ENVELOPE},
    {"FAST", FETCH_FLAGS | FETCH_INTERNALDATE | FETCH_RFC822_SIZE},
    {"FULL", FETCH_FLAGS | FETCH_INTERNALDATE | FETCH_RFC822_SIZE | FETCH_ENVELOPE | FETCH_BODY},
};

static void body_free(struct imap_fetch_body *b)
{
	free(b->part);
	for (size_t i = 0; i < b->n_fields; i++)
		free(b->fields[i]);
	free(b->fields);
	free(b->response_name);
}

void imap_fetch_items_free(struct imap_fetch_items *items)
{
	for (size_t i = 0; i < items->n_bodies; i++)
		body_free(&items->bodies[i]);
	free(items->bodies);
	memset(items, 0, sizeof(*items));
}

static bool field_char(unsigned char c)
{
	/* RFC 5322 ftext: printable US-ASCII except ':'. */
	return c > 0x20 && c < 0x7f && c != ':';
}

/* "(From To \"X-Y\")" inside the brackets; p points at '('. Returns the end or NULL. */
static const char *parse_fields(const char *p, const char *end, struct imap_fetch_body *b)
{
	if (p >= end || *p != '(')
		return NULL;
	p++;
	for (;;) {
		if (p < end && *p == ')' && b->n_fields > 0)
			return p + 1;
		if (b->n_fields > 0) {
			if (p >= end || *p != ' ')
				return NULL;
			p++;
		}
		bool quoted = p < end && *p == '"';
		if (quoted)
			p++;
		const char *start = p;
		while (p < end && field_char((unsigned char)*p) && *p != ')' && *p != '"')
			p++;
		if (p == start || b->n_fields == FETCH_MAX_FIELDS)
			return NULL;
		b->fields = xreallocarray(b->fields, b->n_fields + 1, sizeof(char *));
		b->fields[b->n_fields++] = xstrndup(start, (size_t)(p - start));
		if (quoted) {
			if (p >= end || *p != '"')
				return NULL;
			p++;
		}
	}
}

/* The section text between '[' and ']'. */
static int parse_section(const char *p, const char *end, struct imap_fetch_body *b)
{
	while (p < end && isdigit((unsigned char)*p)) {
		if (*p == '0' || b->n_part == FETCH_MAX_PART_DEPTH)
			return -1;
		uint64_t v = 0;
		while (p < end && isdigit((unsigned char)*p)) {
			v = v * 10 + (uint64_t)(*p++ - '0');
			if (v > UINT32_MAX)
				return -1;
		}
		b->part = xreallocarray(b->part, b->n_part + 1, sizeof(uint32_t));
		b->part[b->n_part++] = (uint32_t)v;
		if (p < end && *p == '.')
			p++;
		else
			break;
	}
	if (p == end)
		return 0;
	if (b->kind != BODY_KIND_BODY)
		return -1; /* BINARY sections are part numbers only */
	size_t rest = (size_t)(end - p);
	if (rest == 6 && strncasecmp(p, "HEADER", 6) == 0) {
		b->text = SECTION_HEADER;
	} else if (rest == 4 && strncasecmp(p, "TEXT", 4) == 0) {
		b->text = SECTION_TEXT;
	} else if (rest == 4 && strncasecmp(p, "MIME", 4) == 0 && b->n_part > 0) {
		b->text = SECTION_MIME;
	} else if (rest > 18 && strncasecmp(p, "HEADER.FIELDS.NOT ", 18) == 0) {
		b->text = SECTION_HEADER_FIELDS_NOT;
		return parse_fields(p + 18, end, b) == end ? 0 : -1;
	} else if (rest > 14 && strncasecmp(p, "HEADER.FIELDS ", 14) == 0) {
		b->text = SECTION_HEADER_FIELDS;
		return parse_fields(p + 14, end, b) == end ? 0 : -1;
	} else {
		return -1;
	}
	return 0;
}

/* "<origin.length>" */
static int parse_partial(const char *p, struct imap_fetch_body *b)
{
	if (*p == '\0')
		return 0;
	char *e;
	if (*p != '<' || !isdigit((unsigned char)p[1]))
		return -1;
	unsigned long long origin = strtoull(p + 1, &e, 10);
	if (*e != '.' || !isdigit((unsigned char)e[1]) || origin > UINT32_MAX)
		return -1;
	unsigned long long length = strtoull(e + 1, &e, 10);
	if (strcmp(e, ">") != 0 || length == 0 || length > UINT32_MAX)
		return -1;
	b->partial = true;
	b->origin = (uint32_t)origin;
	b->length = (uint32_t)length;
	return 0;
}

static const struct {
	const char *prefix;
	enum imap_body_kind kind;
	bool peek;
	const char *response;
} body_prefixes[] = {
    {"BODY.PEEK[", BODY_KIND_BODY, true, "BODY"},
    {"BODY[", BODY_KIND_BODY, false, "BODY"},
    {"BINARY.PEEK[", BODY_KIND_BINARY, true, "BINARY"},
    {"BINARY.SIZE[", BODY_KIND_BINARY_SIZE, true, "BINARY.SIZE"},
    {"BINARY[", BODY_KIND_BINARY, false, "BINARY"},
};

static int parse_body_item(const char *item, struct imap_fetch_items *items)
{
	size_t i;
	for (i = 0; i < sizeof(body_prefixes) / sizeof(body_prefixes[0]); i++) {
		if (strncasecmp(item, body_prefixes[i].prefix, strlen(body_prefixes[i].prefix)) ==
		    0)
			break;
	}
	if (i == sizeof(body_prefixes) / sizeof(body_prefixes[0]))
		return -1;
	if (items->n_bodies == FETCH_MAX_BODIES)
		return -1;
	const char *open = item + strlen(body_prefixes[i].prefix);
	const char *close = strrchr(open, ']');
	if (close == NULL)
		return -1;
	items->bodies = xreallocarray(items->bodies, items->n_bodies + 1, sizeof(*items->bodies));
	struct imap_fetch_body *b = &items->bodies[items->n_bodies++];
	memset(b, 0, sizeof(*b));
	b->kind = body_prefixes[i].kind;
	b->peek = body_prefixes[i].peek;
	if (parse_section(open, close, b) < 0 || parse_partial(close + 1, b) < 0 ||
	    (b->partial && b->kind == BODY_KIND_BINARY_SIZE))
		return -1;
	struct buf name;
	buf_init(&name, 0);
	(void)buf_printf(&name, "%s[%.*s]", body_prefixes[i].response, (int)(close - open), open);
	if (b->partial)
		(void)buf_printf(&name, "<%u>", b->origin);
	b->response_name = buf_steal(&name);
	return 0;
}

static int parse_item(const struct imap_arg *arg, struct imap_fetch_items *items)
{
	if (arg->type != IMAP_ARG_ATOM)
		return -1;
	for (size_t i = 0; i < sizeof(simple_items) / sizeof(simple_items[0]); i++) {
		if (strcasecmp(arg->str, simple_items[i].name) == 0) {
			items->flags |= simple_items[i].flags;
			return 0;
		}
	}
	return parse_body_item(arg->str, items);
}

int imap_fetch_items_parse(const struct imap_arg *args, struct imap_fetch_items *items_r,
                           const char **error_r)
{
	memset(items_r, 0, sizeof(*items_r));
	*error_r = "Invalid fetch item";
	if (args->type == IMAP_ARG_ATOM) {
		for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++) {
			if (strcasecmp(args->str, macros[i].name) == 0) {
				items_r->flags = macros[i].flags;
				return 0;
			}
		}
		if (parse_item(args, items_r) == 0)
			return 0;
	} else if (args->type == IMAP_ARG_LIST && args->count > 0) {
		size_t i;
		for (i = 0; i < args->count; i++) {
			if (parse_item(&args->list[i], items_r) < 0)
				break;
		}
		if (i == args->count)
			return 0;
	}
	imap_fetch_items_free(items_r);
	return -1;
}

bool imap_fetch_items_set_seen(const struct imap_fetch_items *items)
{
	if ((items->flags & (FETCH_RFC822 | FETCH_RFC822_TEXT)) != 0)
		return true;
	for (size_t i = 0; i < items->n_bodies; i++) {
		if (!items->bodies[i].peek)
			return true;
	}
	return false;
}
