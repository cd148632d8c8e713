/* UTF8=ACCEPT input translation and name output (see imap_utf8.h). */
#include "imap_utf8.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "imap_session.h"
#include "proto/imap_string.h"
#include "store/folder_name.h"
#include "store/mutf7.h"

bool imap_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		size_t n;
		if (utf8_decode_char(p + i, len - i, &n) < 0)
			return false;
		i += n;
	}
	return true;
}

enum imap_utf8_name_error imap_utf8_name_to_internal(const char *utf8, size_t len, struct buf *out)
{
	const unsigned char *p = (const unsigned char *)utf8;
	for (size_t i = 0; i < len;) {
		size_t n = 1;
		long cp = p[i] < 0x80 ? p[i] : utf8_decode_char(p + i, len - i, &n);
		if (cp < 0)
			return IMAP_UTF8_NAME_INVALID;
		/* NUL never reaches a name; U+2028/U+2029 are forbidden by RFC 6855 3 (the C0/C1
		 * controls and DEL it also forbids are refused by the store's name check). */
		if (cp == 0 || cp == 0x2028 || cp == 0x2029)
			return IMAP_UTF8_NAME_FORBIDDEN;
		i += n;
	}
	return mutf7_encode(utf8, len, out) == 0 ? IMAP_UTF8_NAME_OK : IMAP_UTF8_NAME_INVALID;
}

/* Which arguments of a command are mailbox names (bit i = argument i). */
static unsigned mailbox_args(const struct imap_command *cmd)
{
	static const struct {
		const char *name;
		unsigned args;
	} table[] = {
	    {"SELECT", 1},    {"EXAMINE", 1},   {"CREATE", 1},      {"DELETE", 1},
	    {"RENAME", 3},    {"SUBSCRIBE", 1}, {"UNSUBSCRIBE", 1}, {"STATUS", 1},
	    {"APPEND", 1},    {"COPY", 2},      {"MOVE", 2},        {"GETQUOTAROOT", 1},
	    {"MYRIGHTS", 1},  {"GETACL", 1},    {"LISTRIGHTS", 1},  {"SETACL", 1},
	    {"DELETEACL", 1},
	};
	if (strcmp(cmd->name, "UID") == 0 && cmd->count > 0 &&
	    (imap_arg_atom_is(&cmd->args[0], "COPY") || imap_arg_atom_is(&cmd->args[0], "MOVE")))
		return 1u << 2;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (strcmp(table[i].name, cmd->name) == 0)
			return table[i].args;
	}
	return 0;
}

/* Every quoted string (and, when with_literals, every plain literal) must be UTF-8. */
static bool strings_valid(const struct imap_arg *args, size_t count, bool with_literals)
{
	for (size_t i = 0; i < count; i++) {
		const struct imap_arg *a = &args[i];
		if (a->type == IMAP_ARG_LIST && !strings_valid(a->list, a->count, with_literals))
			return false;
		if ((a->type == IMAP_ARG_QUOTED ||
		     (with_literals && a->type == IMAP_ARG_LITERAL && !a->literal8)) &&
		    !imap_utf8_valid(a->str, a->len))
			return false;
	}
	return true;
}

static int translate_name(struct imap_arg *arg, const char **status_r, const char **error_r)
{
	if (imap_arg_astring(arg) == NULL)
		return 0; /* not a string (or one with a NUL): the handler replies BAD */
	struct buf out;
	buf_init(&out, 0);
	enum imap_utf8_name_error err = imap_utf8_name_to_internal(arg->str, arg->len, &out);
	if (err != IMAP_UTF8_NAME_OK) {
		buf_free(&out);
		*status_r = err == IMAP_UTF8_NAME_INVALID ? "BAD" : "NO";
		*error_r = err == IMAP_UTF8_NAME_INVALID
		               ? "Mailbox name is not valid UTF-8."
		               : "[CANNOT] Character not allowed in mailbox name.";
		return -1;
	}
	free(arg->str);
	arg->len = out.len;
	arg->str = xstrndup(buf_cstr(&out), out.len);
	buf_free(&out);
	return 0;
}

/* SEARCH [RETURN (...)] [CHARSET x] ...: no CHARSET once UTF-8 is enabled. */
static bool search_has_charset(const struct imap_arg *args, size_t count)
{
	size_t pos = 0;
	if (pos < count && imap_arg_atom_is(&args[pos], "RETURN"))
		pos += 2;
	return pos < count && imap_arg_atom_is(&args[pos], "CHARSET");
}

/* SORT (criteria) charset ... / THREAD algorithm charset ...: only UTF-8 (erratum 4029). */
static bool charset_not_utf8(const struct imap_arg *args, size_t count)
{
	const char *cs = count > 1 ? imap_arg_astring(&args[1]) : NULL;
	return cs != NULL && strcasecmp(cs, "UTF-8") != 0;
}

int imap_utf8_command_in(struct imap_command *cmd, const char **status_r, const char **error_r)
{
	const char *name = cmd->name;
	struct imap_arg *args = cmd->args;
	size_t count = cmd->count;
	if (strcmp(name, "UID") == 0 && count > 0 && args[0].type == IMAP_ARG_ATOM) {
		name = args[0].str;
		args++;
		count--;
	}
	bool search = strcasecmp(name, "SEARCH") == 0, sort = strcasecmp(name, "SORT") == 0,
	     thread = strcasecmp(name, "THREAD") == 0;
	bool strings = search || sort || thread || strcasecmp(name, "LIST") == 0 ||
	               strcasecmp(name, "LSUB") == 0;
	*status_r = "BAD";
	if (!strings_valid(cmd->args, cmd->count, strings)) {
		*error_r = "String is not valid UTF-8.";
		return -1;
	}
	if (search && search_has_charset(args, count)) {
		*error_r = "CHARSET not allowed once UTF8=ACCEPT is enabled.";
		return -1;
	}
	if ((sort || thread) && charset_not_utf8(args, count)) {
		*error_r = "Only the UTF-8 charset is allowed once UTF8=ACCEPT is enabled.";
		return -1;
	}
	unsigned which = mailbox_args(cmd);
	for (size_t i = 0; i < cmd->count && i < 8; i++) {
		if ((which & (1u << i)) && translate_name(&cmd->args[i], status_r, error_r) < 0)
			return -1;
	}
	return 0;
}

void imap_utf8_name_append(const struct imap_session *s, struct buf *out, const char *name)
{
	if (s->utf8_enabled) {
		struct buf utf8;
		buf_init(&utf8, 0);
		if (folder_name_to_utf8(name, &utf8) == 0) {
			(void)imap_string_append(out, buf_cstr(&utf8), utf8.len,
			                         IMAP_STRING_ALLOW_ATOM | IMAP_STRING_UTF8);
			buf_free(&utf8);
			return;
		}
		buf_free(&utf8);
	}
	(void)imap_string_append(out, name, strlen(name), IMAP_STRING_ALLOW_ATOM);
}
