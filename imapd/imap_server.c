/* Setting up the imapd process: TLS, authd clients, listeners, limits (imap_server.h). */
#include "imap_server.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth_client.h"
#include "auth/userdb_client.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "config/config.h"
#include "imap_session.h"
#include "net/listener.h"
#include "net/tls.h"
#include "store/mailbox.h"

/* Folders the pool keeps loaded after their last session left (each holds 6 descriptors
 * and its index in memory), so a client coming back does not reload them. */
#define IMAP_POOL_KEEP_IDLE 64

struct imap_server imap_server;

static void server_read_limits(const struct config *cfg)
{
	imap_server.reader_limits = (struct imap_reader_limits){
	    .max_line = config_size(cfg, "imapd", "max_line_length"),
	    .max_command = config_size(cfg, "imapd", "max_command_size"),
	    .max_inline_literal = 256 * 1024,
	    .max_literal = config_size(cfg, "imapd", "max_literal_size"),
	    .max_literals = 1000,
	};
	imap_server.literal_plus = config_bool(cfg, "imapd", "imap_literal_plus");
	/* RFC 7888 4: under LITERAL- a non-synchronising literal is at most 4096 bytes. */
	imap_server.reader_limits.max_nonsync_literal = imap_server.literal_plus ? 0 : 4096;
	imap_server.args_limits = (struct imap_args_limits){.max_depth = 32, .max_args = 100000};
	imap_server.login_timeout_ms = config_time_ms(cfg, "imapd", "login_timeout");
	imap_server.idle_timeout_ms = config_time_ms(cfg, "imapd", "idle_timeout");
	imap_server.max_bad_commands = (unsigned)config_int(cfg, "imapd", "max_bad_commands");
}

static int server_load_tls(const struct config *cfg, struct tls_ctx **tls_r, char **error_r)
{
	const char *cert = config_str(cfg, "global", "tls_cert");
	const char *key = config_str(cfg, "global", "tls_key");
	*tls_r = NULL;
	if (access(cert, R_OK) != 0) {
		size_t n;
		config_list(cfg, "imapd", "imaps_listen", &n);
		if (n > 0) {
			*error_r =
			    xasprintf("tls_cert %s: not readable, and imaps_listen needs it", cert);
			return -1;
		}
		log_warn("tls_cert %s is not readable: STARTTLS is not offered", cert);
		return 0;
	}
	*tls_r = tls_ctx_server_new(cert, key, error_r);
	return *tls_r != NULL ? 0 : -1;
}

static int server_listen(const struct config *cfg, const char *key, const char *name,
                         enum listener_tls mode, char **error_r)
{
	size_t n;
	const char *const *addrs = config_list(cfg, "imapd", key, &n);
	for (size_t i = 0; i < n; i++) {
		struct listener_config lc = {
		    .name = name,
		    .address = addrs[i],
		    .tls_mode = mode,
		    .tls = imap_server.tls,
		    .max_conns = (unsigned)config_int(cfg, "imapd", "max_connections"),
		    .max_conns_per_ip =
		        (unsigned)config_int(cfg, "imapd", "max_connections_per_ip"),
		    .reject_banner = "* BYE Too many connections.\r\n",
		    .limits = {.max_input = 64 * 1024, .max_output = 16 * 1024 * 1024},
		    .ops = &imap_session_conn_ops,
		};
		struct listener *l = listener_start(imap_server.loop, &lc, error_r);
		if (l == NULL)
			return -1;
		imap_server.listeners =
		    xreallocarray(imap_server.listeners, imap_server.n_listeners + 1,
		                  sizeof(*imap_server.listeners));
		imap_server.listeners[imap_server.n_listeners++] = l;
	}
	return 0;
}

static void pool_start_work(uv_work_t *w)
{
	(void)w;
}

int imap_server_setup(uv_loop_t *loop, const struct config *cfg, char **error_r)
{
	imap_server.loop = loop;
	/* libuv creates its thread pool at the first queued work: now, rather than in the
	 * first SELECT or FETCH of the process. */
	static uv_work_t pool_start;
	(void)uv_queue_work(loop, &pool_start, pool_start_work, NULL);
	server_read_limits(cfg);
	if (imap_server.pool == NULL)
		imap_server.pool = store_pool_new(IMAP_POOL_KEEP_IDLE);
	if (server_load_tls(cfg, &imap_server.tls, error_r) < 0)
		return -1;
	imap_server.auth = auth_client_new(loop, config_str(cfg, "authd", "auth_socket"));
	imap_server.userdb = userdb_client_new(loop, config_str(cfg, "authd", "userdb_socket"));
	auth_client_connect(imap_server.auth);
	if (server_listen(cfg, "imap_listen", "imap", LISTENER_TLS_NONE, error_r) < 0)
		return -1;
	if (imap_server.tls != NULL &&
	    server_listen(cfg, "imaps_listen", "imaps", LISTENER_TLS_IMPLICIT, error_r) < 0)
		return -1;
	return 0;
}

int imap_server_reload(const struct config *cfg, char **error_r)
{
	struct tls_ctx *tls;
	if (server_load_tls(cfg, &tls, error_r) < 0)
		return -1;
	server_read_limits(cfg);
	for (size_t i = 0; i < imap_server.n_listeners; i++)
		listener_set_tls(imap_server.listeners[i], tls);
	tls_ctx_unref(&imap_server.tls);
	imap_server.tls = tls;
	return 0;
}

void imap_server_shutdown(void)
{
	imap_server.shutting_down = true;
	for (size_t i = 0; i < imap_server.n_listeners; i++)
		listener_stop(imap_server.listeners[i]);
}
