/* Parsing SEARCH arguments into a key tree (see imap_search_parse.h). */
#include "imap_search_parse.h"

#include <iconv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/xalloc.h"
#include "imap_args.h"

#define SEARCH_MAX_DEPTH 32

struct search_cursor {
	const struct imap_arg *args;
	size_t count;
	size_t pos;
	const char *error;
};

static const struct imap_arg *next_arg(struct search_cursor *c)
{
	if (c->pos >= c->count) {
		c->error = "Missing search argument";
		return NULL;
	}
	return &c->args[c->pos++];
}

static char *next_string(struct search_cursor *c)
{
	const struct imap_arg *a = next_arg(c);
	if (a == NULL)
		return NULL;
	const char *s = imap_arg_astring(a);
	if (s == NULL) {
		c->error = "Invalid search string";
		return NULL;
	}
	return xstrdup(s);
}

static int next_number(struct search_cursor *c, uint64_t *v_r)
{
	const struct imap_arg *a = next_arg(c);
	if (a == NULL)
		return -1;
	char *e;
	if (a->type != IMAP_ARG_ATOM || a->str[0] < '0' || a->str[0] > '9' ||
	    (*v_r = strtoull(a->str, &e, 10), *e != '\0') || a->len > 19) {
		c->error = "Invalid number";
		return -1;
	}
	return 0;
}

static const struct {
	const char *name;
	unsigned flag;
	bool negate;
} flag_keys[] = {
    {"ANSWERED", SEARCH_FLAG_ANSWERED, false},  {"DELETED", SEARCH_FLAG_DELETED, false},
    {"DRAFT", SEARCH_FLAG_DRAFT, false},        {"FLAGGED", SEARCH_FLAG_FLAGGED, false},
    {"SEEN", SEARCH_FLAG_SEEN, false},          {"RECENT", SEARCH_FLAG_RECENT, false},
    {"UNANSWERED", SEARCH_FLAG_ANSWERED, true}, {"UNDELETED", SEARCH_FLAG_DELETED, true},
    {"UNDRAFT", SEARCH_FLAG_DRAFT, true},       {"UNFLAGGED", SEARCH_FLAG_FLAGGED, true},
    {"UNSEEN", SEARCH_FLAG_SEEN, true},         {"OLD", SEARCH_FLAG_RECENT, true},
};

static const struct {
	const char *name;
	const char *field;
} header_keys[] = {
    {"FROM", "From"}, {"TO", "To"}, {"CC", "Cc"}, {"BCC", "Bcc"}, {"SUBJECT", "Subject"},
};

static const struct {
	const char *name;
	enum search_key_type type;
} date_keys[] = {
    {"BEFORE", SK_BEFORE},         {"ON", SK_ON},         {"SINCE", SK_SINCE},
    {"SENTBEFORE", SK_SENTBEFORE}, {"SENTON", SK_SENTON}, {"SENTSINCE", SK_SENTSINCE},
};

static const struct {
	const char *name;
	enum search_key_type type;
} number_keys[] = {
    {"LARGER", SK_LARGER},
    {"SMALLER", SK_SMALLER},
    {"OLDER", SK_OLDER},
    {"YOUNGER", SK_YOUNGER},
};

static int parse_key(struct search_cursor *c, struct search_key *key, unsigned depth);

static void key_free(struct search_key *key)
{
	for (size_t i = 0; i < key->count; i++)
		key_free(&key->children[i]);
	free(key->children);
	free(key->str);
	free(key->str2);
	imap_seqset_free(&key->set);
	memset(key, 0, sizeof(*key));
}

static struct search_key *add_child(struct search_key *parent)
{
	parent->children =
	    xreallocarray(parent->children, parent->count + 1, sizeof(struct search_key));
	struct search_key *k = &parent->children[parent->count++];
	memset(k, 0, sizeof(*k));
	return k;
}

/* Keys that take a list of sub-keys: "(...)" or the top level. */
static int parse_keys(struct search_cursor *c, struct search_key *and_key, unsigned depth)
{
	and_key->type = SK_AND;
	if (c->pos >= c->count) {
		c->error = "Missing search key";
		return -1;
	}
	while (c->pos < c->count) {
		if (parse_key(c, add_child(and_key), depth) < 0)
			return -1;
	}
	return 0;
}

