/*
 * Fuzz target: the config loader on arbitrary bytes. It must never crash or leak, and
 * whatever it accepts must dump to text that loads back to the same values (the
 * guarantee `ternctl config` gives), both in full and with only the changed values.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dump_text(const struct config *cfg, bool only_changed, size_t *len_r)
{
	char *text = NULL;
	FILE *f = open_memstream(&text, len_r);
	if (f == NULL)
		abort();
	config_dump(cfg, f, only_changed);
	if (fclose(f) != 0)
		abort();
	return text;
}

static void check_round_trip(const struct config *cfg, bool only_changed)
{
	size_t len = 0;
	char *text = dump_text(cfg, only_changed, &len);
	struct config *again = NULL;
	char *error = NULL;
	if (config_load_data("dump.conf", text, len, &again, &error) != 0) {
		fprintf(stderr, "dump does not load back: %s\n%s\n", error, text);
		abort();
	}
	for (size_t s = 0; s < config_n_sections; s++) {
		const struct cfg_section *sec = config_sections[s];
		for (size_t k = 0; k < sec->n_keys; k++) {
			const char *a = config_str(cfg, sec->name, sec->keys[k].name);
			const char *b = config_str(again, sec->name, sec->keys[k].name);
			if (strcmp(a, b) != 0) {
				fprintf(stderr, "[%s] %s: '%s' became '%s'\n", sec->name,
				        sec->keys[k].name, a, b);
				abort();
			}
		}
	}
	config_free(&again);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *cfg = NULL;
	char *error = NULL;
	if (config_load_data("fuzz.conf", data, size, &cfg, &error) != 0) {
		/* Every error names its place ("file:line: problem" or "file: problem"). */
		if (error == NULL || cfg != NULL || strstr(error, ": ") == NULL)
			abort();
		free(error);
		return 0;
	}
	check_round_trip(cfg, false);
	check_round_trip(cfg, true);
	config_free(&cfg);
	return 0;
}
