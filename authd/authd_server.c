/*
 * Binding authd's two Unix sockets and gluing conn callbacks to the transport-agnostic
 * auth and userdb sessions.
 */
#include "authd_server.h"

#include <errno.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth_proto.h"
#include "auth_session.h"
#include "authd.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "config/config.h"
#include "net/conn.h"
#include "net/listener.h"
#include "userdb_session.h"

#define MAX_ALLOWED_UIDS 64

enum socket_kind {
	SOCKET_AUTH,
	SOCKET_USERDB,
};

struct server_conn {
	struct server_conn *prev, *next;
	struct conn *conn;
	enum socket_kind kind;
	struct auth_session *auth;
	struct userdb_session *userdb;
};

static struct {
	struct authd authd;
	bool inited;
	struct listener *auth_listener, *userdb_listener;
	enum socket_kind auth_kind, userdb_kind;
	uid_t allowed_uids[MAX_ALLOWED_UIDS];
	size_t n_allowed_uids;
	struct server_conn *conns;
} server;

static void io_write(void *context, const char *data, size_t len)
{
	struct server_conn *sc = context;
	(void)conn_write(sc->conn, data, len);
}

static void io_close(void *context)
{
	struct server_conn *sc = context;
	conn_close(sc->conn);
}

static const struct auth_session_io conn_io = {io_write, io_close};

static bool peer_allowed(struct conn *c)
{
	uid_t uid;
	gid_t gid;
	pid_t pid;

	if (conn_peer_cred(c, &uid, &gid, &pid) < 0)
		return false;
	if (uid == 0 || uid == geteuid())
		return true;
	for (size_t i = 0; i < server.n_allowed_uids; i++) {
		if (server.allowed_uids[i] == uid)
			return true;
	}
	log_warn("auth-userdb: refused peer uid=%ld pid=%ld (not in userdb_allowed_users)",
	         (long)uid, (long)pid);
	return false;
}

static void on_open(struct conn *c)
{
	enum socket_kind kind = *(enum socket_kind *)listener_ops_data(c);

	if (kind == SOCKET_USERDB && !peer_allowed(c)) {
		conn_abort(c);
		return;
	}
	struct server_conn *sc = xcalloc(1, sizeof(*sc));
	sc->conn = c;
	sc->kind = kind;
	sc->next = server.conns;
	if (sc->next != NULL)
		sc->next->prev = sc;
	server.conns = sc;
	conn_set_data(c, sc);
	if (kind == SOCKET_AUTH)
		sc->auth = auth_session_new(&server.authd, &conn_io, sc);
	else
		sc->userdb = userdb_session_new(&server.authd, &conn_io, sc);
}

static void on_data(struct conn *c, struct buf *in)
{
	struct server_conn *sc = conn_data(c);

	if (sc == NULL) {
		buf_reset(in);
		return;
	}
	if (sc->auth != NULL)
		auth_session_feed(sc->auth, in);
	else
		userdb_session_feed(sc->userdb, in);
}

static void on_close(struct conn *c)
{
	struct server_conn *sc = conn_data(c);

	if (sc == NULL)
		return;
	auth_session_free(&sc->auth);
	userdb_session_free(&sc->userdb);
	if (sc->prev != NULL)
		sc->prev->next = sc->next;
	else
		server.conns = sc->next;
	if (sc->next != NULL)
		sc->next->prev = sc->prev;
	free(sc);
}

static const struct conn_ops server_ops = {
    .on_open = on_open,
    .on_data = on_data,
    .on_close = on_close,
};

static void resolve_allowed_users(const struct config *cfg)
{
	size_t n;
	const char *const *users = config_list(cfg, "authd", "userdb_allowed_users", &n);

	server.n_allowed_uids = 0;
	for (size_t i = 0; i < n && server.n_allowed_uids < MAX_ALLOWED_UIDS; i++) {
		char *end;
		errno = 0;
		unsigned long v = strtoul(users[i], &end, 10);
		if (users[i][0] >= '0' && users[i][0] <= '9' && *end == '\0' && errno == 0) {
			server.allowed_uids[server.n_allowed_uids++] = (uid_t)v;
			continue;
		}
		struct passwd *pw = getpwnam(users[i]);
		if (pw == NULL) {
			log_debug("userdb_allowed_users: no such user %s; skipped", users[i]);
			continue;
		}
		server.allowed_uids[server.n_allowed_uids++] = pw->pw_uid;
	}
}

static struct listener *start_listener(uv_loop_t *loop, const char *name, const char *path,
                                       int mode, enum socket_kind *kind, char **error_r)
{
	char *address = xasprintf("unix:%s", path);
	struct listener_config lc = {
	    .name = name,
	    .address = address,
	    .tls_mode = LISTENER_TLS_NONE,
	    .unix_mode = (mode_t)mode,
	    .limits = {.max_input = 2 * AUTH_PROTO_MAX_LINE + 2, .max_output = 4u << 20},
	    .ops = &server_ops,
	    .ops_data = kind,
	};
	struct listener *l = listener_start(loop, &lc, error_r);
	free(address);
	return l;
}

int authd_server_setup(uv_loop_t *loop, const struct config *cfg, char **error_r)
{
	struct authd_settings set;

	if (authd_settings_load(cfg, &set, error_r) < 0)
		return -1;
	if (authd_init(&server.authd, loop, &set, error_r) < 0)
		return -1;
	server.inited = true;
	resolve_allowed_users(cfg);
	server.auth_kind = SOCKET_AUTH;
	server.userdb_kind = SOCKET_USERDB;
	server.auth_listener = start_listener(loop, "auth", config_str(cfg, "authd", "auth_socket"),
	                                      (int)config_int(cfg, "authd", "auth_socket_mode"),
	                                      &server.auth_kind, error_r);
	if (server.auth_listener == NULL)
		return -1;
	server.userdb_listener = start_listener(
	    loop, "auth-userdb", config_str(cfg, "authd", "userdb_socket"),
	    (int)config_int(cfg, "authd", "userdb_socket_mode"), &server.userdb_kind, error_r);
	if (server.userdb_listener == NULL)
		return -1;
	log_info("listening on %s and %s", config_str(cfg, "authd", "auth_socket"),
	         config_str(cfg, "authd", "userdb_socket"));
	return 0;
}

int authd_server_reload(const struct config *cfg, char **error_r)
{
	(void)error_r;
	resolve_allowed_users(cfg);
	log_info("reload: the passwd-file is re-read when it changes; other [authd] settings "
	         "take effect on restart");
	return 0;
}

void authd_server_shutdown(void)
{
	if (server.auth_listener != NULL)
		listener_free(&server.auth_listener);
	if (server.userdb_listener != NULL)
		listener_free(&server.userdb_listener);
	for (struct server_conn *sc = server.conns; sc != NULL; sc = sc->next)
		conn_close(sc->conn);
}

void authd_server_free(void)
{
	if (server.inited)
		authd_deinit(&server.authd);
	server.inited = false;
}
