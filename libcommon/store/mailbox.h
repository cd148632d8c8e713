/*
 * One open folder (what imapd SELECTs and pop3d locks): its messages with UIDs, flags,
 * keywords, MODSEQs, sizes, internal dates and cached IMAP data, kept in a per-folder
 * index that several processes share (see index_format.h and docs/store.md).
 *
 * The view: messages are numbered 1..store_mailbox_count() in UID order (IMAP sequence
 * numbers). The view changes only in store_mailbox_sync(): messages expunged by anyone
 * stay in the view (reads still work, changes fail with STORE_ENOENT) until a sync
 * reports them, and new messages join the view at a sync. So imapd can report EXPUNGE
 * and EXISTS only where IMAP allows it.
 *
 * Every function that changes the folder takes the folder lock (fcntl, tern-index.lock),
 * catches up with the changes others made, makes its change and releases the lock, so
 * concurrent writers never lose each other's updates. A store_mailbox is used by one
 * thread at a time (and all handles of one pool by one thread, see store_pool).
 */
#ifndef TERN_STORE_MAILBOX_H
#define TERN_STORE_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mime/mime_parser.h"
#include "store/maildir_name.h" /* enum store_flag */
#include "store/store_error.h"

struct store_mailbox;

/* What SELECT, FLAGS and STORE need of a message (read at open for every message). */
struct store_msg {
	uint32_t uid;
	uint32_t flags;    /* enum store_flag */
	uint32_t keywords; /* bit i: keyword i of store_mailbox_keyword_name() */
	bool expunged;     /* gone, to be reported by the next sync */
	uint64_t modseq;
};

/* The rest of what the index knows of a message (read when first asked for). */
struct store_msg_info {
	uint64_t vsize; /* RFC822.SIZE */
	uint64_t psize; /* bytes in the file */
	time_t idate;   /* INTERNALDATE */
};

/* What a sync reports, valid until the next call on the mailbox. */
struct store_sync_result {
	/* Sequence numbers to send as "* n EXPUNGE", in the order to send them. */
	const uint32_t *expunged_seqs;
	size_t expunged_count;
	/* UIDs (still in the view) whose flags changed since the previous sync. */
	const uint32_t *changed_uids;
	size_t changed_count;
	size_t exists; /* the new count, for "* n EXISTS" */
	bool uidvalidity_changed;
	/* The UIDs of expunged_seqs, in the same order (for RFC 7162 VANISHED). */
	const uint32_t *expunged_uids;
};

/* Cached IMAP data of one message; strings owned by the struct. */
struct store_cache {
	char *envelope;
	char *body;
	char *bodystructure;
	char *fields[MIME_FIELD_COUNT]; /* unfolded raw header values, NULL if absent */
};

/*
 * Opens the folder at path (a Maildir: INBOX root or root/.Name), creating cur/ new/ tmp/
 * and the index when missing, importing dovecot-uidlist on first open, and syncs it.
 */
enum store_error store_mailbox_open(const char *path, struct store_mailbox **box_r,
                                    const char **error_r);
void store_mailbox_close(struct store_mailbox **box);

/*
 * A pool shares one loaded folder (descriptors, index state, keywords, cache) among all
 * the handles of a process that open the same path with store_mailbox_open_pooled().
 * Each handle keeps its own view: sequence numbers, and the EXPUNGE/EXISTS/flag reports
 * of its next sync, exactly as a handle of its own (or another process) would see them;
 * handles that synced at the same moment share one list of messages. A new handle
 * catches up with the files and other processes (log tail, new/) like any sync.
 *
 * Single-threaded: a pool and every handle from it are used by one thread (imapd calls
 * the store on its loop thread only).
 *
 * keep_idle: how many folders without handles the pool keeps loaded (LRU) so that the
 * next open is cheap; 0 frees a folder with its last handle.
 */
