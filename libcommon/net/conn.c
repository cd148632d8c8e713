/*
 * The connection core: one struct conn per socket, its read/dispatch cycle, the bounded
 * output queue with back-pressure, idle/session timers and the close sequence
 * (flush -> shutdown(SHUT_WR) -> drain until EOF or the linger bound -> uv_close). The
 * libuv handles are embedded in struct conn; it is freed only once the last of them has
 * run its close callback, and on_close runs right before that, exactly once.
 */
#include "net/conn_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "net/listener.h"

static _Atomic uint64_t conn_next_id = 1;
static _Thread_local struct conn *conn_all; /* conns live and die on their loop's thread */
static _Thread_local char conn_scratch[CONN_READ_CHUNK];

static void conn_on_idle_timer(uv_timer_t *t);
static void conn_on_session_timer(uv_timer_t *t);
static void conn_on_kick(uv_idle_t *h);
static void conn_update_reading(struct conn *c);

struct conn *conn_alloc(uv_loop_t *loop, const struct conn_ops *ops,
                        const struct conn_limits *limits, bool is_unix)
{
	struct conn *c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->ops = ops;
	c->id = conn_next_id++;
	c->is_unix = is_unix;
	c->state = CONN_OPEN;
	if (limits != NULL)
		c->limits = *limits;
	if (c->limits.max_input == 0)
		c->limits.max_input = CONN_DEFAULT_MAX_INPUT;
	if (c->limits.max_output == 0)
		c->limits.max_output = CONN_DEFAULT_MAX_OUTPUT;
	if (c->limits.output_lowat == 0)
		c->limits.output_lowat = CONN_DEFAULT_OUTPUT_LOWAT;
	if (c->limits.output_lowat > c->limits.max_output)
		c->limits.output_lowat = c->limits.max_output;
	buf_init(&c->in, c->limits.max_input);
	buf_init(&c->out, 0);
	buf_init(&c->out_flight, 0);
	strcpy(c->peer_ip, is_unix ? "unix" : "");
	strcpy(c->local_ip, is_unix ? "unix" : "");

	int r = is_unix ? uv_pipe_init(loop, &c->h.pipe, 0) : uv_tcp_init(loop, &c->h.tcp);
	if (r < 0)
		log_panic("conn: cannot init a stream handle: %s", uv_strerror(r));
	uv_timer_init(loop, &c->idle_timer);
	uv_timer_init(loop, &c->session_timer);
	uv_idle_init(loop, &c->kick);
	c->handles_open = 4;
	c->all_next = conn_all;
	if (conn_all != NULL)
		conn_all->all_prev = &c->all_next;
	c->all_prev = &conn_all;
	conn_all = c;
	return c;
}

void conn_fill_addresses(struct conn *c)
{
	if (c->is_unix) {
		uv_os_fd_t fd;
		struct ucred cred;
		socklen_t len = sizeof(cred);
		if (uv_fileno(&c->h.handle, &fd) == 0 &&
		    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
			c->have_cred = true;
			c->cred_uid = cred.uid;
			c->cred_gid = cred.gid;
			c->cred_pid = cred.pid;
		}
		return;
	}
	/* Writes are coalesced here already; Nagle would only delay replies. */
	uv_tcp_nodelay(&c->h.tcp, 1);
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	if (uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) == 0)
		net_addr_to_text((struct sockaddr *)&ss, c->peer_ip, &c->peer_port);
	len = sizeof(ss);
	if (uv_tcp_getsockname(&c->h.tcp, (struct sockaddr *)&ss, &len) == 0)
		net_addr_to_text((struct sockaddr *)&ss, c->local_ip, &c->local_port);
}

/* --- timers ------------------------------------------------------------------------- */

void conn_arm_idle_timer(struct conn *c)
{
	if (c->limits.idle_ms > 0)
		uv_timer_start(&c->idle_timer, conn_on_idle_timer, c->limits.idle_ms, 0);
	else
		uv_timer_stop(&c->idle_timer);
}

void conn_arm_handshake_timer(struct conn *c)
{
	uint64_t ms = c->limits.idle_ms;
	if (ms == 0 || ms > CONN_HANDSHAKE_MS)
		ms = CONN_HANDSHAKE_MS;
	uv_timer_start(&c->idle_timer, conn_on_idle_timer, ms, 0);
}

