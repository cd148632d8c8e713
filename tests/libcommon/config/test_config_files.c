/*
 * Config files on disk: reading, !include (relative, glob, missing, loops, depth), the
 * file and line named in errors inside includes, size caps, and bytes a file must not hold.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "config/config.h"
#include "test_tables.h"

struct tmpdir {
	char path[64];
	char *files[256];
	size_t n_files;
	char *dirs[8];
	size_t n_dirs;
};

static int setup_dir(void **state)
{
	struct tmpdir *d = xcalloc(1, sizeof(*d));
	/* The brackets make sure directory names are not taken as glob patterns. */
	snprintf(d->path, sizeof(d->path), "/tmp/tern-cfg[1]-XXXXXX");
	if (mkdtemp(d->path) == NULL)
		return -1;
	*state = d;
	return 0;
}

static int teardown_dir(void **state)
{
	struct tmpdir *d = *state;
	for (size_t i = 0; i < d->n_files; i++) {
		unlink(d->files[i]);
		free(d->files[i]);
	}
	for (size_t i = d->n_dirs; i > 0; i--) {
		rmdir(d->dirs[i - 1]);
		free(d->dirs[i - 1]);
	}
	rmdir(d->path);
	free(d);
	return 0;
}

static char *path_in(struct tmpdir *d, const char *name)
{
	return xasprintf("%s/%s", d->path, name);
}

static void make_dir(struct tmpdir *d, const char *name)
{
	char *p = path_in(d, name);
	assert_int_equal(mkdir(p, 0700), 0);
	assert_true(d->n_dirs < 8);
	d->dirs[d->n_dirs++] = p;
}

