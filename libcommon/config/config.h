/*
 * The configuration file: /etc/tern/tern.conf (DESIGN.md, "Configuration").
 *
 * Syntax, Postfix-like:
 *   # comment
 *   key = value                  (global section until the first [section])
 *   [smtpd]                      (keys below belong to the smtpd section)
 *   key = value $other_key text  ($name or ${name} expands another key: first the same
 *                                 section, then global; undefined names are an error;
 *                                 expansion depth is capped to catch loops)
 *   !include conf.d/<glob>       (a glob such as *.conf, relative to the including file, sorted;
 *                                 an include
 *                                 that matches nothing is fine for a glob, an error for a
 *                                 plain path; includes nest at most 8 deep)
 * Leading/trailing whitespace is trimmed; a line starting with whitespace continues the
 * previous value (Postfix style).
 *
 * Every key has a row in a typed table (see config_keys.h): type, default, limits, doc. An
 * unknown section or key, a value of the wrong type or outside its limits, or a duplicate
 * key in one section is an error reported as "file:line: problem". Loading never exits:
 * it returns -1 and the daemon calls log_fatal() with the message.
 *
 * A struct config is immutable once loaded; pointers it returns stay valid until
 * config_free(). SIGHUP reload = load a new one and swap.
 */
#ifndef TERN_CONFIG_CONFIG_H
#define TERN_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct config;
struct cfg_section;

/*
 * Loads path (NULL = built-in defaults only). On success returns 0 and *cfg_r.
 * On failure returns -1 and *error_r = "file:line: problem" (caller frees).
 */
int config_load(const char *path, struct config **cfg_r, char **error_r);
/* Loads from a string (for tests); `name` is used as the file name in errors. */
int config_load_string(const char *name, const char *text, struct config **cfg_r, char **error_r);
void config_free(struct config **cfg);

/*
 * Typed getters. section is "global" or a daemon name ("smtpd"). A key that is not in
 * that section's table is a programming error (log_panic). Values are the expanded,
 * validated ones, or the default.
 */
const char *config_str(const struct config *cfg, const char *section, const char *key);
int64_t config_int(const struct config *cfg, const char *section, const char *key);
bool config_bool(const struct config *cfg, const char *section, const char *key);
/* CFG_SIZE values in bytes ("10M" = 10485760). */
uint64_t config_size(const struct config *cfg, const char *section, const char *key);
/* CFG_TIME values in milliseconds ("5m" = 300000; a bare number is seconds). */
uint64_t config_time_ms(const struct config *cfg, const char *section, const char *key);
/* CFG_LIST: items split on commas and/or whitespace; *n_r gets the count. The array and
 * strings belong to cfg. */
const char *const *config_list(const struct config *cfg, const char *section, const char *key,
                               size_t *n_r);

/* The file that was loaded ("" for defaults). */
const char *config_path(const struct config *cfg);

/*
 * Prints every section and key with its effective value as a valid config file
 * (`ternctl config`); only_changed prints only values that differ from the default
 * (`ternctl config -n`).
 */
void config_dump(const struct config *cfg, FILE *out, bool only_changed);

/* --- Additions (config branch) --- */

/* Like config_load_string() for a buffer that may hold any bytes: a NUL byte is an error
 * ("name:line: NUL byte"), not the end of the text (fuzzing, tests). */
int config_load_data(const char *name, const void *data, size_t size, struct config **cfg_r,
                     char **error_r);

/*
 * The general form behind every loader: validates against the given tables instead of
 * config_sections[] (sections[0] must be the "global" section). When data is NULL the
 * file `name` is read (NULL name = defaults only); otherwise data/size is the text and
 * `name` the file name used in errors and as the base of relative includes. The tables
 * must outlive the config.
 */
int config_load_tables(const struct cfg_section *const *sections, size_t n_sections,
                       const char *name, const void *data, size_t size, struct config **cfg_r,
                       char **error_r);

/* Like config_dump(cfg, out, false), with each key preceded by comment lines giving its
 * doc, type, limits and default (`ternctl config --doc`). */
void config_dump_doc(const struct config *cfg, FILE *out);

/* True when the key was set in the files (not left at its default). */
bool config_is_set(const struct config *cfg, const char *section, const char *key);

/* Limits that keep a hostile file from eating memory. */
#define CONFIG_LINE_MAX (64 * 1024)        /* one physical or continued line */
#define CONFIG_VALUE_MAX (16 * 1024)       /* one value after $name expansion */
#define CONFIG_FILE_MAX (1024 * 1024)      /* one file */
#define CONFIG_TOTAL_MAX (4 * 1024 * 1024) /* all files of one load together */
#define CONFIG_FILES_MAX 128               /* files of one load, includes counted */
#define CONFIG_INCLUDE_DEPTH_MAX 8
#define CONFIG_EXPAND_DEPTH_MAX 16

#endif
