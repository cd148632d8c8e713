/*
 * POP3 command framing and splitting. Nothing here allocates: the caller copies a line
 * only after pop3_line_next() said it is complete and within the cap.
 */
#include "pop3_parse.h"

#include <stdint.h>
#include <string.h>

enum pop3_line_result pop3_line_next(struct pop3_line_parser *p, const char *in, size_t len,
                                     size_t max, size_t *len_r, size_t *used_r)
{
	const char *lf = memchr(in, '\n', len);

	*len_r = 0;
	if (p->skipping) {
		/* Throw away the rest of an over-long line without interpreting it. */
		if (lf == NULL) {
			*used_r = len;
			return POP3_LINE_NEED_MORE;
		}
		p->skipping = false;
		*used_r = (size_t)(lf - in) + 1;
		return POP3_LINE_NEED_MORE;
	}
	if (lf == NULL) {
		/* A trailing CR may be the first half of CRLF: it does not count yet. */
		size_t body = len > 0 && in[len - 1] == '\r' ? len - 1 : len;
		if (body > max) {
			p->skipping = true;
			*used_r = len;
			return POP3_LINE_TOO_LONG;
		}
		*used_r = 0;
		return POP3_LINE_NEED_MORE;
	}
	size_t line_len = (size_t)(lf - in);
	*used_r = line_len + 1;
	if (line_len > 0 && in[line_len - 1] == '\r')
		line_len--;
	if (line_len > max) {
		/* The whole line arrived at once: report it, the terminator is consumed. */
		return POP3_LINE_TOO_LONG;
	}
	*len_r = line_len;
	return POP3_LINE_OK;
}

static bool is_arg_char(unsigned char c)
{
	return c > 0x20 && c < 0x7f;
}

int pop3_command_parse(char *line, size_t len, struct pop3_command *cmd_r, const char **error_r)
{
	size_t i = 0;

	memset(cmd_r, 0, sizeof(*cmd_r));
	cmd_r->rest = "";
	while (i < len && line[i] != ' ') {
		unsigned char c = (unsigned char)line[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) {
			*error_r = "Unknown command.";
			return -1;
		}
		if (i >= POP3_KEYWORD_MAX) {
			*error_r = "Unknown command.";
			return -1;
		}
		cmd_r->name[i] = (char)(c & ~0x20);
		i++;
	}
	if (i == 0) {
		*error_r = "Empty command.";
		return -1;
	}
	cmd_r->name[i] = '\0';
	if (i == len)
		return 0;
	/* line[i] is the space after the keyword. */
	i++;
	cmd_r->rest = line + i;
	for (size_t j = i; j < len; j++) {
		if (line[j] == '\0' || line[j] == '\r' || line[j] == '\n') {
			*error_r = "Invalid characters in command.";
			return -1;
		}
	}
	if (strcmp(cmd_r->name, "PASS") == 0) {
		/* RFC 1939 PASS: the argument is the rest of the line, spaces included. */
		cmd_r->args[0] = cmd_r->rest;
		cmd_r->n_args = 1;
		return 0;
	}
	if (i == len) {
		*error_r = "Invalid spacing in command.";
		return -1;
	}
	while (i < len) {
		size_t start = i;
		while (i < len && line[i] != ' ') {
			if (!is_arg_char((unsigned char)line[i])) {
				*error_r = "Invalid characters in argument.";
				return -1;
			}
			i++;
		}
		if (i == start) {
			*error_r = "Invalid spacing in command.";
			return -1;
		}
		if (cmd_r->n_args == POP3_MAX_ARGS) {
			*error_r = "Too many arguments.";
			return -1;
		}
		cmd_r->args[cmd_r->n_args++] = line + start;
		if (i < len) {
			line[i] = '\0';
			i++;
			if (i == len) {
				*error_r = "Invalid spacing in command.";
				return -1;
			}
		}
	}
	return 0;
}

static int parse_uint32(const char *arg, unsigned *num_r)
{
	uint64_t n = 0;

	if (arg == NULL || *arg == '\0')
		return -1;
	for (const char *p = arg; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		n = n * 10 + (uint64_t)(*p - '0');
		if (n > UINT32_MAX)
			return -1;
	}
	*num_r = (unsigned)n;
	return 0;
}

int pop3_parse_msgnum(const char *arg, unsigned *num_r)
{
	if (parse_uint32(arg, num_r) < 0 || *num_r == 0)
		return -1;
	return 0;
}

int pop3_parse_count(const char *arg, unsigned *num_r)
{
	return parse_uint32(arg, num_r);
}
