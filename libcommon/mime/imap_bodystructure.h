/*
 * IMAP ENVELOPE, BODY and BODYSTRUCTURE (RFC 3501 7.4.2) from a parsed MIME tree. The
 * output is always syntactically valid, whatever the message: a multipart without parts
 * gets one empty text/plain part, and a message/rfc822 that was not parsed (cap reached)
 * is described as application/octet-stream.
 */
#ifndef TERN_MIME_IMAP_BODYSTRUCTURE_H
#define TERN_MIME_IMAP_BODYSTRUCTURE_H

#include <stdbool.h>

struct buf;
struct mime_part;

/* Appends "(date subject from sender reply-to to cc bcc in-reply-to message-id)" for a
 * message part (the root, or the child of a message/rfc822 part). */
void imap_envelope_append(struct buf *out, const struct mime_part *message);
/* Appends BODYSTRUCTURE (extended true) or BODY (false) of part. */
void imap_bodystructure_append(struct buf *out, const struct mime_part *part, bool extended);

#endif
