/*
 * The body spool and the per-recipient Maildir copies.
 *
 * The spool is an unlinked file in the spool directory (O_TMPFILE where the file system
 * has it, else mkstemp + unlink): the body never sits whole in memory, and a crash or a
 * dropped client leaves nothing behind. Each mailbox's copy (the target's prefix lines +
 * the spooled body) is written and committed through the store's maildir_delivery_* on
 * the libuv thread pool, several mailboxes in parallel; the session gets each result on
 * the loop thread through lmtp_session_delivery_done().
 */
#ifndef TERN_DELIVERD_DELIVER_H
#define TERN_DELIVERD_DELIVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lmtp_session.h"

struct spool;

int spool_open(const char *dir, struct spool **spool_r, char **error_r);
int spool_write(struct spool *sp, const void *data, size_t len, char **error_r);
uint64_t spool_size(const struct spool *sp);
void spool_close(struct spool **sp);

/* Starts one thread-pool job per target; sp must stay open until the last result. */
void deliver_targets(uv_loop_t *loop, struct spool *sp, struct lmtp_session *s,
                     struct lmtp_target *targets, size_t n);

/* The blocking part, for one target (also used directly by tests). *folder_used_r is
 * "INBOX" or the folder name (static or pointing into t). */
enum lmtp_delivery_status deliver_one(int spool_fd, uint64_t spool_len, const struct lmtp_target *t,
                                      const char **folder_used_r, char **error_r);
int spool_fd(const struct spool *sp);
/* The mailbox's usage for the quota check: messages in cur/ and new/ of the root and of
 * every ".Folder", sizes from the Maildir++ ",S=" name field (else stat). Blocking. */
void deliver_quota_usage(const char *home, uint64_t *bytes_r, uint64_t *count_r);

#endif
