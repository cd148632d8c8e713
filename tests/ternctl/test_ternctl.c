/*
 * ternctl's dispatcher and `config` command, driven through ternctl_main() with memory
 * streams: output, exit codes (sysexits.h) and where the config path comes from.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sysexits.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/xalloc.h"
#include "commands.h"
#include "config/config.h"
#include "config/config_keys.h"

struct run {
	int code;
	char *out;
	char *err;
};

static struct run run_argv(int argc, char **argv)
{
	struct run r = {0};
	size_t out_len = 0, err_len = 0;
	FILE *out = open_memstream(&r.out, &out_len);
	FILE *err = open_memstream(&r.err, &err_len);
	assert_non_null(out);
	assert_non_null(err);
	r.code = ternctl_main(argc, argv, out, err);
	assert_int_equal(fclose(out), 0);
	assert_int_equal(fclose(err), 0);
	return r;
}

/* Runs ternctl with the NULL-terminated arguments after "ternctl". */
static struct run run(const char *arg, ...)
{
	char *argv[16];
	int argc = 0;
	argv[argc++] = "ternctl";
	va_list ap;
	va_start(ap, arg);
	for (const char *a = arg; a != NULL; a = va_arg(ap, const char *)) {
		assert_true(argc < 15);
		argv[argc++] = (char *)a;
	}
	va_end(ap);
	argv[argc] = NULL;
	return run_argv(argc, argv);
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
}

struct files {
	char dir[64];
	char *good;
	char *broken;
	char *other;
};

static int setup_files(void **state)
{
	struct files *f = xcalloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/ternctl-test-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	f->good = xasprintf("%s/good.conf", f->dir);
	f->broken = xasprintf("%s/broken.conf", f->dir);
	f->other = xasprintf("%s/other.conf", f->dir);
	static const struct {
		size_t off;
		const char *text;
	} files[] = {
	    {offsetof(struct files, good), "run_dir = /tmp/tern-run\nlog_debug = yes\n"
	                                   "shutdown_timeout = 30000ms\n"},
	    {offsetof(struct files, broken), "log_debug = yes\nbogus = 1\n"},
	    {offsetof(struct files, other), "run_dir = /tmp/other\n"},
	};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		const char *path = *(char **)((char *)f + files[i].off);
		FILE *fp = fopen(path, "w");
		if (fp == NULL || fputs(files[i].text, fp) < 0 || fclose(fp) != 0)
			return -1;
	}
	unsetenv("TERN_CONF");
	*state = f;
	return 0;
}

static int teardown_files(void **state)
{
	struct files *f = *state;
	unlink(f->good);
	unlink(f->broken);
	unlink(f->other);
	rmdir(f->dir);
	free(f->good);
	free(f->broken);
	free(f->other);
	free(f);
	unsetenv("TERN_CONF");
	return 0;
}

static void test_help(void **state)
{
	(void)state;
	struct run r = run("help", NULL);
	assert_int_equal(r.code, EX_OK);
	assert_non_null(strstr(r.out, "usage: ternctl [-c FILE] COMMAND [ARGS...]\n"));
	/* Every row of the table is listed. */
	for (size_t i = 0; i < ternctl_n_commands; i++) {
		assert_non_null(strstr(r.out, ternctl_commands[i].name));
		assert_non_null(strstr(r.out, ternctl_commands[i].help));
	}
	assert_string_equal(r.err, "");
	run_free(&r);

	r = run("-h", NULL);
	assert_int_equal(r.code, EX_OK);
	assert_non_null(strstr(r.out, "commands:\n"));
	run_free(&r);

	r = run("help", "config", NULL);
	assert_int_equal(r.code, EX_OK);
	assert_true(strncmp(r.out, "usage: ternctl [-c FILE] config [-n", 35) == 0);
	run_free(&r);

	r = run("help", "nope", NULL);
	assert_int_equal(r.code, EX_USAGE);
	assert_string_equal(r.err, "ternctl: unknown command 'nope' (see 'ternctl help')\n");
	run_free(&r);
}

