/*
 * Loading and reading a config: builds the per-section value slots from the key tables,
 * runs the parser (config_parse.c) and the resolver (config_expand.c), and answers the
 * typed getters. A getter asked for a key its section's table does not have, or with
 * the wrong type, is a bug in the caller and panics.
 */
#include "config/config_private.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xalloc.h"

ssize_t config_find_section(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_sections; i++) {
		if (strcmp(cfg->sections[i].def->name, name) == 0)
			return (ssize_t)i;
	}
	return -1;
}

struct cfg_value *config_find_value(const struct config *cfg, size_t section, const char *key)
{
	const struct cfg_section_values *sv = &cfg->sections[section];
	for (size_t i = 0; i < sv->def->n_keys; i++) {
		if (strcmp(sv->def->keys[i].name, key) == 0)
			return &sv->values[i];
	}
	return NULL;
}

static struct config *config_new(const struct cfg_section *const *sections, size_t n_sections,
                                 const char *path)
{
	if (n_sections == 0 || strcmp(sections[0]->name, "global") != 0)
		log_panic("config: the first key table must be the global section");
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	cfg->path = xstrdup(path != NULL ? path : "");
	cfg->n_sections = n_sections;
	cfg->sections = xcalloc(n_sections, sizeof(*cfg->sections));
	for (size_t s = 0; s < n_sections; s++) {
		const struct cfg_section *def = sections[s];
		cfg->sections[s].def = def;
		cfg->sections[s].values = xcalloc(def->n_keys, sizeof(struct cfg_value));
		for (size_t k = 0; k < def->n_keys; k++) {
			cfg->sections[s].values[k].key = &def->keys[k];
			cfg->sections[s].values[k].section = s;
		}
	}
	return cfg;
}

void config_free(struct config **cfgp)
{
	struct config *cfg = *cfgp;
	if (cfg == NULL)
		return;
	for (size_t s = 0; s < cfg->n_sections; s++) {
		for (size_t k = 0; k < cfg->sections[s].def->n_keys; k++) {
			struct cfg_value *v = &cfg->sections[s].values[k];
			free(v->raw);
			config_parsed_free(&v->val);
		}
		free(cfg->sections[s].values);
	}
	free(cfg->sections);
	for (size_t i = 0; i < cfg->n_files; i++)
		free(cfg->files[i]);
	free(cfg->files);
	free(cfg->order);
	free(cfg->path);
	free(cfg);
	*cfgp = NULL;
}

int config_load_tables(const struct cfg_section *const *sections, size_t n_sections,
                       const char *name, const void *data, size_t size, struct config **cfg_r,
                       char **error_r)
{
	struct config *cfg = config_new(sections, n_sections, name);
	*cfg_r = NULL;
	*error_r = NULL;
	if ((name != NULL || data != NULL) &&
	    config_parse(cfg, name != NULL ? name : "", data, size, error_r) < 0) {
		config_free(&cfg);
		return -1;
	}
	if (config_resolve_all(cfg, error_r) < 0) {
		config_free(&cfg);
		return -1;
	}
	*cfg_r = cfg;
	return 0;
}

int config_load(const char *path, struct config **cfg_r, char **error_r)
{
	return config_load_tables(config_sections, config_n_sections, path, NULL, 0, cfg_r,
	                          error_r);
}

int config_load_data(const char *name, const void *data, size_t size, struct config **cfg_r,
                     char **error_r)
{
	return config_load_tables(config_sections, config_n_sections, name,
	                          data != NULL ? data : "", size, cfg_r, error_r);
}

int config_load_string(const char *name, const char *text, struct config **cfg_r, char **error_r)
{
	return config_load_data(name, text, strlen(text), cfg_r, error_r);
}

const char *config_path(const struct config *cfg)
{
	return cfg->path;
}

static const struct cfg_value *get(const struct config *cfg, const char *section, const char *key,
                                   enum cfg_type type, bool any_type)
{
	if (cfg == NULL)
		log_panic("config: lookup of %s.%s without a config", section, key);
	ssize_t s = config_find_section(cfg, section);
	if (s < 0)
		log_panic("config: no section [%s] (looking up %s)", section, key);
	const struct cfg_value *v = config_find_value(cfg, (size_t)s, key);
	if (v == NULL)
		log_panic("config: no key %s in [%s]", key, section);
	if (!any_type && v->key->type != type)
		log_panic("config: [%s] %s is a %s, not a %s", section, key,
		          config_type_name(v->key->type), config_type_name(type));
	return v;
}

const char *config_str(const struct config *cfg, const char *section, const char *key)
{
	/* Every type has a canonical text; for strings and enums it is the value. */
	return get(cfg, section, key, CFG_STRING, true)->val.canon;
}

int64_t config_int(const struct config *cfg, const char *section, const char *key)
{
	return get(cfg, section, key, CFG_INT, false)->val.i;
}

bool config_bool(const struct config *cfg, const char *section, const char *key)
{
	return get(cfg, section, key, CFG_BOOL, false)->val.b;
}

uint64_t config_size(const struct config *cfg, const char *section, const char *key)
{
	return get(cfg, section, key, CFG_SIZE, false)->val.u;
}

uint64_t config_time_ms(const struct config *cfg, const char *section, const char *key)
{
	return get(cfg, section, key, CFG_TIME, false)->val.u;
}

const char *const *config_list(const struct config *cfg, const char *section, const char *key,
                               size_t *n_r)
{
	const struct cfg_value *v = get(cfg, section, key, CFG_LIST, false);
	if (n_r != NULL)
		*n_r = v->val.n_items;
	return (const char *const *)v->val.items;
}

bool config_is_set(const struct config *cfg, const char *section, const char *key)
{
	return get(cfg, section, key, CFG_STRING, true)->raw != NULL;
}
