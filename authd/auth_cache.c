/* Verified-password cache (see auth_cache.h). */
#include "auth_cache.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "base/xalloc.h"

#define WAYS 4
#define DIGEST_LEN 32
#define KEY_LEN 32

struct cache_slot {
	uint64_t user_tag; /* keyed hash of the user; 0 = free */
	uint64_t expires_ms;
	unsigned char digest[DIGEST_LEN];
};

/* The secret part (key and slots): in its own mapping, excluded from core dumps. */
struct cache_secret {
	unsigned char key[KEY_LEN];
	struct cache_slot slots[];
};

struct auth_cache {
	pthread_mutex_t lock;
	size_t nsets; /* a power of two */
	uint64_t ttl_ms;
	uint64_t (*now_ms)(void);
	uint64_t hits, stores;
	EVP_MAC *mac; /* HMAC, fetched once (shared by threads; contexts are per call) */
	struct cache_secret *secret;
	size_t secret_size;
};

static uint64_t monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct auth_cache *auth_cache_new(size_t max_entries, uint64_t ttl_ms)
{
	if (max_entries == 0 || ttl_ms == 0)
		return NULL;
	size_t nsets = 1;
	while (nsets * WAYS < max_entries && nsets < ((size_t)1 << 24))
		nsets <<= 1;
	size_t size = sizeof(struct cache_secret) + nsets * WAYS * sizeof(struct cache_slot);
	void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return NULL;
	(void)madvise(mem, size, MADV_DONTDUMP);
	struct cache_secret *secret = mem;
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (mac == NULL || RAND_bytes(secret->key, KEY_LEN) != 1) {
		EVP_MAC_free(mac);
		munmap(mem, size);
		return NULL;
	}
	struct auth_cache *c = xcalloc(1, sizeof(*c));
	pthread_mutex_init(&c->lock, NULL);
	c->nsets = nsets;
	c->ttl_ms = ttl_ms;
	c->now_ms = monotonic_ms;
	c->mac = mac;
	c->secret = secret;
	c->secret_size = size;
	return c;
}

void auth_cache_free(struct auth_cache **cache)
{
	struct auth_cache *c = *cache;
	if (c == NULL)
		return;
	*cache = NULL;
	OPENSSL_cleanse(c->secret, c->secret_size);
	munmap(c->secret, c->secret_size);
	EVP_MAC_free(c->mac);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void auth_cache_set_clock(struct auth_cache *cache, uint64_t (*now_ms)(void))
{
	if (cache != NULL)
		cache->now_ms = now_ms;
}

/* HMAC-SHA256 under the cache key over length-prefixed parts. */
static void keyed_digest(const struct auth_cache *c, const char *const *parts, const size_t *lens,
                         size_t n, unsigned char out[DIGEST_LEN])
{
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(c->mac);
	char digest_name[] = "SHA256";
	OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest_name, 0),
	                       OSSL_PARAM_construct_end()};
	size_t out_len = 0;
	bool ok = ctx != NULL && EVP_MAC_init(ctx, c->secret->key, KEY_LEN, params) == 1;
	for (size_t i = 0; ok && i < n; i++) {
		unsigned char len_be[8];
		for (int b = 0; b < 8; b++)
			len_be[b] = (unsigned char)((uint64_t)lens[i] >> (56 - 8 * b));
		ok = EVP_MAC_update(ctx, len_be, sizeof(len_be)) == 1 &&
		     EVP_MAC_update(ctx, (const unsigned char *)parts[i], lens[i]) == 1;
	}
	ok = ok && EVP_MAC_final(ctx, out, &out_len, DIGEST_LEN) == 1 && out_len == DIGEST_LEN;
	if (!ok) /* never matches a stored digest: those are made by a working HMAC */
		RAND_bytes(out, DIGEST_LEN);
	EVP_MAC_CTX_free(ctx);
}

