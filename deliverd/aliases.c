/*
 * Alias map files: parsed whole at load time into a sorted table that lookups bsearch.
 * Errors name the file and line, as the config loader does.
 */
#include "aliases.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "base/buf.h"
#include "base/xalloc.h"

#define ALIAS_MAX_FILE (16 * 1024 * 1024)
#define ALIAS_MAX_TARGETS 1000

struct alias_entry {
	char *key;
	char **targets;
	size_t n_targets;
};

struct alias_map {
	struct alias_entry *entries;
	size_t n, cap;
};

static void entry_free(struct alias_entry *e)
{
	free(e->key);
	for (size_t i = 0; i < e->n_targets; i++)
		free(e->targets[i]);
	free(e->targets);
}

void alias_map_free(struct alias_map **m)
{
	if (*m == NULL)
		return;
	for (size_t i = 0; i < (*m)->n; i++)
		entry_free(&(*m)->entries[i]);
	free((*m)->entries);
	free(*m);
	*m = NULL;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

static int key_valid(const char *key, enum alias_style style)
{
	struct address a;
	const char *err;
	if (style == ALIAS_VIRTUAL) {
		if (key[0] == '@') {
			/* Catch-all: a domain alone. */
			char *probe = xasprintf("x%s", key);
			int r = address_parse_plain(probe, true, '\0', &a, &err);
			free(probe);
			if (r == 0)
				address_free(&a);
			return r;
		}
		if (strchr(key, '@') == NULL)
			return -1;
	} else if (strchr(key, '@') != NULL) {
		return -1;
	}
	if (address_parse_plain(key, true, '\0', &a, &err) < 0)
		return -1;
	address_free(&a);
	return 0;
}

/* Adds the comma/space separated targets in list to e. */
static int add_targets(struct alias_entry *e, char *list, char **problem_r)
{
	char *save = NULL;
	for (char *t = strtok_r(list, ", \t", &save); t != NULL;
	     t = strtok_r(NULL, ", \t", &save)) {
		if (t[0] == '|' || t[0] == '/' || strncmp(t, ":include:", 9) == 0) {
			*problem_r = xasprintf("target \"%s\": pipes, files and :include: are not "
			                       "supported",
			                       t);
			return -1;
		}
		struct address a;
		const char *err;
		if (address_parse_plain(t, true, '\0', &a, &err) < 0) {
			*problem_r = xasprintf("target \"%s\": %s", t, err + 6);
			return -1;
		}
		address_free(&a);
		if (e->n_targets >= ALIAS_MAX_TARGETS) {
			*problem_r = xstrdup("too many targets");
			return -1;
		}
		for (char *p = t; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
		bool dup = false;
		for (size_t i = 0; i < e->n_targets && !dup; i++)
			dup = strcmp(e->targets[i], t) == 0;
		if (dup)
			continue;
		e->targets = xreallocarray(e->targets, e->n_targets + 1, sizeof(char *));
		e->targets[e->n_targets++] = xstrdup(t);
	}
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct alias_entry *)a)->key, ((const struct alias_entry *)b)->key);
}