static int parse_named_key(struct search_cursor *c, const char *name, struct search_key *key,
                           unsigned depth)
{
	for (size_t i = 0; i < sizeof(flag_keys) / sizeof(flag_keys[0]); i++) {
		if (strcasecmp(name, flag_keys[i].name) != 0)
			continue;
		struct search_key *k = key;
		if (flag_keys[i].negate) {
			key->type = SK_NOT;
			k = add_child(key);
		}
		k->type = SK_FLAG;
		k->flag = flag_keys[i].flag;
		return 0;
	}
	for (size_t i = 0; i < sizeof(header_keys) / sizeof(header_keys[0]); i++) {
		if (strcasecmp(name, header_keys[i].name) == 0) {
			key->type = SK_HEADER;
			key->str = xstrdup(header_keys[i].field);
			return (key->str2 = next_string(c)) != NULL ? 0 : -1;
		}
	}
	for (size_t i = 0; i < sizeof(date_keys) / sizeof(date_keys[0]); i++) {
		if (strcasecmp(name, date_keys[i].name) != 0)
			continue;
		key->type = date_keys[i].type;
		char *s = next_string(c);
		int ret = s != NULL ? imap_date_parse(s, &key->day) : -1;
		if (s != NULL && ret < 0)
			c->error = "Invalid date";
		free(s);
		return ret;
	}
	for (size_t i = 0; i < sizeof(number_keys) / sizeof(number_keys[0]); i++) {
		if (strcasecmp(name, number_keys[i].name) == 0) {
			key->type = number_keys[i].type;
			return next_number(c, &key->num);
		}
	}
	if (strcasecmp(name, "ALL") == 0) {
		key->type = SK_ALL;
	} else if (strcasecmp(name, "NEW") == 0) {
		key->type = SK_NEW;
	} else if (strcasecmp(name, "NOT") == 0) {
		key->type = SK_NOT;
		return parse_key(c, add_child(key), depth + 1);
	} else if (strcasecmp(name, "OR") == 0) {
		key->type = SK_OR;
		if (parse_key(c, add_child(key), depth + 1) < 0)
			return -1;
		return parse_key(c, add_child(key), depth + 1);
	} else if (strcasecmp(name, "HEADER") == 0) {
		key->type = SK_HEADER;
		if ((key->str = next_string(c)) == NULL)
			return -1;
		return (key->str2 = next_string(c)) != NULL ? 0 : -1;
	} else if (strcasecmp(name, "BODY") == 0 || strcasecmp(name, "TEXT") == 0) {
		key->type = strcasecmp(name, "BODY") == 0 ? SK_BODY : SK_TEXT;
		return (key->str = next_string(c)) != NULL ? 0 : -1;
	} else if (strcasecmp(name, "KEYWORD") == 0 || strcasecmp(name, "UNKEYWORD") == 0) {
		struct search_key *k = key;
		if (strcasecmp(name, "UNKEYWORD") == 0) {
			key->type = SK_NOT;
			k = add_child(key);
		}
		k->type = SK_KEYWORD;
		return (k->str = next_string(c)) != NULL ? 0 : -1;
	} else if (strcasecmp(name, "UID") == 0) {
		const struct imap_arg *a = next_arg(c);
		if (a == NULL)
			return -1;
		if (a->type != IMAP_ARG_ATOM || imap_seqset_parse(a->str, 65536, &key->set) < 0) {
			c->error = "Invalid UID set";
			return -1;
		}
		key->type = key->set.dollar ? SK_SAVED : SK_UIDSET;
	} else if (strcasecmp(name, "MODSEQ") == 0) {
		key->type = SK_MODSEQ;
		/* RFC 7162: optional entry-name and entry-type before the number. */
		if (c->pos + 2 < c->count && c->args[c->pos].type == IMAP_ARG_QUOTED)
			c->pos += 2;
		return next_number(c, &key->num);
	} else {
		c->error = "Unknown search key";
		return -1;
	}
	return 0;
}

static int parse_key(struct search_cursor *c, struct search_key *key, unsigned depth)
{
	if (depth > SEARCH_MAX_DEPTH) {
		c->error = "Search program too deeply nested";
		return -1;
	}
	const struct imap_arg *a = next_arg(c);
	if (a == NULL)
		return -1;
	if (a->type == IMAP_ARG_LIST) {
		struct search_cursor sub = {.args = a->list, .count = a->count};
		if (parse_keys(&sub, key, depth + 1) < 0) {
			c->error = sub.error;
			return -1;
		}
		return 0;
	}
	if (a->type != IMAP_ARG_ATOM) {
		c->error = "Invalid search key";
		return -1;
	}
	char first = a->str[0];
	if ((first >= '0' && first <= '9') || first == '*' || first == '$') {
		if (imap_seqset_parse(a->str, 65536, &key->set) < 0) {
			c->error = "Invalid message set";
			return -1;
		}
		key->type = key->set.dollar ? SK_SAVED : SK_SEQSET;
		return 0;
	}
	return parse_named_key(c, a->str, key, depth);
}

