/* Address parsing, alias maps and recipient expansion: valid and nasty inputs side by side. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "address.h"
#include "aliases.h"
#include "recipient.h"

struct path_case {
	const char *in;
	int ok;
	const char *full, *user, *detail, *domain, *rest;
};

static const struct path_case path_cases[] = {
    {"<Bob@Example.TEST>", 1, "Bob@example.test", "bob", NULL, "example.test", ""},
    {"<bob+Work@example.test> SIZE=10", 1, "bob+Work@example.test", "bob", "Work", "example.test",
     " SIZE=10"},
    {"<@relay.test,@b.test:bob@example.test>", 1, "bob@example.test", "bob", NULL, "example.test",
     ""},
    {"<\"a b\"@example.test>", 1, "\"a b\"@example.test", "\"a b\"", NULL, "example.test", ""},
    {"<a.b@[192.0.2.1]>", 1, "a.b@[192.0.2.1]", "a.b", NULL, "[192.0.2.1]", ""},
    {"<+x@example.test>", 1, "+x@example.test", "+x", NULL, "example.test", ""},
    {"bob@example.test", 0, NULL, NULL, NULL, NULL, NULL},
    {"<bob@example.test", 0, NULL, NULL, NULL, NULL, NULL},
    {"<>", 0, NULL, NULL, NULL, NULL, NULL},
    {"<bob>", 0, NULL, NULL, NULL, NULL, NULL},
    {"<.bob@example.test>", 0, NULL, NULL, NULL, NULL, NULL},
    {"<b..ob@example.test>", 0, NULL, NULL, NULL, NULL, NULL},
    {"<bob@-example.test>", 0, NULL, NULL, NULL, NULL, NULL},
    {"<bob@example..test>", 0, NULL, NULL, NULL, NULL, NULL},
    {"<bob@exa/mple.test>", 0, NULL, NULL, NULL, NULL, NULL},
    {"<../../etc@example.test>", 0, NULL, NULL, NULL, NULL, NULL},
    {"<b\xc3\xa4r@example.test>", 0, NULL, NULL, NULL, NULL, NULL},
    {"<0123456789012345678901234567890123456789012345678901234567890123456789@x.test>", 0, NULL,
     NULL, NULL, NULL, NULL},
};

static void test_paths(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(path_cases) / sizeof(path_cases[0]); i++) {
		const struct path_case *c = &path_cases[i];
		struct address a;
		size_t rest = 0;
		const char *err = NULL;
		int r = address_parse_path(c->in, strlen(c->in), false, false, true, '+', &a, &rest,
		                           &err);
		if ((r == 0) != c->ok)
			fail_msg("%s: got %d (%s)", c->in, r, err ? err : "");
		if (r < 0)
			continue;
		assert_string_equal(a.full, c->full);
		assert_string_equal(a.user, c->user);
		if (c->detail == NULL)
			assert_null(a.detail);
		else
			assert_string_equal(a.detail, c->detail);
		assert_string_equal(a.domain, c->domain);
		assert_string_equal(c->in + rest, c->rest);
		address_free(&a);
	}
}

static void test_null_and_utf8(void **state)
{
	(void)state;
	struct address a;
	size_t rest;
	const char *err;
	assert_int_equal(address_parse_path("<>", 2, true, false, true, '+', &a, &rest, &err), 0);
	assert_string_equal(a.full, "");
	address_free(&a);
	const char *u = "<b\xc3\xa4r@example.test>";
	assert_int_equal(address_parse_path(u, strlen(u), false, true, true, '+', &a, &rest, &err),
	                 0);
	address_free(&a);
	/* A path longer than the RFC 5321 cap is refused before anything is copied. */
	char big[600];
	memset(big, 'a', sizeof(big));
	big[0] = '<';
	assert_int_equal(
	    address_parse_path(big, sizeof(big), false, false, true, '+', &a, &rest, &err), -1);
}

static void test_detail_folder(void **state)
{
	(void)state;
	assert_true(address_detail_is_safe_folder("Work"));
	assert_true(address_detail_is_safe_folder("lists.debian"));
	assert_false(address_detail_is_safe_folder(""));
	assert_false(address_detail_is_safe_folder(".."));
	assert_false(address_detail_is_safe_folder("a..b"));
	assert_false(address_detail_is_safe_folder("a/b"));
	assert_false(address_detail_is_safe_folder(".hidden"));
	assert_false(address_detail_is_safe_folder("a b"));
}

