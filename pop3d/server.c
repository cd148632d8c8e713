/*
 * Glue between the net layer and the POP3 session: conn callbacks in, pop3_io_ops out,
 * a libuv timer for the failed-login delay, and the daemon hooks (setup, reload,
 * shutdown) that read the [pop3d] config section.
 */
#include "server.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "config/config.h"
#include "net/conn.h"
#include "net/listener.h"
#include "net/tls.h"
#include "pop3_auth.h"
#include "session.h"

struct pop3_conn {
	struct conn *conn;
	struct pop3_session *session;
	uv_timer_t *timer;
	struct pop3_conn *prev, *next;
};

static struct {
	uv_loop_t *loop;
	struct pop3_settings set;
	uint64_t idle_ms;
	struct tls_ctx *tls;
	struct pop3_auth *auth;
	struct listener **listeners;
	size_t n_listeners;
	struct pop3_conn *conns;
	bool shutting_down;
} server;

/* ---- pop3_io_ops on a conn ---- */

static int io_write(void *io, const void *data, size_t len)
{
	struct pop3_conn *pc = io;
	return conn_write(pc->conn, data, len);
}

static void io_close(void *io)
{
	struct pop3_conn *pc = io;
	conn_close(pc->conn);
}

static int io_starttls(void *io)
{
	struct pop3_conn *pc = io;
	if (server.tls == NULL)
		return -1;
	return conn_starttls(pc->conn, server.tls);
}

static void on_timer(uv_timer_t *timer)
{
	struct pop3_conn *pc = timer->data;
	if (pc != NULL && pc->session != NULL)
		pop3_session_timer(pc->session);
}

static void io_timer_start(void *io, uint64_t ms)
{
	struct pop3_conn *pc = io;
	if (pc->timer == NULL) {
		pc->timer = xcalloc(1, sizeof(*pc->timer));
		uv_timer_init(server.loop, pc->timer);
		pc->timer->data = pc;
	}
	uv_timer_start(pc->timer, on_timer, ms, 0);
}

static void io_timer_stop(void *io)
{
	struct pop3_conn *pc = io;
	if (pc->timer != NULL)
		uv_timer_stop(pc->timer);
}

struct blocking_job {
	uv_work_t req;
	void (*work)(void *arg);
	void (*done)(void *arg);
	void *arg;
};

static void on_blocking_work(uv_work_t *req)
{
	struct blocking_job *job = req->data;
	job->work(job->arg);
}

static void on_blocking_done(uv_work_t *req, int status)
{
	struct blocking_job *job = req->data;
	(void)status; /* never cancelled: done must run to release what work made */
	job->done(job->arg);
	free(job);
}

static void io_run_blocking(void *io, void (*work)(void *arg), void (*done)(void *arg), void *arg)
{
	(void)io;
	struct blocking_job *job = xcalloc(1, sizeof(*job));
	job->req.data = job;
	job->work = work;
	job->done = done;
	job->arg = arg;
	if (uv_queue_work(server.loop, &job->req, on_blocking_work, on_blocking_done) < 0) {
		/* Cannot happen with a live loop; do it here rather than lose the login. */
		work(arg);
		done(arg);
		free(job);
	}
}

static const struct pop3_io_ops conn_io = {io_write,       io_close,      io_starttls,
                                           io_timer_start, io_timer_stop, io_run_blocking};

/* ---- conn callbacks ---- */

static void on_open(struct conn *c)
{
	struct pop3_conn *pc = xcalloc(1, sizeof(*pc));
	struct pop3_settings set = server.set;
	struct pop3_conn_info info = {
	    .remote_ip = conn_peer_ip(c),
	    .local_ip = conn_local_ip(c),
	    .remote_port = conn_peer_port(c),
	    .local_port = conn_local_port(c),
	    .tls = conn_is_tls(c),
	    .loopback = conn_is_loopback(c),
	    .id = conn_id(c),
	};

	pc->conn = c;
	set.tls_available = server.tls != NULL;
	pc->session = pop3_session_new(&set, &info, &conn_io, pc, &pop3_auth_ops, server.auth);
	pc->next = server.conns;
	if (server.conns != NULL)
		server.conns->prev = pc;
	server.conns = pc;
	conn_set_data(c, pc);
	conn_set_idle_timeout(c, server.idle_ms);
	pop3_session_start(pc->session);
}

