/*
 * Config values: typed parsing, canonical text, expansion, syntax that must be accepted,
 * the getters, and dump round trips.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "config/config.h"
#include "test_tables.h"

struct value_case {
	const char *text;
	const char *section;
	const char *key;
	const char *canon; /* what config_str() gives */
};

static const struct value_case value_cases[] = {
    /* Defaults, with their expansion. */
    {"", "global", "count", "10"},
    {"", "global", "mode", "0640"},
    {"", "global", "size", "10M"},
    {"", "global", "delay", "5m"},
    {"", "global", "flag", "no"},
    {"", "global", "items", "a b"},
    {"", "global", "level", "low"},
    {"", "global", "sock", "/run/t/sock"},
    {"", "smtpd", "sock", "/run/t/smtpd"},
    {"", "smtpd", "limit", "10M"},
    {"", "smtpd", "greet", "tern ready"},
    {"# only a comment\n\n   \n", "global", "count", "10"},
    /* Integers. */
    {"count = 5", "global", "count", "5"},
    {"count = +7\n", "global", "count", "7"},
    {"count=100\n", "global", "count", "100"},
    {"count = 1\n", "global", "count", "1"},
    {"big = -9223372036854775808\n", "global", "big", "-9223372036854775808"},
    {"big = 9223372036854775807\n", "global", "big", "9223372036854775807"},
    {"mode = 0755\n", "global", "mode", "0755"},
    {"mode = 0777\n", "global", "mode", "0777"},
    {"mode = 0\n", "global", "mode", "0"},
    {"mode = 00\n", "global", "mode", "0"},
    {"mode = 493\n", "global", "mode", "493"},
    /* Sizes. */
    {"size = 1024\n", "global", "size", "1K"},
    {"size = 1536\n", "global", "size", "1536"},
    {"size = 1k\n", "global", "size", "1K"},
    {"size = 2048K\n", "global", "size", "2M"},
    {"size = 1g\n[smtpd]\nlimit = 1M\n", "global", "size", "1G"},
    {"size = 512M\n", "global", "size", "512M"},
    {"size = 010M\n", "global", "size", "10M"},
    /* Times. */
    {"delay = 30\n", "global", "delay", "30s"},
    {"delay = 90s\n", "global", "delay", "90s"},
    {"delay = 120s\n", "global", "delay", "2m"},
    {"delay = 1500ms\n", "global", "delay", "1500ms"},
    {"delay = 2000ms\n", "global", "delay", "2s"},
    {"delay = 0\n", "global", "delay", "0s"},
    {"delay = 24h\n", "global", "delay", "1d"},
    {"delay = 1d\n", "global", "delay", "1d"},
    {"delay = 90m\n", "global", "delay", "90m"},
    /* Booleans. */
    {"flag = yes\n", "global", "flag", "yes"},
    {"flag = YES\n", "global", "flag", "yes"},
    {"flag = true\n", "global", "flag", "yes"},
    {"flag = on\n", "global", "flag", "yes"},
    {"flag = 1\n", "global", "flag", "yes"},
    {"flag = No\n", "global", "flag", "no"},
    {"flag = false\n", "global", "flag", "no"},
    {"flag = off\n", "global", "flag", "no"},
    {"flag = 0\n", "global", "flag", "no"},
    /* Lists and enums. */
    {"items = x, y ,z,,w\n", "global", "items", "x y z w"},
    {"items =\n", "global", "items", ""},
    {"items = ,\n", "global", "items", ""},
    {"level = HIGH\n", "global", "level", "high"},
    {"level = mid\n", "global", "level", "mid"},
    /* Strings keep what is inside; only the ends are trimmed. */
    {"name = a # b\n", "global", "name", "a # b"},
    {"name = a=b\n", "global", "name", "a=b"},
    {"name = \t a \t b \t\n", "global", "name", "a \t b"},
    {"name =\n", "global", "name", ""},
    {"name = caf\xc3\xa9\n", "global", "name", "caf\xc3\xa9"},
    /* Continuation lines join with one space; comments inside are skipped. */
    {"items = a,\n  b\n\tc\n", "global", "items", "a b c"},
    {"name = one\n# comment\n\n   two\n", "global", "name", "one two"},
    /* CRLF and a last line without a newline. */
    {"count = 5\r\nflag = yes\r\n", "global", "count", "5"},
    {"count = 5\r\nflag = yes\r\n", "global", "flag", "yes"},
    {"count = 6", "global", "count", "6"},
    {"count = 6\r", "global", "count", "6"},
    /* Sections. */
    {"[smtpd]\nlisten = a:1, b:2\n", "smtpd", "listen", "a:1 b:2"},
    {"[ smtpd ]\nlisten = x\n", "smtpd", "listen", "x"},
    {"[smtpd]\nlisten = x\n[global]\ncount = 3\n", "global", "count", "3"},
    {"[global]\ncount = 4\n", "global", "count", "4"},
    /* Expansion: same section first, then global. */
    {"dir = /x\n", "global", "sock", "/x/sock"},
    {"dir = /x\n", "smtpd", "sock", "/x/smtpd"},
    {"[smtpd]\ngreet = $sock!\n", "smtpd", "greet", "/run/t/smtpd!"},
    {"name = $sock\n", "global", "name", "/run/t/sock"},
    {"name = ${dir}x\n", "global", "name", "/run/tx"},
    {"name = $dir.x\n", "global", "name", "/run/t.x"},
    {"name = cost $$5 $$$$\n", "global", "name", "cost $5 $$"},
    {"a = $b\nb = $c\nc = deep\n", "global", "a", "deep"},
    {"c = deep\nb = [$c]\na = <$b>\n", "global", "a", "<[deep]>"},
    {"a = $b x\nb =\n", "global", "a", "x"},
    {"a = $b\nb = $c\nc = 42\ncount = $a\n", "global", "count", "42"},
    {"size = 1M\n", "smtpd", "limit", "1M"},
    {"name = mx\n", "smtpd", "greet", "mx ready"},
    {"delay = 2m\na = $delay\n", "global", "a", "2m"},
    {"flag = on\na = $flag\n", "global", "a", "yes"},
};

