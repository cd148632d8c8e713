/*
 * The daemon around the sessions: config -> settings, listeners with their roles and
 * connection caps, and the glue between a struct conn and a struct smtp_session (output,
 * STARTTLS, timers, pausing input while a backend works).
 */
#include "server.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth_glue.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "config/config.h"
#include "lmtp_client.h"
#include "net/conn.h"
#include "net/listener.h"
#include "net/tls.h"
#include "policy.h"
#include "session.h"

#define MAX_LISTENERS 32

struct smtpd_listener_info {
	enum smtp_role role;
};

struct smtpd_server {
	uv_loop_t *loop;
	struct smtpd_settings set;
	char *hostname;
	struct policy policy;
	struct tls_ctx *tls;
	struct auth_client *auth;
	struct lmtp_client_config lmtp;
	char *lmtp_socket;
	char *reject_banner;
	struct listener *listeners[MAX_LISTENERS];
	size_t n_listeners;
	unsigned n_conns;
	bool shutting_down;
};

static struct smtpd_server server;
static struct smtpd_listener_info roles[3] = {
    {SMTP_ROLE_SMTP}, {SMTP_ROLE_SUBMISSION}, {SMTP_ROLE_SUBMISSIONS}};

struct smtpd_conn {
	struct conn *conn;
	struct smtp_session *session;
	enum smtp_role role;
	uv_timer_t timer;
};

static void io_write(void *ctx, const char *data, size_t len)
{
	struct smtpd_conn *g = ctx;
	conn_write(g->conn, data, len);
}

static void io_close(void *ctx)
{
	struct smtpd_conn *g = ctx;
	conn_close(g->conn);
}

static int io_starttls(void *ctx)
{
	struct smtpd_conn *g = ctx;
	return server.tls != NULL ? conn_starttls(g->conn, server.tls) : -1;
}

static bool io_tls_available(void *ctx)
{
	struct smtpd_conn *g = ctx;
	return server.tls != NULL && g->role != SMTP_ROLE_SUBMISSIONS;
}

static void io_tls_info(void *ctx, const char **version_r, const char **cipher_r)
{
	struct smtpd_conn *g = ctx;
	*version_r = conn_tls_version(g->conn);
	*cipher_r = conn_tls_cipher(g->conn);
}

static void on_timer(uv_timer_t *t)
{
	struct smtpd_conn *g = t->data;
	if (g->session != NULL)
		smtp_session_timer(g->session);
}

static void io_set_timer(void *ctx, uint64_t ms)
{
	struct smtpd_conn *g = ctx;
	/* The loop's cached time may be stale: a delay must be at least `ms` from now. */
	uv_update_time(conn_loop(g->conn));
	uv_timer_start(&g->timer, on_timer, ms, 0);
}

static void io_want_input(void *ctx, bool want)
{
	struct smtpd_conn *g = ctx;
	if (want)
		conn_resume_read(g->conn);
	else
		conn_pause_read(g->conn);
}

static const struct smtp_io conn_io = {
    io_write, io_close, io_starttls, io_tls_available, io_tls_info, io_set_timer, io_want_input,
};

static void on_open(struct conn *c)
{
	const struct smtpd_listener_info *li = listener_ops_data(c);
	struct smtpd_conn *g = xcalloc(1, sizeof(*g));
	struct smtp_client client = {
	    .ip = conn_peer_ip(c),
	    .port = conn_peer_port(c),
	    .local_ip = conn_local_ip(c),
	    .local_port = conn_local_port(c),
	    .loopback = conn_is_loopback(c),
	    .role = li->role,
	    .tls = conn_is_tls(c),
	};

	g->conn = c;
	g->role = li->role;
	uv_timer_init(conn_loop(c), &g->timer);
	g->timer.data = g;
	conn_set_data(c, g);
	server.n_conns++;
	g->session = smtp_session_new(&server.set, &client, &conn_io, g);
	smtp_session_set_delivery(g->session, &lmtp_delivery_ops, &server.lmtp);
	if (server.auth != NULL)
		smtp_session_set_auth(g->session, &auth_glue_ops, server.auth);
	smtp_session_start(g->session);
}

static void on_data(struct conn *c, struct buf *in)
{
	struct smtpd_conn *g = conn_data(c);
	smtp_session_input(g->session, in);
}

