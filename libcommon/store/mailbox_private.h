/* Internals shared by the mailbox_*.c files; not for use outside libcommon/store. */
#ifndef TERN_STORE_MAILBOX_PRIVATE_H
#define TERN_STORE_MAILBOX_PRIVATE_H

#include <sys/types.h>

#include "base/buf.h"
#include "store/index_format.h"
#include "store/keywords.h"
#include "store/mailbox.h"

/*
 * One message of a folder's state, in two parts: the hot part (struct mbox_msg: what
 * SELECT, flag changes and the log touch) and the cold part (struct mbox_cold: sizes,
 * date, cache reference, file name). A message lives either alone on the heap (found by a
 * scan, ADDed by the log, or read from an older snapshot: struct mbox_heap_msg, both
 * parts together) or inside the snapshot it was read from (MBOX_HOME_MAP; the file
 * mapped, or read into one heap block when small). A current snapshot (format 3, see
 * docs/store.md "Snapshot format 3") stores all hot parts side by side, then all cold
 * parts, then the names, so opening a folder reads 40 bytes a message; a mapped
 * message's cold part is checked when first used (mbox_cold). A mapping is private: a
 * change copies one page. A message never moves, so store_mailbox_msg() pointers stay
 * valid until the next sync; a snapshot goes with its last message (mbox_msg_release).
 *
 * Both layouts are the file format (pinned by _Static_asserts in mailbox_index.c). In a
 * snapshot, home is MBOX_HOME_MAP, slot the record's position, expunged, in_new and the
 * reserved bytes zero, crc the CRC-32C of the 32 bytes before it; the loader refuses any
 * other record. crc is not kept up to date in memory.
 */
enum { MBOX_HOME_HEAP = 0, MBOX_HOME_MAP = 1 };

struct mbox_msg {
	struct store_msg m;
	uint32_t slot;      /* MBOX_HOME_MAP: its position among its snapshot's messages */
	uint8_t home;       /* MBOX_HOME_*: where this message lives */
	bool in_new;        /* the file is in new/ (else cur/); 0 in a snapshot */
	uint16_t reserved;  /* 0 */
	uint32_t crc;       /* in a snapshot: CRC-32C of the 32 bytes before it */
	uint32_t reserved2; /* 0 */
};

/*
 * The cold part. In a snapshot, name_off is the offset of the name (name_len bytes and a
 * NUL, no '/') in the file, crc the CRC-32C of the 44 bytes before it and then of the
 * name with its NUL; name_heap, sort_date_set, reserved and sort_date are zero.
 * sort_date is read only when sort_date_set is.
 */
struct mbox_cold {
	struct store_msg_info info;
	uint64_t cache_off;
	uint32_t cache_len;
	uint32_t name_off; /* MBOX_HOME_MAP: where the stored name is in the mapping */
	uint16_t name_len;
	bool sort_date_set; /* sort_date holds the caller's parsed Date: */
	uint8_t reserved;
	uint32_t crc;
	char *name_heap; /* a name given since loading (owned); NULL: the stored one */
	int64_t sort_date;
};

/* A message of its own on the heap. */
struct mbox_heap_msg {
	struct mbox_msg hot;
	struct mbox_cold cold;
};

/* A new heap message, zeroed, its name taken over. */
struct mbox_msg *mbox_msg_new(char *name);
/* The cold part of a mapped message, checked on first use. A damaged one is replaced by
 * sizes 0 and the name "" (no file has it) and its snapshot marked damaged, which the next
 * mbox_lock repairs (see mbox_catch_up). */
struct mbox_cold *mbox_cold_mapped(const struct mbox_msg *m);

static inline struct mbox_cold *mbox_cold(const struct mbox_msg *m)
{
	if (m->home == MBOX_HOME_HEAP)
		return &((struct mbox_heap_msg *)(uintptr_t)m)->cold;
	return mbox_cold_mapped(m);
}

