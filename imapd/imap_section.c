/*
 * Locating and producing FETCH body sections (see imap_section.h). The file is read with
 * pread in bounded chunks and converted to CRLF on the fly; the virtual position counts
 * the converted bytes so a partial range can skip and stop exactly.
 */
#include "imap_section.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "imap_fetch_items.h"
#include "mime/mime_decode.h"
#include "mime/mime_parser.h"

#define SECTION_CHUNK 65536

struct imap_section {
	int fd;
	bool in_memory;
	struct buf mem;  /* HEADER.FIELDS result (already CRLF) */
	uint64_t offset; /* file range, physical */
	uint64_t end;
	uint64_t vpos;   /* virtual position reached */
	uint64_t vstart; /* partial range, virtual */
	uint64_t vend;
	bool prev_cr; /* last physical byte read was CR */
	char *chunk;  /* physical read buffer */
	size_t chunk_len;
	size_t chunk_pos;
	bool pending_lf; /* a converted CRLF was split: its LF is still to be sent */
};

static bool is_type(const struct mime_part *p, const char *type, const char *subtype)
{
	return strcasecmp(p->type, type) == 0 &&
	       (subtype == NULL || strcasecmp(p->subtype, subtype) == 0);
}

static bool is_rfc822(const struct mime_part *p)
{
	return !p->is_message &&
	       (is_type(p, "message", "rfc822") || is_type(p, "message", "global"));
}

const struct mime_part *imap_section_find_part(const struct mime_part *root,
                                               const uint32_t *numbers, size_t n)
{
	const struct mime_part *cur = root;
	bool leaf = false;
	for (size_t i = 0; i < n; i++) {
		const struct mime_part *container = cur;
		if (leaf)
			return NULL;
		if (is_rfc822(container))
			container = container->children;
		if (container == NULL)
			return NULL;
		if (is_type(container, "multipart", NULL)) {
			const struct mime_part *child = container->children;
			for (uint32_t k = 1; child != NULL && k < numbers[i]; k++)
				child = child->next;
			if (child == NULL)
				return NULL;
			cur = child;
		} else if (container->is_message && numbers[i] == 1) {
			/* RFC 3501 6.4.5: a non-multipart message has exactly one part, 1. */
			cur = container;
			leaf = true;
		} else {
			return NULL;
		}
	}
	return cur;
}

/* The message a HEADER/TEXT section applies to: the root, or a message/rfc822's. */
static const struct mime_part *section_message(const struct mime_part *part, size_t n)
{
	if (n == 0)
		return part;
	return is_rfc822(part) ? part->children : NULL;
}

static bool field_listed(const struct imap_fetch_body *body, const char *name, size_t len)
{
	for (size_t i = 0; i < body->n_fields; i++) {
		if (strlen(body->fields[i]) == len && strncasecmp(body->fields[i], name, len) == 0)
			return true;
	}
	return false;
}

/* Appends text with bare LF turned into CRLF. */
static void append_crlf(struct buf *out, const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			(void)buf_append_char(out, '\r');
		(void)buf_append_char(out, p[i]);
	}
}

/* HEADER.FIELDS (NOT): the listed (or unlisted) fields with their continuation lines,
 * then the blank line that ends a header (RFC 3501 6.4.5). */
static void filter_header(const char *hdr, size_t len, const struct imap_fetch_body *body,
                          struct buf *out)
{
	bool keep = false;
	size_t pos = 0;
	while (pos < len) {
		const char *line = hdr + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t llen = nl != NULL ? (size_t)(nl - line) + 1 : len - pos;
		size_t content = llen;
		while (content > 0 && (line[content - 1] == '\n' || line[content - 1] == '\r'))
			content--;
		if (content == 0)
			break; /* the blank line: end of the header */
		if (line[0] != ' ' && line[0] != '\t') {
			const char *colon = memchr(line, ':', content);
			size_t nlen = colon != NULL ? (size_t)(colon - line) : 0;
			while (nlen > 0 && (line[nlen - 1] == ' ' || line[nlen - 1] == '\t'))
				nlen--;
			bool listed = colon != NULL && field_listed(body, line, nlen);
			keep = colon != NULL &&
			       (body->text == SECTION_HEADER_FIELDS ? listed : !listed);
		}
		if (keep)
			append_crlf(out, line, llen);
		pos += llen;
	}
	if (out->len > 0 && out->data[out->len - 1] != '\n')
		(void)buf_append_str(out, "\r\n");
	(void)buf_append_str(out, "\r\n");
}

