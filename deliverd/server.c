/*
 * tern-deliverd's daemon hooks: the listeners (LMTP for smtpd/Postfix, submit for the
 * sendmail command), the peer checks, and the glue between a libuv connection and an LMTP
 * session (its backend: replies, userdb lookups, spool, thread-pool delivery). The
 * process frame (options, privilege drop to vmail_user, signals) is net's daemon_main().
 */
#include "deliverd.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aliases.h"
#include "auth/userdb_client.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "config/config.h"
#include "deliver.h"
#include "lmtp_session.h"
#include "net/conn.h"
#include "net/daemon.h"
#include "net/listener.h"
#include "recipient.h"
#include "relay.h"
#include "relay_intake.h"

#define MAX_UIDS 64

/* Who may use the LMTP socket, and who may choose any sender on the submit socket. */
struct uid_sets {
	uid_t lmtp[MAX_UIDS];
	size_t n_lmtp;
	uid_t trusted[MAX_UIDS];
	size_t n_trusted;
};

struct deliverd {
	uv_loop_t *loop;
	struct listener *lmtp;
	struct listener *submit;
	struct userdb_client *userdb;
	struct recipient_maps maps;
	char **domains;
	size_t n_domains;
	char *hostname;
	char *spool_dir;
	struct lmtp_limits limits;
	struct uid_sets uids;
	bool shutting_down;
	struct lmtp_conn *conns; /* open sessions, for shutdown */
};

static struct deliverd D;
static bool threadpool_size_from_env;

struct lmtp_conn {
	struct conn *conn; /* NULL once the connection is gone */
	struct lmtp_session *s;
	struct lmtp_backend be;
	struct buf *in; /* the conn's input buffer (seen in on_data) */
	struct spool *spool;
	struct userdb_lookup *lookup;
	struct quota_job *quota_job; /* usage scan in the thread pool, at RCPT */
	char *identity;              /* submit socket, untrusted peer: the only sender allowed */
	char *refusal;
	struct lmtp_conn *prev, *next;
};

/* ---- backend callbacks ---- */

static void be_write(void *ctx, const void *data, size_t len)
{
	struct lmtp_conn *lc = ctx;
	if (lc->conn != NULL)
		conn_write(lc->conn, data, len);
}

static void be_close(void *ctx)
{
	struct lmtp_conn *lc = ctx;
	if (lc->conn != NULL)
		conn_close(lc->conn);
}

static void be_resume(void *ctx)
{
	struct lmtp_conn *lc = ctx;
	/* The conn hands the input it kept back to on_data, from the loop. */
	if (lc->conn != NULL)
		conn_resume_read(lc->conn);
}

/* The quota check at RCPT needs the mailbox's usage: a directory scan, so it runs on
 * the thread pool like the deliveries. */
struct quota_job {
	uv_work_t req;
	struct lmtp_conn *lc; /* NULL once the lookup was aborted */
	char *home;
	uint64_t quota_bytes, quota_messages;
	uint64_t used_bytes, used_messages;
};

static void on_quota_work(uv_work_t *req)
{
	struct quota_job *j = req->data;
	deliver_quota_usage(j->home, &j->used_bytes, &j->used_messages);
}

static void on_quota_done(uv_work_t *req, int status)
{
	(void)status;
	struct quota_job *j = req->data;
	struct lmtp_conn *lc = j->lc;
	if (lc != NULL) {
		lc->quota_job = NULL;
		lmtp_session_lookup_done_usage(lc->s, LMTP_LOOKUP_FOUND, j->home, j->quota_bytes,
		                               j->quota_messages, j->used_bytes, j->used_messages);
	}
	free(j->home);
	free(j);
}

static bool home_is_plain(const char *home)
{
	return home != NULL && home[0] == '/' && strstr(home, "/../") == NULL &&
	       strstr(home, "/./") == NULL && strchr(home, '\n') == NULL &&
	       (strlen(home) < 3 || strcmp(home + strlen(home) - 3, "/..") != 0);
}

