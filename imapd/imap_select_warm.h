/*
 * Opening a folder this process has not loaded, off the event loop: a first SELECT of a
 * big folder builds its index (seconds at 100,000 messages) or catches up with a long
 * log, all under the folder lock. tern-imapd serves every session from one loop thread,
 * so that work runs on the thread pool with a plain store handle (its own folder state,
 * touched by that thread only); the handle then goes back to the loop thread, where the
 * SELECT hands it to the store pool (store_pool_adopt).
 */
#ifndef TERN_IMAPD_IMAP_SELECT_WARM_H
#define TERN_IMAPD_IMAP_SELECT_WARM_H

#include <stdbool.h>

#include "imap_session.h"

struct store_mailbox;

/*
 * When path (as imap_mailbox_select builds it) is not loaded in imapd's store pool,
 * queues the open and returns true: the command is then asynchronous, and done(s, box,
 * arg) runs on the loop thread when the work is over, with the handle (NULL when the
 * open failed: the SELECT's own open reports why; done replies and calls
 * imap_session_command_done), or drop(box, arg) when the session closed meanwhile.
 * Returns false (nothing queued) when the folder is loaded or there is no pool.
 */
bool imap_select_warm(struct imap_session *s, const char *path,
                      void (*done)(struct imap_session *s, struct store_mailbox *box, void *arg),
                      void (*drop)(struct store_mailbox *box, void *arg), void *arg);

#endif