static void test_value_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(value_cases) / sizeof(value_cases[0]); i++) {
		const struct value_case *c = &value_cases[i];
		struct config *cfg = NULL;
		char *error = NULL;
		if (t_load(c->text, &cfg, &error) != 0) {
			print_error("case %zu: %s\n  error: %s\n", i, c->text, error);
			fail();
		}
		const char *got = config_str(cfg, c->section, c->key);
		if (strcmp(got, c->canon) != 0) {
			print_error("case %zu: %s\n  [%s] %s = '%s', want '%s'\n", i, c->text,
			            c->section, c->key, got, c->canon);
			fail();
		}
		config_free(&cfg);
	}
}

static struct config *load_ok(const char *text)
{
	struct config *cfg = NULL;
	char *error = NULL;
	if (t_load(text, &cfg, &error) != 0) {
		print_error("load failed: %s\n", error);
		fail();
	}
	return cfg;
}

static void test_typed_getters(void **state)
{
	(void)state;
	struct config *cfg = load_ok("count = 42\nmode = 0755\nbig = -3\nsize = 50M\n"
	                             "delay = 1500ms\nflag = on\nitems = p, q r\n"
	                             "[smtpd]\nlisten = 127.0.0.1:25\n");
	assert_int_equal(config_int(cfg, "global", "count"), 42);
	assert_int_equal(config_int(cfg, "global", "mode"), 0755);
	assert_int_equal(config_int(cfg, "global", "big"), -3);
	assert_int_equal(config_size(cfg, "global", "size"), 50ULL * 1024 * 1024);
	assert_int_equal(config_size(cfg, "smtpd", "limit"), 50ULL * 1024 * 1024);
	assert_int_equal(config_time_ms(cfg, "global", "delay"), 1500);
	assert_true(config_bool(cfg, "global", "flag"));
	size_t n = 99;
	const char *const *items = config_list(cfg, "global", "items", &n);
	assert_int_equal(n, 3);
	assert_string_equal(items[0], "p");
	assert_string_equal(items[1], "q");
	assert_string_equal(items[2], "r");
	assert_null(items[3]);
	items = config_list(cfg, "smtpd", "listen", &n);
	assert_int_equal(n, 1);
	assert_string_equal(items[0], "127.0.0.1:25");
	assert_string_equal(config_str(cfg, "global", "level"), "low");
	assert_string_equal(config_path(cfg), "t.conf");
	assert_true(config_is_set(cfg, "global", "count"));
	assert_false(config_is_set(cfg, "global", "level"));
	config_free(&cfg);
	assert_null(cfg);
	config_free(&cfg); /* freeing NULL is fine */

	cfg = load_ok("items =\n");
	items = config_list(cfg, "global", "items", &n);
	assert_int_equal(n, 0);
	assert_null(items[0]);
	config_free(&cfg);
}

