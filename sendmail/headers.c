/* Header block reading and RFC 5322 address-list extraction for sendmail -t. */
#include "headers.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/xalloc.h"

/* Reads one line without its LF (and a CR before it). NULL at EOF. */
static char *read_line(FILE *in, size_t max, bool *too_long_r)
{
	struct buf b;
	buf_init(&b, max);
	int c;
	bool any = false;
	*too_long_r = false;
	while ((c = getc(in)) != EOF) {
		any = true;
		if (c == '\n')
			break;
		if (buf_append_char(&b, (char)c) < 0) {
			*too_long_r = true;
			break;
		}
	}
	if (!any) {
		buf_free(&b);
		return NULL;
	}
	if (b.len > 0 && b.data[b.len - 1] == '\r')
		buf_truncate(&b, b.len - 1);
	if (b.data == NULL)
		buf_append(&b, "", 0);
	return buf_steal(&b);
}

static bool is_field_start(const char *line)
{
	const char *p = line;
	while (*p > 32 && *p < 127 && *p != ':')
		p++;
	return p > line && *p == ':';
}

int headers_read(FILE *in, bool ignore_dots, struct header_block *h)
{
	memset(h, 0, sizeof(*h));
	for (;;) {
		bool too_long;
		char *line = read_line(in, HEADERS_MAX_BYTES, &too_long);
		if (line == NULL) {
			h->eof = true;
			return 0;
		}
		if (too_long || h->bytes + strlen(line) > HEADERS_MAX_BYTES) {
			free(line);
			return -1;
		}
		if (!ignore_dots && strcmp(line, ".") == 0) {
			free(line);
			h->eof = true;
			return 0;
		}
		if (line[0] == '\0') {
			free(line);
			return 0;
		}
		if ((line[0] == ' ' || line[0] == '\t') && h->n > 0) {
			char *joined = xasprintf("%s\r\n%s", h->lines[h->n - 1], line);
			free(h->lines[h->n - 1]);
			h->lines[h->n - 1] = joined;
			h->bytes += strlen(line) + 2;
			free(line);
			continue;
		}
		if (!is_field_start(line)) {
			/* Not a header: the body starts here (the caller adds the empty line). */
			h->first_body_line = line;
			return 0;
		}
		h->lines = xreallocarray(h->lines, h->n + 1, sizeof(char *));
		h->lines[h->n++] = line;
		h->bytes += strlen(line) + 2;
	}
}

void headers_free(struct header_block *h)
{
	for (size_t i = 0; i < h->n; i++)
		free(h->lines[i]);
	free(h->lines);
	free(h->first_body_line);
	memset(h, 0, sizeof(*h));
}

static bool field_is(const char *line, const char *name)
{
	size_t n = strlen(name);
	if (strncasecmp(line, name, n) != 0)
		return false;
	const char *p = line + n;
	while (*p == ' ' || *p == '\t')
		p++;
	return *p == ':';
}

bool headers_has(const struct header_block *h, const char *name)
{
	for (size_t i = 0; i < h->n; i++)
		if (field_is(h->lines[i], name))
			return true;
	return false;
}

static void add(char ***list, size_t *n, const char *s, size_t len)
{
	while (len > 0 && isspace((unsigned char)*s)) {
		s++;
		len--;
	}
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	if (len == 0)
		return;
	*list = xreallocarray(*list, *n + 1, sizeof(char *));
	(*list)[(*n)++] = xstrndup(s, len);
}

void headers_parse_address_list(const char *text, char ***list, size_t *n)
{
	/* One pass: quoted strings and comments are skipped, "<addr>" wins over the bare
	 * text of an item, "group:" prefixes and ";" ends are dropped. */
	struct buf bare;
	buf_init(&bare, 0);
	const char *angle = NULL;
	size_t angle_len = 0;
	int depth = 0;
	for (const char *p = text;; p++) {
		char c = *p;
		if (c == '\0' || (depth == 0 && (c == ',' || c == ';'))) {
			if (angle != NULL)
				add(list, n, angle, angle_len);
			else
				add(list, n, buf_cstr(&bare), bare.len);
			buf_reset(&bare);
			angle = NULL;
			if (c == '\0')
				break;
			continue;
		}
		if (c == '(') {
			depth++;
		} else if (c == ')' && depth > 0) {
			depth--;
		} else if (depth > 0) {
			if (c == '\\' && p[1] != '\0')
				p++;
		} else if (c == '"') {
			/* A quoted display name or local part: keep it (it may be an address). */
			buf_append_char(&bare, c);
			for (p++; *p != '\0' && *p != '"'; p++) {
				if (*p == '\\' && p[1] != '\0')
					buf_append_char(&bare, *p++);
				buf_append_char(&bare, *p);
			}
			if (*p == '\0')
				break;
			buf_append_char(&bare, '"');
		} else if (c == '<') {
			const char *end = strchr(p, '>');
			if (end == NULL)
				break;
			angle = p + 1;
			angle_len = (size_t)(end - p - 1);
			p = end;
		} else if (c == ':') {
			buf_reset(&bare); /* "group-name:" */
		} else if (c != '\r' && c != '\n') {
			buf_append_char(&bare, c);
		}
	}
	buf_free(&bare);
}

void headers_extract_recipients(struct header_block *h, bool remove_bcc, char ***list, size_t *n)
{
	size_t kept = 0;
	for (size_t i = 0; i < h->n; i++) {
		char *line = h->lines[i];
		bool bcc = field_is(line, "Bcc");
		if (field_is(line, "To") || field_is(line, "Cc") || bcc)
			headers_parse_address_list(strchr(line, ':') + 1, list, n);
		if (bcc && remove_bcc) {
			h->bytes -= strlen(line) + 2;
			free(line);
			continue;
		}
		h->lines[kept++] = line;
	}
	h->n = kept;
}
