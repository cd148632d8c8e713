/*
 * Password verification and generation for the Dovecot-compatible schemes (see
 * password_scheme.h). crypt(3) hashes go through libxcrypt's reentrant crypt_rn(),
 * Argon2 through libargon2, SCRAM through OpenSSL's PBKDF2 and HMAC.
 */
#include "password_scheme.h"

#include <argon2.h>
#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/base64.h"
#include "base/buf.h"
#include "base/xalloc.h"

#define SCRAM_ITERATIONS_DEFAULT 4096
#define SCRAM_ITERATIONS_MAX 10000000
#define ARGON2_T_COST 3
#define ARGON2_M_COST 65536 /* KiB, as Dovecot/libsodium "interactive" */
#define ARGON2_PARALLELISM 1

enum scheme_kind {
	KIND_PLAIN,
	KIND_CRYPT,
	KIND_ARGON2,
	KIND_SCRAM,
};

struct scheme {
	const char *name;
	enum scheme_kind kind;
	const char *crypt_prefix; /* required prefix of the crypt(3) hash; NULL = any */
	const char *stored_name;  /* name written by password_generate (NULL = name) */
	bool verify_only;         /* recognised in stored values */
	bool generate_only;
};

static const struct scheme schemes[] = {
    {"PLAIN", KIND_PLAIN, NULL, NULL, false, false},
    {"CLEAR", KIND_PLAIN, NULL, NULL, true, false},
    {"CLEARTEXT", KIND_PLAIN, NULL, NULL, true, false},
    {"CRYPT", KIND_CRYPT, NULL, NULL, false, false},
    {"SHA512-CRYPT", KIND_CRYPT, "$6$", NULL, false, false},
    {"SHA256-CRYPT", KIND_CRYPT, "$5$", NULL, false, false},
    {"BLF-CRYPT", KIND_CRYPT, "$2", NULL, false, false},
    {"YESCRYPT", KIND_CRYPT, "$y$", "CRYPT", false, true},
    {"ARGON2ID", KIND_ARGON2, "$argon2id$", NULL, false, false},
    {"ARGON2I", KIND_ARGON2, "$argon2i$", NULL, false, false},
    {"SCRAM-SHA-256", KIND_SCRAM, NULL, NULL, false, false},
};

static const struct scheme *scheme_find(const char *name, size_t len, bool for_generate)
{
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		const struct scheme *s = &schemes[i];
		if (strlen(s->name) != len || strncasecmp(s->name, name, len) != 0)
			continue;
		if (for_generate ? s->verify_only : s->generate_only)
			return NULL;
		return s;
	}
	return NULL;
}

/* Splits "{SCHEME}data"; a value without braces is CRYPT. */
static const struct scheme *scheme_parse(const char *stored, const char **data_r)
{
	if (stored[0] != '{') {
		*data_r = stored;
		return scheme_find("CRYPT", 5, false);
	}
	const char *end = strchr(stored, '}');
	if (end == NULL)
		return NULL;
	*data_r = end + 1;
	return scheme_find(stored + 1, (size_t)(end - stored - 1), false);
}

bool password_scheme_is_known(const char *scheme)
{
	return scheme_find(scheme, strlen(scheme), true) != NULL;
}

const char *password_plaintext(const char *stored)
{
	const char *data;
	const struct scheme *s = scheme_parse(stored, &data);

	return s != NULL && s->kind == KIND_PLAIN ? data : NULL;
}

/* Compares two byte strings in time that depends only on the lengths: both are hashed
 * first, so even a length difference is not found by an early exit. */
static bool secret_equal(const void *a, size_t alen, const void *b, size_t blen)
{
	unsigned char da[SHA256_DIGEST_LENGTH], db[SHA256_DIGEST_LENGTH];

	SHA256(a, alen, da);
	SHA256(b, blen, db);
	bool eq = CRYPTO_memcmp(da, db, sizeof(da)) == 0 && alen == blen;
	secure_zero(da, sizeof(da));
	secure_zero(db, sizeof(db));
	return eq;
}