static void on_userdb(enum userdb_result result, const struct userdb_reply *reply, void *context)
{
	struct lmtp_conn *lc = context;
	lc->lookup = NULL;
	switch (result) {
	case USERDB_FOUND:
		/* Re-check what authd says: the home must be an absolute, plain path. */
		if (!home_is_plain(reply->home)) {
			log_warn("userdb: unusable home for %s", reply->user ? reply->user : "?");
			lmtp_session_lookup_done(lc->s, LMTP_LOOKUP_TEMPFAIL, NULL, 0, 0);
			return;
		}
		if (reply->quota_bytes == 0 && reply->quota_messages == 0) {
			lmtp_session_lookup_done(lc->s, LMTP_LOOKUP_FOUND, reply->home, 0, 0);
			return;
		}
		struct quota_job *j = xcalloc(1, sizeof(*j));
		j->req.data = j;
		j->lc = lc;
		j->home = xstrdup(reply->home);
		j->quota_bytes = reply->quota_bytes;
		j->quota_messages = reply->quota_messages;
		lc->quota_job = j;
		int r = uv_queue_work(D.loop, &j->req, on_quota_work, on_quota_done);
		if (r < 0)
			log_panic("uv_queue_work: %s", uv_strerror(r));
		return;
	case USERDB_NOTFOUND:
		lmtp_session_lookup_done(lc->s, LMTP_LOOKUP_NOTFOUND, NULL, 0, 0);
		return;
	case USERDB_TEMPFAIL:
		break;
	}
	lmtp_session_lookup_done(lc->s, LMTP_LOOKUP_TEMPFAIL, NULL, 0, 0);
}

static void be_lookup(void *ctx, struct lmtp_session *s, const char *key)
{
	(void)s;
	struct lmtp_conn *lc = ctx;
	lc->lookup = userdb_client_lookup(D.userdb, key, "lmtp", on_userdb, lc);
	if (lc->lookup == NULL)
		log_panic("userdb_client_lookup returned no handle");
}

static void be_lookup_abort(void *ctx, struct lmtp_session *s)
{
	(void)s;
	struct lmtp_conn *lc = ctx;
	if (lc->lookup != NULL)
		userdb_lookup_abort(&lc->lookup);
	/* A running usage scan finishes on its own; its result is dropped. */
	if (lc->quota_job != NULL) {
		lc->quota_job->lc = NULL;
		lc->quota_job = NULL;
	}
}

static int be_spool_begin(void *ctx, char **error_r)
{
	struct lmtp_conn *lc = ctx;
	spool_close(&lc->spool);
	return spool_open(D.spool_dir, &lc->spool, error_r);
}

static int be_spool_write(void *ctx, const void *data, size_t len, char **error_r)
{
	struct lmtp_conn *lc = ctx;
	return spool_write(lc->spool, data, len, error_r);
}

static void be_spool_discard(void *ctx)
{
	struct lmtp_conn *lc = ctx;
	spool_close(&lc->spool);
}

static void be_deliver(void *ctx, struct lmtp_session *s, struct lmtp_target *targets, size_t n)
{
	struct lmtp_conn *lc = ctx;
	deliver_targets(D.loop, lc->spool, s, targets, n);
	relay_queue_targets(D.loop, spool_fd(lc->spool), spool_size(lc->spool), s, targets, n);
}

static void be_destroyed(void *ctx)
{
	struct lmtp_conn *lc = ctx;
	spool_close(&lc->spool);
	free(lc->identity);
	free(lc->refusal);
	free(lc);
}

static const char *be_check_sender(void *ctx, const char *sender)
{
	struct lmtp_conn *lc = ctx;
	if (lc->identity == NULL || strcasecmp(sender, lc->identity) == 0)
		return NULL;
	free(lc->refusal);
	lc->refusal = xasprintf("553 5.7.1 <%s>: Sender address rejected: not owned by the "
	                        "submitting user (%s)",
	                        sender, lc->identity);
	return lc->refusal;
}

/* ---- connection callbacks ---- */

static bool uid_in(const uid_t *uids, size_t n, uid_t uid)
{
	for (size_t i = 0; i < n; i++)
		if (uids[i] == uid)
			return true;
	return false;
}

