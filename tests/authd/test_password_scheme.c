/*
 * Password schemes against known vectors made by other tools, all for the password
 * "s3cret pass":
 *   doveadm pw -s SCHEME -p 's3cret pass'   (Debian dovecot-core 2.3.19.1)
 *   mkpasswd -m METHOD 's3cret pass'        (Debian whois 5.5, libxcrypt 4.4.33)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "password_scheme.h"

static const char password[] = "s3cret pass";

static const char *const vectors[] = {
    /* doveadm pw */
    "{SHA512-CRYPT}$6$WxyRe4xjBnjCdaLu$amWAVzyyDlHMuGCsGUxpdjMcnLfYNog6He6AGgRYtQ8/"
    "8K3NVjiPWjFnPM9unJf5aOjdehIktyeGMSjtqWL421",
    "{BLF-CRYPT}$2y$05$jAyWp3Xd74kBX8Gu7InHf.AwRI0SY5iXkCakNNS2Eum6MA8FTBOJe",
    "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$XYTkBZLAnPqBaH1RQRdVXw$"
    "t65L0wuE2W7i7NHQVA8fRW6rKbcaWik+7RzKsvKX1QQ",
    "{SCRAM-SHA-256}4096,aIODPvkrYJ2o7p1Cbw6NfA==,stIpC04Yu5FqaaQI60yoyvQF/HYWWXhhQPQrZD+k2Y0=,"
    "D5twtdJTXHxHkaPDJ6V+NoCwfflv0WTni6jKcXDIy0s=",
    "{CRYPT}$2y$05$uea6Z3GVRgsgdv38P4PkTeyfKgRldU8P/rmC/K/EXo0UYyATM2E/6",
    "{PLAIN}s3cret pass",
    /* mkpasswd, stored without a scheme prefix = CRYPT, and with one */
    "$y$j9T$a951oihwKBgRDIAYg8zCN/$5MK2dZOePluWeWfKTMhRMb9tfvxZWlLbTX2BEx3ku/3",
    "{CRYPT}$y$j9T$a951oihwKBgRDIAYg8zCN/$5MK2dZOePluWeWfKTMhRMb9tfvxZWlLbTX2BEx3ku/3",
    "{SHA512-CRYPT}$6$IcFwLQ.KEUvQB2Xg$sSSj9tQDnt58F3TL06blLXeTIM5EUhZ2HaDlYGDjBZuA5JAPkZ1SSwSa5M4"
    "lwWrzB8vvuMG/RTKOkORCiEF96.",
    "{BLF-CRYPT}$2b$05$kKB3K3ruSCVhAUnb7WYbD.VN0zaP6bSJkBExgUHZ6nyCKhQemgHOC",
};

static void test_known_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		const char *error = NULL;
		assert_int_equal(password_verify(vectors[i], password, strlen(password), &error),
		                 PASSWORD_MATCH);
		assert_int_equal(password_verify(vectors[i], "s3cret pasS", 11, &error),
		                 PASSWORD_MISMATCH);
		assert_int_equal(password_verify(vectors[i], "s3cret pass ", 12, &error),
		                 PASSWORD_MISMATCH);
		assert_int_equal(password_verify(vectors[i], "", 0, &error), PASSWORD_MISMATCH);
		/* An embedded NUL never matches a crypt(3) hash by truncation. */
		assert_int_equal(password_verify(vectors[i], "s3cret pass\0x", 13, &error),
		                 PASSWORD_MISMATCH);
	}
}

static void test_invalid_stored(void **state)
{
	static const char *const bad[] = {
	    "{NOSUCH}abc",
	    "{SHA512-CRYPT}$2y$05$jAyWp3Xd74kBX8Gu7InHf.AwRI0SY5iXkCakNNS2Eum6MA8FTBOJe",
	    "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$broken",
	    "{ARGON2ID}$argon2i$v=19$m=65536,t=3,p=1$XYTkBZLAnPqBaH1RQRdVXw$t65L0wuE2W7",
	    "{SCRAM-SHA-256}4096,aIODPvkrYJ2o7p1Cbw6NfA==,short,D5tw",
	    "{SCRAM-SHA-256}0,aIODPvkrYJ2o7p1Cbw6NfA==,stIpC04Yu5FqaaQI60yoyvQF/"
	    "HYWWXhhQPQrZD+k2Y0=,"
	    "D5twtdJTXHxHkaPDJ6V+NoCwfflv0WTni6jKcXDIy0s=",
	    "{SCRAM-SHA-256}4096,aIODPvkrYJ2o7p1Cbw6NfA==",
	    "{CRYPT}*",
	    "!locked",
	    "{PLAIN",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *error = NULL;
		assert_int_equal(password_verify(bad[i], password, strlen(password), &error),
		                 PASSWORD_INVALID);
		assert_non_null(error);
	}
}

static void test_generate_roundtrip(void **state)
{
	static const char *const names[] = {"SHA512-CRYPT", "sha256-crypt",  "BLF-CRYPT",
	                                    "YESCRYPT",     "CRYPT",         "ARGON2ID",
	                                    "ARGON2I",      "SCRAM-SHA-256", "PLAIN"};
	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *error = NULL;
		char *h = password_generate(names[i], password, &error);
		assert_non_null(h);
		assert_int_equal(h[0], '{');
		assert_int_equal(password_verify(h, password, strlen(password), &error),
		                 PASSWORD_MATCH);
		assert_int_equal(password_verify(h, "other", 5, &error), PASSWORD_MISMATCH);
		free(h);
	}
	const char *error = NULL;
	assert_null(password_generate("MD5", password, &error));
	assert_null(password_generate("CLEAR", password, &error));
	assert_true(password_scheme_is_known("blf-crypt"));
	assert_false(password_scheme_is_known("nope"));
	char *y = password_generate("YESCRYPT", "x", &error);
	assert_int_equal(strncmp(y, "{CRYPT}$y$", 10), 0);
	free(y);
}

static void test_plaintext_and_scram_export(void **state)
{
	struct buf b;
	(void)state;

	assert_string_equal(password_plaintext("{PLAIN}s3cret pass"), "s3cret pass");
	assert_string_equal(password_plaintext("{clear}x"), "x");
	assert_null(password_plaintext(vectors[0]));
	buf_init(&b, 0);
	assert_int_equal(password_scram_authpassword(vectors[3], &b), 0);
	assert_string_equal(buf_cstr(&b), "SCRAM-SHA-256$4096:aIODPvkrYJ2o7p1Cbw6NfA==$"
	                                  "stIpC04Yu5FqaaQI60yoyvQF/HYWWXhhQPQrZD+k2Y0=:"
	                                  "D5twtdJTXHxHkaPDJ6V+NoCwfflv0WTni6jKcXDIy0s=");
	buf_reset(&b);
	assert_int_equal(password_scram_authpassword(vectors[0], &b), -1);
	buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_known_vectors),
	    cmocka_unit_test(test_invalid_stored),
	    cmocka_unit_test(test_generate_roundtrip),
	    cmocka_unit_test(test_plaintext_and_scram_export),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
