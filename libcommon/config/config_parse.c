/*
 * Reads config files into raw key values: lines, comments, continuation lines,
 * [section] headers and !include. Every limit (file size, line length, file count,
 * include depth) is checked before the bytes it guards are used, and every problem is
 * reported as "file:line: problem" naming the file it is in, includes included.
 */
#include "config/config_private.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/xalloc.h"

struct file_id {
	dev_t dev;
	ino_t ino;
};

struct parser {
	struct config *cfg;
	size_t total_bytes;
	/* Files being read, outermost first, to name an include loop. */
	struct file_id stack[CONFIG_INCLUDE_DEPTH_MAX + 1];
	size_t depth;
	char *error;
};

/* A key = value line still collecting continuation lines. */
struct pending {
	struct cfg_value *value; /* NULL: none */
	const char *file;
	unsigned line;
	struct buf text;
};

static int parse_error(struct parser *p, const char *file, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int parse_error(struct parser *p, const char *file, unsigned line, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *msg = xvasprintf(fmt, ap);
	va_end(ap);
	if (line > 0)
		p->error = xasprintf("%s:%u: %s", file, line, msg);
	else
		p->error = xasprintf("%s: %s", file, msg);
	free(msg);
	return -1;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

/* Trims blanks at both ends of s[0..*n), returning the new start. */
static const char *trim(const char *s, size_t *n)
{
	while (*n > 0 && is_blank(s[0])) {
		s++;
		(*n)--;
	}
	while (*n > 0 && is_blank(s[*n - 1]))
		(*n)--;
	return s;
}

static const char *register_file(struct config *cfg, const char *name)
{
	cfg->files = xreallocarray(cfg->files, cfg->n_files + 1, sizeof(*cfg->files));
	cfg->files[cfg->n_files] = xstrdup(name);
	return cfg->files[cfg->n_files++];
}

/* The directory relative includes in `file` start from. */
static char *dir_of(const char *file)
{
	const char *slash = strrchr(file, '/');
	if (slash == NULL)
		return xstrdup(".");
	if (slash == file)
		return xstrdup("/");
	return xstrndup(file, (size_t)(slash - file));
}

/* Lists the sections that know `key`, as a hint for an unknown key. */
static char *sections_with_key(const struct config *cfg, const char *key)
{
	struct buf hint;
	buf_init(&hint, 1024);
	for (size_t i = 0; i < cfg->n_sections; i++) {
		if (config_find_value(cfg, i, key) != NULL)
			(void)buf_printf(&hint, "%s[%s]", hint.len > 0 ? ", " : "",
			                 cfg->sections[i].def->name);
	}
	return buf_steal(&hint);
}

static int pending_flush(struct parser *p, struct pending *pend)
{
	struct cfg_value *v = pend->value;
	if (v == NULL)
		return 0;
	pend->value = NULL;
	if (v->raw != NULL) {
		return parse_error(p, pend->file, pend->line,
		                   "duplicate key '%s' in [%s] (first set at %s:%u)", v->key->name,
		                   p->cfg->sections[v->section].def->name, v->file, v->line);
	}
	v->raw = buf_steal(&pend->text);
	v->file = pend->file;
	v->line = pend->line;
	struct config *cfg = p->cfg;
	cfg->order = xreallocarray(cfg->order, cfg->n_order + 1, sizeof(*cfg->order));
	cfg->order[cfg->n_order++] = v;
	return 0;
}

static int parse_section_header(struct parser *p, const char *file, unsigned line, const char *s,
                                size_t n, size_t *section_r)
{
	/* s starts with '[' and is trimmed. */
	if (n < 2 || s[n - 1] != ']')
		return parse_error(p, file, line, "expected '[section]'");
	size_t len = n - 2;
	const char *name = trim(s + 1, &len);
	char *sname = xstrndup(name, len);
	ssize_t idx = config_find_section(p->cfg, sname);
	if (idx < 0) {
		parse_error(p, file, line, "unknown section [%s]", sname);
		free(sname);
		return -1;
	}
	free(sname);
	*section_r = (size_t)idx;
	return 0;
}

static int parse_key_line(struct parser *p, const char *file, unsigned line, const char *s,
                          size_t n, size_t section, struct pending *pend)
{
	const char *eq = memchr(s, '=', n);
	if (eq == NULL)
		return parse_error(p, file, line, "expected 'key = value'");
	size_t klen = (size_t)(eq - s);
	const char *k = trim(s, &klen);
	if (klen == 0)
		return parse_error(p, file, line, "missing key name before '='");
	for (size_t i = 0; i < klen; i++) {
		if (!is_name_char(k[i]))
			return parse_error(p, file, line,
			                   "bad key name (letters, digits and '_' only)");
	}
	char *key = xstrndup(k, klen);
	struct cfg_value *v = config_find_value(p->cfg, section, key);
	if (v == NULL) {
		char *hint = sections_with_key(p->cfg, key);
		parse_error(p, file, line, "unknown key '%s' in [%s]%s%s%s", key,
		            p->cfg->sections[section].def->name,
		            hint[0] != '\0' ? " (it belongs in " : "", hint,
		            hint[0] != '\0' ? ")" : "");
		free(hint);
		free(key);
		return -1;
	}
	free(key);
	size_t vlen = n - (size_t)(eq + 1 - s);
	const char *val = trim(eq + 1, &vlen);
	pend->value = v;
	pend->file = file;
	pend->line = line;
	buf_reset(&pend->text);
	(void)buf_append(&pend->text, val, vlen); /* within the line cap */
	return 0;
}

static int load_file(struct parser *p, const char *path, size_t section, const char *from_file,
                     unsigned from_line);

static bool has_glob_chars(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

/* Escapes glob metacharacters in a directory name that is not meant as a pattern. */
static void glob_escape(struct buf *out, const char *s)
{
	for (; *s != '\0'; s++) {
		if (strchr("*?[]\\", *s) != NULL)
			(void)buf_append_char(out, '\\');
		(void)buf_append_char(out, *s);
	}
}

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static __thread int glob_errno;

/* A directory that does not exist just matches nothing; one that cannot be read is an
 * error, so a permission problem does not silently drop configuration. */
static int on_glob_error(const char *epath, int eerrno)
{
	(void)epath;
	if (eerrno == ENOENT || eerrno == ENOTDIR)
		return 0;
	glob_errno = eerrno;
	return 1;
}

static int include_glob(struct parser *p, const char *pattern, const char *spec, size_t section,
                        const char *file, unsigned line)
{
	glob_t g;
	memset(&g, 0, sizeof(g));
	glob_errno = 0;
	int r = glob(pattern, GLOB_NOSORT, on_glob_error, &g);
	if (r == GLOB_NOMATCH) {
		globfree(&g);
		return 0;
	}
	if (r != 0) {
		globfree(&g);
		return parse_error(p, file, line, "cannot read include '%s': %s", spec,
		                   glob_errno != 0 ? strerror(glob_errno) : "glob failed");
	}
	if (g.gl_pathc > CONFIG_FILES_MAX) {
		globfree(&g);
		return parse_error(p, file, line, "include '%s' matches more than %d files", spec,
		                   CONFIG_FILES_MAX);
	}
	/* Sorted by bytes, not by locale, so the order never depends on the environment. */
	qsort(g.gl_pathv, g.gl_pathc, sizeof(char *), compare_strings);
	int ret = 0;
	for (size_t i = 0; i < g.gl_pathc && ret == 0; i++)
		ret = load_file(p, g.gl_pathv[i], section, file, line);
	globfree(&g);
	return ret;
}

static int parse_include(struct parser *p, const char *file, unsigned line, const char *s, size_t n,
                         size_t section)
{
	static const char directive[] = "!include";
	size_t dlen = sizeof(directive) - 1;
	if (n < dlen || memcmp(s, directive, dlen) != 0 || (n > dlen && !is_blank(s[dlen]))) {
		size_t wlen = 0; /* the line is not NUL-terminated */
		while (wlen < n && !is_blank(s[wlen]))
			wlen++;
		return parse_error(p, file, line, "unknown directive '%.*s'", (int)wlen, s);
	}
	size_t slen = n - dlen;
	const char *spec_text = trim(s + dlen, &slen);
	if (slen == 0)
		return parse_error(p, file, line, "!include needs a file name or pattern");
	if (p->depth >= CONFIG_INCLUDE_DEPTH_MAX + 1)
		return parse_error(p, file, line, "includes nest more than %d deep",
		                   CONFIG_INCLUDE_DEPTH_MAX);
	char *spec = xstrndup(spec_text, slen);
	char *dir = dir_of(file);
	struct buf path;
	buf_init(&path, 0);
	bool pattern = has_glob_chars(spec);
	if (spec[0] != '/') {
		if (pattern)
			glob_escape(&path, dir);
		else
			(void)buf_append_str(&path, dir);
		(void)buf_append_char(&path, '/');
	}
	(void)buf_append_str(&path, spec);
	int ret = pattern ? include_glob(p, buf_cstr(&path), spec, section, file, line)
	                  : load_file(p, buf_cstr(&path), section, file, line);
	buf_free(&path);
	free(dir);
	free(spec);
	return ret;
}

/* Checks one physical line's bytes: a NUL or another control character is an error. */
static int check_line_bytes(struct parser *p, const char *file, unsigned line, const char *s,
                            size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\0')
			return parse_error(p, file, line, "NUL byte in line");
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return parse_error(p, file, line, "control character 0x%02x in line", c);
	}
	return 0;
}

static int parse_line(struct parser *p, const char *file, unsigned line, const char *s, size_t n,
                      size_t *section, struct pending *pend)
{
	size_t tlen = n;
	const char *t = trim(s, &tlen);
	if (tlen == 0 || t[0] == '#')
		return 0; /* blank lines and comments do not end a continued value */
	if (t != s) {
		/* Postfix style: a line starting with whitespace continues the value. */
		if (pend->value == NULL)
			return parse_error(p, file, line,
			                   "continuation line without a 'key = value' line before "
			                   "it");
		if (buf_append_char(&pend->text, ' ') < 0 || buf_append(&pend->text, t, tlen) < 0)
			return parse_error(p, file, line, "continued line longer than %d bytes",
			                   CONFIG_LINE_MAX);
		return 0;
	}
	if (pending_flush(p, pend) < 0)
		return -1;
	if (t[0] == '[')
		return parse_section_header(p, file, line, t, tlen, section);
	if (t[0] == '!')
		return parse_include(p, file, line, t, tlen, *section);
	return parse_key_line(p, file, line, t, tlen, *section, pend);
}

/* Parses one file's text; `file` is its registered name. A [section] inside stays local
 * to this file: the includer goes on in the section it was in. */
static int parse_text(struct parser *p, const char *file, const char *data, size_t size,
                      size_t section)
{
	struct pending pend = {.value = NULL};
	buf_init(&pend.text, CONFIG_LINE_MAX);
	size_t pos = 0;
	unsigned line = 0;
	int ret = 0;
	while (pos < size && ret == 0) {
		line++;
		const char *s = data + pos;
		const char *nl = memchr(s, '\n', size - pos);
		size_t n = nl != NULL ? (size_t)(nl - s) : size - pos;
		pos += n + (nl != NULL ? 1 : 0);
		if (n > 0 && s[n - 1] == '\r')
			n--; /* CRLF line ending */
		if (n > CONFIG_LINE_MAX)
			ret = parse_error(p, file, line, "line longer than %d bytes",
			                  CONFIG_LINE_MAX);
		else if ((ret = check_line_bytes(p, file, line, s, n)) == 0)
			ret = parse_line(p, file, line, s, n, &section, &pend);
	}
	if (ret == 0)
		ret = pending_flush(p, &pend);
	buf_free(&pend.text);
	return ret;
}

/* Reads at most max + 1 bytes, so a file that grows or lies in st_size cannot pass max. */
static int read_capped(int fd, size_t max, char **data_r, size_t *size_r)
{
	size_t cap = 64 * 1024, len = 0;
	char *data = xmalloc(cap);
	for (;;) {
		if (len == cap) {
			if (cap > max) {
				break;
			}
			cap *= 2;
			data = xrealloc(data, cap);
		}
		ssize_t r = read(fd, data + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(data);
			errno = e;
			return -1;
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > max)
			break;
	}
	*data_r = data;
	*size_r = len;
	return 0;
}

static int open_checked(struct parser *p, const char *path, const char *from_file,
                        unsigned from_line, struct stat *st)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		if (from_file == NULL)
			return parse_error(p, path, 0, "cannot open: %s", strerror(errno));
		return parse_error(p, from_file, from_line, "cannot open include '%s': %s", path,
		                   strerror(errno));
	}
	/* Only regular files: a FIFO or a device could block or never end. */
	if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		close(fd);
		if (from_file == NULL)
			return parse_error(p, path, 0, "not a regular file");
		return parse_error(p, from_file, from_line, "include '%s' is not a regular file",
		                   path);
	}
	const char *efile = from_file != NULL ? from_file : path;
	for (size_t i = 0; i < p->depth; i++) {
		if (p->stack[i].dev == st->st_dev && p->stack[i].ino == st->st_ino) {
			close(fd);
			return parse_error(p, efile, from_line,
			                   "include loop: '%s' is already being read", path);
		}
	}
	if (p->cfg->n_files >= CONFIG_FILES_MAX) {
		close(fd);
		return parse_error(p, efile, from_line, "more than %d config files",
		                   CONFIG_FILES_MAX);
	}
	return fd;
}

