/* The tab-escaping and field splitting of the Dovecot auth protocol. */
#include "auth/auth_proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"

int auth_tab_escape(struct buf *out, const char *s)
{
	size_t start = out->len;

	for (; *s != '\0'; s++) {
		char esc = 0;

		switch (*s) {
		case '\001':
			esc = '1';
			break;
		case '\t':
			esc = 't';
			break;
		case '\r':
			esc = 'r';
			break;
		case '\n':
			esc = 'n';
			break;
		}
		int r =
		    esc != 0 ? buf_append(out, (char[]){'\001', esc}, 2) : buf_append_char(out, *s);
		if (r < 0) {
			buf_truncate(out, start);
			return -1;
		}
	}
	return 0;
}

int auth_tab_unescape(char *s)
{
	char *w = s;

	for (const char *r = s; *r != '\0'; r++) {
		if (*r != '\001') {
			*w++ = *r;
			continue;
		}
		switch (r[1]) {
		case '0':
			*w++ = '\0';
			break;
		case '1':
			*w++ = '\001';
			break;
		case 't':
			*w++ = '\t';
			break;
		case 'r':
			*w++ = '\r';
			break;
		case 'n':
		case 'l': /* the older documentation's name for LF */
			*w++ = '\n';
			break;
		default:
			return -1;
		}
		r++;
	}
	*w = '\0';
	return 0;
}

int auth_split_fields(char *line, char **fields_r, size_t max)
{
	size_t n = 0;
	char *p = line;

	for (;;) {
		if (n == max)
			return -1;
		fields_r[n++] = p;
		char *tab = strchr(p, '\t');
		if (tab == NULL)
			break;
		*tab = '\0';
		p = tab + 1;
	}
	return (int)n;
}

const char *auth_field_find(char *const *fields, size_t n, const char *key)
{
	size_t klen = strlen(key);

	for (size_t i = 0; i < n; i++) {
		if (strncmp(fields[i], key, klen) != 0)
			continue;
		if (fields[i][klen] == '\0')
			return fields[i] + klen;
		if (fields[i][klen] == '=')
			return fields[i] + klen + 1;
	}
	return NULL;
}

int auth_parse_uint(const char *s, unsigned *id_r)
{
	unsigned long long v = 0;

	if (*s == '\0' || (s[0] == '0' && s[1] != '\0'))
		return -1;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned)(*s - '0');
		if (v > 0xffffffffULL)
			return -1;
	}
	*id_r = (unsigned)v;
	return 0;
}