struct store_pool;
struct store_pool *store_pool_new(size_t keep_idle);
/* Frees the kept folders; folders with open handles go when their last handle closes. */
void store_pool_free(struct store_pool **pool);
/* Folders loaded in the pool, with or without handles. */
size_t store_pool_folders(const struct store_pool *pool);
/* Whether the folder at path (as store_mailbox_open_pooled takes it) is loaded in the
 * pool: opening it then costs a catch-up, not a load (or a first index build, which a
 * caller may run first on another thread with a plain store_mailbox_open). */
bool store_pool_loaded(const struct store_pool *pool, const char *path);
/*
 * Takes *box, a handle of path from store_mailbox_open (made on another thread, e.g. a
 * worker that built the index; from now on used on the pool's thread), into the pool:
 * its folder joins the pool, and the handle catches up like a pooled open. When the pool
 * has path loaded by now, *box is closed and replaced by a handle on the pool's folder.
 * On error *box is closed (NULL).
 */
enum store_error store_pool_adopt(struct store_pool *pool, const char *path,
                                  struct store_mailbox **box, const char **error_r);
/* As store_mailbox_open, sharing the loaded folder with the pool's other handles of path
 * (the same string: callers build paths the same way). Close with store_mailbox_close. */
enum store_error store_mailbox_open_pooled(struct store_pool *pool, const char *path,
                                           struct store_mailbox **box_r, const char **error_r);

/* Picks up new files (moving them from new/ to cur/), renames and removals by other
 * programs, and changes by other processes; then updates the view. */
enum store_error store_mailbox_sync(struct store_mailbox *box, struct store_sync_result *res);
/*
 * Rescans cur/ and new/ whatever the directory times say (renamed files keep their UIDs
 * and take their names' flags, missing ones are expunged, unknown ones get new UIDs) and
 * writes a fresh snapshot with an empty log. For files changed behind the store's back,
 * e.g. a restore from backup (`ternctl mailbox reindex`). The view changes at the next
 * store_mailbox_sync().
 */
enum store_error store_mailbox_reindex(struct store_mailbox *box);

uint32_t store_mailbox_uidvalidity(const struct store_mailbox *box);
uint32_t store_mailbox_uidnext(const struct store_mailbox *box);
uint64_t store_mailbox_highestmodseq(const struct store_mailbox *box);
size_t store_mailbox_count(const struct store_mailbox *box);
/* Message seq (1-based, <= count). The pointer stays valid (and shows later flag changes)
 * until the next store_mailbox_sync or close, whatever other calls happen meanwhile. */
const struct store_msg *store_mailbox_msg(const struct store_mailbox *box, size_t seq);
/* Sizes and internal date of message seq (1-based, <= count), valid as long as
 * store_mailbox_msg's pointer. A message whose index entry turns out damaged reads as
 * sizes 0 and date 0 until the next sync finds its file again (under a new UID). */
const struct store_msg_info *store_mailbox_msg_info(const struct store_mailbox *box, size_t seq);
/* Sequence number of uid in the view, or 0. */
size_t store_mailbox_seq(const struct store_mailbox *box, uint32_t uid);
/* Full path of the message file (caller frees), or NULL when expunged (or its index entry
 * was found damaged: the next sync reports it expunged and its file as a new message). */
char *store_mailbox_msg_path(const struct store_mailbox *box, size_t seq);
/* Reads (or, when missing or damaged, rebuilds) the cached data. Free with
 * store_cache_free. */
enum store_error store_mailbox_cache(struct store_mailbox *box, size_t seq,
                                     struct store_cache *cache);
void store_cache_free(struct store_cache *cache);
struct buf;
/* Appends one cached header field (enum mime_field) of message seq to out; *present_r
 * tells whether the message has that field. Cheaper than store_mailbox_cache. */
enum store_error store_mailbox_cache_field(struct store_mailbox *box, size_t seq, int field,
                                           struct buf *out, bool *present_r);

/* A sort key of message seq kept with the loaded folder while it is loaded (shared by
 * the pool's handles; not written to disk): the sent date as the caller parsed it from
 * the Date: header. Messages never change, so it is computed once per message. */
bool store_mailbox_sort_date(const struct store_mailbox *box, size_t seq, int64_t *date_r);
void store_mailbox_set_sort_date(struct store_mailbox *box, size_t seq, int64_t date);