static void test_usage_errors(void **state)
{
	(void)state;
	static const struct {
		const char *args[4];
		const char *err;
	} cases[] = {
	    {{NULL}, "usage: ternctl"},
	    {{"frobnicate", NULL}, "ternctl: unknown command 'frobnicate'"},
	    {{"-x", "config", NULL}, "ternctl: unknown option -x"},
	    {{"-c", NULL}, "ternctl: option -c needs a file name"},
	    {{"-c", "/x", NULL}, "usage: ternctl"},
	    {{"config", "-q", NULL}, "ternctl: config: unknown option"},
	    {{"config", "-n", "--doc", NULL}, "do not go together"},
	    {{"config", "-n", "run_dir", NULL}, "do not go together"},
	    {{"config", "-h", NULL}, "-h needs at least one KEY"},
	    {{"config", "nokey", NULL}, "ternctl: config: unknown key 'nokey'\n"},
	    {{"config", "smtpd.run_dir", NULL}, "unknown key 'smtpd.run_dir' (try run_dir)\n"},
	    {{"config", "nosection.x", NULL}, "unknown key 'nosection.x'\n"},
	    {{"help", "a", "b", NULL}, "usage: ternctl [-c FILE] help"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *argv[6] = {"ternctl"};
		int argc = 1;
		for (int j = 0; cases[i].args[j] != NULL; j++)
			argv[argc++] = (char *)cases[i].args[j];
		argv[argc] = NULL;
		struct run r = run_argv(argc, argv);
		if (r.code != EX_USAGE || strstr(r.err, cases[i].err) == NULL) {
			print_error("case %zu: exit %d, err '%s', want 64 and '%s'\n", i, r.code,
			            r.err, cases[i].err);
			fail();
		}
		assert_string_equal(r.out, "");
		run_free(&r);
	}
}

static void test_config_dump(void **state)
{
	struct files *f = *state;
	struct run r = run("-c", f->good, "config", NULL);
	assert_int_equal(r.code, EX_OK);
	assert_string_equal(r.err, "");
	/* The full dump is a config file with the same values. */
	struct config *cfg = NULL, *again = NULL;
	char *error = NULL;
	assert_int_equal(config_load(f->good, &cfg, &error), 0);
	assert_int_equal(config_load_string("dump", r.out, &again, &error), 0);
	for (size_t s = 0; s < config_n_sections; s++) {
		const struct cfg_section *sec = config_sections[s];
		for (size_t k = 0; k < sec->n_keys; k++)
			assert_string_equal(config_str(cfg, sec->name, sec->keys[k].name),
			                    config_str(again, sec->name, sec->keys[k].name));
	}
	assert_true(config_bool(again, "global", "log_debug"));
	assert_int_equal(config_time_ms(again, "global", "shutdown_timeout"), 30000);
	assert_non_null(strstr(r.out, "\nrun_dir = /tmp/tern-run\n"));
	assert_non_null(strstr(r.out, "\nshutdown_timeout = 30s\n"));
	config_free(&cfg);
	config_free(&again);
	run_free(&r);

	r = run("-c", f->good, "config", "-n", NULL);
	assert_int_equal(r.code, EX_OK);
	assert_string_equal(r.out, "run_dir = /tmp/tern-run\nlog_debug = yes\n"
	                           "shutdown_timeout = 30s\n");
	run_free(&r);

	r = run("-c", f->good, "config", "--doc", NULL);
	assert_int_equal(r.code, EX_OK);
	assert_non_null(strstr(r.out, "\n# log debug lines\n# boolean, default: no\n"
	                              "log_debug = yes\n"));
	run_free(&r);

	r = run("-c", f->good, "config", "run_dir", "global.shutdown_timeout", "log_debug", NULL);
	assert_int_equal(r.code, EX_OK);
	assert_string_equal(r.out, "run_dir = /tmp/tern-run\nglobal.shutdown_timeout = 30s\n"
	                           "log_debug = yes\n");
	run_free(&r);

	r = run("-c", f->good, "config", "-h", "run_dir", "log_debug", NULL);
	assert_int_equal(r.code, EX_OK);
	assert_string_equal(r.out, "/tmp/tern-run\nyes\n");
	run_free(&r);
}

static void test_config_errors(void **state)
{
	struct files *f = *state;
	struct run r = run("-c", f->broken, "config", NULL);
	assert_int_equal(r.code, EX_CONFIG);
	assert_string_equal(r.out, "");
	char *want = xasprintf("ternctl: %s:2: unknown key 'bogus' in [global]\n", f->broken);
	assert_string_equal(r.err, want);
	free(want);
	run_free(&r);

	/* A key name is checked before the file, so a typo is a usage error. */
	r = run("-c", f->broken, "config", "bogus", NULL);
	assert_int_equal(r.code, EX_USAGE);
	run_free(&r);
	r = run("-c", f->broken, "config", "-h", "run_dir", NULL);
	assert_int_equal(r.code, EX_CONFIG);
	run_free(&r);

	char *missing = xasprintf("%s/missing.conf", f->dir);
	r = run("-c", missing, "config", "-n", NULL);
	assert_int_equal(r.code, EX_CONFIG);
	want = xasprintf("ternctl: %s: cannot open: No such file or directory\n", missing);
	assert_string_equal(r.err, want);
	free(want);
	free(missing);
	run_free(&r);
}

static void test_config_path_precedence(void **state)
{
	struct files *f = *state;
	/* $TERN_CONF is used without -c ... */
	assert_int_equal(setenv("TERN_CONF", f->other, 1), 0);
	struct run r = run("config", "-h", "run_dir", NULL);
	assert_int_equal(r.code, EX_OK);
	assert_string_equal(r.out, "/tmp/other\n");
	run_free(&r);
	/* ... and -c overrides it. */
	r = run("-c", f->good, "config", "-h", "run_dir", NULL);
	assert_int_equal(r.code, EX_OK);
	assert_string_equal(r.out, "/tmp/tern-run\n");
	run_free(&r);
	/* Without either, the default path. */
	assert_int_equal(unsetenv("TERN_CONF"), 0);
	r = run("config", "-n", NULL);
	if (access(TERNCTL_DEFAULT_CONFIG, F_OK) != 0) {
		assert_int_equal(r.code, EX_CONFIG);
		assert_string_equal(r.err, "ternctl: " TERNCTL_DEFAULT_CONFIG
		                           ": cannot open: No such file or directory\n");
	}
	run_free(&r);
	/* An empty $TERN_CONF counts as unset. */
	assert_int_equal(setenv("TERN_CONF", "", 1), 0);
	r = run("config", "-n", NULL);
	if (access(TERNCTL_DEFAULT_CONFIG, F_OK) != 0)
		assert_non_null(strstr(r.err, TERNCTL_DEFAULT_CONFIG));
	run_free(&r);
}

static void test_write_error(void **state)
{
	struct files *f = *state;
	FILE *full = fopen("/dev/full", "w");
	if (full == NULL)
		skip();
	char *err = NULL;
	size_t err_len = 0;
	FILE *errf = open_memstream(&err, &err_len);
	char *argv[] = {"ternctl", "-c", f->good, "config", NULL};
	int code = ternctl_main(4, argv, full, errf);
	fclose(full);
	fclose(errf);
	assert_int_equal(code, EX_IOERR);
	assert_non_null(strstr(err, "ternctl: write error: "));
	free(err);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_files, teardown_files)
	const struct CMUnitTest tests[] = {
	    T(test_help),          T(test_usage_errors),           T(test_config_dump),
	    T(test_config_errors), T(test_config_path_precedence), T(test_write_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