static int parse_text(const char *name, const char *text, enum alias_style style,
                      struct alias_map *m, char **error_r)
{
	const char *p = text;
	unsigned lineno = 0;
	struct alias_entry *cur = NULL;
	while (*p != '\0') {
		lineno++;
		const char *nl = strchr(p, '\n');
		size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
		char *line = xstrndup(p, n);
		p += n + (nl != NULL ? 1 : 0);
		char *problem = NULL;
		bool cont = line[0] == ' ' || line[0] == '\t';
		char *t = trim(line);
		if (t[0] == '\0' || t[0] == '#') {
			free(line);
			continue;
		}
		if (cont) {
			if (cur == NULL)
				problem = xstrdup("continuation line without an entry");
			else
				add_targets(cur, t, &problem);
		} else {
			char *colon = strchr(t, ':');
			if (colon == NULL) {
				problem = xstrdup("expected \"name: target, ...\"");
			} else {
				*colon = '\0';
				char *key = trim(t);
				for (char *k = key; *k != '\0'; k++)
					*k = (char)tolower((unsigned char)*k);
				if (key_valid(key, style) < 0)
					problem = xasprintf("bad alias name \"%s\"", key);
				if (problem == NULL) {
					if (m->n == m->cap) {
						m->cap = m->cap == 0 ? 16 : m->cap * 2;
						m->entries = xreallocarray(m->entries, m->cap,
						                           sizeof(*m->entries));
					}
					cur = &m->entries[m->n++];
					memset(cur, 0, sizeof(*cur));
					cur->key = xstrdup(key);
					add_targets(cur, colon + 1, &problem);
				}
			}
		}
		free(line);
		if (problem != NULL) {
			*error_r = xasprintf("%s:%u: %s", name, lineno, problem);
			free(problem);
			return -1;
		}
	}
	for (size_t i = 0; i < m->n; i++) {
		if (m->entries[i].n_targets == 0) {
			*error_r =
			    xasprintf("%s: alias \"%s\" has no targets", name, m->entries[i].key);
			return -1;
		}
	}
	if (m->n > 1) /* relay branch: qsort(NULL, 0) is undefined (UBSan) */
		qsort(m->entries, m->n, sizeof(*m->entries), cmp_entry);
	for (size_t i = 1; i < m->n; i++) {
		if (strcmp(m->entries[i - 1].key, m->entries[i].key) == 0) {
			*error_r = xasprintf("%s: duplicate alias \"%s\"", name, m->entries[i].key);
			return -1;
		}
	}
	return 0;
}

int alias_map_load_string(const char *name, const char *text, enum alias_style style,
                          struct alias_map **map_r, char **error_r)
{
	struct alias_map *m = xcalloc(1, sizeof(*m));
	if (parse_text(name, text, style, m, error_r) < 0) {
		alias_map_free(&m);
		return -1;
	}
	*map_r = m;
	return 0;
}

int alias_map_load(const char *path, enum alias_style style, bool missing_ok,
                   struct alias_map **map_r, char **error_r)
{
	if (path == NULL || path[0] == '\0')
		return alias_map_load_string("(none)", "", style, map_r, error_r);
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		if (errno == ENOENT && missing_ok)
			return alias_map_load_string(path, "", style, map_r, error_r);
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return -1;
	}
	struct buf text;
	buf_init(&text, ALIAS_MAX_FILE);
	char chunk[4096];
	size_t n;
	int too_big = 0;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (buf_append(&text, chunk, n) < 0) {
			too_big = 1;
			break;
		}
	int read_err = ferror(f);
	fclose(f);
	if (too_big || read_err) {
		*error_r = xasprintf("%s: %s", path, too_big ? "file too large" : "read error");
		buf_free(&text);
		return -1;
	}
	if (memchr(text.data != NULL ? text.data : "", '\0', text.len) != NULL) {
		*error_r = xasprintf("%s: contains a NUL byte", path);
		buf_free(&text);
		return -1;
	}
	int r = alias_map_load_string(path, buf_cstr(&text), style, map_r, error_r);
	buf_free(&text);
	return r;
}

const char *const *alias_map_lookup(const struct alias_map *m, const char *key, size_t *n_r)
{
	*n_r = 0;
	if (m == NULL || m->n == 0)
		return NULL;
	struct alias_entry probe = {.key = (char *)key};
	const struct alias_entry *e =
	    bsearch(&probe, m->entries, m->n, sizeof(*m->entries), cmp_entry);
	if (e == NULL)
		return NULL;
	*n_r = e->n_targets;
	return (const char *const *)e->targets;
}

size_t alias_map_count(const struct alias_map *m)
{
	return m != NULL ? m->n : 0;
}