static uint64_t user_tag(const struct auth_cache *c, const char *user)
{
	const char *parts[] = {"user", user};
	const size_t lens[] = {4, strlen(user)};
	unsigned char d[DIGEST_LEN];
	keyed_digest(c, parts, lens, 2, d);
	uint64_t tag = 0;
	for (int i = 0; i < 8; i++)
		tag = tag << 8 | d[i];
	return tag != 0 ? tag : 1;
}

static void entry_digest(const struct auth_cache *c, const char *user, const char *stored,
                         const char *password, size_t len, unsigned char out[DIGEST_LEN])
{
	const char *parts[] = {"pass", user, stored, password};
	const size_t lens[] = {4, strlen(user), strlen(stored), len};
	keyed_digest(c, parts, lens, 4, out);
}

static struct cache_slot *set_of(struct auth_cache *c, uint64_t tag)
{
	return &c->secret->slots[(tag & (c->nsets - 1)) * WAYS];
}

bool auth_cache_check(struct auth_cache *cache, const char *user, const char *stored,
                      const char *password, size_t len)
{
	if (cache == NULL)
		return false;
	uint64_t tag = user_tag(cache, user);
	unsigned char d[DIGEST_LEN];
	entry_digest(cache, user, stored, password, len, d);
	bool hit = false;
	pthread_mutex_lock(&cache->lock);
	uint64_t now = cache->now_ms();
	struct cache_slot *set = set_of(cache, tag);
	for (int i = 0; i < WAYS; i++) {
		if (set[i].user_tag == tag && set[i].expires_ms > now &&
		    CRYPTO_memcmp(set[i].digest, d, DIGEST_LEN) == 0)
			hit = true;
	}
	cache->hits += hit ? 1 : 0;
	pthread_mutex_unlock(&cache->lock);
	OPENSSL_cleanse(d, sizeof(d));
	return hit;
}

void auth_cache_store(struct auth_cache *cache, const char *user, const char *stored,
                      const char *password, size_t len)
{
	if (cache == NULL)
		return;
	uint64_t tag = user_tag(cache, user);
	unsigned char d[DIGEST_LEN];
	entry_digest(cache, user, stored, password, len, d);
	pthread_mutex_lock(&cache->lock);
	uint64_t now = cache->now_ms();
	struct cache_slot *set = set_of(cache, tag), *victim = NULL;
	/* The same user (one entry each: the newest password wins), else a free or expired
	 * slot, else the entry closest to expiry. */
	for (int i = 0; i < WAYS && victim == NULL; i++) {
		if (set[i].user_tag == tag)
			victim = &set[i];
	}
	for (int i = 0; i < WAYS && victim == NULL; i++) {
		if (set[i].user_tag == 0 || set[i].expires_ms <= now)
			victim = &set[i];
	}
	if (victim == NULL) {
		victim = &set[0];
		for (int i = 1; i < WAYS; i++) {
			if (set[i].expires_ms < victim->expires_ms)
				victim = &set[i];
		}
	}
	victim->user_tag = tag;
	victim->expires_ms = now + cache->ttl_ms;
	memcpy(victim->digest, d, DIGEST_LEN);
	cache->stores++;
	pthread_mutex_unlock(&cache->lock);
	OPENSSL_cleanse(d, sizeof(d));
}

void auth_cache_clear(struct auth_cache *cache)
{
	if (cache == NULL)
		return;
	pthread_mutex_lock(&cache->lock);
	OPENSSL_cleanse(cache->secret->slots, cache->nsets * WAYS * sizeof(struct cache_slot));
	pthread_mutex_unlock(&cache->lock);
}

void auth_cache_counts(struct auth_cache *cache, uint64_t *hits_r, uint64_t *stores_r)
{
	*hits_r = *stores_r = 0;
	if (cache == NULL)
		return;
	pthread_mutex_lock(&cache->lock);
	*hits_r = cache->hits;
	*stores_r = cache->stores;
	pthread_mutex_unlock(&cache->lock);
}
