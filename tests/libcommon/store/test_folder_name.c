/* Unit tests for modified UTF-7 and the IMAP name <-> Maildir++ directory mapping. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "base/buf.h"
#include "store/folder_name.h"
#include "store/mutf7.h"

static const struct {
	const char *utf8;
	const char *mutf7;
} mutf7_valid[] = {
    {"INBOX", "INBOX"},
    {"", ""},
    {"Entw\xc3\xbcrfe", "Entw&APw-rfe"},
    {"&", "&-"},
    {"a&b&", "a&-b&-"},
    {"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "&ZeVnLIqe-"},
    /* RFC 3501 5.1.3 example. */
    {"~peter/mail/\xe5\x8f\xb0\xe5\x8c\x97/\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
     "~peter/mail/&U,BTFw-/&ZeVnLIqe-"},
    /* Outside the BMP: a surrogate pair. */
    {"\xf0\x9f\x98\x80", "&2D3eAA-"},
    {"\x01", "&AAE-"},
};

static const char *const mutf7_invalid[] = {
    "&",                        /* unterminated */
    "&Jjo",                     /* unterminated shift */
    "&Jjo!-",                   /* not base64 */
    "&AGE-",                    /* 'a' must not be encoded */
    "&APx-",                    /* non-zero pad bits */
    "&2D3-",                    /* lone high surrogate */
    "&3gA-",                    /* lone low surrogate */
    "&ZeVnLIqe-&ZeVnLIqe-",     /* adjacent shifts are not canonical */
    "\x80",                     /* raw 8-bit */
    "a\tb",                     /* raw control */
    "&AEUAbgB0AHcA/AByAGYAZQ-", /* '/' is not modified base64 */
};

static void test_mutf7_round_trip(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(mutf7_valid) / sizeof(mutf7_valid[0]); i++) {
		struct buf b;
		buf_init(&b, 0);
		const char *u = mutf7_valid[i].utf8, *m = mutf7_valid[i].mutf7;
		assert_int_equal(mutf7_encode(u, strlen(u), &b), 0);
		assert_string_equal(buf_cstr(&b), m);
		buf_reset(&b);
		assert_int_equal(mutf7_decode(m, strlen(m), &b), 0);
		assert_string_equal(buf_cstr(&b), u);
		assert_true(mutf7_is_valid(m, strlen(m)));
		buf_free(&b);
	}
}

static void test_mutf7_rejects(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(mutf7_invalid) / sizeof(mutf7_invalid[0]); i++) {
		struct buf b;
		buf_init(&b, 0);
		buf_append_str(&b, "keep");
		const char *m = mutf7_invalid[i];
		if (mutf7_decode(m, strlen(m), &b) != -1)
			fail_msg("accepted invalid mUTF-7 #%zu", i);
		assert_string_equal(buf_cstr(&b), "keep");
		buf_free(&b);
	}
	/* Invalid UTF-8 cannot be encoded: overlong, surrogate, truncated, > U+10FFFF. */
	static const char *const bad_utf8[] = {"\xc0\xaf", "\xed\xa0\x80", "\xe6\x97",
	                                       "\xf4\x90\x80\x80", "\xff"};
	for (size_t i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
		struct buf b;
		buf_init(&b, 0);
		assert_int_equal(mutf7_encode(bad_utf8[i], strlen(bad_utf8[i]), &b), -1);
		assert_int_equal(b.len, 0);
		buf_free(&b);
	}
}

static const struct {
	const char *name;
	const char *dir;
} names_valid[] = {
    {"INBOX", ""},
    {"inbox", ""},
    {"Sent", ".Sent"},
    {"Work/2026", ".Work.2026"},
    {"A/B/C", ".A.B.C"},
    {"INBOX/Lists", ".INBOX.Lists"},
    {"Entw&APw-rfe", ".Entw&APw-rfe"},
    {"a b~c", ".a b~c"},
};

static const char *const names_invalid[] = {
    "",          "/",      "A/", "/A",     "A//B",  "..",       "a.b",   "../etc",
    "A/../B",    "x*",     "x%", "a\001b", "a\x7f", "\xc3\xbc", "&AAE-", /* decodes to a control
                                                                            character */
    "&AIU-", /* decodes to a C1 control character (U+0085) */
    "&ZeVnLIqe", "INBOX/",
};

static void test_folder_names(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(names_valid) / sizeof(names_valid[0]); i++) {
		struct buf dir, name;
		buf_init(&dir, 0);
		buf_init(&name, 0);
		const char *err = NULL;
		assert_int_equal(folder_name_to_dir(names_valid[i].name, &dir, &err), 0);
		assert_string_equal(buf_cstr(&dir), names_valid[i].dir);
		if (dir.len > 0) {
			assert_int_equal(folder_dir_to_name(buf_cstr(&dir), &name), 0);
			if (strncmp(names_valid[i].name, "INBOX", 5) == 0)
				assert_string_equal(buf_cstr(&name), names_valid[i].name);
		}
		buf_free(&dir);
		buf_free(&name);
	}
	for (size_t i = 0; i < sizeof(names_invalid) / sizeof(names_invalid[0]); i++) {
		struct buf dir;
		buf_init(&dir, 0);
		const char *err = NULL;
		if (folder_name_to_dir(names_invalid[i], &dir, &err) != -1)
			fail_msg("accepted invalid name #%zu", i);
		assert_non_null(err);
		assert_int_equal(dir.len, 0);
		buf_free(&dir);
	}
}

static void test_folder_dirs(void **state)
{
	(void)state;
	/* Entries of a root that are not folders. */
	static const char *const not_folders[] = {
	    ".", "..", "cur", ".INBOX", "...", ".a..b", ".a.", "..tern-deleted.x", ".x*"};
	for (size_t i = 0; i < sizeof(not_folders) / sizeof(not_folders[0]); i++) {
		struct buf name;
		buf_init(&name, 0);
		if (folder_dir_to_name(not_folders[i], &name) != -1)
			fail_msg("accepted dir %s", not_folders[i]);
		buf_free(&name);
	}
	struct buf name;
	buf_init(&name, 0);
	assert_int_equal(folder_dir_to_name(".Work.2026", &name), 0);
	assert_string_equal(buf_cstr(&name), "Work/2026");
	buf_reset(&name);
	assert_int_equal(folder_name_to_utf8("Entw&APw-rfe", &name), 0);
	assert_string_equal(buf_cstr(&name), "Entw\xc3\xbcrfe");
	buf_free(&name);
}

static void test_folder_name_length_cap(void **state)
{
	(void)state;
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	struct buf dir;
	buf_init(&dir, 0);
	const char *err = NULL;
	assert_int_equal(folder_name_to_dir(longname, &dir, &err), -1);
	longname[254] = '\0'; /* "." + 254 = 255 bytes: fits one path component */
	assert_int_equal(folder_name_to_dir(longname, &dir, &err), 0);
	buf_free(&dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mutf7_round_trip),       cmocka_unit_test(test_mutf7_rejects),
	    cmocka_unit_test(test_folder_names),           cmocka_unit_test(test_folder_dirs),
	    cmocka_unit_test(test_folder_name_length_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
