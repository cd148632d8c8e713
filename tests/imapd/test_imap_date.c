/* imap_date: month names, IMAP date / date-time, RFC 5322 dates, with the nasty inputs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/buf.h"
#include "imap_date.h"

static void test_month_index(void **state)
{
	(void)state;
	assert_int_equal(imap_month_index("Jan"), 0);
	assert_int_equal(imap_month_index("dec"), 11);
	assert_int_equal(imap_month_index("SEP"), 8);
	assert_int_equal(imap_month_index("Ja"), -1);
	assert_int_equal(imap_month_index(""), -1);
	assert_int_equal(imap_month_index("Foo"), -1);
}

static void test_date_parse(void **state)
{
	(void)state;
	int32_t d;
	assert_int_equal(imap_date_parse("1-Jan-1970", &d), 0);
	assert_int_equal(d, 0);
	assert_int_equal(imap_date_parse("01-feb-1994", &d), 0);
	assert_int_equal(d, 8797);
	assert_int_equal(imap_date_parse("29-Feb-2024", &d), 0);
	assert_int_equal(d, 19782);
	static const char *const bad[] = {
	    "",           "1-Jan-70",    "32-Jan-2020", "0-Jan-2020", "1-Jann-2020", "1-Jan-2020x",
	    "1 Jan 2020", "-1-Jan-2020", "31-Apr-2020", "1-Jan-0999", "123-Jan-2020"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (imap_date_parse(bad[i], &d) == 0)
			fail_msg("accepted '%s'", bad[i]);
	}
}

static void test_date_time_parse(void **state)
{
	(void)state;
	time_t t;
	assert_int_equal(imap_date_time_parse("01-Jul-2003 10:52:37 +0200", &t), 0);
	assert_int_equal(t, 1057049557);
	assert_int_equal(imap_date_time_parse(" 1-Jul-2003 03:52:37 -0500", &t), 0);
	assert_int_equal(t, 1057049557);
	static const char *const bad[] = {"",
	                                  "01-Jul-2003 10:52:37",
	                                  "01-Jul-2003 24:00:00 +0000",
	                                  "01-Jul-2003 10:60:00 +0000",
	                                  "01-Jul-2003 10:00:00 +0060",
	                                  "01-Jux-2003 10:00:00 +0000",
	                                  "01-Jul-2003 10:00:00 *0000",
	                                  "01-Jul-2003 -1:00:00 +0000",
	                                  "01-Jul-2003 10:00:00 +00000"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (imap_date_time_parse(bad[i], &t) == 0)
			fail_msg("accepted '%s'", bad[i]);
	}
}

static void test_date_time_round_trip(void **state)
{
	(void)state;
	struct buf out;
	buf_init(&out, 0);
	imap_date_time_append(&out, 1057049557);
	/* "dd-Mon-yyyy hh:mm:ss +zzzz" in quotes, in the local zone: reads back the same. */
	assert_int_equal(out.len, 28);
	char inner[27];
	memcpy(inner, out.data + 1, 26);
	inner[26] = '\0';
	time_t t;
	assert_int_equal(imap_date_time_parse(inner, &t), 0);
	assert_int_equal(t, 1057049557);
	buf_free(&out);
}

static void test_rfc5322(void **state)
{
	(void)state;
	assert_int_equal(imap_rfc822_date_parse("Tue, 1 Jul 2003 10:52:37 +0200"), 1057049557);
	assert_int_equal(imap_rfc822_date_parse("1 Jul 2003 08:52:37 +0000"), 1057049557);
	assert_int_equal(imap_rfc822_date_parse("Tue, 01 Jul 03 03:52:37 -0500"), 1057049557);
	assert_int_equal(imap_rfc822_date_parse("1 Jul 2003 08:52 +0000"), 1057049520);
	assert_int_equal(imap_rfc822_date_parse("1 Jul 2003"), 1057017600);
	assert_int_equal(imap_rfc822_date_parse("garbage"), -1);
	assert_int_equal(imap_rfc822_date_parse(""), -1);
	assert_int_equal(imap_rfc822_date_parse("1 Foo 2003 00:00:00 +0000"), -1);
	assert_int_equal(imap_rfc822_date_parse("1 Ju 2003 00:00:00 +0000"), -1);
	int day;
	/* SENT*: the date as written, the zone disregarded. */
	assert_int_equal(imap_rfc822_date_day("Tue, 1 Jul 2003 23:52:37 -1100", &day), 0);
	assert_int_equal(day, 12234);
	assert_int_equal(imap_rfc822_date_day("Wed, 2 Jul 2003 00:10:00 +1400", &day), 0);
	assert_int_equal(day, 12235);
	assert_int_equal(imap_rfc822_date_day("nonsense", &day), -1);
	struct imap_rfc5322_date d;
	assert_int_equal(imap_rfc5322_date_split("Mon, 31 Dec 99 23:59:60 +0130", &d), 0);
	assert_int_equal(d.year, 1999);
	assert_int_equal(d.month, 11);
	assert_int_equal(d.sec, 60);
	assert_int_equal(d.zone_secs, 5400);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_month_index),     cmocka_unit_test(test_date_parse),
	    cmocka_unit_test(test_date_time_parse), cmocka_unit_test(test_date_time_round_trip),
	    cmocka_unit_test(test_rfc5322),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
