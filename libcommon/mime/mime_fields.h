/* Applies a part's header block to its fields (internal to the MIME parser). */
#ifndef TERN_MIME_MIME_FIELDS_H
#define TERN_MIME_MIME_FIELDS_H

#include <stddef.h>

struct mime_part;

/* Sets the RFC 2045 defaults, then the Content-* fields (and, for a message, the
 * envelope and list fields; the first occurrence of each wins) from block[0..len). */
void mime_fields_apply(struct mime_part *part, const char *block, size_t len);
/* Frees every string and parameter list of part (not its children). */
void mime_fields_clear(struct mime_part *part);
/* The lower-case header name of a kept field ("from", "message-id", ...). */
const char *mime_field_name(int field);

#endif
