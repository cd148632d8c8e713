/*
 * The typed key tables, one per section. Every daemon's table lives in its own file
 * (keys_<section>.c) and is listed in config_sections[] (keys.c), so every program,
 * ternctl included, validates the whole file the same way.
 */
#ifndef TERN_CONFIG_KEYS_H
#define TERN_CONFIG_KEYS_H

#include <stddef.h>
#include <stdint.h>

enum cfg_type {
	CFG_STRING, /* any text (may be empty) */
	CFG_INT,    /* decimal integer within [min, max] */
	CFG_BOOL,   /* yes/no, true/false, on/off, 1/0 */
	CFG_SIZE,   /* bytes, with optional K/M/G suffix (powers of 1024); within [min, max] */
	CFG_TIME,   /* duration: number with ms/s/m/h/d suffix (bare = s); min/max in ms */
	CFG_LIST,   /* comma- and/or space-separated items */
	CFG_ENUM,   /* one of the '|'-separated words in `choices` */
};

struct cfg_key {
	const char *name;
	enum cfg_type type;
	const char *def;     /* default, in config syntax; may use $name expansion */
	int64_t min;         /* for INT, SIZE, TIME (ms); ignored when min == max == 0 */
	int64_t max;
	const char *choices; /* for ENUM: "a|b|c" */
	const char *doc;     /* one line, shown by `ternctl config --doc` */
};

struct cfg_section {
	const char *name; /* "global", "smtpd", ... */
	const struct cfg_key *keys;
	size_t n_keys;
};

extern const struct cfg_section *const config_sections[];
extern const size_t config_n_sections;

#define CFG_SECTION(var, sname, table)                                                             \
	const struct cfg_section var = {sname, table, sizeof(table) / sizeof(table[0])}

#endif
