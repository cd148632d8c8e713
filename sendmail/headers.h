/*
 * The message's header block as the sendmail command reads it from stdin: kept as lines
 * (without line ends) so -t can pull recipients out of To/Cc/Bcc and drop Bcc, and so
 * missing From/Date/Message-ID can be added.
 */
#ifndef TERN_SENDMAIL_HEADERS_H
#define TERN_SENDMAIL_HEADERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define HEADERS_MAX_BYTES (1024 * 1024)

struct header_block {
	char **lines; /* each a complete field: continuation lines joined with "\r\n" */
	size_t n;
	size_t bytes;
	/* The first body line, already read (NULL when the block ended with an empty line
	 * or at EOF) and whether the input ended (".", or EOF). */
	char *first_body_line;
	bool eof;
};

/* Reads the header block. ignore_dots: a lone "." does not end the input. Returns 0, or -1
 * when the block is over HEADERS_MAX_BYTES. */
int headers_read(FILE *in, bool ignore_dots, struct header_block *h);
void headers_free(struct header_block *h);
/* True when a field with this name (case-insensitive) exists. */
bool headers_has(const struct header_block *h, const char *name);
/* Appends to *list the addresses of every To, Cc and Bcc field (RFC 5322 address lists:
 * display names, comments, groups); removes the Bcc fields when remove_bcc. */
void headers_extract_recipients(struct header_block *h, bool remove_bcc, char ***list, size_t *n);
/* Splits one RFC 5322 address list into bare addresses (appended to *list). */
void headers_parse_address_list(const char *text, char ***list, size_t *n);

#endif
