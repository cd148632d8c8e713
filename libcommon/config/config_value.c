/*
 * Typed values: checks an expanded text against its key's type and limits, and gives the
 * canonical text config_dump() prints (which parses back to the same value).
 *
 * Integers: decimal, or octal when written with a leading 0 (0666), as chmod(1) reads
 * modes; the canonical text keeps the base it was written in. Sizes: bytes with an
 * optional K, M or G suffix (powers of 1024). Times: a number with ms, s, m, h or d
 * (bare = seconds), kept in milliseconds.
 */
#include "config/config_private.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/xalloc.h"

#define KIB 1024ULL
#define MS_SECOND 1000ULL
#define MS_MINUTE (60 * MS_SECOND)
#define MS_HOUR (60 * MS_MINUTE)
#define MS_DAY (24 * MS_HOUR)

static bool has_limits(const struct cfg_key *key)
{
	return !(key->min == 0 && key->max == 0);
}

/* Reads a run of digits in base 8 or 10 into *v; returns the end or NULL on overflow or
 * no digit. */
static const char *parse_digits(const char *s, unsigned base, uint64_t *v_r)
{
	uint64_t v = 0;
	const char *p = s;
	while (*p >= '0' && *p <= '9') {
		unsigned d = (unsigned)(*p - '0');
		if (d >= base)
			return NULL;
		if (v > (UINT64_MAX - d) / base)
			return NULL;
		v = v * base + d;
		p++;
	}
	if (p == s)
		return NULL;
	*v_r = v;
	return p;
}

static bool is_octal_text(const char *s)
{
	if (*s == '+' || *s == '-')
		s++;
	return s[0] == '0' && s[1] != '\0';
}

static char *format_int(int64_t v, bool octal)
{
	if (octal && v != 0) {
		uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
		return xasprintf("%s0%" PRIo64, v < 0 ? "-" : "", mag);
	}
	return xasprintf("%" PRId64, v);
}

static char *format_size(uint64_t v)
{
	static const struct {
		char suffix;
		uint64_t mult;
	} units[] = {{'G', KIB * KIB * KIB}, {'M', KIB * KIB}, {'K', KIB}};
	if (v != 0) {
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			if (v % units[i].mult == 0)
				return xasprintf("%" PRIu64 "%c", v / units[i].mult,
				                 units[i].suffix);
		}
	}
	return xasprintf("%" PRIu64, v);
}

static char *format_time(uint64_t ms)
{
	static const struct {
		const char *suffix;
		uint64_t mult;
	} units[] = {{"d", MS_DAY}, {"h", MS_HOUR}, {"m", MS_MINUTE}, {"s", MS_SECOND}};
	if (ms == 0)
		return xstrdup("0s");
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (ms % units[i].mult == 0)
			return xasprintf("%" PRIu64 "%s", ms / units[i].mult, units[i].suffix);
	}
	return xasprintf("%" PRIu64 "ms", ms);
}

static char *format_limit(const struct cfg_key *key, int64_t v)
{
	switch (key->type) {
	case CFG_SIZE:
		return v < 0 ? format_int(v, false) : format_size((uint64_t)v);
	case CFG_TIME:
		return v < 0 ? format_int(v, false) : format_time((uint64_t)v);
	default:
		/* A key whose default is octal (a mode) shows its limits in octal too. */
		return format_int(v, key->def != NULL && is_octal_text(key->def));
	}
}

char *config_limits_text(const struct cfg_key *key)
{
	if (!has_limits(key))
		return xstrdup("");
	char *lo = format_limit(key, key->min);
	char *hi = format_limit(key, key->max);
	char *s = xasprintf("%s..%s", lo, hi);
	free(lo);
	free(hi);
	return s;
}

const char *config_type_name(enum cfg_type type)
{
	switch (type) {
	case CFG_STRING:
		return "string";
	case CFG_INT:
		return "integer";
	case CFG_BOOL:
		return "boolean";
	case CFG_SIZE:
		return "size";
	case CFG_TIME:
		return "time";
	case CFG_LIST:
		return "list";
	case CFG_ENUM:
		return "enum";
	}
	return "unknown";
}

static int out_of_range(const struct cfg_key *key, const char *text, char **problem_r)
{
	char *limits = config_limits_text(key);
	*problem_r = xasprintf("'%s' is out of range (%s)", text, limits);
	free(limits);
	return -1;
}

/* Checks an unsigned magnitude (size, time) against [min, max]. */
static int check_unsigned_range(const struct cfg_key *key, const char *text, uint64_t v,
                                char **problem_r)
{
	if (!has_limits(key))
		return 0;
	if (v > (uint64_t)INT64_MAX || (int64_t)v < key->min || (int64_t)v > key->max)
		return out_of_range(key, text, problem_r);
	return 0;
}

static int parse_int(const struct cfg_key *key, const char *text, struct cfg_parsed *out,
                     char **problem_r)
{
	const char *p = text;
	bool neg = false;
	if (*p == '+' || *p == '-')
		neg = *p++ == '-';
	bool octal = p[0] == '0' && p[1] != '\0';
	uint64_t mag;
	const char *end = parse_digits(p, octal ? 8 : 10, &mag);
	if (end == NULL || *end != '\0') {
		*problem_r = xasprintf("'%s' is not an integer%s", text,
		                       octal ? " (a leading 0 means octal: digits 0-7)" : "");
		return -1;
	}
	if (mag > (uint64_t)INT64_MAX + (neg ? 1 : 0)) {
		*problem_r = xasprintf("'%s' is too large", text);
		return -1;
	}
	int64_t v = neg ? (int64_t)(0 - mag) : (int64_t)mag;
	if (has_limits(key) && (v < key->min || v > key->max))
		return out_of_range(key, text, problem_r);
	out->i = v;
	out->canon = format_int(v, octal);
	return 0;
}