static int read_range(int fd, uint64_t offset, uint64_t len, struct buf *out)
{
	char *tmp = xmalloc(len > 0 ? (size_t)len : 1);
	size_t done = 0;
	while (done < len) {
		ssize_t n = pread(fd, tmp + done, (size_t)len - done, (off_t)(offset + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(tmp);
			return -1;
		}
		done += (size_t)n;
	}
	(void)buf_append(out, tmp, done);
	free(tmp);
	return 0;
}

static void apply_partial(struct imap_section *s, const struct imap_fetch_body *body,
                          uint64_t total)
{
	s->vstart = 0;
	s->vend = total;
	if (body->partial) {
		s->vstart = body->origin < total ? body->origin : total;
		uint64_t end = (uint64_t)body->origin + body->length;
		s->vend = end < total ? end : total;
	}
}

int imap_section_open(int fd, const struct mime_part *root, const struct imap_fetch_body *body,
                      struct imap_section **section_r)
{
	*section_r = NULL;
	const struct mime_part *part = imap_section_find_part(root, body->part, body->n_part);
	if (part == NULL)
		return 0;
	uint64_t offset, physical, virtual_size;
	const struct mime_part *msg;
	switch (body->text) {
	case SECTION_ALL:
		if (body->n_part == 0) {
			offset = part->header_offset;
			physical = part->header.physical + part->body.physical;
			virtual_size = part->header.virtual_size + part->body.virtual_size;
		} else {
			offset = part->body_offset;
			physical = part->body.physical;
			virtual_size = part->body.virtual_size;
		}
		break;
	case SECTION_MIME:
		offset = part->header_offset;
		physical = part->header.physical;
		virtual_size = part->header.virtual_size;
		break;
	case SECTION_TEXT:
		if ((msg = section_message(part, body->n_part)) == NULL)
			return 0;
		offset = msg->body_offset;
		physical = msg->body.physical;
		virtual_size = msg->body.virtual_size;
		break;
	default: /* HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT */
		if ((msg = section_message(part, body->n_part)) == NULL)
			return 0;
		offset = msg->header_offset;
		physical = msg->header.physical;
		virtual_size = msg->header.virtual_size;
		break;
	}
	struct imap_section *s = xcalloc(1, sizeof(*s));
	s->fd = fd;
	buf_init(&s->mem, 0);
	if (body->text == SECTION_HEADER_FIELDS || body->text == SECTION_HEADER_FIELDS_NOT) {
		struct buf raw;
		buf_init(&raw, 0);
		if (read_range(fd, offset, physical, &raw) < 0) {
			buf_free(&raw);
			imap_section_free(&s);
			return -1;
		}
		filter_header(buf_cstr(&raw), raw.len, body, &s->mem);
		buf_free(&raw);
		s->in_memory = true;
		apply_partial(s, body, s->mem.len);
	} else {
		s->offset = offset;
		s->end = offset + physical;
		s->chunk = xmalloc(SECTION_CHUNK);
		apply_partial(s, body, virtual_size);
	}
	*section_r = s;
	return 0;
}

int imap_binary_decode(const char *cte, const char *in, size_t len, struct buf *out)
{
	if (cte == NULL || strcasecmp(cte, "7bit") == 0 || strcasecmp(cte, "8bit") == 0) {
		append_crlf(out, in, len);
	} else if (strcasecmp(cte, "binary") == 0) {
		(void)buf_append(out, in, len);
	} else if (strcasecmp(cte, "base64") == 0) {
		mime_base64_decode(in, len, out);
	} else if (strcasecmp(cte, "quoted-printable") == 0) {
		/* Hard line breaks are CRLF in the canonical form; "=0A" stays a bare LF. */
		struct buf crlf;
		buf_init(&crlf, 0);
		append_crlf(&crlf, in, len);
		mime_qp_decode(buf_cstr(&crlf), crlf.len, out);
		buf_free(&crlf);
	} else {
		return IMAP_BINARY_UNKNOWN_CTE;
	}
	return 0;
}

int imap_section_open_binary(int fd, const struct mime_part *root,
                             const struct imap_fetch_body *body, struct imap_section **section_r)
{
	*section_r = NULL;
	const struct mime_part *part = imap_section_find_part(root, body->part, body->n_part);
	if (part == NULL)
		return 0;
	uint64_t offset = part->body_offset, physical = part->body.physical;
	const char *cte = part->encoding;
	if (body->n_part == 0) {
		/* The whole message: header and body as they are (no transfer encoding). */
		offset = part->header_offset;
		physical = part->header.physical + part->body.physical;
		cte = NULL;
	} else if (strcasecmp(part->type, "multipart") == 0 || is_rfc822(part)) {
		cte = NULL; /* RFC 2045 6.4: composite types are 7bit, 8bit or binary */
	}
	if (physical > IMAP_BINARY_MAX)
		return IMAP_BINARY_TOO_BIG;
	struct buf raw;
	buf_init(&raw, 0);
	if (read_range(fd, offset, physical, &raw) < 0) {
		buf_free(&raw);
		return -1;
	}
	struct imap_section *s = xcalloc(1, sizeof(*s));
	s->fd = fd;
	s->in_memory = true;
	/* CRLF conversion at most doubles the stored size. */
	buf_init(&s->mem, (size_t)IMAP_BINARY_MAX * 2);
	int r = imap_binary_decode(cte, buf_cstr(&raw), raw.len, &s->mem);
	buf_free(&raw);
	if (r < 0) {
		imap_section_free(&s);
		return r;
	}
	apply_partial(s, body, s->mem.len);
	*section_r = s;
	return 0;
}

bool imap_section_has_nul(const struct imap_section *s)
{
	return s->in_memory && s->vend > s->vstart &&
	       memchr(s->mem.data + s->vstart, '\0', (size_t)(s->vend - s->vstart)) != NULL;
}

uint64_t imap_section_size(const struct imap_section *s)
{
	return s->vend - s->vstart;
}

/* Next converted byte, or -1 at the end of the range, -2 on a read error. */
static int next_virtual_byte(struct imap_section *s)
{
	if (s->pending_lf) {
		s->pending_lf = false;
		s->prev_cr = false;
		return '\n';
	}
	if (s->chunk_pos == s->chunk_len) {
		if (s->offset >= s->end)
			return -1;
		size_t want = s->end - s->offset < SECTION_CHUNK ? (size_t)(s->end - s->offset)
		                                                 : SECTION_CHUNK;
		ssize_t n;
		do {
			n = pread(s->fd, s->chunk, want, (off_t)s->offset);
		} while (n < 0 && errno == EINTR);
		if (n <= 0)
			return -2;
		s->offset += (uint64_t)n;
		s->chunk_len = (size_t)n;
		s->chunk_pos = 0;
	}
	char c = s->chunk[s->chunk_pos++];
	if (c == '\n' && !s->prev_cr) {
		s->pending_lf = true;
		return '\r';
	}
	s->prev_cr = c == '\r';
	return (unsigned char)c;
}

ssize_t imap_section_read(struct imap_section *s, char *out, size_t max)
{
	size_t n = 0;
	if (s->in_memory) {
		if (s->vpos < s->vstart)
			s->vpos = s->vstart;
		uint64_t left = s->vend - s->vpos;
		n = left < max ? (size_t)left : max;
		memcpy(out, s->mem.data + s->vpos, n);
		s->vpos += n;
		return (ssize_t)n;
	}
	while (n < max && s->vpos < s->vend) {
		int c = next_virtual_byte(s);
		if (c == -2)
			return -1;
		if (c == -1)
			break;
		if (s->vpos >= s->vstart)
			out[n++] = (char)c;
		s->vpos++;
	}
	return (ssize_t)n;
}

void imap_section_free(struct imap_section **sp)
{
	struct imap_section *s = *sp;
	if (s == NULL)
		return;
	buf_free(&s->mem);
	free(s->chunk);
	free(s);
	*sp = NULL;
}