/* Writes len bytes of data to d/name and returns the full path (owned by d). */
static const char *write_data(struct tmpdir *d, const char *name, const void *data, size_t len)
{
	char *p = path_in(d, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
	for (size_t i = 0; i < d->n_files; i++) {
		if (strcmp(d->files[i], p) == 0) {
			free(p);
			return d->files[i];
		}
	}
	assert_true(d->n_files < 256);
	d->files[d->n_files++] = p;
	return p;
}

static const char *write_file(struct tmpdir *d, const char *name, const char *text)
{
	return write_data(d, name, text, strlen(text));
}

static int load_path(const char *path, struct config **cfg_r, char **error_r)
{
	return config_load_tables(t_sections, T_N_SECTIONS, path, NULL, 0, cfg_r, error_r);
}

static struct config *load_path_ok(const char *path)
{
	struct config *cfg = NULL;
	char *error = NULL;
	if (load_path(path, &cfg, &error) != 0) {
		print_error("load failed: %s\n", error);
		fail();
	}
	return cfg;
}

/* Loads path, which must fail with exactly "<dir>/<expected>". */
static void assert_load_error(struct tmpdir *d, const char *path, const char *expected)
{
	struct config *cfg = NULL;
	char *error = NULL;
	assert_int_equal(load_path(path, &cfg, &error), -1);
	assert_null(cfg);
	char *want = xasprintf("%s/%s", d->path, expected);
	assert_string_equal(error, want);
	free(want);
	free(error);
}

static void test_relative_include(void **state)
{
	struct tmpdir *d = *state;
	make_dir(d, "sub");
	write_file(d, "sub/b.conf", "flag = yes\n");
	write_file(d, "sub/a.conf", "!include b.conf\n");
	const char *main =
	    write_file(d, "main.conf", "count = 2\n!include sub/a.conf\nmode = 0700\n");
	struct config *cfg = load_path_ok(main);
	assert_int_equal(config_int(cfg, "global", "count"), 2);
	assert_true(config_bool(cfg, "global", "flag"));
	assert_int_equal(config_int(cfg, "global", "mode"), 0700);
	assert_string_equal(config_path(cfg), main);
	config_free(&cfg);
}

static void test_include_absolute_from_string(void **state)
{
	struct tmpdir *d = *state;
	const char *inc = write_file(d, "abs.conf", "count = 77\n");
	/* The path has brackets, so written as it is it would be a glob pattern. */
	struct buf escaped;
	buf_init(&escaped, 0);
	for (const char *c = inc; *c != '\0'; c++) {
		if (*c == '[' || *c == ']')
			assert_int_equal(buf_append_char(&escaped, '\\'), 0);
		assert_int_equal(buf_append_char(&escaped, *c), 0);
	}
	char *text = xasprintf("!include %s\n", buf_cstr(&escaped));
	buf_free(&escaped);
	struct config *cfg = NULL;
	char *error = NULL;
	assert_int_equal(t_load(text, &cfg, &error), 0);
	assert_int_equal(config_int(cfg, "global", "count"), 77);
	config_free(&cfg);
	free(text);
}

static void test_glob_include_sorted(void **state)
{
	struct tmpdir *d = *state;
	make_dir(d, "conf.d");
	write_file(d, "conf.d/20-b.conf", "[smtpd]\nlisten = b\n");
	write_file(d, "conf.d/10-a.conf", "count = 5\n");
	write_file(d, "conf.d/ignored.txt", "this is not config\n");
	const char *main = write_file(d, "main.conf", "!include conf.d/*.conf\nflag = on\n");
	struct config *cfg = load_path_ok(main);
	assert_int_equal(config_int(cfg, "global", "count"), 5);
	assert_string_equal(config_str(cfg, "smtpd", "listen"), "b");
	/* The [smtpd] of 20-b.conf ends with that file: flag is still global. */
	assert_true(config_bool(cfg, "global", "flag"));
	config_free(&cfg);

	/* Sorted: the duplicate is reported in the later file, naming the earlier one. */
	write_file(d, "conf.d/30-c.conf", "# c\ncount = 6\n");
	char *want = xasprintf("conf.d/30-c.conf:2: duplicate key 'count' in [global] (first "
	                       "set at %s/conf.d/10-a.conf:1)",
	                       d->path);
	assert_load_error(d, main, want);
	free(want);
}

static void test_glob_matching_nothing_is_fine(void **state)
{
	struct tmpdir *d = *state;
	const char *main = write_file(d, "main.conf", "!include nothing.d/*.conf\ncount = 3\n");
	struct config *cfg = load_path_ok(main);
	assert_int_equal(config_int(cfg, "global", "count"), 3);
	config_free(&cfg);
}

static void test_include_inherits_section(void **state)
{
	struct tmpdir *d = *state;
	write_file(d, "part.conf", "listen = z\n");
	const char *main = write_file(d, "main.conf", "[smtpd]\n!include part.conf\ngreet = hi\n");
	struct config *cfg = load_path_ok(main);
	assert_string_equal(config_str(cfg, "smtpd", "listen"), "z");
	assert_string_equal(config_str(cfg, "smtpd", "greet"), "hi");
	config_free(&cfg);
}

static void test_missing_include(void **state)
{
	struct tmpdir *d = *state;
	const char *main = write_file(d, "main.conf", "count = 1\n\n!include missing.conf\n");
	char *want = xasprintf("main.conf:3: cannot open include '%s/missing.conf': No such file "
	                       "or directory",
	                       d->path);
	assert_load_error(d, main, want);
	free(want);
}

static void test_missing_file(void **state)
{
	struct tmpdir *d = *state;
	char *path = path_in(d, "none.conf");
	assert_load_error(d, path, "none.conf: cannot open: No such file or directory");
	free(path);
}

static void test_include_loop(void **state)
{
	struct tmpdir *d = *state;
	const char *self = write_file(d, "self.conf", "count = 1\n!include self.conf\n");
	char *want = xasprintf("self.conf:2: include loop: '%s' is already being read", self);
	assert_load_error(d, self, want);
	free(want);

	write_file(d, "b.conf", "# b\n\n!include a.conf\n");
	const char *a = write_file(d, "a.conf", "!include b.conf\n");
	want = xasprintf("b.conf:3: include loop: '%s' is already being read", a);
	assert_load_error(d, a, want);
	free(want);
}

static void test_include_depth(void **state)
{
	struct tmpdir *d = *state;
	/* f0 includes f1 ... includes f8: the top file and 8 nested levels load. */
	for (int i = 0; i <= 8; i++) {
		char name[32], text[64];
		snprintf(name, sizeof(name), "f%d.conf", i);
		if (i < 8)
			snprintf(text, sizeof(text), "!include f%d.conf\n", i + 1);
		else
			snprintf(text, sizeof(text), "count = 9\n");
		write_file(d, name, text);
	}
	char *f0 = path_in(d, "f0.conf");
	struct config *cfg = load_path_ok(f0);
	assert_int_equal(config_int(cfg, "global", "count"), 9);
	config_free(&cfg);
	/* One more level is refused, at the !include line that goes too deep. */
	write_file(d, "f8.conf", "# deepest\n!include f9.conf\n");
	write_file(d, "f9.conf", "count = 10\n");
	assert_load_error(d, f0, "f8.conf:2: includes nest more than 8 deep");
	free(f0);
}

static void test_line_numbers_across_includes(void **state)
{
	struct tmpdir *d = *state;
	write_file(d, "inc.conf", "# one\nitems = a,\n  b,\n  c\nsize = 10Q\n");
	const char *main = write_file(d, "main.conf", "count = 1\n!include inc.conf\nflag = x\n");
	assert_load_error(d, main,
	                  "inc.conf:5: size: '10Q' is not a size (a number of bytes with "
	                  "an optional K, M or G suffix)");
	/* After the include, lines count in the including file again. */
	write_file(d, "inc.conf", "# one\nitems = a,\n  b\n");
	assert_load_error(d, main,
	                  "main.conf:3: flag: 'x' is not a boolean (yes/no, true/false, "
	                  "on/off, 1/0)");
	/* Expansion errors name the line of the value that holds the bad reference. */
	write_file(d, "inc.conf", "\n\nb = $nope\n");
	write_file(d, "main.conf", "a = $b\n!include inc.conf\n");
	assert_load_error(d, main, "inc.conf:3: undefined name $nope");
}

static void test_include_not_regular(void **state)
{
	struct tmpdir *d = *state;
	make_dir(d, "dir.conf");
	const char *main = write_file(d, "main.conf", "!include *.conf\n");
	/* Sorted, dir.conf comes before main.conf (which would be a loop). */
	char *want = xasprintf("main.conf:1: include '%s/dir.conf' is not a regular file", d->path);
	assert_load_error(d, main, want);
	free(want);
}

static void test_file_with_nul_byte(void **state)
{
	struct tmpdir *d = *state;
	static const char text[] = "count = 1\r\nname = a\0b\r\n";
	const char *p = write_data(d, "nul.conf", text, sizeof(text) - 1);
	assert_load_error(d, p, "nul.conf:2: NUL byte in line");
}

static void test_file_size_cap(void **state)
{
	struct tmpdir *d = *state;
	size_t len = CONFIG_FILE_MAX + 1;
	char *data = xmalloc(len);
	memset(data, '#', len);
	data[len - 1] = '\n';
	for (size_t i = 1000; i < len; i += 1000)
		data[i] = '\n';
	const char *p = write_data(d, "big.conf", data, len);
	assert_load_error(d, p, "big.conf: file too large (more than 1048576 bytes)");
	/* Exactly at the cap is fine. */
	p = write_data(d, "big.conf", data, len - 1);
	struct config *cfg = load_path_ok(p);
	config_free(&cfg);
	free(data);
}

static void test_empty_file_is_defaults(void **state)
{
	struct tmpdir *d = *state;
	const char *p = write_file(d, "empty.conf", "");
	struct config *cfg = load_path_ok(p);
	assert_int_equal(config_int(cfg, "global", "count"), 10);
	assert_string_equal(config_str(cfg, "smtpd", "sock"), "/run/t/smtpd");
	config_free(&cfg);
}

static void test_total_size_cap(void **state)
{
	struct tmpdir *d = *state;
	/* Files just under the per-file cap: with main.conf, the fourth passes 4 MiB. */
	size_t len = CONFIG_FILE_MAX - 1;
	char *data = xmalloc(len);
	memset(data, '#', len);
	for (size_t i = 999; i < len; i += 1000)
		data[i] = '\n';
	make_dir(d, "big.d");
	char name[32];
	for (int i = 0; i < 5; i++) {
		snprintf(name, sizeof(name), "big.d/%d.conf", i);
		write_data(d, name, data, len);
	}
	free(data);
	const char *main = write_file(d, "main.conf", "!include big.d/*.conf\n");
	assert_load_error(d, main,
	                  "big.d/3.conf: file too large (more than 4194304 bytes in all files "
	                  "together)");
}

static void test_file_count_cap(void **state)
{
	struct tmpdir *d = *state;
	make_dir(d, "many.d");
	char name[32];
	for (int i = 0; i <= CONFIG_FILES_MAX; i++) {
		snprintf(name, sizeof(name), "many.d/%03d.conf", i);
		write_file(d, name, "# nothing\n");
	}
	const char *main = write_file(d, "main.conf", "\n!include many.d/*.conf\n");
	assert_load_error(d, main,
	                  "main.conf:2: include 'many.d/*.conf' matches more than 128 files");
	/* 128 matches, plus main.conf, is one file too many as well. */
	unlink(d->files[d->n_files - 2]);
	assert_load_error(d, main, "main.conf:2: more than 128 config files");
}

static void test_unreadable_glob_dir(void **state)
{
	struct tmpdir *d = *state;
	if (geteuid() == 0)
		skip(); /* root reads any directory */
	make_dir(d, "locked.d");
	write_file(d, "locked.d/a.conf", "count = 1\n");
	const char *main = write_file(d, "main.conf", "!include locked.d/*.conf\n");
	char *locked = path_in(d, "locked.d");
	assert_int_equal(chmod(locked, 0), 0);
	assert_load_error(d, main,
	                  "main.conf:1: cannot read include 'locked.d/*.conf': Permission "
	                  "denied");
	assert_int_equal(chmod(locked, 0700), 0);
	free(locked);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_dir, teardown_dir)
	const struct CMUnitTest tests[] = {
	    T(test_relative_include),
	    T(test_include_absolute_from_string),
	    T(test_glob_include_sorted),
	    T(test_glob_matching_nothing_is_fine),
	    T(test_include_inherits_section),
	    T(test_missing_include),
	    T(test_missing_file),
	    T(test_include_loop),
	    T(test_include_depth),
	    T(test_line_numbers_across_includes),
	    T(test_include_not_regular),
	    T(test_file_with_nul_byte),
	    T(test_file_size_cap),
	    T(test_empty_file_is_defaults),
	    T(test_total_size_cap),
	    T(test_file_count_cap),
	    T(test_unreadable_glob_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
