/*
 * A cache of recently verified passwords, so a client that logs in again and again
 * (Roundcube logs in on every request; phones reconnect all day) does not pay the
 * password hash (SHA512-CRYPT: milliseconds of CPU) each time.
 *
 * Only successes are cached; a failure always runs the full hash and the failure delay.
 * An entry holds a keyed digest, HMAC-SHA256 under a random key made at start, over the
 * user, the stored password hash and the password: it cannot be used as a password, it
 * matches only while the passwd-file still holds the same hash for that user (a password
 * change takes effect at once), and it expires after the TTL. The key and digests live in
 * memory excluded from core dumps. Compares are constant-time.
 *
 * Fixed size: 4-way sets indexed by a keyed hash of the user; an insert replaces the same
 * user, else a free or expired slot, else the entry closest to expiry. Thread-safe (the
 * hashing runs on the thread pool).
 */
#ifndef TERN_AUTHD_AUTH_CACHE_H
#define TERN_AUTHD_AUTH_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct auth_cache;

/* A cache of about max_entries users, each entry kept ttl_ms. NULL when max_entries or
 * ttl_ms is 0 (caching off) — every function accepts NULL and then does nothing. */
struct auth_cache *auth_cache_new(size_t max_entries, uint64_t ttl_ms);
void auth_cache_free(struct auth_cache **cache);

/* True when user logged in with exactly this password against this stored hash within
 * the TTL. */
bool auth_cache_check(struct auth_cache *cache, const char *user, const char *stored,
                      const char *password, size_t len);
/* Records a successful verification. */
void auth_cache_store(struct auth_cache *cache, const char *user, const char *stored,
                      const char *password, size_t len);
/* Drops every entry (the passwd-file was replaced, or on request). */
void auth_cache_clear(struct auth_cache *cache);

/* Hits and stores so far (for logs and tests). */
void auth_cache_counts(struct auth_cache *cache, uint64_t *hits_r, uint64_t *stores_r);

/* For tests: the clock the cache reads (CLOCK_MONOTONIC ms by default). */
void auth_cache_set_clock(struct auth_cache *cache, uint64_t (*now_ms)(void));

#endif
