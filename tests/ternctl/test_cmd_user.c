/*
 * ternctl user / pw through the dispatcher: adding, changing, deleting and listing users
 * in a temporary passwd-file (checked by parsing it and verifying the stored hashes), and
 * pw's output verified as a password hash. Lines ternctl did not touch stay as they were.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "authd_settings.h"
#include "commands.h"
#include "passdb_file.h"
#include "password_scheme.h"

static char dir[64], conf[128], passwd[128];

struct run {
	int code;
	char *out, *err;
};

static struct run run(int argc, char **argv)
{
	struct run r = {0};
	size_t olen, elen;
	FILE *out = open_memstream(&r.out, &olen);
	FILE *err = open_memstream(&r.err, &elen);
	r.code = ternctl_main(argc, argv, out, err);
	fclose(out);
	fclose(err);
	return r;
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	static char text[8192];
	size_t n = f != NULL ? fread(text, 1, sizeof(text) - 1, f) : 0;
	text[n] = '\0';
	if (f != NULL)
		fclose(f);
	return text;
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/tern-ternctl-user.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(conf, sizeof(conf), "%s/tern.conf", dir);
	snprintf(passwd, sizeof(passwd), "%s/passwd", dir);
	FILE *f = fopen(conf, "w");
	fprintf(f,
	        "passwd_file = %s\nrun_dir = %s\ndomains = example.test\n"
	        "[authd]\nauth_default_scheme = SHA256-CRYPT\n",
	        passwd, dir);
	fclose(f);
	f = fopen(passwd, "w");
	fprintf(f,
	        "# keep this comment\ncarol@example.test:{PLAIN}c:1:2::/h::userdb_quota_bytes=7\n");
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	char path[160];
	(void)state;
	unlink(passwd);
	snprintf(path, sizeof(path), "%s.lock", passwd);
	unlink(path);
	unlink(conf);
	rmdir(dir);
	return 0;
}

static const struct passdb_user *find(struct passdb *db, const char *name)
{
	return passdb_lookup(db, name);
}

static struct passdb *parse_current(void)
{
	struct authd_settings set = {.default_domain = "example.test", .username_lowercase = true};
	const char *text = read_file(passwd);
	return passdb_parse(&set, text, strlen(text), passwd);
}

static void test_user_add_passwd_del_list(void **state)
{
	(void)state;
	struct run r =
	    run(7, (char *[]){"ternctl", "-c", conf, "user", "add", "Alice", "pw1", NULL});
	assert_int_equal(r.code, EX_OK);
	assert_string_equal(r.out, "alice@example.test added\n");
	run_free(&r);
	r = run(7,
	        (char *[]){"ternctl", "-c", conf, "user", "add", "alice@EXAMPLE.test", "x", NULL});
	assert_int_equal(r.code, EX_CANTCREAT);
	run_free(&r);

	struct passdb *db = parse_current();
	const struct passdb_user *u = find(db, "alice@example.test");
	const char *error;
	assert_non_null(u);
	assert_int_equal(strncmp(u->password, "{SHA256-CRYPT}$5$", 17), 0);
	assert_int_equal(password_verify(u->password, "pw1", 3, &error), PASSWORD_MATCH);
	passdb_unref(&db);

	r = run(7, (char *[]){"ternctl", "-c", conf, "user", "passwd", "carol", "newc", NULL});
	assert_int_equal(r.code, EX_OK);
	run_free(&r);
	db = parse_current();
	u = find(db, "carol@example.test");
	assert_int_equal(password_verify(u->password, "newc", 4, &error), PASSWORD_MATCH);
	assert_int_equal(password_verify(u->password, "c", 1, &error), PASSWORD_MISMATCH);
	/* uid, gid, home and extra fields survive a password change. */
	assert_string_equal(u->uid, "1");
	assert_int_equal(u->quota_bytes, 7);
	passdb_unref(&db);
	assert_non_null(strstr(read_file(passwd), "# keep this comment\n"));
	assert_non_null(strstr(read_file(passwd), ":1:2::/h::userdb_quota_bytes=7\n"));

	r = run(5, (char *[]){"ternctl", "-c", conf, "user", "list", NULL});
	assert_int_equal(r.code, EX_OK);
	assert_string_equal(r.out, "alice@example.test\ncarol@example.test\n");
	run_free(&r);

	r = run(6, (char *[]){"ternctl", "-c", conf, "user", "del", "carol", NULL});
	assert_int_equal(r.code, EX_OK);
	run_free(&r);
	r = run(6, (char *[]){"ternctl", "-c", conf, "user", "del", "carol", NULL});
	assert_int_equal(r.code, EX_NOUSER);
	run_free(&r);
	r = run(7, (char *[]){"ternctl", "-c", conf, "user", "passwd", "carol", "x", NULL});
	assert_int_equal(r.code, EX_NOUSER);
	run_free(&r);
	assert_null(strstr(read_file(passwd), "carol"));
	/* Names that could break the file or a path are refused. */
	r = run(7,
	        (char *[]){"ternctl", "-c", conf, "user", "add", "evil:x@example.test", "x", NULL});
	assert_int_equal(r.code, EX_DATAERR);
	run_free(&r);
	r = run(7,
	        (char *[]){"ternctl", "-c", conf, "user", "add", "../x@example.test", "x", NULL});
	assert_int_equal(r.code, EX_DATAERR);
	run_free(&r);
	r = run(5, (char *[]){"ternctl", "-c", conf, "user", "frobnicate", NULL});
	assert_int_equal(r.code, EX_USAGE);
	run_free(&r);
}

static void test_pw(void **state)
{
	static const char *const schemes[] = {"SHA512-CRYPT", "BLF-CRYPT", "ARGON2ID",
	                                      "SCRAM-SHA-256", "YESCRYPT"};
	(void)state;
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		struct run r = run(8, (char *[]){"ternctl", "-c", conf, "pw", "-s",
		                                 (char *)schemes[i], "-p", "hunter2", NULL});
		assert_int_equal(r.code, EX_OK);
		r.out[strcspn(r.out, "\n")] = '\0';
		const char *error;
		assert_int_equal(password_verify(r.out, "hunter2", 7, &error), PASSWORD_MATCH);
		char hash[512];
		snprintf(hash, sizeof(hash), "%s", r.out);
		run_free(&r);
		r = run(8,
		        (char *[]){"ternctl", "-c", conf, "pw", "-t", hash, "-p", "hunter2", NULL});
		assert_int_equal(r.code, EX_OK);
		run_free(&r);
		r = run(8,
		        (char *[]){"ternctl", "-c", conf, "pw", "-t", hash, "-p", "hunter3", NULL});
		assert_int_equal(r.code, EX_NOPERM);
		run_free(&r);
	}
	/* Without -s: the configured default scheme. */
	struct run r = run(6, (char *[]){"ternctl", "-c", conf, "pw", "-p", "x", NULL});
	assert_int_equal(r.code, EX_OK);
	assert_int_equal(strncmp(r.out, "{SHA256-CRYPT}$5$", 17), 0);
	run_free(&r);
	r = run(8, (char *[]){"ternctl", "-c", conf, "pw", "-s", "NOPE", "-p", "x", NULL});
	assert_int_equal(r.code, EX_USAGE);
	run_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_user_add_passwd_del_list),
	    cmocka_unit_test(test_pw),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