static int parse_return(struct search_cursor *c, struct search_program *prog)
{
	const struct imap_arg *a = next_arg(c);
	if (a == NULL || a->type != IMAP_ARG_LIST) {
		c->error = "Invalid RETURN options";
		return -1;
	}
	static const struct {
		const char *name;
		unsigned bit;
	} opts[] = {{"MIN", SEARCH_RETURN_MIN},
	            {"MAX", SEARCH_RETURN_MAX},
	            {"ALL", SEARCH_RETURN_ALL},
	            {"COUNT", SEARCH_RETURN_COUNT},
	            {"SAVE", SEARCH_RETURN_SAVE}};
	prog->esearch = true;
	for (size_t i = 0; i < a->count; i++) {
		size_t j;
		for (j = 0; j < sizeof(opts) / sizeof(opts[0]); j++) {
			if (imap_arg_atom_is(&a->list[i], opts[j].name)) {
				prog->returns |= opts[j].bit;
				break;
			}
		}
		if (j == sizeof(opts) / sizeof(opts[0])) {
			c->error = "Unknown RETURN option";
			return -1;
		}
	}
	if (prog->returns == 0)
		prog->returns = SEARCH_RETURN_ALL; /* RFC 4731: RETURN () means ALL */
	return 0;
}

/* Any charset iconv can convert to UTF-8 is accepted for search strings. */
static bool charset_known(const char *cs)
{
	if (strcasecmp(cs, "UTF-8") == 0 || strcasecmp(cs, "US-ASCII") == 0)
		return true;
	if (strchr(cs, '/') != NULL) /* glibc's "//TRANSLIT" style suffixes are not charsets */
		return false;
	iconv_t cd = iconv_open("UTF-8", cs);
	if (cd == (iconv_t)-1)
		return false;
	iconv_close(cd);
	return true;
}

int imap_search_parse(const struct imap_arg *args, size_t count, struct search_program *prog_r,
                      const char **error_r)
{
	struct search_cursor c = {.args = args, .count = count};
	memset(prog_r, 0, sizeof(*prog_r));
	if (c.pos < c.count && imap_arg_atom_is(&args[c.pos], "RETURN")) {
		c.pos++;
		if (parse_return(&c, prog_r) < 0)
			goto fail;
	}
	if (c.pos < c.count && imap_arg_atom_is(&args[c.pos], "CHARSET")) {
		c.pos++;
		if ((prog_r->charset = next_string(&c)) == NULL)
			goto fail;
		if (!charset_known(prog_r->charset)) {
			*error_r = "[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset";
			imap_search_free(prog_r);
			return -2;
		}
	}
	if (parse_keys(&c, &prog_r->root, 0) < 0)
		goto fail;
	return 0;
fail:
	*error_r = c.error != NULL ? c.error : "Invalid search";
	imap_search_free(prog_r);
	return -1;
}

void imap_search_free(struct search_program *prog)
{
	key_free(&prog->root);
	free(prog->charset);
	memset(prog, 0, sizeof(*prog));
}

/* Converts s from charset cd to UTF-8 in place; -1 when it is not valid in charset. */
static int convert_string(iconv_t cd, char **s)
{
	if (*s == NULL)
		return 0;
	size_t inlen = strlen(*s), outcap = inlen * 4 + 4, outleft = outcap;
	char *out = xmalloc(outcap), *in = *s, *op = out;
	(void)iconv(cd, NULL, NULL, NULL, NULL);
	if (iconv(cd, &in, &inlen, &op, &outleft) == (size_t)-1) {
		free(out);
		return -1;
	}
	*op = '\0';
	free(*s);
	*s = out;
	return 0;
}

static int convert_key(iconv_t cd, struct search_key *k)
{
	if (k->type == SK_HEADER && convert_string(cd, &k->str2) < 0)
		return -1;
	if ((k->type == SK_BODY || k->type == SK_TEXT) && convert_string(cd, &k->str) < 0)
		return -1;
	for (size_t i = 0; i < k->count; i++) {
		if (convert_key(cd, &k->children[i]) < 0)
			return -1;
	}
	return 0;
}

int imap_search_to_utf8(struct search_program *prog)
{
	if (prog->charset == NULL || strcasecmp(prog->charset, "UTF-8") == 0 ||
	    strcasecmp(prog->charset, "US-ASCII") == 0)
		return 0;
	iconv_t cd = iconv_open("UTF-8", prog->charset);
	if (cd == (iconv_t)-1)
		return -1;
	int ret = convert_key(cd, &prog->root);
	iconv_close(cd);
	return ret;
}