static int parse_size(const struct cfg_key *key, const char *text, struct cfg_parsed *out,
                      char **problem_r)
{
	uint64_t v, mult = 1;
	const char *end = parse_digits(text, 10, &v);
	if (end != NULL && end[0] != '\0' && end[1] == '\0') {
		switch (toupper((unsigned char)end[0])) {
		case 'K':
			mult = KIB;
			break;
		case 'M':
			mult = KIB * KIB;
			break;
		case 'G':
			mult = KIB * KIB * KIB;
			break;
		default:
			end = NULL;
		}
		if (end != NULL)
			end++;
	}
	if (end == NULL || *end != '\0') {
		*problem_r = xasprintf("'%s' is not a size (a number of bytes with an "
		                       "optional K, M or G suffix)",
		                       text);
		return -1;
	}
	if (v > UINT64_MAX / mult) {
		*problem_r = xasprintf("'%s' is too large", text);
		return -1;
	}
	v *= mult;
	if (check_unsigned_range(key, text, v, problem_r) < 0)
		return -1;
	out->u = v;
	out->canon = format_size(v);
	return 0;
}

static int parse_time(const struct cfg_key *key, const char *text, struct cfg_parsed *out,
                      char **problem_r)
{
	static const struct {
		const char *suffix;
		uint64_t mult;
	} units[] = {{"", MS_SECOND},  {"ms", 1},      {"s", MS_SECOND},
	             {"m", MS_MINUTE}, {"h", MS_HOUR}, {"d", MS_DAY}};
	uint64_t v;
	const char *end = parse_digits(text, 10, &v);
	uint64_t mult = 0;
	for (size_t i = 0; end != NULL && i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(end, units[i].suffix) == 0)
			mult = units[i].mult;
	}
	if (mult == 0) {
		*problem_r = xasprintf("'%s' is not a time (a number with ms, s, m, h or d; "
		                       "bare = seconds)",
		                       text);
		return -1;
	}
	if (v > UINT64_MAX / mult) {
		*problem_r = xasprintf("'%s' is too large", text);
		return -1;
	}
	v *= mult;
	if (check_unsigned_range(key, text, v, problem_r) < 0)
		return -1;
	out->u = v;
	out->canon = format_time(v);
	return 0;
}

static int parse_bool(const char *text, struct cfg_parsed *out, char **problem_r)
{
	static const char *const yes[] = {"yes", "true", "on", "1"};
	static const char *const no[] = {"no", "false", "off", "0"};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(text, yes[i]) == 0 || strcasecmp(text, no[i]) == 0) {
			out->b = strcasecmp(text, yes[i]) == 0;
			out->canon = xstrdup(out->b ? "yes" : "no");
			return 0;
		}
	}
	*problem_r = xasprintf("'%s' is not a boolean (yes/no, true/false, on/off, 1/0)", text);
	return -1;
}

static bool is_list_sep(char c)
{
	return c == ',' || c == ' ' || c == '\t';
}

static void parse_list(const char *text, struct cfg_parsed *out)
{
	struct buf canon;
	buf_init(&canon, 0);
	size_t n = 0, cap = 4;
	char **items = xreallocarray(NULL, cap, sizeof(*items));
	const char *p = text;
	for (;;) {
		while (is_list_sep(*p))
			p++;
		if (*p == '\0')
			break;
		const char *start = p;
		while (*p != '\0' && !is_list_sep(*p))
			p++;
		if (n + 1 >= cap) {
			cap *= 2;
			items = xreallocarray(items, cap, sizeof(*items));
		}
		items[n++] = xstrndup(start, (size_t)(p - start));
		/* The canonical text is no longer than the input, which is capped. */
		(void)buf_printf(&canon, "%s%s", canon.len > 0 ? " " : "", items[n - 1]);
	}
	items[n] = NULL;
	out->items = items;
	out->n_items = n;
	out->canon = buf_steal(&canon);
}

static int parse_enum(const struct cfg_key *key, const char *text, struct cfg_parsed *out,
                      char **problem_r)
{
	const char *choices = key->choices != NULL ? key->choices : "";
	const char *p = choices;
	while (*p != '\0') {
		size_t n = strcspn(p, "|");
		if (n == strlen(text) && n > 0 && strncasecmp(p, text, n) == 0) {
			out->canon = xstrndup(p, n);
			return 0;
		}
		p += n;
		if (*p == '|')
			p++;
	}
	*problem_r = xasprintf("'%s' is not one of %s", text, choices);
	return -1;
}

int config_value_parse(const struct cfg_key *key, const char *text, struct cfg_parsed *out,
                       char **problem_r)
{
	memset(out, 0, sizeof(*out));
	switch (key->type) {
	case CFG_STRING:
		out->canon = xstrdup(text);
		return 0;
	case CFG_INT:
		return parse_int(key, text, out, problem_r);
	case CFG_BOOL:
		return parse_bool(text, out, problem_r);
	case CFG_SIZE:
		return parse_size(key, text, out, problem_r);
	case CFG_TIME:
		return parse_time(key, text, out, problem_r);
	case CFG_LIST:
		parse_list(text, out);
		return 0;
	case CFG_ENUM:
		return parse_enum(key, text, out, problem_r);
	}
	*problem_r = xasprintf("key has an unknown type %d", (int)key->type);
	return -1;
}

void config_parsed_free(struct cfg_parsed *p)
{
	free(p->canon);
	if (p->items != NULL) {
		for (size_t i = 0; i < p->n_items; i++)
			free(p->items[i]);
		free(p->items);
	}
	memset(p, 0, sizeof(*p));
}
