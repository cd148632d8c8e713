/* Client connections: conn_connect_unix() and conn_connect_tcp() (see conn.h). */
#include "net/conn_int.h"

#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "base/log.h"

static void conn_on_connect(uv_connect_t *req, int status)
{
	struct conn *c = container_of(req, struct conn, connect_req);
	if (c->state == CONN_CLOSED)
		return; /* aborted while connecting; on_close comes from the close callbacks */
	if (status < 0) {
		c->connect_error = status;
		conn_destroy(c);
		return;
	}
	conn_start_client(c);
}

static struct conn *conn_client_new(uv_loop_t *loop, bool is_unix, const struct conn_ops *ops,
                                    const struct conn_limits *limits, void *data)
{
	struct conn *c = conn_alloc(loop, ops, limits, is_unix);
	c->data = data;
	c->state = CONN_CONNECTING;
	/* From here on a failure is reported through on_close. */
	c->notify_close = true;
	return c;
}

struct conn *conn_connect_unix(uv_loop_t *loop, const char *path, const struct conn_ops *ops,
                               const struct conn_limits *limits, void *data)
{
	struct sockaddr_un sun;
	if (path == NULL || strlen(path) >= sizeof(sun.sun_path))
		return NULL;
	struct conn *c = conn_client_new(loop, true, ops, limits, data);
	uv_pipe_connect(&c->connect_req, &c->h.pipe, path, conn_on_connect);
	return c;
}

struct conn *conn_connect_tcp(uv_loop_t *loop, const char *ip, int port, const struct conn_ops *ops,
                              const struct conn_limits *limits, void *data)
{
	struct sockaddr_storage ss;
	if (port < 0 || port > 65535)
		return NULL;
	if (uv_ip4_addr(ip, port, (struct sockaddr_in *)&ss) != 0 &&
	    uv_ip6_addr(ip, port, (struct sockaddr_in6 *)&ss) != 0)
		return NULL;
	struct conn *c = conn_client_new(loop, false, ops, limits, data);
	int r = uv_tcp_connect(&c->connect_req, &c->h.tcp, (struct sockaddr *)&ss, conn_on_connect);
	if (r < 0) {
		log_debug("connect to %s:%d: %s", ip, port, uv_strerror(r));
		c->notify_close = false;
		conn_destroy(c);
		return NULL;
	}
	return c;
}
