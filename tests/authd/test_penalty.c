/*
 * The per-IP failure delay: the table's arithmetic (2 s doubling to 15 s by default), and
 * on a live session that the delay lands on the failing IP only: another IP's request
 * sent while the first waits out its delay is answered first. Timing checks are only
 * of the "at least N ms" kind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/base64.h"
#include "auth_session.h"
#include "authd_test_util.h"
#include "penalty.h"

static void test_penalty_table(void **state)
{
	struct penalty *p = penalty_new(2000, 15000, 4);
	(void)state;

	assert_int_equal(penalty_failure(p, "192.0.2.1", 1000), 2000);
	assert_int_equal(penalty_failure(p, "192.0.2.1", 1001), 4000);
	assert_int_equal(penalty_failure(p, "192.0.2.1", 1002), 8000);
	assert_int_equal(penalty_failure(p, "192.0.2.1", 1003), 15000);
	assert_int_equal(penalty_failure(p, "192.0.2.1", 1004), 15000);
	/* Another address starts from the beginning. */
	assert_int_equal(penalty_failure(p, "192.0.2.2", 1005), 2000);
	assert_int_equal(penalty_count(p, "192.0.2.1", 1006), 5);
	/* A success clears the address. */
	penalty_success(p, "192.0.2.1");
	assert_int_equal(penalty_count(p, "192.0.2.1", 1007), 0);
	assert_int_equal(penalty_failure(p, "192.0.2.1", 1008), 2000);
	/* Forgotten after an hour without failures. */
	assert_int_equal(penalty_failure(p, "192.0.2.1", 1008 + 3600 * 1000), 2000);
	/* The table is capped: a flood of addresses evicts old ones. */
	for (int i = 0; i < 100; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "198.51.100.%d", i);
		penalty_failure(p, ip, 5000000 + (uint64_t)i);
	}
	assert_int_equal(penalty_count(p, "198.51.100.99", 5000100), 1);
	assert_int_equal(penalty_count(p, "198.51.100.0", 5000100), 0);
	penalty_free(&p);
	assert_null(p);
}

static void feed(struct auth_session *s, struct buf *in, const char *text)
{
	buf_append_str(in, text);
	auth_session_feed(s, in);
}

static void test_delay_is_per_ip(void **state)
{
	struct test_env env;
	struct buf in;
	(void)state;

	/* 300 ms doubling: the second failure from A waits 600 ms. */
	test_env_init(&env, "alice@example.test:{PLAIN}alicepw\n", 300, 5000);
	buf_init(&in, 0);
	struct fake_io io_a = {0}, io_b = {0};
	buf_init(&io_a.out, 0);
	buf_init(&io_b.out, 0);
	struct auth_session *a = auth_session_new(&env.authd, &fake_io_ops, &io_a);
	struct auth_session *b = auth_session_new(&env.authd, &fake_io_ops, &io_b);
	feed(a, &in, "VERSION\t1\t0\n");
	feed(b, &in, "VERSION\t1\t0\n");
	assert_true(run_until(&env.loop, &io_a.out, "DONE\n", 2000));
	assert_true(run_until(&env.loop, &io_b.out, "DONE\n", 2000));
	buf_reset(&io_a.out);
	buf_reset(&io_b.out);

	char bad_line[256], good_line[256];
	struct buf b64;
	buf_init(&b64, 0);
	base64_encode(&b64, "\0alice\0wrong", 12);
	uint64_t t0 = test_now_ms();
	snprintf(bad_line, sizeof(bad_line),
	         "AUTH\t1\tPLAIN\tservice=smtp\trip=192.0.2.66\tsecured\tresp=%s\n",
	         buf_cstr(&b64));
	feed(a, &in, bad_line);
	assert_true(run_until(&env.loop, &io_a.out, "FAIL\t1\t", 5000));
	assert_true(test_now_ms() - t0 >= 300);

	/* Second failure from A (600 ms) and a good login from B, sent together. */
	t0 = test_now_ms();
	bad_line[5] = '2';
	feed(a, &in, bad_line);
	buf_reset(&b64);
	base64_encode(&b64, "\0alice\0alicepw", 14);
	snprintf(good_line, sizeof(good_line),
	         "AUTH\t7\tPLAIN\tservice=smtp\trip=198.51.100.9\tsecured\tresp=%s\n",
	         buf_cstr(&b64));
	feed(b, &in, good_line);
	assert_true(run_until(&env.loop, &io_b.out, "OK\t7\tuser=alice@example.test\n", 5000));
	/* B is answered while A still waits. */
	assert_null(strstr(buf_cstr(&io_a.out), "FAIL\t2\t"));
	assert_true(run_until(&env.loop, &io_a.out, "FAIL\t2\t", 5000));
	assert_true(test_now_ms() - t0 >= 600);
	/* B's own first failure gets the base delay, not A's. */
	assert_int_equal(penalty_count(env.authd.penalty, "198.51.100.9", uv_now(&env.loop)), 0);
	assert_int_equal(penalty_count(env.authd.penalty, "192.0.2.66", uv_now(&env.loop)), 2);

	auth_session_free(&a);
	auth_session_free(&b);
	buf_free(&b64);
	buf_free(&in);
	buf_free(&io_a.out);
	buf_free(&io_b.out);
	test_env_deinit(&env);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_penalty_table),
	    cmocka_unit_test(test_delay_is_per_ip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
