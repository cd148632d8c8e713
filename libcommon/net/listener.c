/*
 * Listening sockets (see listener.h). Accepting is where a flood lands, so it is capped
 * three ways: a per-turn accept budget (the rest waits for the next loop turn, which lets
 * established sessions run), per-IP and global connection caps (reject_banner, then
 * close), and a spare fd that is given up to accept-and-close when the process is out of
 * descriptors (libuv keeps one more for the same trick inside its accept loop).
 */
#include "net/listener.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "net/conn_int.h"
#include "net/tls.h"

#define LISTENER_ACCEPT_BUDGET 64
#define LISTENER_IP_BUCKETS 256
#define LISTENER_BACKLOG 511

struct ip_count {
	struct ip_count *next;
	unsigned count;
	char ip[INET6_ADDRSTRLEN];
};

struct listener {
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} h;
	uv_check_t turn; /* resets the accept budget after each poll phase */
	uv_loop_t *loop;
	bool is_unix;
	char *name;
	char *address;
	char *unix_path;
	ino_t unix_ino;
	char *reject_banner;
	enum listener_tls tls_mode;
	struct tls_ctx *tls;
	struct conn_limits limits;
	const struct conn_ops *ops;
	void *ops_data;
	unsigned max_conns;
	unsigned max_conns_per_ip;
	unsigned n_conns;
	unsigned accepted_this_turn;
	bool accept_pending;
	int port;
	int spare_fd;
	int handles_open;
	bool main_inited;
	bool stopped;
	bool free_requested;
	uint64_t last_emfile_log;
	struct ip_count *ips[LISTENER_IP_BUCKETS];
	/* Every listener stays on this list until freed, so none is ever "leaked". */
	struct listener *next_all;
	struct listener **prev_all;
};

static _Thread_local struct listener *listener_all;

static unsigned listener_ip_hash(const char *ip)
{
	uint32_t h = 2166136261u;
	for (; *ip != '\0'; ip++)
		h = (h ^ (unsigned char)*ip) * 16777619u;
	return h % LISTENER_IP_BUCKETS;
}

static struct ip_count **listener_ip_slot(struct listener *l, const char *ip)
{
	struct ip_count **p = &l->ips[listener_ip_hash(ip)];
	while (*p != NULL && strcmp((*p)->ip, ip) != 0)
		p = &(*p)->next;
	return p;
}

static unsigned listener_ip_count(struct listener *l, const char *ip)
{
	struct ip_count *e = *listener_ip_slot(l, ip);
	return e != NULL ? e->count : 0;
}

static void listener_ip_add(struct listener *l, const char *ip)
{
	struct ip_count **p = listener_ip_slot(l, ip);
	if (*p == NULL) {
		*p = xcalloc(1, sizeof(**p));
		strcpy((*p)->ip, ip);
	}
	(*p)->count++;
}

static void listener_ip_remove(struct listener *l, const char *ip)
{
	struct ip_count **p = listener_ip_slot(l, ip);
	struct ip_count *e = *p;
	if (e == NULL)
		return;
	if (--e->count == 0) {
		*p = e->next;
		free(e);
	}
}

static void listener_free_now(struct listener *l)
{
	if (l->next_all != NULL)
		l->next_all->prev_all = l->prev_all;
	*l->prev_all = l->next_all;
	for (size_t i = 0; i < LISTENER_IP_BUCKETS; i++) {
		while (l->ips[i] != NULL) {
			struct ip_count *e = l->ips[i];
			l->ips[i] = e->next;
			free(e);
		}
	}
	tls_ctx_unref(&l->tls);
	free(l->name);
	free(l->address);
	free(l->unix_path);
	free(l->reject_banner);
	free(l);
}

static void listener_maybe_free(struct listener *l)
{
	if (l->free_requested && l->handles_open == 0 && l->n_conns == 0)
		listener_free_now(l);
}

