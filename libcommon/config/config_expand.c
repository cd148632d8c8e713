/*
 * $name expansion and validation of every value. Each value is resolved once and
 * remembered, so a file that refers to one key many times costs linear work; a value met
 * again while it is being resolved is a loop, and chains deeper than
 * CONFIG_EXPAND_DEPTH_MAX are refused as well. Names are looked up in the value's own
 * section first, then in global. "$$" is a literal '$'.
 */
#include "config/config_private.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/xalloc.h"

static int resolve(struct config *cfg, struct cfg_value *v, unsigned depth, char **error_r);

/* "file:line: " for a value set in a file, "<path>: default of [s] key: " otherwise. */
static char *value_error(const struct config *cfg, const struct cfg_value *v, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static char *value_error(const struct config *cfg, const struct cfg_value *v, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	char *s;
	const char *sname = cfg->sections[v->section].def->name;
	if (v->raw != NULL)
		s = xasprintf("%s:%u: %s", v->file, v->line, msg);
	else
		s = xasprintf("%s: [%s] %s (built-in default '%s'): %s",
		              cfg->path[0] != '\0' ? cfg->path : "defaults", sname, v->key->name,
		              v->key->def != NULL ? v->key->def : "", msg);
	free(msg);
	return s;
}

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

/* Reads the name after '$' at *p; returns its length or 0 when malformed. */
static size_t read_ref(const char **p, const char **name_r)
{
	const char *s = *p;
	if (*s == '{') {
		const char *start = ++s;
		while (is_name_char(*s))
			s++;
		if (*s != '}' || s == start)
			return 0;
		*name_r = start;
		*p = s + 1;
		return (size_t)(s - start);
	}
	const char *start = s;
	while (is_name_char(*s))
		s++;
	*name_r = start;
	*p = s;
	return (size_t)(s - start);
}

static struct cfg_value *lookup(const struct config *cfg, size_t section, const char *name)
{
	struct cfg_value *v = config_find_value(cfg, section, name);
	if (v == NULL && section != 0)
		v = config_find_value(cfg, 0, name);
	return v;
}

/*
 * Expands text found in `owner` (whose location errors name) into out. Returns 0, or -1
 * with *error_r.
 */
static int expand(struct config *cfg, const struct cfg_value *owner, const char *text,
                  unsigned depth, struct buf *out, char **error_r)
{
	const char *p = text;
	while (*p != '\0') {
		const char *dollar = strchr(p, '$');
		size_t lit = dollar != NULL ? (size_t)(dollar - p) : strlen(p);
		if (buf_append(out, p, lit) < 0)
			goto too_long;
		if (dollar == NULL)
			break;
		p = dollar + 1;
		if (*p == '$') {
			if (buf_append_char(out, '$') < 0)
				goto too_long;
			p++;
			continue;
		}
		const char *name;
		size_t n = read_ref(&p, &name);
		if (n == 0) {
			*error_r = value_error(cfg, owner,
			                       "'$' must be followed by a name, {name} or '$' "
			                       "(write $$ for a literal $)");
			return -1;
		}
		char *key = xstrndup(name, n);
		struct cfg_value *ref = lookup(cfg, owner->section, key);
		if (ref == NULL) {
			*error_r = value_error(cfg, owner, "undefined name $%s", key);
			free(key);
			return -1;
		}
		if (ref->state == CFG_VALUE_RESOLVING) {
			*error_r =
			    value_error(cfg, owner, "expansion loop: $%s depends on itself", key);
			free(key);
			return -1;
		}
		if (depth >= CONFIG_EXPAND_DEPTH_MAX) {
			*error_r =
			    value_error(cfg, owner, "expansion of $%s nests more than %d deep", key,
			                CONFIG_EXPAND_DEPTH_MAX);
			free(key);
			return -1;
		}
		free(key);
		if (resolve(cfg, ref, depth + 1, error_r) < 0)
			return -1;
		if (buf_append_str(out, ref->val.canon) < 0)
			goto too_long;
	}
	return 0;
too_long:
	*error_r =
	    value_error(cfg, owner, "value longer than %d bytes after expansion", CONFIG_VALUE_MAX);
	return -1;
}

/* Expands text in owner's context, trims it, and parses it as owner's type. */
static int expand_and_parse(struct config *cfg, const struct cfg_value *owner, const char *text,
                            unsigned depth, struct cfg_parsed *out, char **error_r)
{
	struct buf b;
	buf_init(&b, CONFIG_VALUE_MAX);
	if (expand(cfg, owner, text, depth, &b, error_r) < 0) {
		buf_free(&b);
		return -1;
	}
	/* Trimmed again: an empty $name at either end must not leave blanks that a dump
	 * could not write back. */
	size_t start = strspn(buf_cstr(&b), " \t");
	size_t end = b.len;
	while (end > start && (b.data[end - 1] == ' ' || b.data[end - 1] == '\t'))
		end--;
	buf_truncate(&b, end);
	buf_consume(&b, start);
	char *problem = NULL;
	int ret = config_value_parse(owner->key, buf_cstr(&b), out, &problem);
	if (ret < 0) {
		if (strcmp(buf_cstr(&b), text) != 0)
			*error_r = value_error(cfg, owner, "%s: %s (expanded from '%s')",
			                       owner->key->name, problem, text);
		else
			*error_r = value_error(cfg, owner, "%s: %s", owner->key->name, problem);
		free(problem);
	}
	buf_free(&b);
	return ret;
}

static int resolve(struct config *cfg, struct cfg_value *v, unsigned depth, char **error_r)
{
	if (v->state == CFG_VALUE_DONE)
		return 0;
	v->state = CFG_VALUE_RESOLVING;
	const char *text = v->raw != NULL ? v->raw : (v->key->def != NULL ? v->key->def : "");
	if (expand_and_parse(cfg, v, text, depth, &v->val, error_r) < 0)
		return -1;
	v->state = CFG_VALUE_DONE;
	return 0;
}

/* A set value is "changed" when the default, expanded in this config, gives another
 * canonical text: `ternctl config -n` prints exactly the values a file needs. */
static void mark_changed(struct config *cfg, struct cfg_value *v)
{
	if (v->raw == NULL)
		return;
	struct cfg_parsed def;
	char *error = NULL;
	const char *text = v->key->def != NULL ? v->key->def : "";
	if (expand_and_parse(cfg, v, text, 0, &def, &error) < 0) {
		free(error);
		v->changed = true;
		return;
	}
	v->changed = strcmp(def.canon, v->val.canon) != 0;
	config_parsed_free(&def);
}

int config_resolve_all(struct config *cfg, char **error_r)
{
	/* Values set in the files first, in file order, so the first error reported is
	 * the first one in the file; then the defaults. */
	for (size_t i = 0; i < cfg->n_order; i++) {
		if (resolve(cfg, cfg->order[i], 0, error_r) < 0)
			return -1;
	}
	for (size_t s = 0; s < cfg->n_sections; s++) {
		for (size_t k = 0; k < cfg->sections[s].def->n_keys; k++) {
			if (resolve(cfg, &cfg->sections[s].values[k], 0, error_r) < 0)
				return -1;
		}
	}
	for (size_t i = 0; i < cfg->n_order; i++)
		mark_changed(cfg, cfg->order[i]);
	return 0;
}