static enum password_verify_result verify_crypt(const struct scheme *s, const char *hash,
                                                const char *password, size_t len,
                                                const char **error_r)
{
	if (s->crypt_prefix != NULL &&
	    strncmp(hash, s->crypt_prefix, strlen(s->crypt_prefix)) != 0) {
		*error_r = "hash does not match its scheme";
		return PASSWORD_INVALID;
	}
	if (memchr(password, '\0', len) != NULL)
		return PASSWORD_MISMATCH; /* crypt(3) cannot see past a NUL */
	char *phrase = xstrndup(password, len);
	struct crypt_data *data = xcalloc(1, sizeof(*data));
	const char *out = crypt_rn(phrase, hash, data, sizeof(*data));
	enum password_verify_result r;
	if (out == NULL || out[0] == '*') {
		*error_r = "crypt(3) does not support this hash";
		r = PASSWORD_INVALID;
	} else {
		r = secret_equal(out, strlen(out), hash, strlen(hash)) ? PASSWORD_MATCH
		                                                       : PASSWORD_MISMATCH;
	}
	secure_zero(phrase, len);
	free(phrase);
	secure_zero(data, sizeof(*data));
	free(data);
	return r;
}

static enum password_verify_result verify_argon2(const struct scheme *s, const char *hash,
                                                 const char *password, size_t len,
                                                 const char **error_r)
{
	if (strncmp(hash, s->crypt_prefix, strlen(s->crypt_prefix)) != 0) {
		*error_r = "hash does not match its scheme";
		return PASSWORD_INVALID;
	}
	argon2_type type = strcmp(s->name, "ARGON2ID") == 0 ? Argon2_id : Argon2_i;
	int r = argon2_verify(hash, password, len, type);
	if (r == ARGON2_OK)
		return PASSWORD_MATCH;
	if (r == ARGON2_VERIFY_MISMATCH)
		return PASSWORD_MISMATCH;
	*error_r = "malformed Argon2 hash";
	return PASSWORD_INVALID;
}

struct scram_secret {
	unsigned iterations;
	struct buf salt;
	unsigned char stored_key[SHA256_DIGEST_LENGTH];
	unsigned char server_key[SHA256_DIGEST_LENGTH];
	const char *salt_b64, *stored_b64, *server_b64; /* into the copy below */
	size_t salt_b64_len, stored_b64_len, server_b64_len;
};

/* Parses "iterations,salt,StoredKey,ServerKey" (Dovecot's SCRAM-SHA-256 format). */
static int scram_parse(const char *data, struct scram_secret *sec)
{
	const char *p[4];
	size_t plen[4];
	const char *cur = data;

	for (int i = 0; i < 4; i++) {
		const char *comma = strchr(cur, ',');
		if ((comma == NULL) != (i == 3))
			return -1;
		p[i] = cur;
		plen[i] = comma != NULL ? (size_t)(comma - cur) : strlen(cur);
		cur = comma != NULL ? comma + 1 : NULL;
	}
	char *end;
	if (plen[0] == 0 || p[0][0] < '1' || p[0][0] > '9')
		return -1;
	unsigned long it = strtoul(p[0], &end, 10);
	if (end != p[0] + plen[0] || it > SCRAM_ITERATIONS_MAX)
		return -1;
	sec->iterations = (unsigned)it;
	buf_init(&sec->salt, 1024);
	struct buf key;
	buf_init(&key, 64);
	int r = -1;
	if (plen[1] == 0 || base64_decode(&sec->salt, p[1], plen[1]) < 0)
		goto out;
	if (base64_decode(&key, p[2], plen[2]) < 0 || key.len != SHA256_DIGEST_LENGTH)
		goto out;
	memcpy(sec->stored_key, key.data, key.len);
	buf_reset(&key);
	if (base64_decode(&key, p[3], plen[3]) < 0 || key.len != SHA256_DIGEST_LENGTH)
		goto out;
	memcpy(sec->server_key, key.data, key.len);
	sec->salt_b64 = p[1];
	sec->salt_b64_len = plen[1];
	sec->stored_b64 = p[2];
	sec->stored_b64_len = plen[2];
	sec->server_b64 = p[3];
	sec->server_b64_len = plen[3];
	r = 0;
out:
	buf_free(&key);
	if (r < 0)
		buf_free(&sec->salt);
	return r;
}

