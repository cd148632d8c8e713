/* From a raw header block to the fields the IMAP envelope and bodystructure need. */
#include "mime/mime_fields.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "mime/mime_header.h"
#include "mime/mime_parser.h"

static const char *const field_names[MIME_FIELD_COUNT] = {
    [MIME_FIELD_DATE] = "date",
    [MIME_FIELD_SUBJECT] = "subject",
    [MIME_FIELD_FROM] = "from",
    [MIME_FIELD_SENDER] = "sender",
    [MIME_FIELD_REPLY_TO] = "reply-to",
    [MIME_FIELD_TO] = "to",
    [MIME_FIELD_CC] = "cc",
    [MIME_FIELD_BCC] = "bcc",
    [MIME_FIELD_IN_REPLY_TO] = "in-reply-to",
    [MIME_FIELD_MESSAGE_ID] = "message-id",
    [MIME_FIELD_REFERENCES] = "references",
    [MIME_FIELD_CONTENT_TYPE] = "content-type",
};

const char *mime_field_name(int field)
{
	return field >= 0 && field < MIME_FIELD_COUNT ? field_names[field] : NULL;
}

static void set_once(char **slot, const char *value)
{
	if (*slot == NULL)
		*slot = xstrdup(value);
}

static void apply_field(struct mime_part *part, const char *name, size_t name_len,
                        const char *value)
{
	char lower[32];
	if (name_len == 0 || name_len >= sizeof(lower))
		return;
	for (size_t i = 0; i < name_len; i++)
		lower[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
	lower[name_len] = '\0';
	if (part->is_message) {
		for (int f = 0; f < MIME_FIELD_COUNT; f++) {
			if (strcmp(lower, field_names[f]) == 0)
				set_once(&part->fields[f], value);
		}
	}
	if (strncmp(lower, "content-", 8) != 0)
		return;
	const char *sub = lower + 8;
	if (strcmp(sub, "type") == 0)
		mime_parse_content_type(part, value);
	else if (strcmp(sub, "disposition") == 0)
		mime_parse_disposition(part, value);
	else if (strcmp(sub, "transfer-encoding") == 0)
		set_once(&part->encoding, value);
	else if (strcmp(sub, "id") == 0)
		set_once(&part->id, value);
	else if (strcmp(sub, "description") == 0)
		set_once(&part->description, value);
	else if (strcmp(sub, "md5") == 0)
		set_once(&part->md5, value);
	else if (strcmp(sub, "language") == 0)
		set_once(&part->language, value);
	else if (strcmp(sub, "location") == 0)
		set_once(&part->location, value);
}

static void set_default_type(struct mime_part *part)
{
	const struct mime_part *parent = part->parent;
	/* RFC 2046 5.1.5: in multipart/digest the default is message/rfc822. */
	if (parent != NULL && strcasecmp(parent->type, "multipart") == 0 &&
	    strcasecmp(parent->subtype, "digest") == 0) {
		part->type = xstrdup("message");
		part->subtype = xstrdup("rfc822");
		return;
	}
	part->type = xstrdup("text");
	part->subtype = xstrdup("plain");
	part->params = xcalloc(1, sizeof(*part->params));
	part->params->name = xstrdup("charset");
	part->params->value = xstrdup("us-ascii");
}

void mime_fields_apply(struct mime_part *part, const char *block, size_t len)
{
	set_default_type(part);
	const char *p = block, *end = block + len;
	struct buf value;
	buf_init(&value, 0);
	while (p < end) {
		/* One field: its first line and every continuation line (leading WSP). */
		const char *start = p;
		do {
			const char *lf = memchr(p, '\n', (size_t)(end - p));
			p = lf != NULL ? lf + 1 : end;
		} while (p < end && (*p == ' ' || *p == '\t'));
		const char *colon = memchr(start, ':', (size_t)(p - start));
		if (colon == NULL || start[0] == ' ' || start[0] == '\t')
			continue;
		size_t name_len = (size_t)(colon - start);
		while (name_len > 0 && (start[name_len - 1] == ' ' || start[name_len - 1] == '\t'))
			name_len--;
		buf_reset(&value);
		mime_header_unfold(colon + 1, p, &value);
		apply_field(part, start, name_len, buf_cstr(&value));
	}
	buf_free(&value);
}

void mime_fields_clear(struct mime_part *part)
{
	char **strings[] = {&part->type,        &part->subtype,  &part->id,
	                    &part->description, &part->encoding, &part->md5,
	                    &part->disposition, &part->language, &part->location};
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		free(*strings[i]);
		*strings[i] = NULL;
	}
	for (int f = 0; f < MIME_FIELD_COUNT; f++) {
		free(part->fields[f]);
		part->fields[f] = NULL;
	}
	mime_params_free(&part->params);
	mime_params_free(&part->disposition_params);
}