static void on_data(struct conn *c, struct buf *in)
{
	struct pop3_conn *pc = conn_data(c);
	pop3_session_input(pc->session, in);
}

static void on_drain(struct conn *c)
{
	struct pop3_conn *pc = conn_data(c);
	pop3_session_drain(pc->session);
}

static void on_timeout(struct conn *c)
{
	struct pop3_conn *pc = conn_data(c);
	pop3_session_timeout(pc->session);
}

static void on_timer_closed(uv_handle_t *h)
{
	free(h);
}

static void on_close(struct conn *c)
{
	struct pop3_conn *pc = conn_data(c);

	if (pc == NULL)
		return;
	pop3_session_free(&pc->session);
	if (pc->timer != NULL) {
		pc->timer->data = NULL;
		uv_close((uv_handle_t *)pc->timer, on_timer_closed);
	}
	if (pc->prev != NULL)
		pc->prev->next = pc->next;
	else
		server.conns = pc->next;
	if (pc->next != NULL)
		pc->next->prev = pc->prev;
	free(pc);
	conn_set_data(c, NULL);
	/* The last session is gone: nothing can use authd any more. */
	if (server.shutting_down && server.conns == NULL)
		pop3_auth_free(&server.auth);
}

static const struct conn_ops pop3_conn_ops = {
    .on_open = on_open,
    .on_data = on_data,
    .on_drain = on_drain,
    .on_timeout = on_timeout,
    .on_close = on_close,
};

/* ---- configuration ---- */

static void settings_from_config(const struct config *cfg, struct pop3_settings *set,
                                 uint64_t *idle_ms_r)
{
	pop3_settings_defaults(set);
	set->max_line = config_size(cfg, "pop3d", "pop3_max_line");
	set->max_auth_line = config_size(cfg, "pop3d", "pop3_max_auth_line");
	set->auth_fail_delay_ms = config_time_ms(cfg, "pop3d", "pop3_auth_failure_delay");
	set->max_auth_attempts = (unsigned)config_int(cfg, "pop3d", "pop3_max_auth_attempts");
	set->max_bad_commands = (unsigned)config_int(cfg, "pop3d", "pop3_max_bad_commands");
	set->plaintext_on_loopback = config_bool(cfg, "pop3d", "pop3_plaintext_on_loopback");
	set->uidl_format = strcmp(config_str(cfg, "pop3d", "pop3_uidl_format"), "%f") == 0
	                       ? MAILDROP_UIDL_FILENAME
	                       : MAILDROP_UIDL_UID_VALIDITY;
	*idle_ms_r = config_time_ms(cfg, "pop3d", "pop3_idle_timeout");
}

static struct tls_ctx *tls_from_config(const struct config *cfg, char **error_r)
{
	return tls_ctx_server_new(config_str(cfg, "global", "tls_cert"),
	                          config_str(cfg, "global", "tls_key"), error_r);
}

