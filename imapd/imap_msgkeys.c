/* Values SORT and THREAD order by (see imap_msgkeys.h). */
#include "imap_msgkeys.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "mime/mime_decode.h"

/* Removes leading and trailing spaces of text[*start, *end). */
static void trim(const char *t, size_t *start, size_t *end)
{
	while (*start < *end && t[*start] == ' ')
		(*start)++;
	while (*end > *start && t[*end - 1] == ' ')
		(*end)--;
}

/* Skips a "[...]" blob at t+i; returns the index after it and spaces, or i. */
static size_t skip_blob(const char *t, size_t i, size_t end)
{
	if (i >= end || t[i] != '[')
		return i;
	size_t j = i + 1;
	while (j < end && t[j] != ']' && t[j] != '[')
		j++;
	if (j >= end || t[j] != ']')
		return i;
	j++;
	while (j < end && t[j] == ' ')
		j++;
	return j;
}

/* subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":" */
static size_t skip_refwd(const char *t, size_t i, size_t end)
{
	size_t j = i;
	if (end - j >= 2 && strncasecmp(t + j, "re", 2) == 0)
		j += 2;
	else if (end - j >= 3 && strncasecmp(t + j, "fwd", 3) == 0)
		j += 3;
	else if (end - j >= 2 && strncasecmp(t + j, "fw", 2) == 0)
		j += 2;
	else
		return i;
	while (j < end && t[j] == ' ')
		j++;
	j = skip_blob(t, j, end);
	if (j >= end || t[j] != ':')
		return i;
	j++;
	while (j < end && t[j] == ' ')
		j++;
	return j;
}

void imap_base_subject(const char *subject, struct buf *out)
{
	/* Step 1: white space collapsed to single spaces. */
	struct buf t;
	buf_init(&t, 0);
	for (const char *p = subject; *p != '\0'; p++) {
		char c = (*p == '\t' || *p == '\r' || *p == '\n') ? ' ' : *p;
		if (c == ' ' && t.len > 0 && t.data[t.len - 1] == ' ')
			continue;
		(void)buf_append_char(&t, c);
	}
	const char *s = buf_cstr(&t);
	size_t start = 0, end = t.len;
	for (unsigned guard = 0; guard < 1000; guard++) {
		size_t before_start = start, before_end = end;
		trim(s, &start, &end);
		/* Step 2: subj-trailer "(fwd)". */
		while (end - start >= 5 && strncasecmp(s + end - 5, "(fwd)", 5) == 0) {
			end -= 5;
			trim(s, &start, &end);
		}
		/* Step 3: leaders, and a blob when something follows it. */
		size_t j = skip_refwd(s, start, end);
		if (j == start) {
			size_t b = skip_blob(s, start, end);
			if (b != start && b < end)
				j = b;
		}
		start = j;
		/* Step 4: "[fwd: ...]" wrapper. */
		if (end - start > 6 && strncasecmp(s + start, "[fwd:", 5) == 0 &&
		    s[end - 1] == ']') {
			start += 5;
			end--;
		}
		if (start == before_start && end == before_end)
			break;
	}
	trim(s, &start, &end);
	(void)buf_append(out, s + start, end - start);
	buf_free(&t);
}

void imap_first_mailbox(const char *value, struct buf *out)
{
	const char *at = strchr(value, '@');
	if (at == NULL)
		return;
	const char *start = at;
	while (start > value && strchr("<>,:; \t\"", start[-1]) == NULL)
		start--;
	(void)buf_append(out, start, (size_t)(at - start));
}

void imap_first_display(const char *value, struct buf *out)
{
	/* The first '<' or ',' outside a quoted display name. */
	const char *lt = NULL, *comma = NULL;
	bool quoted = false;
	for (const char *p = value; *p != '\0' && lt == NULL && comma == NULL; p++) {
		if (*p == '\\' && quoted && p[1] != '\0')
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (!quoted && *p == '<')
			lt = p;
		else if (!quoted && *p == ',')
			comma = p;
	}
	if (lt != NULL) {
		size_t start = 0, end = (size_t)(lt - value);
		trim(value, &start, &end);
		if (end > start + 1 && value[start] == '"' && value[end - 1] == '"') {
			start++;
			end--;
		}
		if (end > start) {
			mime_header_decode(value + start, end - start, out);
			return;
		}
		const char *gt = strchr(lt, '>');
		if (gt != NULL)
			(void)buf_append(out, lt + 1, (size_t)(gt - lt - 1));
		return;
	}
	size_t end = comma != NULL ? (size_t)(comma - value) : strlen(value), start = 0;
	trim(value, &start, &end);
	(void)buf_append(out, value + start, end - start);
}

size_t imap_msgid_list(const char *value, char ***ids_r)
{
	char **ids = NULL;
	size_t n = 0;
	for (const char *p = value; p != NULL && *p != '\0' && n < 1000;) {
		const char *lt = strchr(p, '<');
		const char *gt = lt != NULL ? strchr(lt, '>') : NULL;
		if (gt == NULL)
			break;
		if (gt > lt + 1) {
			ids = xreallocarray(ids, n + 1, sizeof(*ids));
			ids[n++] = xstrndup(lt + 1, (size_t)(gt - lt - 1));
		}
		p = gt + 1;
	}
	*ids_r = ids;
	return n;
}