/* The message's file name (in cur/, or new/ when in_new). */
const char *mbox_msg_name(const struct mbox_msg *m);

/* Releases m (NULL is fine) and its name; unmaps its snapshot with the last message. */
void mbox_msg_release(struct mbox_msg *m);
/* Replaces m's name with name (allocated, taken over). */
void mbox_msg_set_name(struct mbox_msg *m, char *name);
/* dst takes src's flags, MODSEQ, sizes, date, cache reference and place (new/ or cur/);
 * not its name nor its sort date. */
void mbox_msg_take(struct mbox_msg *dst, const struct mbox_msg *src);

/* Expunge tombstones (mailbox_vanished.c): UID ranges sorted by UID, each with the
 * highest MODSEQ at which one of its UIDs was expunged. Expunges at or below floor may be
 * forgotten. */
struct mbox_vanished_range {
	uint32_t first, last;
	uint64_t modseq;
};
struct mbox_vanished {
	struct mbox_vanished_range *ranges;
	size_t count, cap;
	uint64_t floor;
};
/* At most this many ranges are kept; past it the oldest goes and raises the floor. */
#define MBOX_VANISHED_MAX 1024

/*
 * A snapshot used in place (mapped, or read into the heap when small): its first bytes,
 * the file header once decoded, hold this.
 */
struct mbox_map {
	uint64_t live;     /* its messages in use, + 1 while an index_state loaded from it lives */
	uint64_t len;      /* bytes */
	uint64_t named;    /* its messages with a name_heap */
	uint64_t *checked; /* bit per slot: its cold part was checked (mbox_cold) */
	struct mbox_cold *cold;          /* the cold parts, by slot */
	uint32_t count;                  /* slots */
	uint32_t names_start, names_end; /* the names' area */
	uint8_t heap;                    /* 1: read into the heap rather than mapped */
	uint8_t damaged;                 /* a cold part failed its check: reload with all checked */
};

/* The index as read from disk: snapshot + applied log. */
struct index_state {
	struct index_header hdr;
	struct mbox_map *map; /* the format-2 snapshot it was loaded from (a reference), or NULL */
	struct mbox_msg **msgs; /* sorted by UID; a message never moves (see mbox_msg) */
	size_t count, cap;
	size_t find_hint;    /* where mbox_find looks first: after the last message it found */
	uint64_t log_offset; /* end of the last valid log record applied */
	ino_t idx_ino, log_ino;
	uint64_t snapshot_size;
	int64_t idx_ctime_ns; /* of the snapshot file read (an inode number alone may be reused) */
	struct mbox_vanished van;
	size_t expunged; /* messages in msgs marked expunged (mbox_publish takes them out) */
	bool dirty;      /* messages added or expunged since the last mbox_publish */
	/* Read from an older format, or records were refused: the next unlock writes a
	 * current snapshot. */
	bool rewrite;
};

/*
 * One published list of messages (the view handles share): the folder's messages in UID
 * order at one moment, expunged ones left out. Handles that synced at the same moment
 * share it; it lives while a handle (or the folder, for its latest) refers to it.
 */
struct mbox_view {
	struct mbox_view *next; /* the folder's live views, oldest first */
	size_t refs;
	uint64_t gen;
	size_t count;
	struct mbox_msg *msgs[];
};

/* A message gone from the folder's state that views older than gen may still show. */
struct mbox_grave {
	struct mbox_msg *m;
	uint64_t gen;
};

/* mailbox_uidlist.c: the dovecot-uidlist of a folder, for import on first open. */
struct uidlist {
	uint32_t uidvalidity, uidnext;
	char **bases; /* base names, by uid index below */
	uint32_t *uids;
	size_t count;
};

/*
 * The loaded folder: descriptors, index state and keywords, shared by every handle of
 * one process that has it open (store_pool), or owned by one handle (store_mailbox_open).
 * Used from one thread.
 */