static int load_file(struct parser *p, const char *path, size_t section, const char *from_file,
                     unsigned from_line)
{
	struct stat st;
	int fd = open_checked(p, path, from_file, from_line, &st);
	if (fd < 0)
		return -1;
	char *data;
	size_t size;
	if (read_capped(fd, CONFIG_FILE_MAX, &data, &size) < 0) {
		int e = errno;
		close(fd);
		return parse_error(p, path, 0, "read error: %s", strerror(e));
	}
	close(fd);
	if (size > CONFIG_FILE_MAX || p->total_bytes + size > CONFIG_TOTAL_MAX) {
		free(data);
		return parse_error(p, path, 0, "file too large (more than %d bytes%s)",
		                   size > CONFIG_FILE_MAX ? CONFIG_FILE_MAX : CONFIG_TOTAL_MAX,
		                   size > CONFIG_FILE_MAX ? "" : " in all files together");
	}
	p->total_bytes += size;
	p->stack[p->depth].dev = st.st_dev;
	p->stack[p->depth].ino = st.st_ino;
	p->depth++;
	int ret = parse_text(p, register_file(p->cfg, path), data, size, section);
	p->depth--;
	free(data);
	return ret;
}

int config_parse(struct config *cfg, const char *name, const void *data, size_t size,
                 char **error_r)
{
	struct parser p = {.cfg = cfg};
	int ret;
	if (data == NULL) {
		ret = load_file(&p, name, 0, NULL, 0);
	} else if (size > CONFIG_FILE_MAX) {
		ret = parse_error(&p, name, 0, "file too large (more than %d bytes)",
		                  CONFIG_FILE_MAX);
	} else {
		/* In-memory text has no inode; it still counts as one level of nesting. */
		p.stack[0].dev = (dev_t)-1;
		p.stack[0].ino = (ino_t)-1;
		p.depth = 1;
		p.total_bytes = size;
		ret = parse_text(&p, register_file(cfg, name), data, size, 0);
	}
	if (ret < 0)
		*error_r = p.error;
	return ret;
}