/* SaltedPassword, ClientKey, StoredKey and ServerKey as RFC 5802 section 3 defines them. */
static int scram_keys(const char *password, size_t len, const void *salt, size_t salt_len,
                      unsigned iterations, unsigned char stored_r[SHA256_DIGEST_LENGTH],
                      unsigned char server_r[SHA256_DIGEST_LENGTH])
{
	unsigned char salted[SHA256_DIGEST_LENGTH], client_key[SHA256_DIGEST_LENGTH];
	unsigned int n = 0;
	int r = -1;

	if (PKCS5_PBKDF2_HMAC(password, (int)len, salt, (int)salt_len, (int)iterations,
	                      EVP_sha256(), sizeof(salted), salted) != 1)
		goto out;
	if (HMAC(EVP_sha256(), salted, sizeof(salted), (const unsigned char *)"Client Key", 10,
	         client_key, &n) == NULL)
		goto out;
	SHA256(client_key, sizeof(client_key), stored_r);
	if (HMAC(EVP_sha256(), salted, sizeof(salted), (const unsigned char *)"Server Key", 10,
	         server_r, &n) == NULL)
		goto out;
	r = 0;
out:
	secure_zero(salted, sizeof(salted));
	secure_zero(client_key, sizeof(client_key));
	return r;
}

static enum password_verify_result verify_scram(const char *data, const char *password, size_t len,
                                                const char **error_r)
{
	struct scram_secret sec;
	unsigned char stored[SHA256_DIGEST_LENGTH], server[SHA256_DIGEST_LENGTH];

	if (scram_parse(data, &sec) < 0) {
		*error_r = "malformed SCRAM-SHA-256 secret";
		return PASSWORD_INVALID;
	}
	enum password_verify_result r = PASSWORD_INVALID;
	if (scram_keys(password, len, sec.salt.data, sec.salt.len, sec.iterations, stored, server) <
	    0) {
		*error_r = "SCRAM key derivation failed";
	} else {
		bool a = CRYPTO_memcmp(stored, sec.stored_key, sizeof(stored)) == 0;
		bool b = CRYPTO_memcmp(server, sec.server_key, sizeof(server)) == 0;
		r = a && b ? PASSWORD_MATCH : PASSWORD_MISMATCH;
	}
	buf_free(&sec.salt);
	secure_zero(stored, sizeof(stored));
	secure_zero(server, sizeof(server));
	return r;
}

enum password_verify_result password_verify(const char *stored, const char *password, size_t len,
                                            const char **error_r)
{
	const char *data;
	const struct scheme *s = scheme_parse(stored, &data);

	*error_r = NULL;
	if (s == NULL) {
		*error_r = "unknown password scheme";
		return PASSWORD_INVALID;
	}
	switch (s->kind) {
	case KIND_PLAIN:
		return secret_equal(data, strlen(data), password, len) ? PASSWORD_MATCH
		                                                       : PASSWORD_MISMATCH;
	case KIND_CRYPT:
		return verify_crypt(s, data, password, len, error_r);
	case KIND_ARGON2:
		return verify_argon2(s, data, password, len, error_r);
	case KIND_SCRAM:
		return verify_scram(data, password, len, error_r);
	}
	*error_r = "unknown password scheme";
	return PASSWORD_INVALID;
}

int password_scram_authpassword(const char *stored, struct buf *out)
{
	const char *data;
	const struct scheme *s = scheme_parse(stored, &data);
	struct scram_secret sec;

	if (s == NULL || s->kind != KIND_SCRAM || scram_parse(data, &sec) < 0)
		return -1;
	buf_free(&sec.salt);
	return buf_printf(out, "SCRAM-SHA-256$%u:%.*s$%.*s:%.*s", sec.iterations,
	                  (int)sec.salt_b64_len, sec.salt_b64, (int)sec.stored_b64_len,
	                  sec.stored_b64, (int)sec.server_b64_len, sec.server_b64);
}

