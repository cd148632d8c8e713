/*
 * Internals shared by the config loader's files (config.c, config_parse.c,
 * config_expand.c, config_value.c, config_dump.c). Not for use outside libcommon/config.
 *
 * A load runs in three steps: config_parse.c reads the files and stores each key's raw
 * text and location; config_expand.c resolves $name references (memoised, with loop and
 * depth detection); config_value.c checks each expanded text against its key's type and
 * keeps the parsed value plus a canonical text that config_dump() prints.
 */
#ifndef TERN_CONFIG_PRIVATE_H
#define TERN_CONFIG_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"
#include "config/config_keys.h"

enum cfg_value_state {
	CFG_VALUE_UNRESOLVED,
	CFG_VALUE_RESOLVING, /* seen again while resolving: an expansion loop */
	CFG_VALUE_DONE,
};

/* A typed value: what config_value_parse() makes of a text. */
struct cfg_parsed {
	char *canon;  /* canonical text, loads back to the same value */
	int64_t i;    /* CFG_INT */
	uint64_t u;   /* CFG_SIZE (bytes), CFG_TIME (ms) */
	bool b;       /* CFG_BOOL */
	char **items; /* CFG_LIST, NULL-terminated */
	size_t n_items;
};

struct cfg_value {
	const struct cfg_key *key;
	size_t section;   /* index into config->sections */
	char *raw;        /* text as set in a file; NULL when the default applies */
	const char *file; /* where raw was set (owned by config->files) */
	unsigned line;
	enum cfg_value_state state;
	struct cfg_parsed val;
	bool changed; /* set, and its value differs from what the default would give */
};

struct cfg_section_values {
	const struct cfg_section *def;
	struct cfg_value *values; /* one per def->keys[] row */
};

struct config {
	char *path;
	struct cfg_section_values *sections;
	size_t n_sections;
	char **files; /* names of every file read, for error locations */
	size_t n_files;
	struct cfg_value **order; /* values set in the files, in file order */
	size_t n_order;
};

/* config.c */
struct cfg_value *config_find_value(const struct config *cfg, size_t section, const char *key);
ssize_t config_find_section(const struct config *cfg, const char *name);

/* config_parse.c: reads `name` (data == NULL) or data/size into cfg's raw values. */
int config_parse(struct config *cfg, const char *name, const void *data, size_t size,
                 char **error_r);

/* config_expand.c: resolves and validates every value (raw or default). */
int config_resolve_all(struct config *cfg, char **error_r);

/* config_value.c */
/* Parses text (already expanded and trimmed) as key's type. On error returns -1 and
 * *problem_r, a message without location. */
int config_value_parse(const struct cfg_key *key, const char *text, struct cfg_parsed *out,
                       char **problem_r);
void config_parsed_free(struct cfg_parsed *p);
/* "int", "size", ... and the limits as text ("1K..2G"); caller frees the latter. */
const char *config_type_name(enum cfg_type type);
char *config_limits_text(const struct cfg_key *key);

#endif
