/*
 * DATA dot-unstuffing and end-of-data detection, and the CRLF check for BDAT chunks.
 * See smtp_data.h for the contract; the states below name what was just seen.
 */
#include "smtp_data.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum {
	ST_BOL,    /* at the beginning of a line */
	ST_DOT,    /* a dot at the beginning of a line */
	ST_DOT_CR, /* ".<CR>" at the beginning of a line */
	ST_MID,    /* inside a line */
	ST_CR,     /* a CR inside a line (held back until its LF arrives) */
};

void smtp_data_decoder_init(struct smtp_data_decoder *d)
{
	d->state = ST_BOL;
}

enum smtp_data_result smtp_data_decode(struct smtp_data_decoder *d, const char *in, size_t len,
                                       char *out, size_t *out_len_r, size_t *used_r)
{
	size_t o = 0, i;

	for (i = 0; i < len; i++) {
		char c = in[i];
		switch (d->state) {
		case ST_BOL:
			if (c == '.') {
				d->state = ST_DOT;
				break;
			}
			/* fall through */
		case ST_MID:
			if (c == '\r') {
				d->state = ST_CR;
			} else if (c == '\n') {
				*out_len_r = o;
				*used_r = i + 1;
				return SMTP_DATA_BARE_LF;
			} else {
				out[o++] = c;
				d->state = ST_MID;
			}
			break;
		case ST_DOT:
			if (c == '\r') {
				d->state = ST_DOT_CR;
			} else if (c == '\n') {
				*out_len_r = o;
				*used_r = i + 1;
				return SMTP_DATA_BARE_LF;
			} else {
				/* RFC 5321 4.5.2: the leading dot is dropped. */
				out[o++] = c;
				d->state = ST_MID;
			}
			break;
		case ST_DOT_CR:
			*out_len_r = o;
			*used_r = i + 1;
			if (c == '\n') {
				d->state = ST_BOL;
				return SMTP_DATA_END;
			}
			return SMTP_DATA_BARE_CR;
		case ST_CR:
			if (c != '\n') {
				*out_len_r = o;
				*used_r = i + 1;
				return SMTP_DATA_BARE_CR;
			}
			out[o++] = '\r';
			out[o++] = '\n';
			d->state = ST_BOL;
			break;
		}
	}
	*out_len_r = o;
	*used_r = i;
	return SMTP_DATA_MORE;
}

enum smtp_data_result smtp_crlf_check(struct smtp_crlf_check *c, const char *in, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (c->after_cr) {
			if (in[i] != '\n')
				return SMTP_DATA_BARE_CR;
			c->after_cr = false;
		} else if (in[i] == '\r') {
			c->after_cr = true;
		} else if (in[i] == '\n') {
			return SMTP_DATA_BARE_LF;
		}
	}
	return SMTP_DATA_MORE;
}

enum smtp_data_result smtp_crlf_check_end(const struct smtp_crlf_check *c)
{
	return c->after_cr ? SMTP_DATA_BARE_CR : SMTP_DATA_MORE;
}

int smtp_bdat_parse(const char *args, unsigned long long max, unsigned long long *size_r,
                    bool *last_r)
{
	const char *p = args;
	size_t digits = 0;
	unsigned long long size = 0;

	/* RFC 3030 2: bdat-cmd = "BDAT" SP chunk-size [ SP end-marker ] CR LF */
	while (isdigit((unsigned char)p[digits]))
		digits++;
	if (digits == 0 || digits > 19)
		return -1;
	for (size_t i = 0; i < digits; i++)
		size = size * 10 + (unsigned long long)(p[i] - '0');
	if (size > max)
		return -1;
	p += digits;
	*last_r = false;
	if (*p == ' ') {
		while (*p == ' ')
			p++;
		if (strncasecmp(p, "LAST", 4) != 0)
			return -1;
		p += 4;
		while (*p == ' ')
			p++;
		*last_r = true;
	}
	if (*p != '\0')
		return -1;
	*size_r = size;
	return 0;
}
