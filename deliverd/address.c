/*
 * Address parsing (RFC 5321 4.1.2 Mailbox / Path): dot-atom or quoted local parts, domain
 * names or address literals, lengths capped (RFC 5321 4.5.3.1) before anything else.
 */
#include "address.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"

static bool is_atext(unsigned char c, bool utf8)
{
	if (c >= 0x80)
		return utf8;
	return isalnum(c) || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

static char *lower_dup(const char *s, size_t n)
{
	char *d = xstrndup(s, n);
	for (char *p = d; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return d;
}

/* Local part at s[0..n): dot-atom or quoted string. */
static bool local_part_valid(const char *s, size_t n, bool utf8)
{
	if (n == 0 || n > ADDRESS_MAX_LOCAL)
		return false;
	if (s[0] == '"') {
		if (n < 2 || s[n - 1] != '"')
			return false;
		for (size_t i = 1; i < n - 1; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c == '\\') {
				i++;
				if (i >= n - 1 || s[i] < 0x20 || s[i] == 0x7f)
					return false;
			} else if (c == '"' || c < 0x20 || c == 0x7f || (c >= 0x80 && !utf8)) {
				return false;
			}
		}
		return true;
	}
	if (s[0] == '.' || s[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return false;
		} else if (!is_atext((unsigned char)s[i], utf8)) {
			return false;
		}
	}
	return true;
}

static bool domain_valid(const char *s, size_t n, bool utf8)
{
	if (n == 0 || n > ADDRESS_MAX_DOMAIN)
		return false;
	if (s[0] == '[') {
		if (s[n - 1] != ']' || n < 3)
			return false;
		for (size_t i = 1; i < n - 1; i++)
			if (!isalnum((unsigned char)s[i]) && strchr(".:-", s[i]) == NULL)
				return false;
		return true;
	}
	size_t label = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
		} else if (isalnum(c) || (c >= 0x80 && utf8) || (c == '-' && label > 0)) {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return label > 0 && s[n - 1] != '-';
}

static int split_address(const char *s, size_t n, bool utf8, bool require_domain, char delimiter,
                         struct address *a, const char **error_r)
{
	memset(a, 0, sizeof(*a));
	/* The last '@' outside a quoted local part separates the domain. */
	const char *at = NULL;
	if (n > 0 && s[0] == '"') {
		const char *q = s + 1;
		while (q < s + n && *q != '"')
			q += *q == '\\' ? 2 : 1;
		if (q < s + n)
			at = memchr(q, '@', (size_t)(s + n - q));
	} else {
		at = memchr(s, '@', n);
	}
	size_t local_len = at != NULL ? (size_t)(at - s) : n;
	if (!local_part_valid(s, local_len, utf8)) {
		*error_r = "5.1.3 Bad address syntax";
		return -1;
	}
	if (at == NULL && require_domain) {
		*error_r = "5.1.3 Domain name required";
		return -1;
	}
	const char *dom = at != NULL ? at + 1 : s + n;
	size_t dom_len = (size_t)(s + n - dom);
	if (at != NULL && !domain_valid(dom, dom_len, utf8)) {
		*error_r = "5.1.2 Bad domain name syntax";
		return -1;
	}
	a->domain = lower_dup(dom, dom_len);
	a->full = xasprintf("%.*s%s%s", (int)local_len, s, at != NULL ? "@" : "", a->domain);
	const char *delim =
	    delimiter != '\0' && s[0] != '"' ? memchr(s, delimiter, local_len) : NULL;
	if (delim != NULL && delim > s) {
		a->user = lower_dup(s, (size_t)(delim - s));
		a->detail = xstrndup(delim + 1, local_len - (size_t)(delim - s) - 1);
	} else {
		a->user = lower_dup(s, local_len);
	}
	return 0;
}

int address_parse_path(const char *s, size_t len, bool allow_null, bool utf8, bool require_domain,
                       char delimiter, struct address *a, size_t *rest_r, const char **error_r)
{
	memset(a, 0, sizeof(*a));
	if (len == 0 || s[0] != '<') {
		*error_r = "5.5.4 Syntax: angle brackets required";
		return -1;
	}
	/* Find the closing '>' outside quotes, within the path length cap. */
	size_t i = 1;
	bool quoted = false;
	for (; i < len && i <= ADDRESS_MAX_PATH + 1; i++) {
		if (quoted && s[i] == '\\') {
			i++;
			continue;
		}
		if (s[i] == '"')
			quoted = !quoted;
		else if (s[i] == '>' && !quoted)
			break;
	}
	if (i >= len || s[i] != '>') {
		*error_r =
		    i > ADDRESS_MAX_PATH ? "5.1.3 Address too long" : "5.5.4 Syntax: missing '>'";
		return -1;
	}
	*rest_r = i + 1;
	const char *p = s + 1;
	size_t n = i - 1;
	if (n == 0) {
		if (!allow_null) {
			*error_r = "5.1.3 Null address not allowed here";
			return -1;
		}
		a->full = xstrdup("");
		a->user = xstrdup("");
		a->domain = xstrdup("");
		return 0;
	}
	/* RFC 5321 4.1.2, C.: a source route "@a,@b:" is accepted and ignored. */
	if (p[0] == '@') {
		const char *colon = memchr(p, ':', n);
		if (colon == NULL) {
			*error_r = "5.1.3 Bad source route";
			return -1;
		}
		n -= (size_t)(colon + 1 - p);
		p = colon + 1;
	}
	return split_address(p, n, utf8, require_domain, delimiter, a, error_r);
}

int address_parse_plain(const char *s, bool utf8, char delimiter, struct address *a,
                        const char **error_r)
{
	return split_address(s, strlen(s), utf8, false, delimiter, a, error_r);
}

void address_free(struct address *a)
{
	free(a->full);
	free(a->user);
	free(a->detail);
	free(a->domain);
	memset(a, 0, sizeof(*a));
}

bool address_detail_is_safe_folder(const char *detail)
{
	size_t n = strlen(detail);
	if (n == 0 || n > 64 || detail[0] == '.' || detail[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)detail[i];
		if (c == '.' && detail[i + 1] == '.')
			return false;
		if (!isalnum(c) && c != '_' && c != '-' && c != '.')
			return false;
	}
	return true;
}
