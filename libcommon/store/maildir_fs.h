/*
 * File-system helpers shared by delivery and the index: opening a Maildir folder and its
 * cur/ new/ tmp/ without following symlinks, and a directory fsync that concurrent callers
 * share (group commit).
 */
#ifndef TERN_STORE_MAILDIR_FS_H
#define TERN_STORE_MAILDIR_FS_H

#include <stdbool.h>

/*
 * Opens folder (O_DIRECTORY|O_NOFOLLOW). With create, the folder, its missing parents and
 * its cur/ new/ tmp/ are created 0700. Returns an fd, or -1 with errno set.
 */
int maildir_open_folder(const char *folder, bool create);
/* Opens (creating 0700 when missing) the directory sub under folder_fd; -1 with errno. */
int maildir_open_subdir(int folder_fd, const char *sub);

/*
 * fsync(dir_fd), shared: every caller that made its change before calling waits for one
 * fsync of that directory that started after its call, so N concurrent commits into one
 * directory cost about two fsyncs, not N. Thread-safe. Returns 0, or -1 with errno (also
 * when any fsync of that directory failed while the caller waited: fail closed).
 */
int maildir_dirsync(int dir_fd);

#endif
