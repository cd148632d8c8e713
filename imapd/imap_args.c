/*
 * A recursive-descent parser over one complete, normalised IMAP command (see
 * imap_args.h). Depth and argument caps bound the work and memory a command can cost.
 */
#include "imap_args.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/xalloc.h"

struct args_parser {
	const char *text;
	const char *p;
	const char *end;
	const struct imap_streamed_literal *streamed;
	size_t n_streamed;
	size_t next_stream;
	const struct imap_args_limits *limits;
	unsigned n_args;
	const char *error;
};

static bool atom_char(unsigned char c)
{
	/* RFC 3501 ATOM-CHAR is any CHAR except atom-specials "(){ %*\"\\]" and CTL; we
	 * accept '%', '*', ']' and a leading '\\' (see imap_args.h). */
	return c > 0x20 && c < 0x7f && c != '(' && c != ')' && c != '{' && c != '"';
}

static int parse_list(struct args_parser *ap, struct imap_arg **list_r, size_t *count_r,
                      unsigned depth, char close);

static int parse_atom(struct args_parser *ap, struct imap_arg *arg)
{
	const char *start = ap->p;
	unsigned bracket = 0;
	while (ap->p < ap->end) {
		unsigned char c = (unsigned char)*ap->p;
		if (bracket > 0) {
			if (c == '\r' || c == '\n' || c == '\0')
				break;
			if (c == '[')
				bracket++;
			else if (c == ']')
				bracket--;
			ap->p++;
			continue;
		}
		if (c == '[') {
			bracket++;
			ap->p++;
			continue;
		}
		if (!atom_char(c) || (c == '\\' && ap->p != start))
			break;
		ap->p++;
	}
	if (bracket > 0) {
		ap->error = "Missing ']'";
		return -1;
	}
	if (ap->p == start) {
		ap->error = "Unexpected character";
		return -1;
	}
	arg->type = IMAP_ARG_ATOM;
	arg->len = (size_t)(ap->p - start);
	arg->str = xstrndup(start, arg->len);
	return 0;
}

static int parse_quoted(struct args_parser *ap, struct imap_arg *arg)
{
	ap->p++; /* the opening quote */
	const char *start = ap->p;
	size_t n = 0;
	/* First pass: validate and measure. */
	for (const char *q = start;; q++) {
		if (q >= ap->end || *q == '\r' || *q == '\n' || *q == '\0') {
			ap->error = q < ap->end && *q == '\0' ? "NUL in quoted string"
			                                      : "Unterminated quoted string";
			return -1;
		}
		if (*q == '"')
			break;
		if (*q == '\\') {
			q++;
			if (q >= ap->end || (*q != '"' && *q != '\\')) {
				ap->error = "Invalid escape in quoted string";
				return -1;
			}
		}
		n++;
	}
	char *s = xmalloc(n + 1);
	size_t i = 0;
	while (*ap->p != '"') {
		if (*ap->p == '\\')
			ap->p++;
		s[i++] = *ap->p++;
	}
	s[i] = '\0';
	ap->p++; /* closing quote */
	arg->type = IMAP_ARG_QUOTED;
	arg->str = s;
	arg->len = n;
	return 0;
}

/* "{N}\r\n" or "{N+}\r\n" (with '~' already skipped for literal8) and its data. */
static int parse_literal(struct args_parser *ap, struct imap_arg *arg)
{
	ap->p++; /* '{' */
	uint64_t size = 0;
	const char *digits = ap->p;
	while (ap->p < ap->end && isdigit((unsigned char)*ap->p)) {
		if (__builtin_mul_overflow(size, 10, &size) ||
		    __builtin_add_overflow(size, (uint64_t)(*ap->p - '0'), &size)) {
			ap->error = "Invalid literal size";
			return -1;
		}
		ap->p++;
	}
	if (ap->p == digits) {
		ap->error = "Invalid literal size";
		return -1;
	}
	if (ap->p < ap->end && *ap->p == '+')
		ap->p++;
	if (ap->end - ap->p < 3 || memcmp(ap->p, "}\r\n", 3) != 0) {
		ap->error = "Invalid literal";
		return -1;
	}
	ap->p += 3;
	size_t offset = (size_t)(ap->p - ap->text);
	if (ap->next_stream < ap->n_streamed && ap->streamed[ap->next_stream].offset == offset) {
		if (ap->streamed[ap->next_stream].size != size) {
			ap->error = "Invalid literal";
			return -1;
		}
		arg->type = IMAP_ARG_STREAMED;
		arg->stream_index = ap->next_stream++;
		arg->stream_size = size;
		return 0;
	}
	/* The command's final CR must remain after the literal's data. */
	if ((uint64_t)(ap->end - ap->p) <= size) {
		ap->error = "Literal shorter than announced";
		return -1;
	}
	arg->type = IMAP_ARG_LITERAL;
	arg->len = (size_t)size;
	arg->str = xmalloc(arg->len + 1);
	memcpy(arg->str, ap->p, arg->len);
	arg->str[arg->len] = '\0';
	ap->p += arg->len;
	return 0;
}

