/*
 * The root's subscriptions file, in Dovecot's format: version 2 ("V\t2\n\n", then one name
 * a line with hierarchy levels separated by TAB) is written; version 1 (plain names, '.'
 * separated, as Dovecot's Maildir++ default) is read too.
 */
#ifndef TERN_STORE_SUBSCRIPTIONS_H
#define TERN_STORE_SUBSCRIPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "store/store_error.h"

/* The subscribed IMAP names (caller frees each and the array). */
enum store_error subscriptions_read(const char *root, char ***names_r, size_t *count_r);
/* Adds or removes one IMAP name; the file is replaced atomically under a lock. */
enum store_error subscriptions_set(const char *root, const char *name, bool subscribed);
void subscriptions_free(char **names, size_t count);

#endif
