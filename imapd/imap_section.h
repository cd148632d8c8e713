/*
 * The bytes of one FETCH body section (RFC 3501 6.4.5: BODY[1.2.MIME], BODY[HEADER.FIELDS
 * (...)], BODY[TEXT], ...) of a message file, as IMAP sends them: every bare LF becomes
 * CRLF, and a partial <origin.length> is applied to that converted form.
 *
 * imap_section_open() finds the section in the parsed MIME tree of the file and tells its
 * exact size before any byte is sent (the literal's "{N}" comes first); then
 * imap_section_read() produces the bytes in chunks, so a 50 MB part is streamed, never
 * held whole in memory. HEADER.FIELDS results are small (the header block is capped by
 * the MIME parser) and are built in memory.
 */
#ifndef TERN_IMAPD_IMAP_SECTION_H
#define TERN_IMAPD_IMAP_SECTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct buf;
struct mime_part;
struct imap_fetch_body;
struct imap_section;

/*
 * Returns 0 and *section_r (NULL when the section does not exist: the response is NIL),
 * or -1 on a read error. fd must stay open until imap_section_free().
 */
int imap_section_open(int fd, const struct mime_part *root, const struct imap_fetch_body *body,
                      struct imap_section **section_r);
/*
 * BINARY[part] (RFC 3516): the part's body decoded from its Content-Transfer-Encoding
 * (base64, quoted-printable; 7bit/8bit with bare LF made CRLF as BODY[] does; binary as
 * stored), built in memory; the partial range applies to the decoded bytes. Returns 0
 * and *section_r (NULL when the part does not exist), -1 on a read error,
 * IMAP_BINARY_UNKNOWN_CTE or IMAP_BINARY_TOO_BIG (the part's stored body is over
 * IMAP_BINARY_MAX bytes).
 */
#define IMAP_BINARY_UNKNOWN_CTE (-2)
#define IMAP_BINARY_TOO_BIG (-3)
#define IMAP_BINARY_MAX ((uint64_t)64 * 1024 * 1024)
int imap_section_open_binary(int fd, const struct mime_part *root,
                             const struct imap_fetch_body *body, struct imap_section **section_r);
/* Decodes len stored bytes of a body in the transfer encoding cte (NULL: 7bit) into out.
 * Returns 0, or IMAP_BINARY_UNKNOWN_CTE. */
int imap_binary_decode(const char *cte, const char *in, size_t len, struct buf *out);
/* True when the section's bytes contain a NUL (it must be sent as a literal8). */
bool imap_section_has_nul(const struct imap_section *s);
/* Bytes the section will produce (after the partial range is applied). */
uint64_t imap_section_size(const struct imap_section *s);
/* Copies up to max bytes of the next part of the section into out; returns the count
 * (0 at the end) or -1 on a read error. */
ssize_t imap_section_read(struct imap_section *s, char *out, size_t max);
void imap_section_free(struct imap_section **s);

/* The part addressed by numbers[0..n) (n == 0: the whole message), or NULL. */
const struct mime_part *imap_section_find_part(const struct mime_part *root,
                                               const uint32_t *numbers, size_t n);

#endif
