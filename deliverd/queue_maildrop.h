/*
 * The maildrop: where the sendmail command leaves mail while deliverd is down, so cron
 * mail is never lost; deliverd picks it up (relay_maildrop.c) when it runs again.
 *
 * The directory (deliverd's maildrop_dir) is made by deliverd, mode 1733: any local user
 * may create a file, none may list or read another's, and only the owner (or deliverd)
 * removes it. A writer creates "t.<unique>" with O_EXCL, writes a small header and the
 * message, fsyncs, renames it to "m.<unique>" and fsyncs the directory; only "m." files
 * are picked up, so a writer that dies leaves nothing that is ever sent.
 *
 * File format ("TERND 1"): header lines "sender <xtext|->", one "rcpt <xtext>" per
 * recipient, "end", then the message (RFC 5322, CRLF or LF line ends). The sender written
 * here is only a wish: deliverd decides the real one from the file's owner.
 */
#ifndef TERN_DELIVERD_QUEUE_MAILDROP_H
#define TERN_DELIVERD_QUEUE_MAILDROP_H

#include <stddef.h>
#include <stdint.h>

#define MAILDROP_MAX_HEADER (1024u * 1024)
#define MAILDROP_MAX_RCPTS 1000

struct maildrop_writer;

int maildrop_begin(const char *dir, const char *sender, const char *const *rcpts, size_t n,
                   struct maildrop_writer **w_r, char **error_r);
int maildrop_write(struct maildrop_writer *w, const void *data, size_t len, char **error_r);
/* Durable and visible to deliverd when it returns 0; the writer is freed either way. */
int maildrop_commit(struct maildrop_writer *w, char **error_r);
void maildrop_abort(struct maildrop_writer *w);

struct maildrop_msg {
	char *sender; /* as written ("" for none) */
	char **rcpts;
	size_t n_rcpts;
	uint64_t body_offset;
};

/* Parses the header at the start of fd. Returns 0, or -1 with *error_r. */
int maildrop_parse(int fd, struct maildrop_msg *m, char **error_r);
void maildrop_msg_free(struct maildrop_msg *m);

#endif
