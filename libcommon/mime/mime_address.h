/*
 * A lenient RFC 5322 address-list parser producing the IMAP envelope address form
 * (RFC 3501 7.4.2): each address is (name adl mailbox host); a group is opened by
 * (NIL NIL "group" NIL) and closed by (NIL NIL NIL NIL). Text that is not an address
 * still yields an entry (host "MISSING_DOMAIN" when there is no '@'), never an error.
 */
#ifndef TERN_MIME_MIME_ADDRESS_H
#define TERN_MIME_MIME_ADDRESS_H

struct buf;

/* Addresses kept from one header field; more are dropped. */
#define MIME_ADDRESS_MAX 1000

/* Appends the envelope address list for value (NIL when there is no address). */
void mime_address_list_append(struct buf *out, const char *value);

#endif
