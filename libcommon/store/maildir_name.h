/*
 * Maildir file names: unique base names for new messages, and the ":2,<flags>" info part
 * that carries the IMAP system flags and keywords (Dovecot-compatible).
 *
 *   <sec>.M<usec>P<pid>Q<n>R<random>.<host>,S=<size>:2,<DFPRST><a-z>
 *
 * The base name (everything before ':') identifies a message for life; other Maildir
 * clients only change what follows ':' when they change flags.
 */
#ifndef TERN_STORE_MAILDIR_NAME_H
#define TERN_STORE_MAILDIR_NAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* System flags. The letters are those of the Maildir spec (cr.yp.to/proto/maildir.html). */
enum store_flag {
	STORE_FLAG_ANSWERED = 1 << 0, /* R */
	STORE_FLAG_FLAGGED = 1 << 1,  /* F */
	STORE_FLAG_DELETED = 1 << 2,  /* T */
	STORE_FLAG_SEEN = 1 << 3,     /* S */
	STORE_FLAG_DRAFT = 1 << 4,    /* D */
	STORE_FLAG_PASSED = 1 << 5,   /* P, forwarded; not an IMAP system flag */
};
#define STORE_FLAGS_ALL 0x3fu
/* Keywords: bit i is the letter 'a' + i, mapped to a name by the dovecot-keywords file. */
#define STORE_KEYWORDS_MAX 26

/* A fresh unique base name (caller frees). Thread-safe. */
char *maildir_name_unique(void);
/* Length of the base name: up to the first ':' (or the whole name). */
size_t maildir_name_base_len(const char *name);
/* The ",S=<n>" (or with W, ",W=<n>") field of the base name; false when absent or bad. */
bool maildir_name_get_size(const char *name, char field, uint64_t *size_r);
/*
 * Counts the LFs of data[0..len) not preceded by a CR (each adds one byte to the IMAP size,
 * RFC822.SIZE = file size + bare LFs, the ",W=" field). *last_cr carries the byte before
 * data across calls (start with false) and is updated.
 */
uint64_t maildir_count_bare_lf(const void *data, size_t len, bool *last_cr);
/* Flags and keyword bits from a name's ":2," info; zero when it has none. */
void maildir_name_get_flags(const char *name, unsigned int *flags_r, uint32_t *keywords_r);
/* base name + ":2," + flag letters in ASCII order (caller frees). */
char *maildir_name_set_flags(const char *name, unsigned int flags, uint32_t keywords);
/* True for a name a Maildir reader may consider: no '/', not starting with '.', not empty. */
bool maildir_name_is_valid(const char *name);

#endif