static char *generate_crypt(const struct scheme *s, const char *password, const char **error_r)
{
	char setting[CRYPT_GENSALT_OUTPUT_SIZE];
	const char *prefix = s->crypt_prefix != NULL ? s->crypt_prefix : "$y$";
	unsigned long count = 0;

	if (strcmp(prefix, "$2") == 0) {
		prefix = "$2y$";
		count = 5; /* Dovecot's BLF-CRYPT default cost */
	}
	if (crypt_gensalt_rn(prefix, count, NULL, 0, setting, sizeof(setting)) == NULL) {
		*error_r = "crypt_gensalt failed";
		return NULL;
	}
	struct crypt_data *data = xcalloc(1, sizeof(*data));
	const char *out = crypt_rn(password, setting, data, sizeof(*data));
	char *result = NULL;
	if (out == NULL || out[0] == '*')
		*error_r = "crypt(3) failed";
	else
		result =
		    xasprintf("{%s}%s", s->stored_name != NULL ? s->stored_name : s->name, out);
	secure_zero(data, sizeof(*data));
	free(data);
	return result;
}

static char *generate_argon2(const struct scheme *s, const char *password, const char **error_r)
{
	unsigned char salt[16];
	argon2_type type = strcmp(s->name, "ARGON2ID") == 0 ? Argon2_id : Argon2_i;
	size_t enclen = argon2_encodedlen(ARGON2_T_COST, ARGON2_M_COST, ARGON2_PARALLELISM,
	                                  sizeof(salt), 32, type);
	char *enc = xmalloc(enclen);

	if (RAND_bytes(salt, sizeof(salt)) != 1 ||
	    argon2_hash(ARGON2_T_COST, ARGON2_M_COST, ARGON2_PARALLELISM, password,
	                strlen(password), salt, sizeof(salt), NULL, 32, enc, enclen, type,
	                ARGON2_VERSION_13) != ARGON2_OK) {
		*error_r = "argon2 hashing failed";
		free(enc);
		return NULL;
	}
	char *result = xasprintf("{%s}%s", s->name, enc);
	free(enc);
	return result;
}

static char *generate_scram(const char *password, const char **error_r)
{
	unsigned char salt[16], stored[SHA256_DIGEST_LENGTH], server[SHA256_DIGEST_LENGTH];
	struct buf b;

	if (RAND_bytes(salt, sizeof(salt)) != 1 ||
	    scram_keys(password, strlen(password), salt, sizeof(salt), SCRAM_ITERATIONS_DEFAULT,
	               stored, server) < 0) {
		*error_r = "SCRAM key derivation failed";
		return NULL;
	}
	buf_init(&b, 0);
	buf_printf(&b, "{SCRAM-SHA-256}%u,", SCRAM_ITERATIONS_DEFAULT);
	base64_encode(&b, salt, sizeof(salt));
	buf_append_char(&b, ',');
	base64_encode(&b, stored, sizeof(stored));
	buf_append_char(&b, ',');
	base64_encode(&b, server, sizeof(server));
	return buf_steal(&b);
}

char *password_generate(const char *scheme, const char *password, const char **error_r)
{
	const struct scheme *s = scheme_find(scheme, strlen(scheme), true);

	*error_r = NULL;
	if (s == NULL) {
		*error_r = "unknown password scheme";
		return NULL;
	}
	switch (s->kind) {
	case KIND_PLAIN:
		return xasprintf("{%s}%s", s->name, password);
	case KIND_CRYPT:
		return generate_crypt(s, password, error_r);
	case KIND_ARGON2:
		return generate_argon2(s, password, error_r);
	case KIND_SCRAM:
		return generate_scram(password, error_r);
	}
	*error_r = "unknown password scheme";
	return NULL;
}
