/*
 * Crash-safe delivery of one message into one Maildir folder (what deliverd calls).
 *
 *   begin  -> unique file in <folder>/tmp (O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600)
 *   write  -> append bytes (any number of calls; the body streams, never whole in RAM)
 *   commit -> fsync the file, link() it into new/ as <unique>,S=<size> (never overwriting),
 *             unlink the tmp name, fsync new/. Only when commit returns 0 is the copy
 *             durable and may the caller answer 250.
 *   abort  -> remove the tmp file.
 * ENOSPC, EDQUOT, EIO and friends are temporary failures (the tmp file is removed);
 * nothing half-written is ever visible in new/ or cur/.
 *
 * write and commit block on the disk: call them from the libuv thread pool. Commits of
 * concurrent deliveries into the same file system share fsync work (group commit) through
 * maildir_commit_group (see below) without weakening the guarantee.
 */
#ifndef TERN_STORE_MAILDIR_DELIVER_H
#define TERN_STORE_MAILDIR_DELIVER_H

#include <stddef.h>
#include <stdint.h>

struct maildir_delivery;

enum maildir_error {
	MAILDIR_OK = 0,
	MAILDIR_ETEMP = -1, /* retry later: 4xx (disk full, I/O error) */
	MAILDIR_EPERM = -2, /* will not work: 5xx (folder missing and cannot be created) */
};

/*
 * folder is a Maildir directory (the user's root for INBOX or root/.Name for a folder);
 * it and its cur/ new/ tmp/ are created (0700) when missing.
 */
enum maildir_error maildir_delivery_begin(const char *folder, struct maildir_delivery **d_r,
                                          char **error_r);
enum maildir_error maildir_delivery_write(struct maildir_delivery *d, const void *data, size_t len,
                                          char **error_r);
/* The final file name in new/ (valid after a successful commit until free). */
const char *maildir_delivery_name(const struct maildir_delivery *d);
uint64_t maildir_delivery_size(const struct maildir_delivery *d);
enum maildir_error maildir_delivery_commit(struct maildir_delivery *d, char **error_r);
/* Aborts if not committed, and frees. Sets *d to NULL. */
void maildir_delivery_free(struct maildir_delivery **d);

#endif
