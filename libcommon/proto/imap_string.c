/* IMAP string output: atom, quoted or literal (see imap_string.h). */
#include "proto/imap_string.h"

#include <string.h>
#include <strings.h>

#include "base/buf.h"

static bool atom_safe(const char *s, size_t len)
{
	if (len == 0 || (len == 3 && strncasecmp(s, "NIL", 3) == 0))
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		/* ATOM-CHAR minus list wildcards, so the text reads back as the same atom. */
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}

static bool quote_safe(const char *s, size_t len, unsigned flags)
{
	bool utf8 = (flags & IMAP_STRING_UTF8) != 0;
	bool specials = (flags & IMAP_STRING_LITERAL_SPECIALS) != 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\0' || c == '\r' || c == '\n' || (c >= 0x80 && !utf8) ||
		    (specials && (c == '"' || c == '\\')))
			return false;
	}
	return true;
}

int imap_string_append(struct buf *out, const char *s, size_t len, unsigned flags)
{
	if ((flags & IMAP_STRING_ALLOW_ATOM) != 0 && atom_safe(s, len))
		return buf_append(out, s, len);
	if (quote_safe(s, len, flags)) {
		size_t start = out->len;
		int ret = buf_append_char(out, '"');
		for (size_t i = 0; i < len && ret == 0; i++) {
			if (s[i] == '"' || s[i] == '\\')
				ret = buf_append_char(out, '\\');
			if (ret == 0)
				ret = buf_append_char(out, s[i]);
		}
		if (ret == 0)
			ret = buf_append_char(out, '"');
		if (ret < 0)
			buf_truncate(out, start);
		return ret;
	}
	size_t start = out->len;
	if (buf_printf(out, "{%zu}\r\n", len) < 0 || buf_append(out, s, len) < 0) {
		buf_truncate(out, start);
		return -1;
	}
	return 0;
}

int imap_nstring_append(struct buf *out, const char *s, size_t len, unsigned flags)
{
	if (s == NULL)
		return buf_append_str(out, "NIL");
	return imap_string_append(out, s, len, flags & ~(unsigned)IMAP_STRING_ALLOW_ATOM);
}

void imap_append_nstring_len(struct buf *out, const char *s, size_t len)
{
	(void)imap_nstring_append(out, s, len, IMAP_STRING_LITERAL_SPECIALS);
}

void imap_append_nstring(struct buf *out, const char *s)
{
	imap_append_nstring_len(out, s, s != NULL ? strlen(s) : 0);
}