static int parse_arg(struct args_parser *ap, struct imap_arg *arg, unsigned depth)
{
	memset(arg, 0, sizeof(*arg));
	if (++ap->n_args > ap->limits->max_args) {
		ap->error = "Too many arguments";
		return -1;
	}
	switch (*ap->p) {
	case '"':
		return parse_quoted(ap, arg);
	case '{':
		return parse_literal(ap, arg);
	case '~':
		if (ap->end - ap->p > 1 && ap->p[1] == '{') {
			ap->p++;
			arg->literal8 = true;
			return parse_literal(ap, arg);
		}
		return parse_atom(ap, arg);
	case '(':
		if (depth >= ap->limits->max_depth) {
			ap->error = "Too deeply nested";
			return -1;
		}
		ap->p++;
		arg->type = IMAP_ARG_LIST;
		return parse_list(ap, &arg->list, &arg->count, depth + 1, ')');
	default:
		return parse_atom(ap, arg);
	}
}

/*
 * Arguments separated by single spaces until `close` (')' for a list, '\r' for the
 * end of the command). Appends to a growing array.
 */
static int parse_list(struct args_parser *ap, struct imap_arg **list_r, size_t *count_r,
                      unsigned depth, char close)
{
	struct imap_arg *list = NULL;
	size_t count = 0, cap = 0;
	bool first = true;

	*list_r = NULL;
	*count_r = 0;
	for (;;) {
		if (ap->p >= ap->end) {
			ap->error = close == ')' ? "Missing ')'" : "Unexpected end of command";
			goto fail;
		}
		if (*ap->p == close)
			break;
		if (!first || close == '\r') {
			if (*ap->p != ' ') {
				ap->error = close == ')' ? "Missing ')'" : "Expected space";
				goto fail;
			}
			ap->p++;
			/* Some clients send a trailing space before CRLF; accept it. */
			if (close == '\r' && ap->p < ap->end && *ap->p == '\r')
				break;
		}
		first = false;
		if (count == cap) {
			cap = cap == 0 ? 4 : cap * 2;
			list = xreallocarray(list, cap, sizeof(*list));
		}
		if (parse_arg(ap, &list[count], depth) < 0) {
			count++;
			goto fail;
		}
		count++;
	}
	ap->p++; /* the closing ')' or '\r' */
	*list_r = list;
	*count_r = count;
	return 0;
fail:
	*list_r = list;
	*count_r = count;
	return -1;
}

static void arg_free(struct imap_arg *arg)
{
	free(arg->str);
	for (size_t i = 0; i < arg->count; i++)
		arg_free(&arg->list[i]);
	free(arg->list);
}

void imap_command_free(struct imap_command *cmd)
{
	for (size_t i = 0; i < cmd->count; i++)
		arg_free(&cmd->args[i]);
	free(cmd->args);
	free(cmd->tag);
	free(cmd->name);
	memset(cmd, 0, sizeof(*cmd));
}

static bool tag_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f && strchr("(){%*\"\\+", c) == NULL;
}

int imap_args_parse(const char *text, size_t len, const struct imap_streamed_literal *streamed,
                    size_t n_streamed, const struct imap_args_limits *limits,
                    struct imap_command *cmd_r, const char **error_r, char **tag_r)
{
	struct args_parser ap = {
	    .text = text,
	    .p = text,
	    .end = text + len,
	    .streamed = streamed,
	    .n_streamed = n_streamed,
	    .limits = limits,
	};
	memset(cmd_r, 0, sizeof(*cmd_r));
	*tag_r = NULL;
	if (len < 2 || text[len - 2] != '\r' || text[len - 1] != '\n') {
		*error_r = "Command not terminated";
		return -1;
	}
	ap.end = text + len - 1; /* the final LF; '\r' closes the top-level list */

	const char *t = ap.p;
	while (ap.p < ap.end && ap.p - t < 64 && tag_char((unsigned char)*ap.p))
		ap.p++;
	if (ap.p == t || ap.p >= ap.end || *ap.p != ' ') {
		*error_r = "Invalid tag";
		return -1;
	}
	cmd_r->tag = xstrndup(t, (size_t)(ap.p - t));
	ap.p++;

	const char *n = ap.p;
	while (ap.p < ap.end && isalnum((unsigned char)*ap.p))
		ap.p++;
	if (ap.p == n || (*ap.p != ' ' && *ap.p != '\r') || ap.p - n > 32) {
		*error_r = "Invalid command";
		*tag_r = xstrdup(cmd_r->tag);
		imap_command_free(cmd_r);
		return -1;
	}
	cmd_r->name = xstrndup(n, (size_t)(ap.p - n));
	for (char *c = cmd_r->name; *c != '\0'; c++)
		*c = (char)toupper((unsigned char)*c);

	if (parse_list(&ap, &cmd_r->args, &cmd_r->count, 0, '\r') < 0 || ap.p != ap.end) {
		*error_r = ap.error != NULL ? ap.error : "Trailing characters";
		*tag_r = xstrdup(cmd_r->tag);
		imap_command_free(cmd_r);
		return -1;
	}
	return 0;
}

const char *imap_arg_astring(const struct imap_arg *arg)
{
	switch (arg->type) {
	case IMAP_ARG_ATOM:
	case IMAP_ARG_QUOTED:
		return arg->str;
	case IMAP_ARG_LITERAL:
		return memchr(arg->str, '\0', arg->len) == NULL ? arg->str : NULL;
	default:
		return NULL;
	}
}

bool imap_arg_atom_is(const struct imap_arg *arg, const char *word)
{
	return arg->type == IMAP_ARG_ATOM && strcasecmp(arg->str, word) == 0;
}

bool imap_arg_is_nil(const struct imap_arg *arg)
{
	return imap_arg_atom_is(arg, "NIL");
}
