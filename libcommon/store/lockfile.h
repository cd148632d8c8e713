/*
 * Advisory locks between processes (imapd, pop3d, deliverd, ternctl) and threads: an
 * open-file-description lock (F_OFD_SETLKW) on a lock file next to the data it guards.
 * OFD locks belong to the open file, not the process, so two threads or two opens in one
 * process exclude each other too, and a killed holder's lock vanishes with it.
 */
#ifndef TERN_STORE_LOCKFILE_H
#define TERN_STORE_LOCKFILE_H

#include <stdbool.h>

/* Opens (creating 0600) dir_fd/name and waits for a shared or exclusive lock on it.
 * Returns the fd that holds the lock (close it to release), or -1 with errno. */
int lockfile_lock(int dir_fd, const char *name, bool exclusive);
/* Changes the lock held on fd to exclusive or shared (waiting). 0 or -1 with errno. */
int lockfile_relock(int fd, bool exclusive);

#endif
