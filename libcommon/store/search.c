/* Header and body substring search with decoding (see search.h). */
#include "store/search.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "mime/mime_decode.h"
#include "mime/mime_fields.h"
#include "mime/mime_header.h"
#include "mime/mime_parser.h"
#include "store/mailbox.h"

static bool folded_contains(const struct buf *hay, const struct buf *needle)
{
	if (needle->len == 0)
		return true;
	return hay->len >= needle->len &&
	       memmem(hay->data, hay->len, needle->data, needle->len) != NULL;
}

bool search_text_contains(const char *haystack, size_t len, const char *needle)
{
	struct buf h, n;
	buf_init(&h, 0);
	buf_init(&n, 0);
	mime_utf8_fold(haystack, len, &h);
	mime_utf8_fold(needle, strlen(needle), &n);
	bool found = folded_contains(&h, &n);
	buf_free(&h);
	buf_free(&n);
	return found;
}

/* A header value with encoded words decoded, folded, searched. */
static bool header_value_contains(const char *value, size_t len, const char *needle)
{
	struct buf decoded;
	buf_init(&decoded, 0);
	mime_header_decode(value, len, &decoded);
	bool found = search_text_contains(buf_cstr(&decoded), decoded.len, needle);
	buf_free(&decoded);
	return found;
}

/* Reads up to max bytes of the message file (a whole file when smaller). */
static enum store_error read_message(struct store_mailbox *box, size_t seq, size_t max,
                                     bool header_only, struct buf *out)
{
	char *path = store_mailbox_msg_path(box, seq);
	if (path == NULL)
		return STORE_ENOENT;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return errno == ENOENT ? STORE_ENOENT : STORE_ETEMP;
	char chunk[16384];
	ssize_t n;
	while (out->len < max && (n = read(fd, chunk, sizeof(chunk))) > 0) {
		size_t take = (size_t)n < max - out->len ? (size_t)n : max - out->len;
		buf_append(out, chunk, take);
		if (header_only && (memmem(out->data, out->len, "\n\n", 2) != NULL ||
		                    memmem(out->data, out->len, "\n\r\n", 3) != NULL))
			break;
	}
	close(fd);
	return STORE_OK;
}

/* Calls the search for each field named name in a raw header block. */
static bool block_field_contains(const char *block, size_t len, const char *name,
                                 const char *needle)
{
	size_t name_len = strlen(name);
	const char *p = block, *end = block + len;
	while (p < end) {
		const char *start = p;
		do {
			const char *lf = memchr(p, '\n', (size_t)(end - p));
			p = lf != NULL ? lf + 1 : end;
		} while (p < end && (*p == ' ' || *p == '\t'));
		if (start[0] == '\n' || (start[0] == '\r' && start + 1 < end && start[1] == '\n'))
			break; /* the end of the header */
		const char *colon = memchr(start, ':', (size_t)(p - start));
		if (colon == NULL || (size_t)(colon - start) != name_len ||
		    strncasecmp(start, name, name_len) != 0)
			continue;
		struct buf value;
		buf_init(&value, 0);
		mime_header_unfold(colon + 1, p, &value);
		bool found = header_value_contains(buf_cstr(&value), value.len, needle);
		buf_free(&value);
		if (found)
			return true;
	}
	return false;
}

enum store_error store_search_header(struct store_mailbox *box, size_t seq, const char *field,
                                     const char *needle, bool *match_r)
{
	*match_r = false;
	/* Fields the cache holds (only the first of each; enough for list views). */
	for (int f = 0; f < MIME_FIELD_COUNT; f++) {
		if (strcasecmp(field, mime_field_name(f)) != 0)
			continue;
		struct store_cache c;
		enum store_error e = store_mailbox_cache(box, seq, &c);
		if (e != STORE_OK)
			return e;
		const char *v = c.fields[f];
		*match_r = v != NULL && header_value_contains(v, strlen(v), needle);
		store_cache_free(&c);
		return STORE_OK;
	}
	struct buf msg;
	buf_init(&msg, 0);
	enum store_error e = read_message(box, seq, SEARCH_MAX_HEADER, true, &msg);
	if (e == STORE_OK)
		*match_r = block_field_contains(buf_cstr(&msg), msg.len, field, needle);
	buf_free(&msg);
	return e;
}

struct body_search {
	const char *data;
	size_t len;
	struct buf needle; /* folded */
	bool found;
};

/* Decodes one text part's body and searches it. */
static void search_part(struct body_search *s, const struct mime_part *part)
{
	if (part->body_offset >= s->len)
		return;
	size_t blen = (size_t)part->body.physical;
	if (blen > s->len - part->body_offset)
		blen = s->len - (size_t)part->body_offset;
	const char *body = s->data + part->body_offset;
	struct buf raw, utf8, folded;
	buf_init(&raw, 0);
	buf_init(&utf8, 0);
	buf_init(&folded, 0);
	const char *enc = part->encoding != NULL ? part->encoding : "7bit";
	if (strcasecmp(enc, "base64") == 0)
		mime_base64_decode(body, blen, &raw);
	else if (strcasecmp(enc, "quoted-printable") == 0)
		mime_qp_decode(body, blen, &raw);
	else
		buf_append(&raw, body, blen);
	mime_charset_to_utf8(mime_param_get(part->params, "charset"), buf_cstr(&raw), raw.len,
	                     &utf8);
	mime_utf8_fold(buf_cstr(&utf8), utf8.len, &folded);
	s->found = folded_contains(&folded, &s->needle);
	buf_free(&raw);
	buf_free(&utf8);
	buf_free(&folded);
}

static void search_tree(struct body_search *s, const struct mime_part *part, bool headers)
{
	for (; part != NULL && !s->found; part = part->next) {
		if (headers && part->is_message && part->header_offset < s->len) {
			size_t hlen = (size_t)part->header.physical;
			if (hlen > s->len - part->header_offset)
				hlen = s->len - (size_t)part->header_offset;
			struct buf dec, folded;
			buf_init(&dec, 0);
			buf_init(&folded, 0);
			mime_header_decode(s->data + part->header_offset, hlen, &dec);
			mime_utf8_fold(buf_cstr(&dec), dec.len, &folded);
			s->found = folded_contains(&folded, &s->needle);
			buf_free(&dec);
			buf_free(&folded);
		}
		if (s->found)
			return;
		if (part->children != NULL)
			search_tree(s, part->children, headers);
		else if (strcasecmp(part->type, "text") == 0)
			search_part(s, part);
	}
}

enum store_error store_search_body(struct store_mailbox *box, size_t seq, const char *needle,
                                   bool with_headers, bool *match_r)
{
	*match_r = false;
	struct buf msg;
	buf_init(&msg, 0);
	enum store_error e = read_message(box, seq, SEARCH_MAX_MESSAGE, false, &msg);
	if (e != STORE_OK) {
		buf_free(&msg);
		return e;
	}
	struct mime_part *root = mime_parse_buffer(buf_cstr(&msg), msg.len, NULL);
	struct body_search s = {.data = buf_cstr(&msg), .len = msg.len};
	buf_init(&s.needle, 0);
	mime_utf8_fold(needle, strlen(needle), &s.needle);
	search_tree(&s, root, with_headers);
	*match_r = s.found;
	buf_free(&s.needle);
	mime_part_free(&root);
	buf_free(&msg);
	return STORE_OK;
}
