/*
 * The real key tables (config_sections[], one keys_<section>.c per daemon): every row is
 * well formed, every default loads (a bad default is a bug), every key answers its typed
 * getter, and the effective config dumps and loads back to the same values.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <cmocka.h>

#include "config/config.h"
#include "config/config_keys.h"

static bool is_name(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	}
	return true;
}

static void test_tables_well_formed(void **state)
{
	(void)state;
	assert_true(config_n_sections > 0);
	assert_string_equal(config_sections[0]->name, "global");
	for (size_t s = 0; s < config_n_sections; s++) {
		const struct cfg_section *sec = config_sections[s];
		if (!is_name(sec->name)) {
			print_error("section %zu has a bad name\n", s);
			fail();
		}
		for (size_t o = 0; o < s; o++)
			assert_string_not_equal(config_sections[o]->name, sec->name);
		assert_true(sec->n_keys > 0);
		for (size_t k = 0; k < sec->n_keys; k++) {
			const struct cfg_key *key = &sec->keys[k];
			if (!is_name(key->name) || key->def == NULL || key->doc == NULL ||
			    key->min > key->max ||
			    (key->type == CFG_ENUM && (key->choices == NULL || !*key->choices))) {
				print_error("[%s] row %zu (%s) is malformed\n", sec->name, k,
				            key->name != NULL ? key->name : "(null)");
				fail();
			}
			for (size_t o = 0; o < k; o++)
				assert_string_not_equal(sec->keys[o].name, key->name);
		}
	}
}

static void test_defaults_load_and_answer(void **state)
{
	(void)state;
	struct config *cfg = NULL;
	char *error = NULL;
	if (config_load(NULL, &cfg, &error) != 0) {
		print_error("built-in defaults do not load: %s\n", error);
		fail();
	}
	assert_string_equal(config_path(cfg), "");
	for (size_t s = 0; s < config_n_sections; s++) {
		const struct cfg_section *sec = config_sections[s];
		for (size_t k = 0; k < sec->n_keys; k++) {
			const struct cfg_key *key = &sec->keys[k];
			assert_non_null(config_str(cfg, sec->name, key->name));
			assert_false(config_is_set(cfg, sec->name, key->name));
			switch (key->type) {
			case CFG_INT: {
				int64_t v = config_int(cfg, sec->name, key->name);
				if (key->min != 0 || key->max != 0)
					assert_true(v >= key->min && v <= key->max);
				break;
			}
			case CFG_SIZE:
				(void)config_size(cfg, sec->name, key->name);
				break;
			case CFG_TIME:
				(void)config_time_ms(cfg, sec->name, key->name);
				break;
			case CFG_BOOL:
				(void)config_bool(cfg, sec->name, key->name);
				break;
			case CFG_LIST: {
				size_t n = 0;
				const char *const *items =
				    config_list(cfg, sec->name, key->name, &n);
				assert_null(items[n]);
				break;
			}
			case CFG_STRING:
			case CFG_ENUM:
				break;
			}
		}
	}
	config_free(&cfg);

	/* An empty string is the same as no file. */
	assert_int_equal(config_load_string("empty.conf", "", &cfg, &error), 0);
	assert_string_equal(config_path(cfg), "empty.conf");
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

static void test_real_dump_round_trip(void **state)
{
	(void)state;
	struct config *cfg = NULL;
	char *error = NULL;
	assert_int_equal(config_load_string("t.conf",
	                                    "run_dir = /tmp/tern $$x\nlog_debug = yes\n"
	                                    "domains = example.test, example.org\n",
	                                    &cfg, &error),
	                 0);
	char *full = dump_text(cfg, false);
	char *changed = dump_text(cfg, true);
	/* -n shows what was changed and nothing that merely follows from it. */
	assert_string_equal(changed, "domains = example.test example.org\n"
	                             "run_dir = /tmp/tern $$x\nlog_debug = yes\n");
	for (int i = 0; i < 2; i++) {
		struct config *again = NULL;
		assert_int_equal(
		    config_load_string("dump.conf", i == 0 ? full : changed, &again, &error), 0);
		for (size_t s = 0; s < config_n_sections; s++) {
			const struct cfg_section *sec = config_sections[s];
			for (size_t k = 0; k < sec->n_keys; k++)
				assert_string_equal(
				    config_str(cfg, sec->name, sec->keys[k].name),
				    config_str(again, sec->name, sec->keys[k].name));
		}
		config_free(&again);
	}
	free(full);
	free(changed);
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tables_well_formed),
	    cmocka_unit_test(test_defaults_load_and_answer),
	    cmocka_unit_test(test_real_dump_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