static bool conn_in_handshake(const struct conn *c)
{
	return c->tls != NULL && c->tls->phase != TLS_PHASE_UP && c->tls->phase != TLS_PHASE_DOWN;
}

static void conn_timed_out(struct conn *c, const char *what)
{
	if (c->state == CONN_HANDSHAKE || conn_in_handshake(c)) {
		log_info("timeout during TLS handshake from %s[%s]",
		         conn_listener_name(c) ?: "conn", c->peer_ip);
		conn_abort(c);
		return;
	}
	log_debug("conn %llu: %s timeout", (unsigned long long)c->id, what);
	if (c->ops->on_timeout != NULL)
		c->ops->on_timeout(c);
	conn_close(c);
}

static void conn_on_idle_timer(uv_timer_t *t)
{
	struct conn *c = container_of(t, struct conn, idle_timer);
	if (c->state <= CONN_OPEN)
		conn_timed_out(c, "idle");
}

static void conn_on_session_timer(uv_timer_t *t)
{
	struct conn *c = container_of(t, struct conn, session_timer);
	if (c->state <= CONN_OPEN)
		conn_timed_out(c, "session");
	else if (c->state == CONN_CLOSING || c->state == CONN_LINGER)
		conn_destroy(c); /* the linger bound */
}

/* --- reading and dispatch ------------------------------------------------------------ */

static void conn_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct conn *c = container_of(h, struct conn, h.handle);
	size_t size = sizeof(conn_scratch);
	(void)suggested;
	/* Plaintext goes straight into `in`, so never read more than fits. */
	if (c->tls == NULL && c->state <= CONN_OPEN && buf_room(&c->in) < size)
		size = buf_room(&c->in);
	b->base = conn_scratch;
	b->len = size;
}

static void conn_read_ended(struct conn *c, ssize_t err)
{
	if (c->state != CONN_OPEN || err != UV_EOF) {
		if (err != UV_EOF && c->state <= CONN_OPEN)
			log_debug("conn %llu: read: %s", (unsigned long long)c->id,
			          uv_strerror((int)err));
		conn_destroy(c);
		return;
	}
	/* The peer half-closed: deliver what it sent, answer it, then close. */
	c->peer_eof = true;
	conn_process(c);
}

static void conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct conn *c = container_of(s, struct conn, h.stream);
	if (nread == 0 || c->state == CONN_CLOSED)
		return;
	if (nread < 0) {
		conn_read_ended(c, nread);
		return;
	}
	if (c->state == CONN_LINGER || c->state == CONN_CLOSING)
		return; /* draining after our close: the session is over */
	if (c->state == CONN_OPEN && !conn_in_handshake(c))
		conn_arm_idle_timer(c); /* a handshake keeps its own, fixed bound */
	if (c->tls != NULL && c->tls->phase == TLS_PHASE_FLUSH_PLAIN) {
		/* CVE-2011-0411: nothing sent before our STARTTLS reply left is trusted. */
		c->discarded += (size_t)nread;
		return;
	}
	if (c->tls != NULL) {
		conn_tls_input(c, b->base, (size_t)nread);
	} else {
		if (buf_append(&c->in, b->base, (size_t)nread) < 0)
			log_panic("conn: read past the input cap");
		c->fresh_input = true;
	}
	conn_process(c);
}

static void conn_overflow(struct conn *c)
{
	log_info("conn %llu: input line or buffer over %zu bytes from %s",
	         (unsigned long long)c->id, c->limits.max_input, c->peer_ip);
	if (c->ops->on_overflow != NULL)
		c->ops->on_overflow(c);
	else
		conn_close(c);
}

static void conn_dispatch(struct conn *c)
{
	if (c->in_dispatch)
		return;
	c->in_dispatch = true;
	int round;
	for (round = 0; round < CONN_DISPATCH_ROUNDS; round++) {
		if (c->tls != NULL && conn_tls_pump(c) < 0)
			break;
		if (c->state != CONN_OPEN || c->paused || !c->fresh_input || c->in.len == 0)
			break;
		size_t before = c->in.len;
		c->fresh_input = false;
		c->ops->on_data(c, &c->in);
		if (c->state != CONN_OPEN)
			break;
		if (c->in.len == before && !c->paused) {
			if (buf_room(&c->in) == 0)
				conn_overflow(c);
			break;
		}
		/* Only TLS can have more input ready without another read. */
		if (c->tls == NULL || !conn_tls_has_buffered(c))
			break;
	}
	c->in_dispatch = false;
	if (round == CONN_DISPATCH_ROUNDS && c->state == CONN_OPEN)
		uv_idle_start(&c->kick, conn_on_kick);
	else if (c->peer_eof && !c->paused && c->state == CONN_OPEN)
		conn_close(c);
}