static void on_overflow(struct conn *c)
{
	/* The session is waiting for deliverd or authd and the client keeps sending: stop
	 * reading until the session asks for input again. */
	conn_pause_read(c);
}

static void on_timeout(struct conn *c)
{
	struct smtpd_conn *g = conn_data(c);
	smtp_session_timeout(g->session);
}

static void on_glue_closed(uv_handle_t *h)
{
	free(h->data);
}

static void on_close(struct conn *c)
{
	struct smtpd_conn *g = conn_data(c);

	if (g == NULL)
		return;
	smtp_session_free(&g->session);
	uv_timer_stop(&g->timer);
	uv_close((uv_handle_t *)&g->timer, on_glue_closed);
	/* The auth client outlives every session that may use it. */
	if (--server.n_conns == 0 && server.shutting_down && server.auth != NULL)
		auth_client_free(&server.auth);
}

static const struct conn_ops smtp_conn_ops = {
    .on_open = on_open,
    .on_data = on_data,
    .on_overflow = on_overflow,
    .on_timeout = on_timeout,
    .on_close = on_close,
};

static void load_settings(const struct config *cfg)
{
	struct smtpd_settings *s = &server.set;
	const char *host = config_str(cfg, "global", "hostname");
	char name[256];

	if (host[0] == '\0') {
		if (gethostname(name, sizeof(name)) < 0)
			strcpy(name, "localhost");
		name[sizeof(name) - 1] = '\0';
		host = name;
	}
	server.hostname = xstrdup(host);
	s->hostname = server.hostname;
	s->policy = &server.policy;
	s->max_line = (size_t)config_size(cfg, "smtpd", "max_line_length");
	s->max_recipients = (unsigned)config_int(cfg, "smtpd", "max_recipients");
	s->max_message_size = config_size(cfg, "smtpd", "max_message_size");
	s->max_header_size = (size_t)config_size(cfg, "smtpd", "max_header_size");
	s->max_errors = (unsigned)config_int(cfg, "smtpd", "max_errors");
	s->strict = config_bool(cfg, "smtpd", "strict_syntax");
	s->sender_login_check = config_bool(cfg, "smtpd", "sender_login_check");
	s->vrfy_enabled = config_bool(cfg, "smtpd", "vrfy");
	s->submission_tls_required = config_bool(cfg, "smtpd", "submission_tls_required");
	s->loopback_plaintext_auth = config_bool(cfg, "smtpd", "loopback_plaintext_auth");
	s->auth_failure_delay_ms = config_time_ms(cfg, "smtpd", "auth_failure_delay");
	s->auth_failure_delay_max_ms = config_time_ms(cfg, "smtpd", "auth_failure_delay_max");
	s->add_missing_headers = config_bool(cfg, "smtpd", "add_missing_headers");
}

static int start_listeners(const struct config *cfg, const char *key, int role, char **error_r)
{
	static const char *const names[] = {"smtp", "submission", "submissions"};
	size_t n;
	const char *const *addrs = config_list(cfg, "smtpd", key, &n);

	for (size_t i = 0; i < n; i++) {
		if (server.n_listeners == MAX_LISTENERS) {
			*error_r = xasprintf("%s: too many listeners", key);
			return -1;
		}
		if (role == SMTP_ROLE_SUBMISSIONS && server.tls == NULL) {
			*error_r = xasprintf("%s: implicit TLS needs tls_cert and tls_key", key);
			return -1;
		}
		struct listener_config lc = {
		    .name = names[role],
		    .address = addrs[i],
		    .tls_mode =
		        role == SMTP_ROLE_SUBMISSIONS ? LISTENER_TLS_IMPLICIT : LISTENER_TLS_NONE,
		    .tls = server.tls,
		    .max_conns = (unsigned)config_int(cfg, "smtpd", "max_connections"),
		    .max_conns_per_ip =
		        (unsigned)config_int(cfg, "smtpd", "max_connections_per_ip"),
		    .reject_banner = server.reject_banner,
		    .limits =
		        {
		            .max_input = server.set.max_line + 2 + 64 * 1024,
		            .max_output = 1024 * 1024,
		            .output_lowat = 64 * 1024,
		            .idle_ms = config_time_ms(cfg, "smtpd", "command_timeout"),
		            .session_ms = config_time_ms(cfg, "smtpd", "session_timeout"),
		        },
		    .ops = &smtp_conn_ops,
		    .ops_data = &roles[role],
		};
		char *err = NULL;
		struct listener *l = listener_start(server.loop, &lc, &err);
		if (l == NULL) {
			*error_r = xasprintf("%s %s: %s", names[role], addrs[i], err);
			free(err);
			return -1;
		}
		server.listeners[server.n_listeners++] = l;
	}
	return 0;
}

