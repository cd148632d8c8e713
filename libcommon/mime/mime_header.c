/* Lexical helpers for header fields and the parameterised MIME fields (RFC 2045 5.1). */
#include "mime/mime_header.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "mime/mime_parser.h"

/* Parameters kept per field; more are dropped (bounded output for hostile input). */
#define MIME_MAX_PARAMS 32

void mime_header_unfold(const char *p, const char *end, struct buf *out)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' || end[-1] == '\n'))
		end--;
	for (; p < end; p++) {
		if (*p != '\r' && *p != '\n')
			buf_append_char(out, *p);
	}
}

const char *rfc822_skip_cfws(const char *p, const char *end)
{
	int depth = 0;
	while (p < end) {
		char c = *p;
		if (depth > 0 && c == '\\' && p + 1 < end) {
			p += 2;
			continue;
		}
		if (c == '(') {
			depth++;
		} else if (c == ')' && depth > 0) {
			depth--;
		} else if (depth == 0 && c != ' ' && c != '\t' && c != '\r' && c != '\n') {
			break;
		}
		p++;
	}
	return p;
}

const char *rfc822_read_quoted(const char *p, const char *end, struct buf *out)
{
	p++; /* the opening quote */
	while (p < end && *p != '"') {
		if (*p == '\\' && p + 1 < end)
			p++;
		if (*p != '\r' && *p != '\n')
			buf_append_char(out, *p);
		p++;
	}
	return p < end ? p + 1 : p;
}

const char *rfc822_read_token(const char *p, const char *end, struct buf *out, int lenient)
{
	/* RFC 2045 tspecials. A lenient read (parameter values) stops only where a value
	 * cannot go on, because unquoted values like "boundary=----=_Part_1" are common. */
	static const char tspecials[] = "()<>@,;:\\\"/[]?=";
	static const char value_stops[] = ";\"(";
	for (; p < end; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= ' ' || c == 0x7f)
			break;
		if (strchr(lenient ? value_stops : tspecials, c) != NULL)
			break;
		buf_append_char(out, (char)c);
	}
	return p;
}

void mime_params_free(struct mime_param **params)
{
	while (*params != NULL) {
		struct mime_param *next = (*params)->next;
		free((*params)->name);
		free((*params)->value);
		free(*params);
		*params = next;
	}
}

/* Reads "; name=value" pairs; values are tokens or quoted strings. */
static struct mime_param *parse_params(const char *p, const char *end)
{
	struct mime_param *head = NULL, **tail = &head;
	unsigned int count = 0;
	struct buf name, value;
	buf_init(&name, 1024);
	buf_init(&value, 8192);
	while (p < end && count < MIME_MAX_PARAMS) {
		p = rfc822_skip_cfws(p, end);
		if (p < end && *p != ';') {
			/* Junk: resynchronise at the next ';'. */
			while (p < end && *p != ';')
				p++;
		}
		if (p >= end)
			break;
		p = rfc822_skip_cfws(p + 1, end);
		buf_reset(&name);
		buf_reset(&value);
		p = rfc822_read_token(p, end, &name, 0);
		p = rfc822_skip_cfws(p, end);
		if (name.len == 0 || p >= end || *p != '=')
			continue;
		p = rfc822_skip_cfws(p + 1, end);
		if (p < end && *p == '"')
			p = rfc822_read_quoted(p, end, &value);
		else
			p = rfc822_read_token(p, end, &value, 1);
		struct mime_param *param = xcalloc(1, sizeof(*param));
		param->name = xstrdup(buf_cstr(&name));
		for (char *c = param->name; *c != '\0'; c++)
			*c = (char)tolower((unsigned char)*c);
		param->value = xstrdup(buf_cstr(&value));
		*tail = param;
		tail = &param->next;
		count++;
	}
	buf_free(&name);
	buf_free(&value);
	return head;
}

void mime_parse_content_type(struct mime_part *part, const char *value)
{
	const char *p = value, *end = value + strlen(value);
	struct buf type, subtype;
	buf_init(&type, 256);
	buf_init(&subtype, 256);
	p = rfc822_skip_cfws(p, end);
	p = rfc822_read_token(p, end, &type, 0);
	p = rfc822_skip_cfws(p, end);
	if (p < end && *p == '/') {
		p = rfc822_skip_cfws(p + 1, end);
		p = rfc822_read_token(p, end, &subtype, 0);
	}
	/* RFC 2045 5.2: an unusable Content-Type means the default type. */
	if (type.len > 0 && subtype.len > 0) {
		free(part->type);
		free(part->subtype);
		part->type = buf_steal(&type);
		part->subtype = buf_steal(&subtype);
		mime_params_free(&part->params);
		part->params = parse_params(p, end);
	}
	buf_free(&type);
	buf_free(&subtype);
}

void mime_parse_disposition(struct mime_part *part, const char *value)
{
	const char *p = value, *end = value + strlen(value);
	struct buf type;
	buf_init(&type, 256);
	p = rfc822_skip_cfws(p, end);
	p = rfc822_read_token(p, end, &type, 0);
	if (type.len > 0) {
		free(part->disposition);
		part->disposition = buf_steal(&type);
		mime_params_free(&part->disposition_params);
		part->disposition_params = parse_params(p, end);
	}
	buf_free(&type);
}
