/*
 * SMTP command and path syntax. Everything here works on one complete, NUL-free line and
 * allocates only the parsed address and parameters, each bounded by the RFC limits.
 */
#include "smtp_parse.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/xalloc.h"

void smtp_split_command(char *line, char **verb_r, char **args_r)
{
	char *p = line;

	while (*p != '\0' && *p != ' ')
		p++;
	*verb_r = line;
	if (*p == ' ') {
		*p++ = '\0';
		while (*p == ' ')
			p++;
	}
	*args_r = p;
}

static bool is_atext(unsigned char c, bool utf8)
{
	if (c >= 0x80)
		return utf8;
	return isalnum(c) || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL;
}

/* RFC 5321 4.1.2 Local-part = Dot-string / Quoted-string. Returns its length or 0. */
static size_t local_part_len(const char *s, size_t len, bool utf8)
{
	size_t i = 0;

	if (len > 0 && s[0] == '"') {
		for (i = 1; i < len; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c == '"')
				return i + 1;
			if (c == '\\') {
				if (i + 1 >= len || (unsigned char)s[i + 1] < 32 ||
				    (unsigned char)s[i + 1] == 127)
					return 0;
				i++;
			} else if (c < 32 || c == 127 || (c >= 0x80 && !utf8)) {
				return 0;
			}
		}
		return 0;
	}
	bool need_atext = true;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (need_atext)
				return 0;
			need_atext = true;
		} else if (is_atext(c, utf8)) {
			need_atext = false;
		} else {
			break;
		}
	}
	return need_atext ? 0 : i;
}

static bool domain_valid(const char *s, size_t len, bool utf8)
{
	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return false;
	if (s[0] == '[') {
		/* RFC 5321 4.1.3 address literal: checked loosely as printable text. */
		if (len < 3 || s[len - 1] != ']')
			return false;
		for (size_t i = 1; i + 1 < len; i++) {
			unsigned char c = (unsigned char)s[i];
			if (c < 33 || c > 126 || c == '[' || c == ']' || c == '\\')
				return false;
		}
		return true;
	}
	size_t label = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!(isalnum(c) || c == '-' || (c >= 0x80 && utf8)))
			return false;
		if (label == 0 && c == '-')
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 && s[len - 1] != '-';
}

bool smtp_address_valid(const char *addr, size_t len, bool allow_utf8)
{
	if (len == 0 || len > SMTP_PATH_MAX)
		return false;
	size_t local = local_part_len(addr, len, allow_utf8);
	size_t local_max = addr[0] == '"' ? SMTP_LOCAL_MAX + 2 : SMTP_LOCAL_MAX;
	if (local == 0 || local > local_max || local >= len || addr[local] != '@')
		return false;
	return domain_valid(addr + local + 1, len - local - 1, allow_utf8);
}

const char *smtp_address_domain(const char *addr)
{
	const char *at = strrchr(addr, '@');
	return at != NULL ? at + 1 : "";
}

bool smtp_xtext_valid(const char *s)
{
	/* RFC 3461 4: xchar is 33-126 except '+' and '='; "+" HEXCHAR HEXCHAR. */
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '+') {
			if (!isxdigit((unsigned char)s[1]) || !isxdigit((unsigned char)s[2]) ||
			    islower((unsigned char)s[1]) || islower((unsigned char)s[2]))
				return false;
			s += 2;
		} else if (c < 33 || c > 126 || c == '=') {
			return false;
		}
	}
	return true;
}

void smtp_path_clear(struct smtp_path *path)
{
	free(path->address);
	for (size_t i = 0; i < path->n_params; i++) {
		free(path->params[i].keyword);
		free(path->params[i].value);
	}
	memset(path, 0, sizeof(*path));
}

const char *smtp_path_param(const struct smtp_path *path, const char *keyword, bool *present_r)
{
	for (size_t i = 0; i < path->n_params; i++) {
		if (strcmp(path->params[i].keyword, keyword) == 0) {
			if (present_r != NULL)
				*present_r = true;
			return path->params[i].value;
		}
	}
	if (present_r != NULL)
		*present_r = false;
	return NULL;
}

/* Finds the end of a <path> starting at p (p[0] == '<'): the index of '>' or -1. */
static long bracket_end(const char *p)
{
	bool quoted = false;
	for (long i = 1; p[i] != '\0' && i <= SMTP_PATH_MAX + 2; i++) {
		if (quoted && p[i] == '\\' && p[i + 1] != '\0') {
			i++;
		} else if (p[i] == '"') {
			quoted = !quoted;
		} else if (!quoted && p[i] == '>') {
			return i;
		} else if (!quoted && p[i] == '<') {
			return -1;
		}
	}
	return -1;
}

