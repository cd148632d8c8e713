/*
 * Fuzz target: the auth-client and auth-userdb protocol parsers (auth_session,
 * userdb_session) and the passwd-file parser, fed arbitrary bytes. The first byte picks
 * the parser and where the input is split into two reads. Sessions run against a real
 * passwd-file and libsasl2; the loop runs briefly after each input so SASL steps finish.
 */
// links: authd_lib
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth_session.h"
#include "authd.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "passdb_file.h"
#include "userdb_session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static uv_loop_t loop;
static struct authd authd;
static size_t written;

static void on_write(void *context, const char *d, size_t len)
{
	(void)context;
	(void)d;
	written += len;
}

static void on_close(void *context)
{
	(void)context;
}

static const struct auth_session_io io = {on_write, on_close};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char dir[] = "/tmp/tern-fuzz-auth.XXXXXX";
	char path[128];
	struct authd_settings s = {0};
	char *error = NULL;
	(void)argc;
	(void)argv;

	log_init("authd", LOG_TARGET_STDERR);
	if (mkdtemp(dir) == NULL)
		abort();
	snprintf(path, sizeof(path), "%s/passwd", dir);
	FILE *f = fopen(path, "w");
	if (f == NULL)
		abort();
	fputs("alice@example.test:{PLAIN}alicepw::::::userdb_quota_bytes=10\n", f);
	fclose(f);
	char **mechs = xcalloc(5, sizeof(*mechs));
	mechs[0] = xstrdup("PLAIN");
	mechs[1] = xstrdup("LOGIN");
	mechs[2] = xstrdup("CRAM-MD5");
	mechs[3] = xstrdup("SCRAM-SHA-256");
	s.passwd_file = xstrdup(path);
	s.mail_root = xstrdup("/srv/mail");
	s.default_domain = xstrdup("example.test");
	s.username_lowercase = true;
	s.default_scheme = xstrdup("PLAIN");
	s.mechanisms = (const char *const *)mechs;
	s.n_mechanisms = 4;
	s.request_timeout_ms = 1000;
	s.max_requests_per_conn = 8;
	uv_loop_init(&loop);
	if (authd_init(&authd, &loop, &s, &error) < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf in;

	if (size == 0)
		return 0;
	unsigned mode = data[0] % 3;
	size_t split = size > 1 ? data[0] % size : 0;
	data++;
	size--;
	if (split > size)
		split = size;
	if (mode == 2) {
		struct passdb *db = passdb_parse(&authd.set, (const char *)data, size, "fuzz");
		for (size_t i = 0; i < db->n_users; i++) {
			if (passdb_lookup(db, db->users[i].name) != &db->users[i])
				abort();
		}
		passdb_unref(&db);
		return 0;
	}
	buf_init(&in, 1 << 20);
	if (mode == 0) {
		struct auth_session *s = auth_session_new(&authd, &io, NULL);
		buf_append(&in, data, split);
		auth_session_feed(s, &in);
		buf_append(&in, data + split, size - split);
		auth_session_feed(s, &in);
		for (int i = 0; i < 3; i++)
			uv_run(&loop, UV_RUN_NOWAIT);
		auth_session_free(&s);
		/* Let orphaned SASL steps finish: nothing may run in the thread pool when
		 * the process exits. The loop has no other handles, so this returns. */
		uv_run(&loop, UV_RUN_DEFAULT);
	} else {
		struct userdb_session *s = userdb_session_new(&authd, &io, NULL);
		buf_append(&in, data, split);
		userdb_session_feed(s, &in);
		buf_append(&in, data + split, size - split);
		userdb_session_feed(s, &in);
		userdb_session_free(&s);
	}
	uv_run(&loop, UV_RUN_NOWAIT);
	buf_free(&in);
	return 0;
}
