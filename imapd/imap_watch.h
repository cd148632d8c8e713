/*
 * Change notification for IDLE: one watch per folder, shared by every session idling on
 * it (one inotify instance per process through libuv, one watch per folder directory,
 * not one per connection). When the folder's new/ or cur/ changes, each idling session
 * is told after a short debounce, and reports the changes to its client.
 */
#ifndef TERN_IMAPD_IMAP_WATCH_H
#define TERN_IMAPD_IMAP_WATCH_H

struct imap_session;

/* Starts watching folder_path (a Maildir) for s; replaces any previous watch of s. */
void imap_watch_subscribe(struct imap_session *s, const char *folder_path);
/* Stops watching for s (no effect when it has no watch). */
void imap_watch_unsubscribe(struct imap_session *s);

#endif