void conn_process(struct conn *c)
{
	conn_dispatch(c);
	conn_update_reading(c);
}

static void conn_on_kick(uv_idle_t *h)
{
	struct conn *c = container_of(h, struct conn, kick);
	uv_idle_stop(&c->kick);
	if (c->state == CONN_OPEN || c->state == CONN_HANDSHAKE)
		conn_process(c);
}

static void conn_update_reading(struct conn *c)
{
	bool want;
	switch (c->state) {
	case CONN_HANDSHAKE:
	case CONN_OPEN:
		/* Keep reading while paused too, up to max_input (conn.h). */
		want = buf_room(&c->in) > 0 && !c->peer_eof;
		break;
	case CONN_LINGER:
		want = !c->peer_eof;
		break;
	default:
		want = false;
		break;
	}
	if (want && !c->reading) {
		int r = uv_read_start(&c->h.stream, conn_on_alloc, conn_on_read);
		if (r < 0) {
			log_debug("conn %llu: read_start: %s", (unsigned long long)c->id,
			          uv_strerror(r));
			conn_destroy(c);
			return;
		}
		c->reading = true;
	} else if (!want && c->reading) {
		uv_read_stop(&c->h.stream);
		c->reading = false;
	}
}

/* --- writing ------------------------------------------------------------------------- */

size_t conn_output_pending(const struct conn *c)
{
	size_t n = c->out.len + c->out_flight.len;
	if (c->tls != NULL)
		n += c->tls->plain_out.len;
	return n;
}

void conn_queue_wire(struct conn *c, const void *data, size_t len)
{
	if (buf_append(&c->out, data, len) < 0)
		log_panic("conn: output buffer overflow");
}

static void conn_shutdown_write(struct conn *c);

/* Everything queued has been written. */
static void conn_output_idle(struct conn *c)
{
	if (c->tls != NULL && c->tls->phase == TLS_PHASE_FLUSH_PLAIN && c->state == CONN_OPEN)
		conn_tls_plain_flushed(c);
	else if (c->state == CONN_CLOSING)
		conn_shutdown_write(c);
}

static void conn_on_write(uv_write_t *req, int status)
{
	struct conn *c = container_of(req, struct conn, write_req);
	c->writing = false;
	buf_reset(&c->out_flight);
	if (c->out_flight.cap > 4 * CONN_READ_CHUNK)
		buf_free(&c->out_flight); /* give a burst's memory back */
	if (c->state == CONN_CLOSED)
		return;
	if (status < 0) {
		log_debug("conn %llu: write: %s", (unsigned long long)c->id, uv_strerror(status));
		conn_destroy(c);
		return;
	}
	conn_flush(c);
	if (c->want_drain && c->state == CONN_OPEN &&
	    conn_output_pending(c) <= c->limits.output_lowat) {
		c->want_drain = false;
		if (c->ops->on_drain != NULL)
			c->ops->on_drain(c);
	}
}

void conn_flush(struct conn *c)
{
	if (c->writing || c->state == CONN_CONNECTING || c->state == CONN_CLOSED)
		return;
	if (c->out.len == 0) {
		conn_output_idle(c);
		return;
	}
	/* Swap the queue into the in-flight slot: one write at a time, coalescing the rest. */
	struct buf tmp = c->out_flight;
	c->out_flight = c->out;
	c->out = tmp;
	uv_buf_t b = uv_buf_init(c->out_flight.data, (unsigned)c->out_flight.len);
	int r = uv_write(&c->write_req, &c->h.stream, &b, 1, conn_on_write);
	if (r < 0) {
		log_debug("conn %llu: write: %s", (unsigned long long)c->id, uv_strerror(r));
		buf_reset(&c->out_flight);
		conn_destroy(c);
		return;
	}
	c->writing = true;
}