static void test_defaults_only(void **state)
{
	(void)state;
	struct config *cfg = NULL;
	char *error = NULL;
	assert_int_equal(config_load_tables(t_sections, T_N_SECTIONS, NULL, NULL, 0, &cfg, &error),
	                 0);
	assert_string_equal(config_path(cfg), "");
	assert_int_equal(config_int(cfg, "global", "count"), 10);
	assert_int_equal(config_time_ms(cfg, "global", "delay"), 300000);
	config_free(&cfg);
}

/* A getter asked for a key that is not in the table, or with the wrong type, is a bug
 * in the caller: it must abort, not guess. */
static void expect_abort(void (*fn)(const struct config *), const struct config *cfg)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Keep the expected panic line out of the test output. */
		FILE *devnull = freopen("/dev/null", "w", stderr);
		(void)devnull;
		fn(cfg);
		_exit(0);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void get_unknown_key(const struct config *cfg)
{
	(void)config_str(cfg, "global", "nope");
}

static void get_unknown_section(const struct config *cfg)
{
	(void)config_str(cfg, "imapd", "count");
}

static void get_wrong_type(const struct config *cfg)
{
	(void)config_int(cfg, "global", "size");
}

static void get_key_of_other_section(const struct config *cfg)
{
	(void)config_list(cfg, "global", "listen", NULL);
}

static void test_getter_misuse_panics(void **state)
{
	(void)state;
	struct config *cfg = load_ok("");
	expect_abort(get_unknown_key, cfg);
	expect_abort(get_unknown_section, cfg);
	expect_abort(get_wrong_type, cfg);
	expect_abort(get_key_of_other_section, cfg);
	config_free(&cfg);
}

static char *dump_text(const struct config *cfg, bool only_changed)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	config_dump(cfg, f, only_changed);
	assert_int_equal(fclose(f), 0);
	return text;
}

/* Every key of both configs has the same canonical value. */
static void assert_same_values(const struct config *a, const struct config *b)
{
	for (size_t s = 0; s < T_N_SECTIONS; s++) {
		const struct cfg_section *sec = t_sections[s];
		for (size_t k = 0; k < sec->n_keys; k++) {
			const char *va = config_str(a, sec->name, sec->keys[k].name);
			const char *vb = config_str(b, sec->name, sec->keys[k].name);
			if (strcmp(va, vb) != 0) {
				print_error("[%s] %s: '%s' != '%s'\n", sec->name, sec->keys[k].name,
				            va, vb);
				fail();
			}
		}
	}
}

