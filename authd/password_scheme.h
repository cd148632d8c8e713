/*
 * Password schemes in Dovecot's stored format, "{SCHEME}data", so a Dovecot passwd-file
 * and `doveadm pw` output work unchanged. A hash without a {SCHEME} prefix is CRYPT, as in
 * Dovecot's passwd-file driver.
 *
 *   PLAIN, CLEAR, CLEARTEXT  the password itself (tests, CRAM-MD5)
 *   CRYPT                    any crypt(3) hash libxcrypt knows ($y$, $6$, $5$, $2y$, ...)
 *   SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT   crypt(3) with the matching prefix
 *   YESCRYPT                 (generate only) stored as {CRYPT}$y$...
 *   ARGON2ID, ARGON2I        PHC string $argon2id$v=19$m=...,t=...,p=...$salt$hash (libargon2)
 *   SCRAM-SHA-256            iterations,b64 salt,b64 StoredKey,b64 ServerKey (RFC 5802/7677)
 *
 * All comparisons of secrets are constant-time.
 */
#ifndef TERN_AUTHD_PASSWORD_SCHEME_H
#define TERN_AUTHD_PASSWORD_SCHEME_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

enum password_verify_result {
	PASSWORD_MISMATCH = 0,
	PASSWORD_MATCH = 1,
	PASSWORD_INVALID = -1, /* unknown scheme or malformed stored value */
};

/* Checks password[0 .. len) against the stored value. *error_r (static text) is set for
 * PASSWORD_INVALID. */
enum password_verify_result password_verify(const char *stored, const char *password, size_t len,
                                            const char **error_r);

/* Hashes password with scheme (a name from the list above, case-insensitive). Returns
 * "{SCHEME}..." (caller frees), or NULL with *error_r for an unknown scheme or failure. */
char *password_generate(const char *scheme, const char *password, const char **error_r);

/* True for a name password_generate() accepts. */
bool password_scheme_is_known(const char *scheme);

/* When stored is a plaintext scheme, returns the password (pointing into stored);
 * otherwise NULL. */
const char *password_plaintext(const char *stored);

/* When stored is a SCRAM-SHA-256 secret, appends it in RFC 5803 authPassword form
 * ("SCRAM-SHA-256$iter:salt$StoredKey:ServerKey", what libsasl2's SCRAM plugin reads) and
 * returns 0; otherwise -1. */
int password_scram_authpassword(const char *stored, struct buf *out);

#endif