void listener_conn_gone(struct listener *l, const struct conn *c)
{
	if (c->counted) {
		l->n_conns--;
		if (!c->is_unix)
			listener_ip_remove(l, c->peer_ip);
	}
	listener_maybe_free(l);
}

void *listener_data_of(const struct listener *l)
{
	return l->ops_data;
}

const char *listener_name_of(const struct listener *l)
{
	return l->name;
}

/* Out of descriptors: give up the spare, accept one connection and close it at once,
 * so the client sees a quick close instead of hanging in the backlog. */
static void listener_shed(struct listener *l)
{
	uint64_t now = uv_now(l->loop);
	if (now - l->last_emfile_log >= 10000 || l->last_emfile_log == 0) {
		log_warn("%s: out of file descriptors; closing new connections", l->name);
		l->last_emfile_log = now;
	}
	uv_os_fd_t lfd;
	if (l->spare_fd < 0 || uv_fileno(&l->h.handle, &lfd) != 0)
		return;
	close(l->spare_fd);
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd >= 0)
		close(fd);
	l->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void listener_accept_one(struct listener *l)
{
	struct conn *c = conn_alloc(l->loop, l->ops, &l->limits, l->is_unix);
	int r = uv_accept(&l->h.stream, &c->h.stream);
	if (r < 0) {
		log_debug("%s: accept: %s", l->name, uv_strerror(r));
		c->notify_close = false;
		conn_destroy(c);
		return;
	}
	conn_fill_addresses(c);
	bool reject = false;
	unsigned from_ip = l->is_unix ? 0 : listener_ip_count(l, c->peer_ip);
	if (l->max_conns > 0 && l->n_conns >= l->max_conns) {
		/* Shaped like Postfix's master/anvil warnings, which admins already grep for. */
		log_warn("service %s has reached its connection limit %u: rejecting %s", l->name,
		         l->max_conns, c->peer_ip);
		reject = true;
	} else if (!l->is_unix && l->max_conns_per_ip > 0 && from_ip >= l->max_conns_per_ip) {
		log_warn(
		    "Connection concurrency limit exceeded: %u from unknown[%s] for service %s",
		    from_ip + 1, c->peer_ip, l->name);
		reject = true;
	}
	if (reject) {
		/* A plaintext banner means nothing on an implicit-TLS port. */
		conn_reject(c, l->tls_mode == LISTENER_TLS_IMPLICIT ? NULL : l->reject_banner);
		return;
	}
	c->listener = l;
	c->counted = true;
	l->n_conns++;
	if (!l->is_unix)
		listener_ip_add(l, c->peer_ip);
	conn_start_server(c, l->tls_mode == LISTENER_TLS_IMPLICIT ? l->tls : NULL);
}

static void listener_on_turn(uv_check_t *h)
{
	struct listener *l = container_of(h, struct listener, turn);
	l->accepted_this_turn = 0;
	uv_check_stop(&l->turn);
	if (l->accept_pending && !l->stopped) {
		/* uv_accept() also re-enables polling that libuv paused for us. */
		l->accept_pending = false;
		l->accepted_this_turn = 1;
		uv_check_start(&l->turn, listener_on_turn);
		listener_accept_one(l);
	}
}

static void listener_on_connection(uv_stream_t *s, int status)
{
	struct listener *l = container_of(s, struct listener, h.stream);
	if (l->stopped)
		return;
	if (status < 0) {
		if (status == UV_EMFILE || status == UV_ENFILE)
			listener_shed(l);
		else
			log_warn("%s: accept: %s", l->name, uv_strerror(status));
		return;
	}
	if (l->accepted_this_turn++ == 0)
		uv_check_start(&l->turn, listener_on_turn);
	if (l->accepted_this_turn > LISTENER_ACCEPT_BUDGET) {
		/* Leaving it unaccepted makes libuv stop polling until the next turn. */
		l->accept_pending = true;
		return;
	}
	listener_accept_one(l);
}