static void on_open(struct conn *c)
{
	bool submit = strcmp(conn_listener_name(c), "submit") == 0;
	uid_t uid = (uid_t)-1;
	gid_t gid;
	pid_t pid;
	if (conn_peer_cred(c, &uid, &gid, &pid) < 0 ||
	    (!submit && !uid_in(D.uids.lmtp, D.uids.n_lmtp, uid))) {
		log_warn("lmtp: connection from uid %ld refused (not in lmtp_allowed_users)",
		         (long)(int)uid);
		conn_write_str(c, "421 4.7.0 Access denied\r\n");
		conn_close(c);
		return;
	}
	struct lmtp_conn *lc = xcalloc(1, sizeof(*lc));
	lc->conn = c;
	if (submit && !uid_in(D.uids.trusted, D.uids.n_trusted, uid)) {
		struct passwd *pw = getpwuid(uid);
		const char *dom = D.n_domains > 0 ? D.domains[0] : D.hostname;
		lc->identity = pw != NULL ? xasprintf("%s@%s", pw->pw_name, dom)
		                          : xasprintf("uid%ld@%s", (long)uid, dom);
	}
	lc->be = (struct lmtp_backend){
	    .ctx = lc,
	    .write = be_write,
	    .close = be_close,
	    .resume = be_resume,
	    .lookup = be_lookup,
	    .lookup_abort = be_lookup_abort,
	    .spool_begin = be_spool_begin,
	    .spool_write = be_spool_write,
	    .spool_discard = be_spool_discard,
	    .deliver = be_deliver,
	    .destroyed = be_destroyed,
	    .check_sender = be_check_sender,
	    /* relay branch: non-local recipients go to the outbound queue; smtpd enforced the
	     * relay policy, sendmail users are local. Without local domains nothing relays. */
	    .relay_remote = D.n_domains > 0 && relay_queue() != NULL,
	};
	char *peer =
	    xasprintf("%s[uid=%ld,pid=%ld]", submit ? "sendmail" : "lmtp", (long)uid, (long)pid);
	lc->s = lmtp_session_new(&lc->be, &D.limits, D.hostname, peer);
	free(peer);
	lmtp_session_set_maps(lc->s, &D.maps);
	conn_set_data(c, lc);
	lc->next = D.conns;
	if (D.conns != NULL)
		D.conns->prev = lc;
	D.conns = lc;
	lmtp_session_start(lc->s);
}

static void on_data(struct conn *c, struct buf *in)
{
	struct lmtp_conn *lc = conn_data(c);
	if (lc == NULL) {
		buf_consume(in, in->len);
		return;
	}
	lmtp_session_input(lc->s, in);
	if (lmtp_session_busy(lc->s))
		conn_pause_read(c);
	else if (D.shutting_down && !conn_is_closing(c))
		conn_close(c);
}

static void on_timeout(struct conn *c)
{
	struct lmtp_conn *lc = conn_data(c);
	if (lc != NULL && !lmtp_session_busy(lc->s))
		conn_write_str(c, "421 4.4.2 Error: timeout exceeded\r\n");
}

static void on_overflow(struct conn *c)
{
	/* Only a busy session leaves input unconsumed; wait for it instead of closing. */
	struct lmtp_conn *lc = conn_data(c);
	if (lc != NULL && lmtp_session_busy(lc->s))
		conn_pause_read(c);
	else
		conn_abort(c);
}

static void on_close(struct conn *c)
{
	struct lmtp_conn *lc = conn_data(c);
	if (lc == NULL)
		return;
	conn_set_data(c, NULL);
	lc->conn = NULL;
	if (lc->prev != NULL)
		lc->prev->next = lc->next;
	else
		D.conns = lc->next;
	if (lc->next != NULL)
		lc->next->prev = lc->prev;
	/* Frees lc through be_destroyed, now or after a running delivery. */
	lmtp_session_close(lc->s);
	/* The userdb client goes last: a session waiting on a lookup aborts it above. */
	if (D.shutting_down && D.conns == NULL && D.userdb != NULL)
		userdb_client_free(&D.userdb);
}

static const struct conn_ops lmtp_ops = {
    .on_open = on_open,
    .on_data = on_data,
    .on_timeout = on_timeout,
    .on_overflow = on_overflow,
    .on_close = on_close,
};

/* ---- configuration ---- */

static int add_user_uid(uid_t *uids, size_t *n, const char *name, bool must_exist, char **error_r)
{
	/* A name, or a numeric uid (as authd's userdb_allowed_users takes). */
	char *end = NULL;
	unsigned long num = strtoul(name, &end, 10);
	if (name[0] >= '0' && name[0] <= '9' && end != NULL && *end == '\0') {
		if (*n < MAX_UIDS && !uid_in(uids, *n, (uid_t)num))
			uids[(*n)++] = (uid_t)num;
		return 0;
	}
	struct passwd *pw = getpwnam(name);
	if (pw == NULL) {
		if (!must_exist)
			return 0;
		*error_r = xasprintf("unknown user \"%s\"", name);
		return -1;
	}
	if (*n < MAX_UIDS && !uid_in(uids, *n, pw->pw_uid))
		uids[(*n)++] = pw->pw_uid;
	return 0;
}

