/*
 * Message framing for DATA (RFC 5321 4.1.1.4, 4.5.2) and the line-ending check used for
 * BDAT chunks (RFC 3030).
 *
 * DATA: only <CRLF>.<CRLF> ends the message. A bare LF or a CR not followed by LF is an
 * error the caller must treat as fatal for the session: accepting either as a line end is
 * what made SMTP smuggling (CVE-2023-51764 class) possible, so `<LF>.<CR><LF>` is never an
 * end of data here. A leading dot is removed from every line (transparency).
 *
 * The decoder is an incremental state machine: it takes any split of the input, one byte
 * at a time included, and gives the same output.
 */
#ifndef TERN_SMTPD_SMTP_DATA_H
#define TERN_SMTPD_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>

enum smtp_data_result {
	SMTP_DATA_MORE, /* all input used; the message goes on */
	SMTP_DATA_END,  /* <CRLF>.<CRLF> seen; *used_r stops right after it */
	SMTP_DATA_BARE_LF,
	SMTP_DATA_BARE_CR,
};

struct smtp_data_decoder {
	int state;
};

/* Starts at the beginning of a line (right after the DATA command's 354). */
void smtp_data_decoder_init(struct smtp_data_decoder *d);

/*
 * Decodes in[0 .. len). Unstuffed message bytes are written to out, which must have room
 * for len + 2 bytes (a CRLF held back at a split is written with the byte after it);
 * *out_len_r gets their count and *used_r the number of input bytes taken. The CRLF
 * before the final dot belongs to the message; the dot line does not.
 */
enum smtp_data_result smtp_data_decode(struct smtp_data_decoder *d, const char *in, size_t len,
                                       char *out, size_t *out_len_r, size_t *used_r);

/* Line-ending check for raw (BDAT) content: only CRLF may end a line. */
struct smtp_crlf_check {
	bool after_cr;
};

/* Returns SMTP_DATA_MORE, SMTP_DATA_BARE_LF or SMTP_DATA_BARE_CR. */
enum smtp_data_result smtp_crlf_check(struct smtp_crlf_check *c, const char *in, size_t len);
/* At the end of the message: a trailing lone CR is a bare CR. */
enum smtp_data_result smtp_crlf_check_end(const struct smtp_crlf_check *c);

/*
 * Parses a BDAT argument "<size> [LAST]". Returns 0 with the size and last flag, or -1.
 * Sizes above max are refused (-1) so a client cannot name an absurd chunk.
 */
int smtp_bdat_parse(const char *args, unsigned long long max, unsigned long long *size_r,
                    bool *last_r);

#endif
