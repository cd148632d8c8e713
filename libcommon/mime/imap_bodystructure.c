/* Rendering of ENVELOPE and BODY[STRUCTURE] from the part tree. */
#include "mime/imap_bodystructure.h"

#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "proto/imap_string.h"
#include "mime/mime_address.h"
#include "mime/mime_parser.h"

static const char *nonempty(const char *s)
{
	return s != NULL && s[0] != '\0' ? s : NULL;
}

void imap_envelope_append(struct buf *out, const struct mime_part *m)
{
	const char *from = m->fields[MIME_FIELD_FROM];
	/* RFC 3501 7.4.2: absent or empty Sender and Reply-To default to From. */
	const char *sender = nonempty(m->fields[MIME_FIELD_SENDER]) ?: from;
	const char *reply_to = nonempty(m->fields[MIME_FIELD_REPLY_TO]) ?: from;
	buf_append_char(out, '(');
	imap_append_nstring(out, m->fields[MIME_FIELD_DATE]);
	buf_append_char(out, ' ');
	imap_append_nstring(out, m->fields[MIME_FIELD_SUBJECT]);
	const char *addrs[] = {from,
	                       sender,
	                       reply_to,
	                       m->fields[MIME_FIELD_TO],
	                       m->fields[MIME_FIELD_CC],
	                       m->fields[MIME_FIELD_BCC]};
	for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		buf_append_char(out, ' ');
		mime_address_list_append(out, addrs[i]);
	}
	buf_append_char(out, ' ');
	imap_append_nstring(out, m->fields[MIME_FIELD_IN_REPLY_TO]);
	buf_append_char(out, ' ');
	imap_append_nstring(out, m->fields[MIME_FIELD_MESSAGE_ID]);
	buf_append_char(out, ')');
}

/* text_charset: a text part without a charset gets "us-ascii" (RFC 2045 5.2), as Dovecot
 * reports it. */
static void append_params(struct buf *out, const struct mime_param *params, bool text_charset)
{
	bool add_charset = text_charset && mime_param_get(params, "charset") == NULL;
	if (params == NULL && !add_charset) {
		buf_append_str(out, "NIL");
		return;
	}
	buf_append_char(out, '(');
	for (const struct mime_param *p = params; p != NULL; p = p->next) {
		if (p != params)
			buf_append_char(out, ' ');
		imap_append_nstring(out, p->name);
		buf_append_char(out, ' ');
		imap_append_nstring(out, p->value);
	}
	if (add_charset)
		buf_append_str(out, params != NULL ? " \"charset\" \"us-ascii\""
		                                   : "\"charset\" \"us-ascii\"");
	buf_append_char(out, ')');
}

/* body-fld-lang: NIL or a list ("en" "de"), as Dovecot sends it even for one tag. */
static void append_language(struct buf *out, const char *lang)
{
	size_t count = 0;
	for (const char *p = lang != NULL ? lang : ""; *p != '\0';) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		size_t len = strcspn(p, ", \t");
		if (len == 0)
			break;
		buf_append_str(out, count++ == 0 ? "(" : " ");
		imap_append_nstring_len(out, p, len);
		p += len;
	}
	buf_append_str(out, count == 0 ? "NIL" : ")");
}

/* body-ext-1part / body-ext-mpart after md5 (or after params for multiparts). */
static void append_dsp_lang_loc(struct buf *out, const struct mime_part *part)
{
	buf_append_char(out, ' ');
	if (part->disposition == NULL) {
		buf_append_str(out, "NIL");
	} else {
		buf_append_char(out, '(');
		imap_append_nstring(out, part->disposition);
		buf_append_char(out, ' ');
		append_params(out, part->disposition_params, false);
		buf_append_char(out, ')');
	}
	buf_append_char(out, ' ');
	append_language(out, part->language);
	buf_append_char(out, ' ');
	imap_append_nstring(out, part->location);
}

static void append_multipart(struct buf *out, const struct mime_part *part, bool extended)
{
	buf_append_char(out, '(');
	if (part->children == NULL) {
		buf_append_str(
		    out, "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0");
		buf_append_str(out, extended ? " NIL NIL NIL NIL)" : ")");
	}
	for (const struct mime_part *c = part->children; c != NULL; c = c->next)
		imap_bodystructure_append(out, c, extended);
	buf_append_char(out, ' ');
	imap_append_nstring(out, part->subtype);
	if (extended) {
		buf_append_char(out, ' ');
		append_params(out, part->params, false);
		append_dsp_lang_loc(out, part);
	}
	buf_append_char(out, ')');
}

void imap_bodystructure_append(struct buf *out, const struct mime_part *part, bool extended)
{
	if (strcasecmp(part->type, "multipart") == 0) {
		append_multipart(out, part, extended);
		return;
	}
	bool message = strcasecmp(part->type, "message") == 0 && part->children != NULL;
	bool unparsed =
	    strcasecmp(part->type, "message") == 0 && part->children == NULL &&
	    (strcasecmp(part->subtype, "rfc822") == 0 || strcasecmp(part->subtype, "global") == 0);
	buf_append_char(out, '(');
	imap_append_nstring(out, unparsed ? "application" : part->type);
	buf_append_char(out, ' ');
	imap_append_nstring(out, unparsed ? "octet-stream" : part->subtype);
	buf_append_char(out, ' ');
	append_params(out, part->params, strcasecmp(part->type, "text") == 0);
	buf_append_char(out, ' ');
	imap_append_nstring(out, part->id);
	buf_append_char(out, ' ');
	imap_append_nstring(out, part->description);
	buf_append_char(out, ' ');
	imap_append_nstring(out, part->encoding != NULL ? part->encoding : "7bit");
	buf_printf(out, " %llu", (unsigned long long)part->body.virtual_size);
	if (message) {
		buf_append_char(out, ' ');
		imap_envelope_append(out, part->children);
		buf_append_char(out, ' ');
		imap_bodystructure_append(out, part->children, extended);
		buf_printf(out, " %llu", (unsigned long long)part->body.lines);
	} else if (strcasecmp(part->type, "text") == 0) {
		buf_printf(out, " %llu", (unsigned long long)part->body.lines);
	}
	if (extended) {
		buf_append_char(out, ' ');
		imap_append_nstring(out, part->md5);
		append_dsp_lang_loc(out, part);
	}
	buf_append_char(out, ')');
}