static struct tls_ctx *load_tls(const struct config *cfg, bool quiet)
{
	char *err = NULL;
	struct tls_ctx *t = tls_ctx_server_new(config_str(cfg, "global", "tls_cert"),
	                                       config_str(cfg, "global", "tls_key"), &err);
	if (t == NULL) {
		if (!quiet)
			log_warn("TLS disabled (no STARTTLS, no submissions): %s", err);
		free(err);
	}
	return t;
}

static int smtpd_setup(uv_loop_t *loop, const struct config *cfg, char **error_r)
{
	size_t n_domains, n_nets;
	const char *const *domains = config_list(cfg, "global", "domains", &n_domains);
	const char *const *nets = config_list(cfg, "global", "mynetworks", &n_nets);

	memset(&server, 0, sizeof(server));
	server.loop = loop;
	load_settings(cfg);
	if (policy_init(&server.policy, domains, n_domains, nets, n_nets, error_r) < 0)
		return -1;
	server.reject_banner =
	    xasprintf("421 4.7.0 %s Error: too many connections\r\n", server.hostname);
	server.tls = load_tls(cfg, false);
	server.lmtp_socket = xstrdup(config_str(cfg, "smtpd", "lmtp_socket"));
	server.lmtp.loop = loop;
	server.lmtp.socket_path = server.lmtp_socket;
	server.lmtp.hostname = server.hostname;
	server.lmtp.timeout_ms = config_time_ms(cfg, "smtpd", "lmtp_timeout");
	server.lmtp.max_idle = (unsigned)config_int(cfg, "smtpd", "lmtp_pool_size");
	server.lmtp.idle_ms = config_time_ms(cfg, "smtpd", "lmtp_idle_timeout");
	server.auth = auth_client_new(loop, config_str(cfg, "smtpd", "auth_socket"));
	auth_client_connect(server.auth);
	if (start_listeners(cfg, "smtp_listen", SMTP_ROLE_SMTP, error_r) < 0 ||
	    start_listeners(cfg, "submission_listen", SMTP_ROLE_SUBMISSION, error_r) < 0 ||
	    start_listeners(cfg, "submissions_listen", SMTP_ROLE_SUBMISSIONS, error_r) < 0)
		return -1;
	log_info("listening: %zu listener(s), delivery to %s", server.n_listeners,
	         server.lmtp_socket);
	return 0;
}

static int smtpd_reload(const struct config *cfg, char **error_r)
{
	(void)error_r;
	/* Certificates are reloaded; other settings take a restart. */
	struct tls_ctx *t = load_tls(cfg, false);
	if (t == NULL)
		return 0;
	for (size_t i = 0; i < server.n_listeners; i++)
		listener_set_tls(server.listeners[i], t);
	tls_ctx_unref(&server.tls);
	server.tls = t;
	return 0;
}

static void smtpd_shutdown(void)
{
	for (size_t i = 0; i < server.n_listeners; i++)
		listener_stop(server.listeners[i]);
	server.shutting_down = true;
	lmtp_client_close_idle(&server.lmtp);
	if (server.n_conns == 0 && server.auth != NULL)
		auth_client_free(&server.auth);
}

/* Ready once authd's mechanisms are known, so EHLO on submission lists AUTH. */
static bool smtpd_ready(void)
{
	return server.auth == NULL || auth_client_is_ready(server.auth);
}

const struct daemon_hooks smtpd_hooks = {
    .service = "smtpd",
    .user_key = "default_user",
    .setup = smtpd_setup,
    .reload = smtpd_reload,
    .shutdown = smtpd_shutdown,
    .ready = smtpd_ready,
};