/* A socket file left by a dead process is removed; a live one is an error. */
static int listener_unlink_stale(const char *path, char **error_r)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		*error_r = xasprintf("%s exists and is not a socket", path);
		return -1;
	}
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error_r = xasprintf("socket: %s", strerror(errno));
		return -1;
	}
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	strcpy(sun.sun_path, path);
	int r = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	int err = errno;
	close(fd);
	if (r == 0) {
		*error_r = xasprintf("%s is in use by another process", path);
		return -1;
	}
	if (err != ECONNREFUSED && err != ENOENT) {
		*error_r = xasprintf("%s: %s", path, strerror(err));
		return -1;
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		*error_r = xasprintf("unlink %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

static int listener_bind_unix(struct listener *l, const struct net_addr *a,
                              const struct listener_config *cfg, char **error_r)
{
	if (listener_unlink_stale(a->path, error_r) < 0)
		return -1;
	uv_pipe_init(l->loop, &l->h.pipe, 0);
	l->handles_open++;
	l->main_inited = true;
	/* Nobody may connect in the window before chmod(). */
	mode_t old = umask(0177);
	int r = uv_pipe_bind(&l->h.pipe, a->path);
	umask(old);
	if (r < 0) {
		*error_r = xasprintf("bind %s: %s", a->path, uv_strerror(r));
		return -1;
	}
	l->unix_path = xstrdup(a->path);
	mode_t mode = cfg->unix_mode != 0 ? cfg->unix_mode : 0600;
	if (geteuid() == 0 && chown(a->path, cfg->unix_uid, cfg->unix_gid) < 0) {
		*error_r = xasprintf("chown %s: %s", a->path, strerror(errno));
		return -1;
	}
	if (chmod(a->path, mode) < 0) {
		*error_r = xasprintf("chmod %s: %s", a->path, strerror(errno));
		return -1;
	}
	struct stat st;
	if (stat(a->path, &st) == 0)
		l->unix_ino = st.st_ino;
	return 0;
}

static int listener_bind_tcp(struct listener *l, const struct net_addr *a, char **error_r)
{
	struct sockaddr_storage ss;
	int r;
	uv_tcp_init(l->loop, &l->h.tcp);
	l->handles_open++;
	l->main_inited = true;
	if (a->any) {
		/* "*": one dual-stack socket; fall back to IPv4 where IPv6 is off. */
		uv_ip6_addr("::", a->port, (struct sockaddr_in6 *)&ss);
		r = uv_tcp_bind(&l->h.tcp, (struct sockaddr *)&ss, 0);
		if (r == UV_EAFNOSUPPORT || r == UV_EADDRNOTAVAIL) {
			uv_ip4_addr("0.0.0.0", a->port, (struct sockaddr_in *)&ss);
			r = uv_tcp_bind(&l->h.tcp, (struct sockaddr *)&ss, 0);
		}
	} else {
		if (uv_ip4_addr(a->host, a->port, (struct sockaddr_in *)&ss) != 0)
			uv_ip6_addr(a->host, a->port, (struct sockaddr_in6 *)&ss);
		r = uv_tcp_bind(&l->h.tcp, (struct sockaddr *)&ss,
		                ss.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
	}
	if (r == 0) {
		/* libuv defers bind errors such as EADDRINUSE to listen(); see below. */
		uv_tcp_nodelay(&l->h.tcp, 1);
	}
	if (r < 0) {
		*error_r = xasprintf("bind %s: %s", l->address, uv_strerror(r));
		return -1;
	}
	return 0;
}

static void listener_on_closed(uv_handle_t *h)
{
	struct listener *l = h->data;
	l->handles_open--;
	listener_maybe_free(l);
}

static void listener_close_handles(struct listener *l)
{
	l->h.handle.data = l;
	l->turn.data = l;
	if (l->main_inited && !uv_is_closing(&l->h.handle))
		uv_close(&l->h.handle, listener_on_closed);
	if (!uv_is_closing((uv_handle_t *)&l->turn))
		uv_close((uv_handle_t *)&l->turn, listener_on_closed);
}

struct listener *listener_start(uv_loop_t *loop, const struct listener_config *cfg, char **error_r)
{
	struct net_addr a;
	if (cfg->ops == NULL || cfg->ops->on_data == NULL) {
		*error_r = xasprintf("%s: no protocol handlers", cfg->name);
		return NULL;
	}
	if (net_addr_parse(cfg->address, &a, error_r) < 0)
		return NULL;
	if (cfg->tls_mode == LISTENER_TLS_IMPLICIT && cfg->tls == NULL) {
		*error_r = xasprintf("%s: implicit TLS needs a certificate", cfg->address);
		return NULL;
	}
	struct listener *l = xcalloc(1, sizeof(*l));
	l->loop = loop;
	l->is_unix = a.is_unix;
	l->name = xstrdup(cfg->name != NULL ? cfg->name : "listener");
	l->address = xstrdup(cfg->address);
	l->reject_banner = cfg->reject_banner != NULL ? xstrdup(cfg->reject_banner) : NULL;
	l->tls_mode = cfg->tls_mode;
	l->tls = tls_ctx_ref(cfg->tls);
	l->limits = cfg->limits;
	l->ops = cfg->ops;
	l->ops_data = cfg->ops_data;
	l->max_conns = cfg->max_conns;
	l->max_conns_per_ip = cfg->max_conns_per_ip;
	l->spare_fd = -1;
	l->free_requested = true; /* freed once stopped and its last conn is gone */
	l->next_all = listener_all;
	if (listener_all != NULL)
		listener_all->prev_all = &l->next_all;
	l->prev_all = &listener_all;
	listener_all = l;
	uv_check_init(loop, &l->turn);
	l->handles_open++;

	int r =
	    a.is_unix ? listener_bind_unix(l, &a, cfg, error_r) : listener_bind_tcp(l, &a, error_r);
	if (r == 0) {
		r = uv_listen(&l->h.stream, LISTENER_BACKLOG, listener_on_connection);
		if (r < 0)
			*error_r = xasprintf("listen %s: %s", cfg->address, uv_strerror(r));
	}
	if (r < 0) {
		if (l->unix_path != NULL)
			(void)unlink(l->unix_path);
		l->stopped = true;
		listener_close_handles(l);
		return NULL;
	}
	if (!a.is_unix) {
		struct sockaddr_storage ss;
		int len = sizeof(ss);
		char ip[INET6_ADDRSTRLEN];
		if (uv_tcp_getsockname(&l->h.tcp, (struct sockaddr *)&ss, &len) == 0)
			net_addr_to_text((struct sockaddr *)&ss, ip, &l->port);
	}
	l->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	l->free_requested = false;
	log_debug("%s: listening on %s", l->name, l->address);
	return l;
}

void listener_stop(struct listener *l)
{
	if (l == NULL || l->stopped)
		return;
	l->stopped = true;
	if (l->spare_fd >= 0) {
		close(l->spare_fd);
		l->spare_fd = -1;
	}
	if (l->unix_path != NULL) {
		/* Remove the socket file only when it is still ours. */
		struct stat st;
		if (stat(l->unix_path, &st) == 0 && st.st_ino == l->unix_ino)
			(void)unlink(l->unix_path);
	}
	listener_close_handles(l);
}

void listener_free(struct listener **lp)
{
	struct listener *l = *lp;
	*lp = NULL;
	if (l == NULL)
		return;
	listener_stop(l);
	l->free_requested = true;
	listener_maybe_free(l);
}

unsigned listener_conn_count(const struct listener *l)
{
	return l->n_conns;
}

int listener_port(const struct listener *l)
{
	return l->port;
}

void listener_set_tls(struct listener *l, struct tls_ctx *tls)
{
	struct tls_ctx *old = l->tls;
	l->tls = tls_ctx_ref(tls);
	tls_ctx_unref(&old);
}