static uid_t own_uid(const struct config *cfg)
{
	if (geteuid() != 0)
		return geteuid();
	struct passwd *pw = getpwnam(config_str(cfg, "global", "vmail_user"));
	return pw != NULL ? pw->pw_uid : 0;
}

static int load_maps(const struct config *cfg, struct recipient_maps *m, char **error_r)
{
	memset(m, 0, sizeof(*m));
	if (alias_map_load(config_str(cfg, "deliverd", "virtual_alias_file"), ALIAS_VIRTUAL, false,
	                   &m->virtual_map, error_r) < 0)
		return -1;
	if (alias_map_load(config_str(cfg, "deliverd", "alias_file"), ALIAS_LOCAL, true,
	                   &m->local_map, error_r) < 0) {
		alias_map_free(&m->virtual_map);
		return -1;
	}
	const char *delim = config_str(cfg, "deliverd", "recipient_delimiter");
	if (strlen(delim) > 1) {
		*error_r = xstrdup("recipient_delimiter must be one character");
		alias_map_free(&m->virtual_map);
		alias_map_free(&m->local_map);
		return -1;
	}
	m->delimiter = delim[0];
	return 0;
}

static void free_domains(void)
{
	for (size_t i = 0; i < D.n_domains; i++)
		free(D.domains[i]);
	free(D.domains);
	D.domains = NULL;
	D.n_domains = 0;
}

static void apply_config(const struct config *cfg, const struct recipient_maps *maps)
{
	alias_map_free(&D.maps.virtual_map);
	alias_map_free(&D.maps.local_map);
	D.maps = *maps;
	free_domains();
	size_t n = 0;
	const char *const *list = config_list(cfg, "global", "domains", &n);
	D.domains = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		D.domains[i] = xstrdup(list[i]);
		for (char *p = D.domains[i]; *p != '\0'; p++)
			*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	}
	D.n_domains = n;
	D.maps.domains = (const char *const *)D.domains;
	D.maps.n_domains = n;
	D.limits.max_message = config_size(cfg, "deliverd", "max_message_size");
	D.limits.max_recipients = (unsigned)config_int(cfg, "deliverd", "max_recipients");
	D.limits.max_line = (size_t)config_int(cfg, "deliverd", "max_line_length");
	D.limits.max_errors = (unsigned)config_int(cfg, "deliverd", "max_errors");
}

/* Builds the uid sets from cfg; D is changed only by the caller, on success. */
static int load_uids(const struct config *cfg, struct uid_sets *u, char **error_r)
{
	memset(u, 0, sizeof(*u));
	u->lmtp[u->n_lmtp++] = 0;
	u->lmtp[u->n_lmtp++] = own_uid(cfg);
	u->trusted[u->n_trusted++] = own_uid(cfg);
	if (add_user_uid(u->lmtp, &u->n_lmtp, config_str(cfg, "global", "default_user"), false,
	                 error_r) < 0)
		return -1;
	size_t n = 0;
	const char *const *list = config_list(cfg, "deliverd", "lmtp_allowed_users", &n);
	for (size_t i = 0; i < n; i++)
		if (add_user_uid(u->lmtp, &u->n_lmtp, list[i], true, error_r) < 0)
			return -1;
	list = config_list(cfg, "deliverd", "trusted_users", &n);
	for (size_t i = 0; i < n; i++)
		if (add_user_uid(u->trusted, &u->n_trusted, list[i], true, error_r) < 0)
			return -1;
	return 0;
}

static struct listener *start_listener(const struct config *cfg, const char *name, const char *path,
                                       char **error_r)
{
	struct listener_config lc = {0};
	char *address = xasprintf("unix:%s", path);
	lc.name = name;
	lc.address = address;
	lc.tls_mode = LISTENER_TLS_NONE;
	/* Everyone may connect; the peer's uid decides (SO_PEERCRED in on_open). */
	lc.unix_mode = 0666;
	lc.unix_uid = own_uid(cfg);
	lc.unix_gid = (gid_t)-1;
	struct passwd *pw = getpwuid(lc.unix_uid);
	if (pw != NULL)
		lc.unix_gid = pw->pw_gid;
	lc.max_conns = (unsigned)config_int(cfg, "deliverd", "max_connections");
	lc.reject_banner = "421 4.3.2 Too many connections\r\n";
	lc.limits.max_input = 256 * 1024;
	lc.limits.idle_ms = config_time_ms(cfg, "deliverd", "idle_timeout");
	lc.ops = &lmtp_ops;
	struct listener *l = listener_start(D.loop, &lc, error_r);
	free(address);
	return l;
}