int conn_write(struct conn *c, const void *data, size_t len)
{
	if (c->state >= CONN_CLOSING)
		return -1;
	if (len > c->limits.max_output || conn_output_pending(c) > c->limits.max_output - len) {
		log_warn("conn %llu: output queue over %zu bytes to %s; closing",
		         (unsigned long long)c->id, c->limits.max_output, c->peer_ip);
		conn_abort(c);
		return -1;
	}
	if (len > 0) {
		if (c->tls != NULL) {
			if (conn_tls_write(c, data, len) < 0)
				return -1;
		} else {
			conn_queue_wire(c, data, len);
		}
		conn_flush(c);
	}
	if (c->state >= CONN_CLOSING)
		return -1;
	if (conn_output_pending(c) > c->limits.output_lowat) {
		c->want_drain = true;
		return 1;
	}
	return 0;
}

int conn_write_str(struct conn *c, const char *s)
{
	return conn_write(c, s, strlen(s));
}

int conn_printf(struct conn *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = xvasprintf(fmt, ap);
	va_end(ap);
	int r = conn_write(c, s, strlen(s));
	free(s);
	return r;
}

/* --- opening ------------------------------------------------------------------------- */

void conn_notify_open(struct conn *c)
{
	c->state = CONN_OPEN;
	c->notify_close = true;
	conn_arm_idle_timer(c);
	if (c->ops->on_open != NULL)
		c->ops->on_open(c);
}

void conn_start_server(struct conn *c, struct tls_ctx *implicit_tls)
{
	if (c->limits.session_ms > 0)
		uv_timer_start(&c->session_timer, conn_on_session_timer, c->limits.session_ms, 0);
	if (implicit_tls != NULL) {
		c->state = CONN_HANDSHAKE;
		if (conn_tls_setup(c, implicit_tls, true, TLS_PHASE_HANDSHAKE, NULL) < 0) {
			conn_destroy(c);
			return;
		}
		c->tls->implicit = true;
		conn_arm_handshake_timer(c);
	} else {
		conn_notify_open(c);
	}
	conn_process(c);
}

void conn_start_client(struct conn *c)
{
	conn_fill_addresses(c);
	if (c->limits.session_ms > 0)
		uv_timer_start(&c->session_timer, conn_on_session_timer, c->limits.session_ms, 0);
	conn_notify_open(c);
	if (c->state != CONN_OPEN)
		return;
	conn_flush(c);
	conn_process(c);
}

void conn_reject(struct conn *c, const char *banner)
{
	if (banner != NULL && banner[0] != '\0') {
		/* A fresh socket has an empty send buffer: this never blocks and rarely
		 * writes short; when it does, the peer just misses the banner. */
		uv_buf_t b = uv_buf_init((char *)banner, (unsigned)strlen(banner));
		(void)uv_try_write(&c->h.stream, &b, 1);
	}
	c->notify_close = false;
	conn_destroy(c);
}

/* --- closing ------------------------------------------------------------------------- */

static void conn_on_handle_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	if (--c->handles_open > 0)
		return;
	if (c->notify_close) {
		c->notify_close = false;
		if (c->ops->on_close != NULL)
			c->ops->on_close(c);
	}
	if (c->listener != NULL)
		listener_conn_gone(c->listener, c);
	if (c->all_next != NULL)
		c->all_next->all_prev = c->all_prev;
	*c->all_prev = c->all_next;
	conn_tls_free(c);
	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->out_flight);
	free(c);
}

static void conn_close_handle(struct conn *c, uv_handle_t *h)
{
	h->data = c;
	uv_close(h, conn_on_handle_closed);
}

void conn_destroy(struct conn *c)
{
	if (c->state == CONN_CLOSED)
		return;
	c->state = CONN_CLOSED;
	c->reading = false;
	conn_close_handle(c, &c->h.handle);
	conn_close_handle(c, (uv_handle_t *)&c->idle_timer);
	conn_close_handle(c, (uv_handle_t *)&c->session_timer);
	conn_close_handle(c, (uv_handle_t *)&c->kick);
}

static void conn_on_shutdown(uv_shutdown_t *req, int status)
{
	struct conn *c = container_of(req, struct conn, shutdown_req);
	if (c->state == CONN_CLOSED)
		return;
	/* After the peer's own EOF there is nothing left to wait for. */
	if (status < 0 || c->peer_eof)
		conn_destroy(c);
}

