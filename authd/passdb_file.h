/*
 * The passwd-file passdb/userdb in Dovecot's format, one user per line:
 *
 *   user@domain:{SCHEME}hash:uid:gid:gecos:home:shell:extra_fields
 *
 * Trailing fields may be left out; '#' starts a comment line. extra_fields are
 * space-separated key=value (or bare) words; understood: nologin, userdb_quota_bytes=N,
 * userdb_quota_messages=N, userdb_quota_rule=*:bytes=N[KMGT] / *:storage=N[KMGT] (storage
 * without a unit is KiB, as in Dovecot) / *:messages=N. The home field is kept for
 * compatibility but mail homes are always <mail_root>/<domain>/<user> (DESIGN.md).
 *
 * A snapshot (struct passdb) is immutable and reference-counted, so requests running in
 * the thread pool keep using the one they started with while the file is reloaded.
 */
#ifndef TERN_AUTHD_PASSDB_FILE_H
#define TERN_AUTHD_PASSDB_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct authd_settings;

struct passdb_user {
	char *name;      /* canonical */
	char *password;  /* stored value, "{SCHEME}..." */
	char *uid, *gid; /* as written ("" = not set) */
	bool nologin;
	uint64_t quota_bytes, quota_messages; /* 0 = unlimited */
};

struct passdb {
	int refcount;              /* touched on the loop thread only */
	struct passdb_user *users; /* sorted by name */
	size_t n_users;
	/* Every user has a plaintext-equivalent (CRAM-MD5 can succeed for everyone). */
	bool all_plaintext;
	/* Every user has a SCRAM-SHA-256 secret or a plaintext password. */
	bool all_scram;
};

struct passdb_file;

/* Loads path. Returns NULL with *error_r (caller frees) when it cannot be read. Lines that
 * do not parse are logged and skipped. */
struct passdb_file *passdb_file_open(const struct authd_settings *set, const char *path,
                                     char **error_r);
void passdb_file_free(struct passdb_file **pf);
/* Reloads when the file changed (inode, size, mtime or ctime) since the last load; a
 * reload that fails keeps the old snapshot and logs a warning. Cheap when unchanged
 * (one stat), and rate-limited to once per 100 ms. */
void passdb_file_refresh(struct passdb_file *pf);
/* The current snapshot with a reference taken; release with passdb_unref(). */
struct passdb *passdb_file_get(struct passdb_file *pf);
void passdb_unref(struct passdb **db);

/* Parses text (a whole file) into a snapshot (refcount 1); for tests and the fuzzer too.
 * `source` names the file in log lines. */
struct passdb *passdb_parse(const struct authd_settings *set, const char *text, size_t len,
                            const char *source);
/* Finds a canonical name, or NULL. Thread-safe on a snapshot. */
const struct passdb_user *passdb_lookup(const struct passdb *db, const char *canonical_name);

#endif