static int make_spool_dir(const struct config *cfg, const char *dir, char **error_r)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		*error_r = xasprintf("mkdir(%s): %s", dir, strerror(errno));
		return -1;
	}
	if (geteuid() == 0) {
		struct passwd *pw = getpwuid(own_uid(cfg));
		if (pw != NULL && chown(dir, pw->pw_uid, pw->pw_gid) < 0) {
			*error_r = xasprintf("chown(%s): %s", dir, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int on_setup(uv_loop_t *loop, const struct config *cfg, char **error_r)
{
	D.loop = loop;
	/* The pool starts with the first job, after this: its size can still be set. */
	if (!threadpool_size_from_env) {
		char *n =
		    xasprintf("%lld", (long long)config_int(cfg, "deliverd", "delivery_threads"));
		setenv("UV_THREADPOOL_SIZE", n, 1);
		free(n);
	}
	const char *host = config_str(cfg, "global", "hostname");
	if (host[0] == '\0') {
		char name[256] = "";
		if (gethostname(name, sizeof(name) - 1) < 0)
			strcpy(name, "localhost");
		D.hostname = xstrdup(name);
	} else {
		D.hostname = xstrdup(host);
	}
	struct recipient_maps maps;
	if (load_maps(cfg, &maps, error_r) < 0)
		return -1;
	apply_config(cfg, &maps);
	if (load_uids(cfg, &D.uids, error_r) < 0)
		return -1;
	D.spool_dir = xstrdup(config_str(cfg, "deliverd", "spool_dir"));
	if (make_spool_dir(cfg, D.spool_dir, error_r) < 0)
		return -1;
	D.userdb = userdb_client_new(loop, config_str(cfg, "authd", "userdb_socket"));
	/* The queue and the maildrop exist before the sockets do: whoever sees a socket may
	 * rely on them (a remote recipient goes to the queue; sendmail -bp reads it). */
	if (relay_setup(loop, cfg, D.hostname, error_r) < 0)
		return -1;
	D.lmtp = start_listener(cfg, "lmtp", config_str(cfg, "deliverd", "lmtp_socket"), error_r);
	if (D.lmtp == NULL)
		return -1;
	const char *submit = config_str(cfg, "deliverd", "submit_socket");
	if (submit[0] != '\0') {
		D.submit = start_listener(cfg, "submit", submit, error_r);
		if (D.submit == NULL)
			return -1;
	}
	log_info("ready: lmtp=%s, %zu virtual aliases, %zu local aliases",
	         config_str(cfg, "deliverd", "lmtp_socket"), alias_map_count(D.maps.virtual_map),
	         alias_map_count(D.maps.local_map));
	return 0;
}

static int on_reload(const struct config *cfg, char **error_r)
{
	/* Everything is checked before anything changes: a bad new config keeps the old. */
	struct uid_sets uids;
	if (load_uids(cfg, &uids, error_r) < 0)
		return -1;
	struct recipient_maps maps;
	if (load_maps(cfg, &maps, error_r) < 0)
		return -1;
	/* Sessions keep a pointer to D.maps; the tables inside are swapped here, between
	 * commands, on the loop thread. */
	apply_config(cfg, &maps);
	D.uids = uids;
	return 0;
}

static void on_shutdown(void)
{
	D.shutting_down = true;
	if (D.lmtp != NULL)
		listener_stop(D.lmtp);
	if (D.submit != NULL)
		listener_stop(D.submit);
	for (struct lmtp_conn *lc = D.conns; lc != NULL; lc = lc->next) {
		if (lc->conn != NULL && !lmtp_session_busy(lc->s)) {
			conn_write_str(lc->conn, "421 4.3.2 Shutting down\r\n");
			conn_close(lc->conn);
		}
	}
	/* Sessions still open may need the userdb until they end (on_close frees it). */
	if (D.conns == NULL && D.userdb != NULL)
		userdb_client_free(&D.userdb);
	relay_shutdown();
}

int deliverd_main(int argc, char **argv)
{
	threadpool_size_from_env = getenv("UV_THREADPOOL_SIZE") != NULL;
	static const struct daemon_hooks hooks = {
	    .service = "deliverd",
	    .user_key = "vmail_user",
	    .setup = on_setup,
	    .reload = on_reload,
	    .shutdown = on_shutdown,
	};
	return daemon_main(argc, argv, &hooks);
}
