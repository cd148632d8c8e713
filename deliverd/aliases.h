/*
 * Alias maps, loaded once from files (and again on SIGHUP):
 *
 *   virtual style (virtual_alias_file):   alias@domain: target, target...
 *                                          @domain: target          (catch-all)
 *   local style (alias_file, /etc/aliases): name: target, target...
 *
 * '#' starts a comment line; a line starting with whitespace continues the previous
 * entry's target list. Targets are addresses ("bob@example.test", or a bare "bob" that
 * takes the recipient's domain). Pipes, files and :include: are refused (deliverd runs no
 * command and writes no file named by a map). Keys are matched lower-cased.
 */
#ifndef TERN_DELIVERD_ALIASES_H
#define TERN_DELIVERD_ALIASES_H

#include <stdbool.h>
#include <stddef.h>

struct alias_map;

enum alias_style {
	ALIAS_VIRTUAL,
	ALIAS_LOCAL,
};

/* path NULL or "" gives an empty map. Returns 0, or -1 with *error_r = "file:line: ..."
 * (caller frees). A missing file is an error unless missing_ok. */
int alias_map_load(const char *path, enum alias_style style, bool missing_ok,
                   struct alias_map **map_r, char **error_r);
/* Same, from a string (tests); name is used in errors. */
int alias_map_load_string(const char *name, const char *text, enum alias_style style,
                          struct alias_map **map_r, char **error_r);
/* The targets of key (lower-case) or NULL; the array belongs to the map. */
const char *const *alias_map_lookup(const struct alias_map *m, const char *key, size_t *n_r);
size_t alias_map_count(const struct alias_map *m);
void alias_map_free(struct alias_map **m);

#endif