struct mbox_folder {
	char *path;
	int dir_fd, cur_fd, new_fd, tmp_fd;
	int lock_fd;  /* >= 0 while a handle holds the folder lock */
	int log_fd;   /* open log, O_RDWR */
	int cache_fd; /* open cache, O_RDWR|O_APPEND */
	struct index_state st;
	struct keywords kw;
	bool force_scan; /* a file was not where the index said: rescan the dirs */
	/* The dovecot-uidlist read by a first open, which the next scan takes UIDs from (all
	 * zero when none). */
	struct uidlist import;
	/* dovecot-uidlist as last written (uidlist_keep): the UIDVALIDITY and next UID it
	 * has; uidlist_next 0 when not known yet, UIDLIST_ABSENT when the folder has none. */
	uint32_t uidlist_validity, uidlist_next;
	bool expunged_since_compact; /* worth checking whether tern-cache is mostly garbage */
	int64_t scan_start_ns;       /* when this process's last full scan began; 0: none yet */
	/* Handles open on it. */
	struct store_mailbox *handles;
	size_t nhandles;
	/* Published views: views_head (oldest) .. view (the latest, one ref held here). */
	struct mbox_view *views_head, *view;
	uint64_t gen;
	struct mbox_grave *graves;
	size_t grave_count, grave_cap;
	/* In a pool: the pool and the pool's list (most recently used first). */
	struct store_pool *pool;
	struct mbox_folder *pool_prev, *pool_next;
};

/* One handle: its own view of the folder and its pending reports. */
struct store_mailbox {
	struct mbox_folder *f;
	struct store_mailbox *h_prev, *h_next; /* f's handles */
	struct mbox_view *view;                /* what the handle shows; NULL = nothing yet */
	/* Pending reports for the next sync. */
	uint32_t *changed;
	size_t changed_count, changed_cap;
	bool uidvalidity_changed;
	char *quota_root; /* maildirsize to update, or NULL */
	/* Buffers behind the last struct store_sync_result. */
	uint32_t *res_seqs, *res_changed, *res_uids;
};

/* Messages in box's view. */
static inline size_t mbox_visible(const struct store_mailbox *box)
{
	return box->view != NULL ? box->view->count : 0;
}

/* mailbox.c: publishes f->st as a new view when it changed since the last one. */
void mbox_publish(struct mbox_folder *f);
/* Removes m from use by the folder's state: freed once no older view shows it. */
void mbox_bury(struct mbox_folder *f, struct mbox_msg *m);

/* mailbox_index.c */
/*
 * Snapshots smaller than this many bytes are read into the heap rather than mapped, and
 * used in place there all the same: most folders are small, and a mapping each would
 * cost a page and a kernel mapping per folder and process, and three system calls per
 * load. Tests set it to 0 to map every snapshot.
 */
extern size_t mbox_map_min;
void index_state_free(struct index_state *st);
/* 1 when there is no index yet, 0 loaded, -1 damaged (rebuild). all: check every message's
 * cold part now (else when first used). */
int index_state_load(struct mbox_folder *f, struct index_state *st, bool all);
struct mbox_msg *mbox_find(struct index_state *st, uint32_t uid);
/* Position of uid in st->msgs, or -1. */
ssize_t mbox_index_of(const struct index_state *st, uint32_t uid);
/* Takes the folder lock and catches up with others' changes. */
enum store_error mbox_lock(struct store_mailbox *box);
/* Compacts when the log has grown, then releases the lock. */
void mbox_unlock(struct store_mailbox *box);
/* Appends a record to the log (lock held) and applies it to box->st. */
enum store_error mbox_log(struct store_mailbox *box, const struct buf *payload);
enum store_error mbox_log_sync(struct store_mailbox *box);
/* Appends records already framed (index_frame) in one write (lock held) and applies them. */
enum store_error mbox_log_frames(struct store_mailbox *box, const struct buf *frames);
/* Writes a fresh snapshot + empty log from box->st (lock held). */
enum store_error mbox_write_snapshot(struct store_mailbox *box);
void mbox_note_changed(struct store_mailbox *box, uint32_t uid);
/* Tells every handle of f that uid's flags changed. */
void mbox_note_changed_all(struct mbox_folder *f, uint32_t uid);