static void conn_shutdown_write(struct conn *c)
{
	c->state = CONN_LINGER;
	int r = uv_shutdown(&c->shutdown_req, &c->h.stream, conn_on_shutdown);
	if (r < 0) {
		conn_destroy(c);
		return;
	}
	/* Read (and drop) until the peer's FIN, so unread input never turns into an RST
	 * that could destroy our last reply in flight. */
	if (!c->peer_eof)
		conn_update_reading(c);
}

void conn_close(struct conn *c)
{
	if (c->state >= CONN_CLOSING)
		return;
	if (c->state == CONN_CONNECTING || c->state == CONN_HANDSHAKE) {
		conn_destroy(c);
		return;
	}
	c->state = CONN_CLOSING;
	uv_timer_stop(&c->idle_timer);
	uv_idle_stop(&c->kick);
	uv_timer_start(&c->session_timer, conn_on_session_timer, CONN_LINGER_MS, 0);
	if (c->reading) {
		uv_read_stop(&c->h.stream);
		c->reading = false;
	}
	if (c->tls != NULL)
		conn_tls_close_notify(c);
	conn_flush(c);
}

void conn_abort(struct conn *c)
{
	conn_destroy(c);
}

unsigned conn_abort_all(uv_loop_t *loop)
{
	unsigned n = 0;
	/* conn_destroy() only starts closing; nothing is unlinked during the walk. */
	for (struct conn *c = conn_all; c != NULL; c = c->all_next) {
		if (c->loop == loop && c->state != CONN_CLOSED) {
			if (c->state <= CONN_OPEN)
				n++; /* a session cut short; closing ones were already done */
			conn_destroy(c);
		}
	}
	return n;
}

unsigned conn_count(uv_loop_t *loop)
{
	unsigned n = 0;
	for (struct conn *c = conn_all; c != NULL; c = c->all_next) {
		if (c->loop == loop)
			n++;
	}
	return n;
}

bool conn_is_closing(const struct conn *c)
{
	return c->state >= CONN_CLOSING;
}

/* --- small accessors ----------------------------------------------------------------- */

void conn_set_data(struct conn *c, void *data)
{
	c->data = data;
}

void *conn_data(const struct conn *c)
{
	return c->data;
}

void conn_pause_read(struct conn *c)
{
	c->paused = true;
}

void conn_resume_read(struct conn *c)
{
	if (!c->paused)
		return;
	c->paused = false;
	if (c->state != CONN_OPEN)
		return;
	/* Deliver what was kept while paused from the loop, never re-entrantly. */
	c->fresh_input = c->in.len > 0;
	uv_idle_start(&c->kick, conn_on_kick);
}

void conn_set_idle_timeout(struct conn *c, uint64_t ms)
{
	c->limits.idle_ms = ms;
	if (c->state == CONN_OPEN && !conn_in_handshake(c))
		conn_arm_idle_timer(c);
}

const char *conn_peer_ip(const struct conn *c)
{
	return c->peer_ip;
}

const char *conn_local_ip(const struct conn *c)
{
	return c->local_ip;
}

int conn_peer_port(const struct conn *c)
{
	return c->peer_port;
}

int conn_local_port(const struct conn *c)
{
	return c->local_port;
}

bool conn_is_loopback(const struct conn *c)
{
	return c->is_unix || net_ip_is_loopback(c->peer_ip);
}

int conn_peer_cred(const struct conn *c, uid_t *uid_r, gid_t *gid_r, pid_t *pid_r)
{
	if (!c->is_unix || !c->have_cred)
		return -1;
	if (uid_r != NULL)
		*uid_r = c->cred_uid;
	if (gid_r != NULL)
		*gid_r = c->cred_gid;
	if (pid_r != NULL)
		*pid_r = c->cred_pid;
	return 0;
}

const char *conn_listener_name(const struct conn *c)
{
	return c->listener != NULL ? listener_name_of(c->listener) : NULL;
}

void *listener_ops_data(const struct conn *c)
{
	return c->listener != NULL ? listener_data_of(c->listener) : NULL;
}

uint64_t conn_id(const struct conn *c)
{
	return c->id;
}

uv_loop_t *conn_loop(const struct conn *c)
{
	return c->loop;
}

int conn_connect_error(const struct conn *c)
{
	return c->connect_error;
}