/* Keyword names of this folder (dovecot-keywords). NULL for an unused index. */
const char *store_mailbox_keyword_name(const struct store_mailbox *box, unsigned int idx);
/* Index of a keyword, added when create is set; -1 when unknown / no room. */
int store_mailbox_keyword(struct store_mailbox *box, const char *name, bool create);

enum store_flags_mode {
	STORE_FLAGS_REPLACE,
	STORE_FLAGS_ADD,
	STORE_FLAGS_REMOVE,
};

/*
 * Changes the flags and keywords of the message with uid. With unchangedsince != 0
 * (RFC 7162 CONDSTORE) nothing changes when the message's modseq is greater, and
 * STORE_EEXIST is returned. On success the message has a new modseq (unless nothing
 * changed) and its file name carries the new flags.
 */
enum store_error store_mailbox_set_flags(struct store_mailbox *box, uint32_t uid,
                                         enum store_flags_mode mode, uint32_t flags,
                                         uint32_t keywords, uint64_t unchangedsince);
/*
 * As store_mailbox_set_flags for many UIDs under one lock (STORE 1:*). UIDs that are gone
 * are skipped; those failing UNCHANGEDSINCE go to modified (room for count, may be NULL)
 * for the MODIFIED response code.
 */
enum store_error store_mailbox_set_flags_many(struct store_mailbox *box, const uint32_t *uids,
                                              size_t count, enum store_flags_mode mode,
                                              uint32_t flags, uint32_t keywords,
                                              uint64_t unchangedsince, uint32_t *modified,
                                              size_t *modified_count_r);
/* Keep the Maildir++ quota file (maildirsize) of root up to date on expunge, append and
 * copy into this folder (root is the user's Maildir; see quota.h). */
void store_mailbox_set_quota_root(struct store_mailbox *box, const char *root);
/* Removes the messages with these UIDs (the caller checked \Deleted). They stay in the
 * view, marked expunged, until the next sync reports them. */
enum store_error store_mailbox_expunge(struct store_mailbox *box, const uint32_t *uids,
                                       size_t count);

struct store_append;
/* Appends a message (IMAP APPEND): begin, write the bytes, commit. idate 0 means now. */
enum store_error store_mailbox_append_begin(struct store_mailbox *box, uint32_t flags,
                                            uint32_t keywords, time_t idate,
                                            struct store_append **app_r);
enum store_error store_mailbox_append_write(struct store_append *app, const void *data, size_t len);
/* Makes the message durable and gives it the next UID (*uid_r). Frees app. */
enum store_error store_mailbox_append_commit(struct store_append **app, uint32_t *uid_r);
void store_mailbox_append_abort(struct store_append **app);

/* Copies message uid of src into dst (a hard link when possible) keeping its flags,
 * keywords (by name) and internal date; *new_uid_r is its UID in dst. */
enum store_error store_mailbox_copy(struct store_mailbox *src, uint32_t uid,
                                    struct store_mailbox *dst, uint32_t *new_uid_r);
/* copy, then expunge from src. */
enum store_error store_mailbox_move(struct store_mailbox *src, uint32_t uid,
                                    struct store_mailbox *dst, uint32_t *new_uid_r);

/* A range of UIDs, first <= last. */
struct store_uid_range {
	uint32_t first, last;
};

/*
 * RFC 7162 QRESYNC: the UIDs expunged after modseq, as sorted, disjoint, non-adjacent
 * ranges in *ranges_r (caller frees; NULL when none); returns their number. UIDs still
 * in the view or in the folder are never named. The folder remembers expunges (tombstones,
 * bounded) down to a floor MODSEQ; for modseq below the floor, or above HIGHESTMODSEQ, the
 * answer is every UID below UIDNEXT not in the folder, a superset RFC 7162 3.2.5.1 allows,
 * and *exact_r (may be NULL) is false. Reads the state of the last sync or change.
 */
size_t store_mailbox_vanished_since(const struct store_mailbox *box, uint64_t modseq,
                                    struct store_uid_range **ranges_r, bool *exact_r);

#endif