/* RFC 5321 4.1.2 esmtp-param = esmtp-keyword ["=" esmtp-value]. */
static int parse_param(const char *p, size_t len, struct smtp_param *param_r)
{
	size_t k = 0;
	while (k < len && p[k] != '=') {
		unsigned char c = (unsigned char)p[k];
		if (!(isalnum(c) || (c == '-' && k > 0)))
			return -1;
		k++;
	}
	if (k == 0 || k > 64)
		return -1;
	if (k < len) {
		if (k + 1 == len)
			return -1;
		for (size_t i = k + 1; i < len; i++) {
			unsigned char c = (unsigned char)p[i];
			if (c < 33 || c == '=' || c == 127)
				return -1;
		}
	}
	param_r->keyword = xstrndup(p, k);
	for (char *q = param_r->keyword; *q != '\0'; q++)
		*q = (char)toupper((unsigned char)*q);
	param_r->value = k < len ? xstrndup(p + k + 1, len - k - 1) : NULL;
	return 0;
}

static int parse_params(const char *p, bool strict, struct smtp_path *path_r)
{
	while (*p != '\0') {
		if (*p != ' ' || (strict && p[1] == ' '))
			return -1;
		while (*p == ' ')
			p++;
		if (*p == '\0')
			return strict ? -1 : 0;
		size_t len = strcspn(p, " ");
		if (path_r->n_params == SMTP_PARAMS_MAX)
			return -1;
		if (parse_param(p, len, &path_r->params[path_r->n_params]) < 0)
			return -1;
		path_r->n_params++;
		p += len;
	}
	return 0;
}

static bool has_8bit(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] >= 0x80)
			return true;
	}
	return false;
}

int smtp_parse_path(const char *args, const char *prefix, bool is_sender, bool strict,
                    struct smtp_path *path_r, const char **error_r)
{
	const char *syntax = is_sender ? "501 5.5.4 Syntax: MAIL FROM:<address>"
	                               : "501 5.5.4 Syntax: RCPT TO:<address>";
	const char *bad = is_sender ? "501 5.1.7 Bad sender address syntax"
	                            : "501 5.1.3 Bad recipient address syntax";
	size_t plen = strlen(prefix);
	const char *p = args, *addr, *rest;
	size_t addr_len;

	memset(path_r, 0, sizeof(*path_r));
	if (strncasecmp(p, prefix, plen) != 0) {
		*error_r = syntax;
		return -1;
	}
	p += plen;
	if (!strict) {
		while (*p == ' ' || *p == '\t')
			p++;
	}
	if (*p == '<') {
		long end = bracket_end(p);
		if (end < 0) {
			*error_r = bad;
			return -1;
		}
		addr = p + 1;
		addr_len = (size_t)end - 1;
		rest = p + end + 1;
		/* RFC 5321 4.1.2 / C: a source route ("@a,@b:") is accepted and ignored. */
		if (addr_len > 0 && addr[0] == '@') {
			const char *colon = memchr(addr, ':', addr_len);
			if (colon == NULL) {
				*error_r = bad;
				return -1;
			}
			addr_len -= (size_t)(colon + 1 - addr);
			addr = colon + 1;
		}
	} else if (strict || *p == '\0') {
		*error_r = syntax;
		return -1;
	} else {
		addr = p;
		addr_len = strcspn(p, " ");
		rest = p + addr_len;
		if (memchr(addr, '>', addr_len) != NULL) {
			*error_r = bad;
			return -1;
		}
	}
	if (addr_len > SMTP_PATH_MAX) {
		*error_r = is_sender ? "501 5.1.7 Sender address too long"
		                     : "501 5.1.3 Recipient address too long";
		return -1;
	}
	bool utf8 = has_8bit(addr, addr_len);
	if (addr_len == 0) {
		if (!is_sender) {
			*error_r = bad;
			return -1;
		}
	} else if (!is_sender && addr_len == 10 && strncasecmp(addr, "postmaster", 10) == 0) {
		/* RFC 5321 4.5.1: <Postmaster> without a domain must be accepted. */
	} else if (!smtp_address_valid(addr, addr_len, true)) {
		*error_r = bad;
		return -1;
	}
	path_r->address = xstrndup(addr, addr_len);
	path_r->utf8 = utf8;
	if (parse_params(rest, strict, path_r) < 0) {
		smtp_path_clear(path_r);
		*error_r = "501 5.5.4 Bad parameter syntax";
		return -1;
	}
	return 0;
}
