/*
 * Helpers for authd unit tests: a temporary passwd-file, settings built without a config
 * file, a fake transport that records what a session writes, and a bounded loop runner.
 * Included by one test file each (static functions).
 */
#ifndef TERN_TESTS_AUTHD_TEST_UTIL_H
#define TERN_TESTS_AUTHD_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "authd.h"
#include "base/buf.h"
#include "base/xalloc.h"

/* "s3cret pass" hashed by doveadm pw (see test_password_scheme.c). */
#define VEC_SHA512                                                                                 \
	"{SHA512-CRYPT}$6$WxyRe4xjBnjCdaLu$amWAVzyyDlHMuGCsGUxpdjMcnLfYNog6He6AGgRYtQ8/"           \
	"8K3NVjiPWjFnPM9unJf5aOjdehIktyeGMSjtqWL421"
#define VEC_SCRAM                                                                                  \
	"{SCRAM-SHA-256}4096,aIODPvkrYJ2o7p1Cbw6NfA==,stIpC04Yu5FqaaQI60yoyvQF/HYWWXhhQPQrZD+"     \
	"k2Y0=,D5twtdJTXHxHkaPDJ6V+NoCwfflv0WTni6jKcXDIy0s="

struct test_env {
	char dir[64];
	char passwd[128];
	uv_loop_t loop;
	struct authd authd;
};

static inline uint64_t test_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline void test_write_file(const char *path, const char *text)
{
	char tmp[160];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		abort();
	if (rename(tmp, path) != 0)
		abort();
}

static inline void test_settings(struct authd_settings *s, const char *passwd_file,
                                 uint64_t delay_ms, uint64_t delay_max_ms)
{
	static const char *const mechs[] = {"PLAIN", "LOGIN", "CRAM-MD5", "SCRAM-SHA-256"};
	char **m = xcalloc(5, sizeof(*m));

	memset(s, 0, sizeof(*s));
	for (int i = 0; i < 4; i++)
		m[i] = xstrdup(mechs[i]);
	s->passwd_file = xstrdup(passwd_file);
	s->mail_root = xstrdup("/var/mail/tern");
	s->default_domain = xstrdup("example.test");
	s->username_lowercase = true;
	s->default_scheme = xstrdup("SHA512-CRYPT");
	s->mechanisms = (const char *const *)m;
	s->n_mechanisms = 4;
	s->failure_delay_ms = delay_ms;
	s->failure_delay_max_ms = delay_max_ms;
	s->request_timeout_ms = 60000;
	s->max_requests_per_conn = 16;
}

static inline void test_env_init(struct test_env *e, const char *passwd_text, uint64_t delay_ms,
                                 uint64_t delay_max_ms)
{
	struct authd_settings s;
	char *error = NULL;

	snprintf(e->dir, sizeof(e->dir), "/tmp/tern-authd-test.XXXXXX");
	if (mkdtemp(e->dir) == NULL)
		abort();
	snprintf(e->passwd, sizeof(e->passwd), "%s/passwd", e->dir);
	test_write_file(e->passwd, passwd_text);
	uv_loop_init(&e->loop);
	test_settings(&s, e->passwd, delay_ms, delay_max_ms);
	if (authd_init(&e->authd, &e->loop, &s, &error) < 0) {
		fprintf(stderr, "authd_init: %s\n", error);
		abort();
	}
}

static inline void test_env_deinit(struct test_env *e)
{
	/* Let closing handles finish, bounded. */
	for (int i = 0; i < 100 && uv_run(&e->loop, UV_RUN_NOWAIT) != 0; i++)
		usleep(10000);
	authd_deinit(&e->authd);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	uv_loop_close(&e->loop);
	unlink(e->passwd);
	rmdir(e->dir);
}

/* A fake transport: everything written is appended to out. */
struct fake_io {
	struct buf out;
	int closed;
};

static inline void fake_write(void *context, const char *data, size_t len)
{
	struct fake_io *io = context;
	buf_append(&io->out, data, len);
}

static inline void fake_close(void *context)
{
	((struct fake_io *)context)->closed = 1;
}

static const struct auth_session_io fake_io_ops = {fake_write, fake_close};

/* Runs the loop until out contains needle or timeout_ms passed. Returns 1 when found. */
static inline int run_until(uv_loop_t *loop, const struct buf *out, const char *needle,
                            uint64_t timeout_ms)
{
	uint64_t end = test_now_ms() + timeout_ms;

	while (strstr(buf_cstr(out), needle) == NULL) {
		if (test_now_ms() > end)
			return 0;
		uv_run(loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	return 1;
}

#endif
