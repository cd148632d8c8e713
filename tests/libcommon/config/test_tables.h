/*
 * Key tables and helpers for the config unit tests. The tests use their own tables, so
 * they do not change meaning when a daemon's real table (keys_<section>.c) changes.
 */
#ifndef TERN_TESTS_CONFIG_TABLES_H
#define TERN_TESTS_CONFIG_TABLES_H

#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/config_keys.h"

#define T_DAY (24LL * 3600 * 1000)

static const struct cfg_key t_global_keys[] = {
    {"name", CFG_STRING, "tern", 0, 0, NULL, "a name"},
    {"dir", CFG_STRING, "/run/t", 0, 0, NULL, "a directory"},
    {"sock", CFG_STRING, "$dir/sock", 0, 0, NULL, "a socket under dir"},
    {"count", CFG_INT, "10", 1, 100, NULL, "an int in 1..100"},
    {"mode", CFG_INT, "0640", 0, 0777, NULL, "a file mode"},
    {"big", CFG_INT, "0", 0, 0, NULL, "an int without limits"},
    {"size", CFG_SIZE, "10M", 1024, 1024LL * 1024 * 1024, NULL, "a size in 1K..1G"},
    {"delay", CFG_TIME, "5m", 0, T_DAY, NULL, "a time in 0..1d"},
    {"flag", CFG_BOOL, "no", 0, 0, NULL, "a boolean"},
    {"items", CFG_LIST, "a b", 0, 0, NULL, "a list"},
    {"level", CFG_ENUM, "low", 0, 0, "low|mid|high", "an enum"},
    {"a", CFG_STRING, "", 0, 0, NULL, "free string a"},
    {"b", CFG_STRING, "", 0, 0, NULL, "free string b"},
    {"c", CFG_STRING, "", 0, 0, NULL, "free string c"},
};

static const struct cfg_key t_smtpd_keys[] = {
    {"listen", CFG_LIST, "*:25", 0, 0, NULL, "listeners"},
    {"sock", CFG_STRING, "$dir/smtpd", 0, 0, NULL, "shadows the global sock"},
    {"limit", CFG_SIZE, "$size", 1024, 512LL * 1024 * 1024, NULL, "default from global"},
    {"greet", CFG_STRING, "$name ready", 0, 0, NULL, "a greeting"},
};

/* A chain of 20 keys for the expansion depth cap. */
static const struct cfg_key t_chain_keys[] = {
    {"k0", CFG_STRING, "", 0, 0, NULL, ""},  {"k1", CFG_STRING, "", 0, 0, NULL, ""},
    {"k2", CFG_STRING, "", 0, 0, NULL, ""},  {"k3", CFG_STRING, "", 0, 0, NULL, ""},
    {"k4", CFG_STRING, "", 0, 0, NULL, ""},  {"k5", CFG_STRING, "", 0, 0, NULL, ""},
    {"k6", CFG_STRING, "", 0, 0, NULL, ""},  {"k7", CFG_STRING, "", 0, 0, NULL, ""},
    {"k8", CFG_STRING, "", 0, 0, NULL, ""},  {"k9", CFG_STRING, "", 0, 0, NULL, ""},
    {"k10", CFG_STRING, "", 0, 0, NULL, ""}, {"k11", CFG_STRING, "", 0, 0, NULL, ""},
    {"k12", CFG_STRING, "", 0, 0, NULL, ""}, {"k13", CFG_STRING, "", 0, 0, NULL, ""},
    {"k14", CFG_STRING, "", 0, 0, NULL, ""}, {"k15", CFG_STRING, "", 0, 0, NULL, ""},
    {"k16", CFG_STRING, "", 0, 0, NULL, ""}, {"k17", CFG_STRING, "", 0, 0, NULL, ""},
    {"k18", CFG_STRING, "", 0, 0, NULL, ""}, {"k19", CFG_STRING, "", 0, 0, NULL, ""},
};

static const struct cfg_section t_global = {"global", t_global_keys,
                                            sizeof(t_global_keys) / sizeof(t_global_keys[0])};
static const struct cfg_section t_smtpd = {"smtpd", t_smtpd_keys,
                                           sizeof(t_smtpd_keys) / sizeof(t_smtpd_keys[0])};
static const struct cfg_section t_chain = {"chain", t_chain_keys,
                                           sizeof(t_chain_keys) / sizeof(t_chain_keys[0])};

static const struct cfg_section *const t_sections[] = {&t_global, &t_smtpd, &t_chain};
#define T_N_SECTIONS (sizeof(t_sections) / sizeof(t_sections[0]))

/* Loads text (of length len, which may include NUL bytes) as file "t.conf". */
static inline int t_load_data(const char *text, size_t len, struct config **cfg_r, char **error_r)
{
	return config_load_tables(t_sections, T_N_SECTIONS, "t.conf", text, len, cfg_r, error_r);
}

/* Loads a copy of text without its NUL, in a buffer of exactly its length, so an ASan
 * build catches any read past the end of the data. */
static inline int t_load(const char *text, struct config **cfg_r, char **error_r)
{
	size_t len = strlen(text);
	char *copy = malloc(len > 0 ? len : 1);
	if (copy == NULL)
		abort();
	memcpy(copy, text, len);
	int ret = t_load_data(copy, len, cfg_r, error_r);
	free(copy);
	return ret;
}

#endif
