/*
 * `ternctl config`: prints the effective configuration as a valid config file.
 *   config          every key of every section
 *   config -n       only values that differ from the defaults (what a file needs)
 *   config --doc    every key with its doc, type, limits and default as comments
 *   config KEY...   "KEY = value" for each KEY ("name" in global, "section.name")
 *   config -h KEY...  the values alone, one a line, for scripts
 */
#include "commands.h"

#include <getopt.h>
#include <stdbool.h>
#include <string.h>
#include <sysexits.h>

#include "config/config.h"
#include "config/config_keys.h"

/* Splits "section.key" (or "key": global) and checks the tables; returns false after
 * printing why when there is no such key. */
static bool find_key(struct ternctl *ctl, const char *arg, char *section, size_t section_size,
                     const char **key_r)
{
	const char *dot = strchr(arg, '.');
	const char *key = dot != NULL ? dot + 1 : arg;
	size_t slen = dot != NULL ? (size_t)(dot - arg) : strlen("global");
	if (slen >= section_size) {
		fprintf(ctl->err, "ternctl: config: unknown key '%s'\n", arg);
		return false;
	}
	memcpy(section, dot != NULL ? arg : "global", slen);
	section[slen] = '\0';
	for (size_t s = 0; s < config_n_sections; s++) {
		const struct cfg_section *sec = config_sections[s];
		if (strcmp(sec->name, section) != 0)
			continue;
		for (size_t k = 0; k < sec->n_keys; k++) {
			if (strcmp(sec->keys[k].name, key) == 0) {
				*key_r = key;
				return true;
			}
		}
	}
	fprintf(ctl->err, "ternctl: config: unknown key '%s'", arg);
	const char *sep = " (try ";
	for (size_t s = 0; s < config_n_sections; s++) {
		const struct cfg_section *sec = config_sections[s];
		for (size_t k = 0; k < sec->n_keys; k++) {
			if (strcmp(sec->keys[k].name, key) == 0) {
				if (strcmp(sec->name, "global") == 0)
					fprintf(ctl->err, "%s%s", sep, key);
				else
					fprintf(ctl->err, "%s%s.%s", sep, sec->name, key);
				sep = ", ";
			}
		}
	}
	fprintf(ctl->err, "%s\n", sep[0] == ',' ? ")" : "");
	return false;
}

/* Prints a value the way a config file needs it: '$' doubled. */
static void print_escaped(FILE *out, const char *value)
{
	for (; *value != '\0'; value++) {
		if (*value == '$')
			fputc('$', out);
		fputc(*value, out);
	}
}

static int print_keys(struct ternctl *ctl, int argc, char **argv, bool value_only)
{
	/* Check every name before loading, so a typo is a usage error even when the config
	 * is broken too. */
	char section[64];
	const char *key;
	for (int i = 0; i < argc; i++) {
		if (!find_key(ctl, argv[i], section, sizeof(section), &key))
			return EX_USAGE;
	}
	const struct config *cfg = ternctl_config(ctl);
	if (cfg == NULL)
		return EX_CONFIG;
	for (int i = 0; i < argc; i++) {
		(void)find_key(ctl, argv[i], section, sizeof(section), &key);
		const char *value = config_str(cfg, section, key);
		if (value_only) {
			fprintf(ctl->out, "%s\n", value);
		} else {
			fprintf(ctl->out, "%s =%s", argv[i], value[0] != '\0' ? " " : "");
			print_escaped(ctl->out, value);
			fputc('\n', ctl->out);
		}
	}
	return EX_OK;
}

static int usage_error(struct ternctl *ctl, const char *why)
{
	fprintf(ctl->err, "ternctl: config: %s\n", why);
	ternctl_print_usage(ctl->err, ternctl_find_command("config"));
	return EX_USAGE;
}

int cmd_config(struct ternctl *ctl, int argc, char **argv)
{
	static const struct option long_options[] = {
	    {"doc", no_argument, NULL, 'D'},
	    {NULL, 0, NULL, 0},
	};
	bool only_changed = false, doc = false, value_only = false;
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+nh", long_options, NULL)) != -1) {
		switch (c) {
		case 'n':
			only_changed = true;
			break;
		case 'h':
			value_only = true;
			break;
		case 'D':
			doc = true;
			break;
		default:
			return usage_error(ctl, "unknown option");
		}
	}
	argc -= optind;
	argv += optind;
	if ((only_changed ? 1 : 0) + (doc ? 1 : 0) + (value_only || argc > 0 ? 1 : 0) > 1)
		return usage_error(ctl, "-n, --doc and KEY... do not go together");
	if (value_only && argc == 0)
		return usage_error(ctl, "-h needs at least one KEY");
	if (argc > 0)
		return print_keys(ctl, argc, argv, value_only);

	const struct config *cfg = ternctl_config(ctl);
	if (cfg == NULL)
		return EX_CONFIG;
	if (doc)
		config_dump_doc(cfg, ctl->out);
	else
		config_dump(cfg, ctl->out, only_changed);
	return EX_OK;
}
