/*
 * Writes a config back out as config text (`ternctl config`, `-n`, `--doc`). The output
 * is itself a valid file: values are the canonical expanded ones with '$' doubled, so
 * loading it gives the same values.
 */
#include "config/config_private.h"

#include <stdlib.h>
#include <string.h>

static void dump_value(FILE *out, const struct cfg_value *v)
{
	fputs(v->key->name, out);
	fputs(" =", out);
	const char *s = v->val.canon;
	if (*s != '\0')
		fputc(' ', out);
	for (; *s != '\0'; s++) {
		if (*s == '$')
			fputc('$', out);
		fputc(*s, out);
	}
	fputc('\n', out);
}

static void dump_doc(FILE *out, const struct cfg_value *v, bool first)
{
	const struct cfg_key *key = v->key;
	fprintf(out, "%s# %s\n# %s", first ? "" : "\n", key->doc != NULL ? key->doc : "",
	        config_type_name(key->type));
	if (key->type == CFG_ENUM)
		fprintf(out, " (%s)", key->choices != NULL ? key->choices : "");
	char *limits = config_limits_text(key);
	if (limits[0] != '\0')
		fprintf(out, ", %s", limits);
	free(limits);
	fprintf(out, ", default: %s\n",
	        key->def != NULL && key->def[0] != '\0' ? key->def : "(empty)");
}

static void dump(const struct config *cfg, FILE *out, bool only_changed, bool doc)
{
	bool first = true;
	for (size_t s = 0; s < cfg->n_sections; s++) {
		const struct cfg_section_values *sv = &cfg->sections[s];
		bool header = false;
		for (size_t k = 0; k < sv->def->n_keys; k++) {
			const struct cfg_value *v = &sv->values[k];
			if (only_changed && !v->changed)
				continue;
			/* Global keys come first and need no header. */
			bool fresh = first; /* nothing printed, or only a header, before this key */
			if (!header && s > 0) {
				fprintf(out, "%s[%s]\n", first ? "" : "\n", sv->def->name);
				header = true;
				fresh = true;
			}
			if (doc)
				dump_doc(out, v, fresh);
			dump_value(out, v);
			first = false;
		}
	}
}

void config_dump(const struct config *cfg, FILE *out, bool only_changed)
{
	dump(cfg, out, only_changed, false);
}

void config_dump_doc(const struct config *cfg, FILE *out)
{
	dump(cfg, out, false, true);
}
