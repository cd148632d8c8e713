/*
 * Transcripts for the auth-userdb socket: greeting, USER lookups with canonical names,
 * homes under mail_root, quotas, uid/gid passed through, NOTFOUND for unknown or unsafe
 * names, and protocol errors that close the connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth_session.h"
#include "authd_test_util.h"
#include "userdb_session.h"

static const char passwd[] =
    "bob@example.test:{PLAIN}x:1001:1002::/ignored::userdb_quota_rule=*:storage=2M "
    "userdb_quota_messages=500\n"
    "carol@other.test:{PLAIN}y\n";

struct u {
	struct test_env env;
	struct fake_io io;
	struct userdb_session *s;
	struct buf in;
};

static struct u *u_new(void)
{
	struct u *u = xcalloc(1, sizeof(*u));
	test_env_init(&u->env, passwd, 10, 20);
	buf_init(&u->io.out, 0);
	buf_init(&u->in, 0);
	u->s = userdb_session_new(&u->env.authd, &fake_io_ops, &u->io);
	return u;
}

static void u_free(struct u *u)
{
	userdb_session_free(&u->s);
	test_env_deinit(&u->env);
	buf_free(&u->io.out);
	buf_free(&u->in);
	free(u);
}

static void u_send(struct u *u, const char *text, size_t len)
{
	buf_append(&u->in, text, len);
	userdb_session_feed(u->s, &u->in);
}

#define SEND(u, lit) u_send(u, lit, sizeof(lit) - 1)

static void test_lookups(void **state)
{
	struct u *u = u_new();
	char want[512];
	(void)state;

	/* The greeting comes first, unasked. */
	assert_int_equal(strncmp(buf_cstr(&u->io.out), "VERSION\t1\t0\nSPID\t", 17), 0);
	buf_reset(&u->io.out);
	SEND(u, "VERSION\t1\t0\nUSER\t1\tBOB\tservice=lmtp\n");
	snprintf(want, sizeof(want),
	         "USER\t1\tbob@example.test\thome=/var/mail/tern/example.test/bob\t"
	         "mail=maildir:/var/mail/tern/example.test/bob\tuid=1001\tgid=1002\t"
	         "quota_bytes=2097152\tquota_messages=500\n");
	assert_string_equal(buf_cstr(&u->io.out), want);
	buf_reset(&u->io.out);
	/* A user of another domain: no uid/gid/quota fields. Pipelined with misses. */
	SEND(u, "USER\t2\tcarol@OTHER.test\tservice=lmtp\nUSER\t3\tnobody\tservice=lmtp\n"
	        "USER\t4\t../../etc/passwd\tservice=lmtp\nUSER\t5\ta@b@c\tservice=lmtp\n"
	        "USER\t6\tcar\001tol@other.test\tservice=lmtp\n");
	assert_string_equal(buf_cstr(&u->io.out),
	                    "USER\t2\tcarol@other.test\thome=/var/mail/tern/other.test/carol\t"
	                    "mail=maildir:/var/mail/tern/other.test/carol\n"
	                    "NOTFOUND\t3\nNOTFOUND\t4\nNOTFOUND\t5\nNOTFOUND\t6\n");
	assert_false(u->io.closed);
	u_free(u);
}

#define L(lit) lit, sizeof(lit) - 1

static void test_protocol_errors(void **state)
{
	static const struct {
		const char *text;
		size_t len;
	} bad[] = {
	    {L("USER\t1\tbob\n")},                     /* no VERSION first */
	    {L("VERSION\t2\t0\n")},                    /* wrong major */
	    {L("VERSION\t1\t0\nPASS\t1\tbob\n")},      /* unsupported command */
	    {L("VERSION\t1\t0\nUSER\tx\tbob\n")},      /* bad id */
	    {L("VERSION\t1\t0\nUSER\t1\n")},           /* no user */
	    {L("VERSION\t1\t0\nUSER\t1\tb\0ob\n")},    /* NUL */
	    {L("VERSION\t1\t0\nUSER\t1\tb\001xob\n")}, /* bad escape */
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct u *u = u_new();
		u_send(u, bad[i].text, bad[i].len);
		if (!u->io.closed)
			fail_msg("case %zu did not close the connection", i);
		u_free(u);
	}
	/* An over-long line closes without buffering it. */
	struct u *u = u_new();
	SEND(u, "VERSION\t1\t0\n");
	char *big = xmalloc(20001);
	memset(big, 'x', 20000);
	big[20000] = '\0';
	u_send(u, big, 20000);
	assert_true(u->io.closed);
	assert_int_equal(u->in.len, 0);
	free(big);
	u_free(u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lookups),
	    cmocka_unit_test(test_protocol_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
