/* Quoting of IMAP strings. */
#include "mime/imap_quote.h"

#include <string.h>

#include "base/buf.h"

void imap_append_nstring_len(struct buf *out, const char *s, size_t len)
{
	if (s == NULL) {
		buf_append_str(out, "NIL");
		return;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		/* Dovecot sends '"' and '\\' as literals too; clients cope better. */
		if (c == '\0' || c == '\r' || c == '\n' || c >= 0x80 || c == '"' || c == '\\') {
			buf_printf(out, "{%zu}\r\n", len);
			buf_append(out, s, len);
			return;
		}
	}
	buf_append_char(out, '"');
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '"' || s[i] == '\\')
			buf_append_char(out, '\\');
		buf_append_char(out, s[i]);
	}
	buf_append_char(out, '"');
}

void imap_append_nstring(struct buf *out, const char *s)
{
	imap_append_nstring_len(out, s, s != NULL ? strlen(s) : 0);
}
