/*
 * Received:, Message-ID: and Date: handling on the way to deliverd, plus the size and
 * header-size caps. The header section is the only part of a message held in memory, and
 * it is capped by max_header_size (Postfix's header_size_limit).
 */
#include "headers.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/xalloc.h"

void smtp_format_date(time_t t, char *out, size_t size)
{
	struct tm tm;

	localtime_r(&t, &tm);
	if (strftime(out, size, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0 && size > 0)
		out[0] = '\0';
}

static void emit(struct smtp_msg *m, const char *data, size_t len)
{
	if (len == 0 || m->error != SMTP_MSG_OK)
		return;
	if (m->out(m->out_ctx, data, len) < 0) {
		m->error = SMTP_MSG_SINK_FAILED;
		return;
	}
	if (len >= 2) {
		m->last[0] = data[len - 2];
		m->last[1] = data[len - 1];
	} else {
		m->last[0] = m->last[1];
		m->last[1] = data[0];
	}
}

static void emit_str(struct smtp_msg *m, const char *s)
{
	emit(m, s, strlen(s));
}

void smtp_msg_begin(struct smtp_msg *m, const struct smtp_msg_info *info, smtp_msg_out_fn *out,
                    void *out_ctx)
{
	const struct smtp_msg_info *i = info;
	char date[64];
	struct buf r;

	memset(m, 0, sizeof(*m));
	m->info = *info;
	m->out = out;
	m->out_ctx = out_ctx;
	buf_init(&m->hdr, info->max_header_size);

	/* RFC 5321 4.4; the TLS and auth comments follow Postfix's layout. */
	buf_init(&r, 0);
	/* RFC 5321 4.1.3: an IPv6 address literal is tagged "IPv6:". */
	buf_printf(&r, "Received: from %s (unknown [%s%s])\r\n",
	           i->helo != NULL ? i->helo : "unknown",
	           strchr(i->client_ip, ':') != NULL ? "IPv6:" : "", i->client_ip);
	if (i->tls_version != NULL)
		buf_printf(&r, "\t(using %s with cipher %s)\r\n", i->tls_version,
		           i->tls_cipher != NULL ? i->tls_cipher : "unknown");
	if (i->auth_user != NULL)
		buf_printf(&r, "\t(Authenticated sender: %s)\r\n", i->auth_user);
	buf_printf(&r, "\tby %s (tern) with %s id %s", i->hostname, i->protocol, i->queue_id);
	if (i->for_rcpt != NULL)
		buf_printf(&r, "\r\n\tfor <%s>", i->for_rcpt);
	smtp_format_date(i->now, date, sizeof(date));
	buf_printf(&r, "; %s\r\n", date);
	emit(m, r.data, r.len);
	buf_free(&r);
}

/* Writes the held header lines [0, upto), the added fields, and (if sep) an empty line. */
static void flush_headers(struct smtp_msg *m, size_t upto)
{
	emit(m, m->hdr.data, upto);
	if (m->info.add_missing && !m->has_message_id) {
		char *id = xasprintf("Message-ID: <%s@%s>\r\n", m->info.queue_id, m->info.hostname);
		emit_str(m, id);
		free(id);
	}
	if (m->info.add_missing && !m->has_date) {
		char date[64];
		smtp_format_date(m->info.now, date, sizeof(date));
		emit_str(m, "Date: ");
		emit_str(m, date);
		emit_str(m, "\r\n");
	}
	m->in_body = true;
}

static bool is_field(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);
	return len > n && strncasecmp(line, name, n) == 0 && line[n] == ':';
}

/* RFC 5322 2.2: field-name = 1*ftext (printable ASCII but ':'), then ':'. */
static bool is_header_line(const char *line, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c == ':')
			return i > 0;
		if (c < 33 || c > 126)
			return false;
	}
	return false;
}

/* A complete line (with CRLF) now ends hdr. Returns true when the header section ended. */
static bool header_line_done(struct smtp_msg *m)
{
	const char *line = m->hdr.data + m->line_start;
	size_t len = m->hdr.len - m->line_start;

	if (len == 2) {
		/* The empty line: the fields, ours, then the separator. */
		flush_headers(m, m->line_start);
		emit(m, "\r\n", 2);
		return true;
	}
	if ((line[0] == ' ' || line[0] == '\t') && m->line_start > 0) {
		m->line_start = m->hdr.len;
		return false;
	}
	if (!is_header_line(line, len)) {
		/* A body line with no empty line before it: end the header section here and
		 * put the separator in, as Postfix's cleanup does. */
		flush_headers(m, m->line_start);
		emit(m, "\r\n", 2);
		emit(m, line, len);
		return true;
	}
	if (is_field(line, len, "Message-ID"))
		m->has_message_id = true;
	else if (is_field(line, len, "Date"))
		m->has_date = true;
	m->line_start = m->hdr.len;
	return false;
}

void smtp_msg_write(struct smtp_msg *m, const char *data, size_t len)
{
	m->size += len;
	if (m->error == SMTP_MSG_OK && m->size > m->info.max_message_size)
		m->error = SMTP_MSG_TOO_BIG;
	if (m->error != SMTP_MSG_OK)
		return;
	while (len > 0 && !m->in_body) {
		const char *lf = memchr(data, '\n', len);
		size_t n = lf != NULL ? (size_t)(lf - data) + 1 : len;
		if (buf_append(&m->hdr, data, n) < 0) {
			m->error = SMTP_MSG_HEADER_TOO_BIG;
			return;
		}
		data += n;
		len -= n;
		if (lf != NULL && header_line_done(m)) {
			buf_free(&m->hdr);
			buf_init(&m->hdr, 1);
		}
	}
	if (len > 0)
		emit(m, data, len);
}

enum smtp_msg_error smtp_msg_end(struct smtp_msg *m)
{
	if (m->error != SMTP_MSG_OK)
		return m->error;
	if (!m->in_body) {
		/* No body: the fields received so far, ours, and an unfinished last line. */
		size_t whole = m->line_start;
		/* An empty message, or one whose last line ended, may have no buffer at all. */
		const char *part = m->hdr.data != NULL ? m->hdr.data + whole : "";
		size_t plen = m->hdr.len - whole;
		if (is_field(part, plen, "Message-ID"))
			m->has_message_id = true;
		else if (is_field(part, plen, "Date"))
			m->has_date = true;
		flush_headers(m, whole); /* writes out, leaves m->hdr as it is */
		emit(m, part, plen);
	}
	if (m->last[0] != '\r' || m->last[1] != '\n')
		emit(m, "\r\n", 2);
	return m->error;
}

void smtp_msg_free(struct smtp_msg *m)
{
	buf_free(&m->hdr);
}
