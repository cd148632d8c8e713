/* The auth-userdb protocol: USER lookups in the passwd-file for deliverd and ternctl. */
#include "userdb_session.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth_proto.h"
#include "authd.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "passdb_file.h"

struct userdb_session {
	struct authd *authd;
	const struct auth_session_io *io;
	void *io_context;
	bool got_version;
	bool failed;
};

static void userdb_error(struct userdb_session *s, const char *what)
{
	if (s->failed)
		return;
	log_warn("auth-userdb: %s; disconnecting", what);
	s->failed = true;
	s->io->close(s->io_context);
}

static void userdb_lookup(struct userdb_session *s, unsigned id, const char *name)
{
	struct authd *a = s->authd;
	struct buf b;

	buf_init(&b, 0);
	char *canon = authd_user_canonicalize(&a->set, name);
	passdb_file_refresh(a->passdb);
	struct passdb *db = passdb_file_get(a->passdb);
	const struct passdb_user *u = canon != NULL ? passdb_lookup(db, canon) : NULL;
	char *home = u != NULL ? authd_user_home(&a->set, u->name) : NULL;
	if (u == NULL || home == NULL) {
		buf_printf(&b, "NOTFOUND\t%u\n", id);
	} else {
		buf_printf(&b, "USER\t%u\t", id);
		auth_tab_escape(&b, u->name);
		buf_append_str(&b, "\thome=");
		auth_tab_escape(&b, home);
		buf_append_str(&b, "\tmail=maildir:");
		auth_tab_escape(&b, home);
		if (u->uid[0] != '\0') {
			buf_append_str(&b, "\tuid=");
			auth_tab_escape(&b, u->uid);
		}
		if (u->gid[0] != '\0') {
			buf_append_str(&b, "\tgid=");
			auth_tab_escape(&b, u->gid);
		}
		if (u->quota_bytes != 0)
			buf_printf(&b, "\tquota_bytes=%" PRIu64, u->quota_bytes);
		if (u->quota_messages != 0)
			buf_printf(&b, "\tquota_messages=%" PRIu64, u->quota_messages);
		buf_append_char(&b, '\n');
	}
	if (!s->failed)
		s->io->write(s->io_context, b.data, b.len);
	free(home);
	free(canon);
	passdb_unref(&db);
	buf_free(&b);
}

static void userdb_line(struct userdb_session *s, char *line, size_t len)
{
	char *f[AUTH_PROTO_MAX_FIELDS];
	unsigned id;

	if (strlen(line) != len) {
		userdb_error(s, "NUL byte in line");
		return;
	}
	int n = auth_split_fields(line, f, AUTH_PROTO_MAX_FIELDS);
	if (n < 1) {
		userdb_error(s, "too many fields");
		return;
	}
	if (!s->got_version) {
		if (strcmp(f[0], "VERSION") != 0 || n < 3 || strcmp(f[1], "1") != 0) {
			userdb_error(s, "first line is not VERSION 1");
			return;
		}
		s->got_version = true;
		return;
	}
	if (strcmp(f[0], "USER") != 0) {
		userdb_error(s, "unknown command");
		return;
	}
	if (n < 3 || auth_parse_uint(f[1], &id) < 0 || id == 0) {
		userdb_error(s, "invalid USER line");
		return;
	}
	for (int i = 2; i < n; i++) {
		if (auth_tab_unescape(f[i]) < 0) {
			userdb_error(s, "invalid escaping in USER");
			return;
		}
	}
	userdb_lookup(s, id, f[2]);
}

void userdb_session_feed(struct userdb_session *s, struct buf *in)
{
	while (!s->failed && in->len > 0) {
		char *nl = memchr(in->data, '\n', in->len);
		size_t len = nl != NULL ? (size_t)(nl - in->data) : in->len;
		if (len > AUTH_PROTO_MAX_LINE) {
			userdb_error(s, "line too long");
			break;
		}
		if (nl == NULL)
			break;
		*nl = '\0';
		userdb_line(s, in->data, len);
		buf_consume(in, len + 1);
	}
	if (s->failed)
		buf_reset(in);
}

struct userdb_session *userdb_session_new(struct authd *a, const struct auth_session_io *io,
                                          void *io_context)
{
	struct userdb_session *s = xcalloc(1, sizeof(*s));
	char hello[64];

	s->authd = a;
	s->io = io;
	s->io_context = io_context;
	int n = snprintf(hello, sizeof(hello), "VERSION\t1\t0\nSPID\t%ld\n", (long)getpid());
	io->write(io_context, hello, (size_t)n);
	return s;
}

void userdb_session_free(struct userdb_session **sp)
{
	free(*sp);
	*sp = NULL;
}
