/*
 * ternctl's lookup of a user through authd's userdb socket, exactly as deliverd does it
 * (`user lookup` prints it, `mailbox` finds the Maildir with it).
 */
#ifndef TERN_TERNCTL_USERDB_LOOKUP_H
#define TERN_TERNCTL_USERDB_LOOKUP_H

struct buf;
struct ternctl;

/*
 * Looks name up. On success returns EX_OK, appends the reply to text as "key=value"
 * lines (user, home, quota_bytes, quota_messages) and sets *home_r to the user's Maildir
 * root (caller frees; home_r may be NULL). Otherwise prints why to ctl->err and returns
 * EX_NOUSER, EX_UNAVAILABLE (authd not answering) or EX_CONFIG.
 */
int ternctl_userdb_lookup(struct ternctl *ctl, const char *name, struct buf *text, char **home_r);

#endif