static const char *const round_trip_texts[] = {
    "",
    "count = 42\nmode = 0755\nsize = 1536\ndelay = 1500ms\nflag = on\nlevel = HIGH\n",
    ("dir = /srv/x\nname = cost $$5 and ${dir}\nitems = a,b,,c\n[smtpd]\nlisten =\n"
     "greet = hi $sock\n"),
    "a = $b\nb = $c\nc = $$$$\n[chain]\nk1 = $a$a\nk2 = $$k1\n",
    "name = # not a comment\nb = [x]\n",
    "size = 1M\n",
    "dir = /run/t\nsize = 10240K\ncount = 10\n", /* set, but to the defaults */
};

static void test_dump_round_trip(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(round_trip_texts) / sizeof(round_trip_texts[0]); i++) {
		struct config *orig = load_ok(round_trip_texts[i]);
		for (int only_changed = 0; only_changed <= 1; only_changed++) {
			char *text = dump_text(orig, only_changed);
			struct config *again = NULL;
			char *error = NULL;
			if (t_load(text, &again, &error) != 0) {
				print_error("case %zu (-n %d): dump does not load: %s\n%s\n", i,
				            only_changed, error, text);
				fail();
			}
			assert_same_values(orig, again);
			/* Dumping the reloaded config gives the same text again. */
			char *text2 = dump_text(again, only_changed);
			assert_string_equal(text, text2);
			free(text2);
			free(text);
			config_free(&again);
		}
		config_free(&orig);
	}
}

static void test_dump_format(void **state)
{
	(void)state;
	struct config *cfg =
	    load_ok("count = 11\nname = a$$b\ndir = /run/t\n[smtpd]\nlisten = x, y\n");
	char *text = dump_text(cfg, true);
	/* dir is set but equal to its default, so -n leaves it out. */
	assert_string_equal(text, "name = a$$b\ncount = 11\n\n[smtpd]\nlisten = x y\n");
	free(text);
	text = dump_text(cfg, false);
	assert_non_null(strstr(text, "name = a$$b\ndir = /run/t\nsock = /run/t/sock\ncount = 11\n"
	                             "mode = 0640\n"));
	assert_non_null(strstr(text, "items = a b\nlevel = low\na =\nb =\nc =\n\n[smtpd]\n"
	                             "listen = x y\nsock = /run/t/smtpd\nlimit = 10M\n"
	                             "greet = a$$b ready\n\n[chain]\nk0 =\n"));
	free(text);
	config_free(&cfg);

	/* Only a section changed: the output starts with its header. */
	cfg = load_ok("[smtpd]\nlisten = q\n");
	text = dump_text(cfg, true);
	assert_string_equal(text, "[smtpd]\nlisten = q\n");
	free(text);
	config_free(&cfg);

	/* With nothing changed, -n prints nothing at all. */
	cfg = load_ok("count = 10\n");
	text = dump_text(cfg, true);
	assert_string_equal(text, "");
	free(text);
	/* --doc: each key with its doc, type, limits and default. */
	char *doc = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&doc, &len);
	config_dump_doc(cfg, f);
	assert_int_equal(fclose(f), 0);
	assert_non_null(strstr(doc, "\n# an int in 1..100\n# integer, 1..100, default: 10\n"
	                            "count = 10\n"));
	assert_non_null(strstr(doc, "# a file mode\n# integer, 0..0777, default: 0640\n"));
	assert_non_null(strstr(doc, "# size, 1K..1G, default: 10M\n"));
	assert_non_null(strstr(doc, "# enum (low|mid|high), default: low\nlevel = low\n"));
	assert_non_null(strstr(doc, "# string, default: (empty)\na =\n"));
	free(doc);
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_value_cases),     cmocka_unit_test(test_typed_getters),
	    cmocka_unit_test(test_defaults_only),   cmocka_unit_test(test_getter_misuse_panics),
	    cmocka_unit_test(test_dump_round_trip), cmocka_unit_test(test_dump_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