static void test_alias_files(void **state)
{
	(void)state;
	struct alias_map *m = NULL;
	char *err = NULL;
	assert_int_equal(alias_map_load_string("v",
	                                       "# comment\n"
	                                       "Sales@Example.test: bob@example.test, "
	                                       "alice@example.test\n"
	                                       "   carol@example.test, bob@example.test\n"
	                                       "@other.test: bob@example.test\n",
	                                       ALIAS_VIRTUAL, &m, &err),
	                 0);
	size_t n;
	const char *const *t = alias_map_lookup(m, "sales@example.test", &n);
	assert_non_null(t);
	assert_int_equal(n, 3); /* the duplicate bob is kept once */
	assert_string_equal(t[2], "carol@example.test");
	assert_non_null(alias_map_lookup(m, "@other.test", &n));
	assert_null(alias_map_lookup(m, "nobody@example.test", &n));
	alias_map_free(&m);
	assert_null(m);

	static const char *const bad[] = {
	    "x@example.test bob@example.test\n", /* no colon */
	    "x@example.test: |/bin/sh\n",        /* pipe */
	    "x@example.test: /tmp/file\n",       /* file */
	    "x@example.test: :include:/etc/x\n",
	    "  bob@example.test\n",                   /* continuation first */
	    "x@example.test:\n",                      /* no targets */
	    "x@example.test: a\nX@example.test: b\n", /* duplicate */
	    "nodomain: bob@example.test\n",           /* virtual keys need a domain */
	    "x@example.test: bad..target@x\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (alias_map_load_string("v", bad[i], ALIAS_VIRTUAL, &m, &err) == 0)
			fail_msg("accepted: %s", bad[i]);
		assert_non_null(err);
		assert_non_null(strstr(err, "v"));
		free(err);
		err = NULL;
	}
	assert_int_equal(
	    alias_map_load_string("l", "postmaster: root\nroot: alice\n", ALIAS_LOCAL, &m, &err),
	    0);
	assert_int_equal(alias_map_count(m), 2);
	alias_map_free(&m);
	assert_int_equal(alias_map_load_string("l", "a@b.test: c\n", ALIAS_LOCAL, &m, &err), -1);
	free(err);
}

static void expand(const struct recipient_maps *m, const char *rcpt, const char *want)
{
	struct address a;
	const char *e;
	assert_int_equal(address_parse_plain(rcpt, false, '+', &a, &e), 0);
	struct recipient_targets t;
	recipient_expand(m, &a, &t);
	char got[512] = "";
	for (size_t i = 0; i < t.n; i++) {
		strcat(got, i ? " " : "");
		strcat(got, t.v[i].full);
	}
	if (strcmp(got, want) != 0)
		fail_msg("%s: got '%s' want '%s'", rcpt, got, want);
	recipient_targets_free(&t);
	address_free(&a);
}

static void test_expand(void **state)
{
	(void)state;
	struct recipient_maps m = {0};
	char *err = NULL;
	assert_int_equal(alias_map_load_string("v",
	                                       "team@example.test: bob, alice@example.test\n"
	                                       "self@example.test: self@example.test, bob\n"
	                                       "a@example.test: b@example.test\n"
	                                       "b@example.test: a@example.test\n"
	                                       "list+x@example.test: carol\n"
	                                       "@catch.test: bob@example.test\n",
	                                       ALIAS_VIRTUAL, &m.virtual_map, &err),
	                 0);
	assert_int_equal(
	    alias_map_load_string("l", "postmaster: alice\n", ALIAS_LOCAL, &m.local_map, &err), 0);
	static const char *const domains[] = {"example.test"};
	m.domains = domains;
	m.n_domains = 1;
	m.delimiter = '+';
	expand(&m, "Team@Example.test", "bob@example.test alice@example.test");
	/* The detail travels to targets that have none. */
	expand(&m, "team+news@example.test", "bob+news@example.test alice+news@example.test");
	/* An alias naming itself is delivered to its own mailbox, once. */
	expand(&m, "self@example.test", "self@example.test bob@example.test");
	/* a -> b -> a: one level only, no loop. */
	expand(&m, "a@example.test", "b@example.test");
	expand(&m, "list+x@example.test", "carol+x@example.test");
	expand(&m, "postmaster@example.test", "alice@example.test");
	/* Local aliases apply only to local domains. */
	expand(&m, "postmaster@elsewhere.test", "postmaster@elsewhere.test");
	expand(&m, "dave@example.test", "dave@example.test");

	struct address a;
	const char *e;
	struct recipient_targets t;
	assert_int_equal(address_parse_plain("who@catch.test", false, '+', &a, &e), 0);
	assert_true(recipient_catchall(&m, &a, &t));
	assert_int_equal(t.n, 1);
	assert_string_equal(t.v[0].full, "bob@example.test");
	recipient_targets_free(&t);
	address_free(&a);
	assert_int_equal(address_parse_plain("who@example.test", false, '+', &a, &e), 0);
	assert_false(recipient_catchall(&m, &a, &t));
	address_free(&a);
	alias_map_free(&m.virtual_map);
	alias_map_free(&m.local_map);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_paths),         cmocka_unit_test(test_null_and_utf8),
	    cmocka_unit_test(test_detail_folder), cmocka_unit_test(test_alias_files),
	    cmocka_unit_test(test_expand),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