static int start_listeners(const struct config *cfg, const char *key, enum listener_tls mode,
                           char **error_r)
{
	size_t n;
	const char *const *addrs = config_list(cfg, "pop3d", key, &n);

	for (size_t i = 0; i < n; i++) {
		struct listener_config lc = {
		    .name = mode == LISTENER_TLS_IMPLICIT ? "pop3s" : "pop3",
		    .address = addrs[i],
		    .tls_mode = mode,
		    .tls = server.tls,
		    .unix_mode = 0666,
		    .max_conns = (unsigned)config_int(cfg, "pop3d", "pop3_max_connections"),
		    .max_conns_per_ip =
		        (unsigned)config_int(cfg, "pop3d", "pop3_max_connections_per_ip"),
		    .reject_banner = "-ERR [SYS/TEMP] Too many connections.\r\n",
		    .ops = &pop3_conn_ops,
		};
		/* The input cap leaves room for the longest line plus its terminator, so
		 * the parser (not the buffer) decides what is too long. */
		lc.limits.max_input = server.set.max_auth_line > server.set.max_line
		                          ? server.set.max_auth_line + 1024
		                          : server.set.max_line + 1024;
		if (lc.limits.max_input < 65536)
			lc.limits.max_input = 65536;
		lc.limits.max_output = 4 << 20;
		lc.limits.output_lowat = 64 << 10;
		lc.limits.idle_ms = server.idle_ms;
		char *err = NULL;
		struct listener *l = listener_start(server.loop, &lc, &err);
		if (l == NULL) {
			*error_r = xasprintf("%s %s: %s", key, addrs[i], err != NULL ? err : "?");
			free(err);
			return -1;
		}
		server.listeners = xreallocarray(server.listeners, server.n_listeners + 1,
		                                 sizeof(*server.listeners));
		server.listeners[server.n_listeners++] = l;
	}
	return 0;
}

static int pop3_setup(uv_loop_t *loop, const struct config *cfg, char **error_r)
{
	size_t n_pop3s;
	char *tls_error = NULL;

	server.loop = loop;
	settings_from_config(cfg, &server.set, &server.idle_ms);
	(void)config_list(cfg, "pop3d", "pop3s_listen", &n_pop3s);
	server.tls = tls_from_config(cfg, &tls_error);
	if (server.tls == NULL) {
		if (n_pop3s > 0) {
			*error_r = xasprintf("TLS for pop3s_listen: %s", tls_error);
			free(tls_error);
			return -1;
		}
		log_warn("pop3: TLS unavailable, STLS not offered: %s", tls_error);
		free(tls_error);
	}
	server.auth = pop3_auth_new(loop, config_str(cfg, "authd", "auth_socket"),
	                            config_str(cfg, "authd", "userdb_socket"));
	if (start_listeners(cfg, "pop3_listen", LISTENER_TLS_NONE, error_r) < 0 ||
	    start_listeners(cfg, "pop3s_listen", LISTENER_TLS_IMPLICIT, error_r) < 0)
		return -1;
	return 0;
}

static int pop3_reload(const struct config *cfg, char **error_r)
{
	char *tls_error = NULL;
	struct tls_ctx *tls = tls_from_config(cfg, &tls_error);

	if (tls == NULL) {
		*error_r = tls_error;
		return -1;
	}
	tls_ctx_unref(&server.tls);
	server.tls = tls;
	for (size_t i = 0; i < server.n_listeners; i++)
		listener_set_tls(server.listeners[i], tls);
	settings_from_config(cfg, &server.set, &server.idle_ms);
	return 0;
}

static void pop3_shutdown(void)
{
	server.shutting_down = true;
	for (size_t i = 0; i < server.n_listeners; i++)
		listener_free(&server.listeners[i]);
	free(server.listeners);
	server.listeners = NULL;
	server.n_listeners = 0;
	/* Sessions end without UPDATE: nothing is deleted that the client did not QUIT.
	 * Their pending authd requests are cancelled in on_close, so the auth client is
	 * freed after the last one (or now, when there is none). */
	for (struct pop3_conn *pc = server.conns; pc != NULL; pc = pc->next) {
		conn_write_str(pc->conn, "-ERR Server shutting down.\r\n");
		conn_close(pc->conn);
	}
	if (server.conns == NULL)
		pop3_auth_free(&server.auth);
	tls_ctx_unref(&server.tls);
}

/* Ready once authd's mechanisms are known, so the first CAPA lists SASL. */
static bool pop3_ready(void)
{
	return server.auth != NULL && pop3_auth_ready(server.auth);
}

const struct daemon_hooks pop3_server_hooks = {
    .service = "pop3d",
    .user_key = "vmail_user",
    .setup = pop3_setup,
    .reload = pop3_reload,
    .shutdown = pop3_shutdown,
    .ready = pop3_ready,
};
