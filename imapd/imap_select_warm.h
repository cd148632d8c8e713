/*
 * Opening a folder this process has not loaded, off the event loop: a first SELECT of a
 * big folder builds its index (seconds at 100,000 messages) or catches up with a long
 * log, all under the folder lock. tern-imapd serves every session from one loop thread,
 * so that work runs on the thread pool with a plain store handle (its own state, opened
 * and closed there); afterwards the SELECT opens the folder from the pool on the loop,
 * which now costs a snapshot load.
 */
#ifndef TERN_IMAPD_IMAP_SELECT_WARM_H
#define TERN_IMAPD_IMAP_SELECT_WARM_H

#include <stdbool.h>

#include "imap_session.h"

/*
 * When path (as imap_mailbox_select builds it) is not loaded in imapd's store pool,
 * queues the open and returns true: the command is then asynchronous, and done(s, arg)
 * runs on the loop thread when the work is over (it replies and calls
 * imap_session_command_done), or drop(arg) when the session closed meanwhile. Returns
 * false (nothing queued) when the folder is loaded or there is no pool.
 */
bool imap_select_warm(struct imap_session *s, const char *path,
                      void (*done)(struct imap_session *s, void *arg), void (*drop)(void *arg),
                      void *arg);

#endif