/* mailbox_vanished.c */
/* Remembers that uid was expunged at modseq (st->msgs already marks it expunged). */
void mbox_vanished_add(struct index_state *st, uint32_t uid, uint64_t modseq);
/* Forgets every tombstone; expunges at or below floor are unknown from now on. */
void mbox_vanished_reset(struct mbox_vanished *van, uint64_t floor);
void mbox_vanished_free(struct mbox_vanished *van);
/* Appends the snapshot's VANISHED record (framed) to b. */
void mbox_vanished_snapshot_append(const struct mbox_vanished *van, struct buf *b);
/* Reads the frames after the snapshot's messages, p[0..len): a VANISHED record sets
 * st->van; without a valid one the floor is the snapshot's HIGHESTMODSEQ (an index written
 * before tombstones existed knows no expunge before it). */
void mbox_vanished_snapshot_load(struct index_state *st, const unsigned char *p, size_t len);

/* mailbox_scan.c */
enum store_error mbox_scan(struct store_mailbox *box, bool force);
/* Parses the message file and appends its cache blob; fills sizes and the cache ref. */
enum store_error mbox_cache_build(struct store_mailbox *box, int dir_fd, const char *name,
                                  struct index_rec *rec);
/*
 * Sizes and date of a message file without parsing it: psize and vsize from the name's
 * ",S=" and ",W=" when both are there (and ",S=" is the file's size), else by reading the
 * file and counting bare LFs; idate (when 0) from the mtime. STORE_ENOENT when gone.
 */
enum store_error mbox_msg_sizes(int dir_fd, const char *name, struct index_rec *rec);
/* Logs new flags (and file name) for m with a new modseq. Lock held. */
enum store_error mbox_log_flags(struct store_mailbox *box, struct mbox_msg *m, uint32_t flags,
                                uint32_t keywords, const char *name);
enum store_error mbox_log_expunge(struct store_mailbox *box, uint32_t uid);
/* Logs an ADD for rec (assigning rec->uid = uidnext when 0). Lock held. */
enum store_error mbox_add(struct store_mailbox *box, struct index_rec *rec);

/* mailbox_cache.c: reopen the cache when another process replaced it (lock held). */
void mbox_cache_check(struct store_mailbox *box);
/* Rewrites tern-cache without the blobs of expunged messages when they are most of it;
 * true when it did (the caller then writes a snapshot with the new offsets). */
bool mbox_cache_compact(struct store_mailbox *box);

/* mailbox_uidlist.c: the dovecot-uidlist of a folder (struct uidlist above). */
/* 0 when read, -1 when missing or unusable. */
int uidlist_read(int dir_fd, struct uidlist *ul); /* on -1, *ul is all zero */
/* Its first line: "3 V<uidvalidity> N<uidnext> ..." or "1 <uidvalidity> <uidnext>". False
 * when it is neither (or UIDVALIDITY is 0). */
bool uidlist_parse_header(const char *line, uint32_t *uidvalidity_r, uint32_t *uidnext_r,
                          int *version_r);
uint32_t uidlist_lookup(const struct uidlist *ul, const char *name);
void uidlist_free(struct uidlist *ul);

/* mailbox_uidlist_write.c: with the folder lock held, brings the folder's dovecot-uidlist
 * (if it has one) up to f->st: appends the lines of new UIDs, or rewrites the file when
 * UIDVALIDITY changed. Errors are left for the next call. */
#define UIDLIST_ABSENT UINT32_MAX
void uidlist_keep(struct mbox_folder *f);

#endif
