/* A line-oriented client link to an authd Unix socket, on raw libuv pipes. */
#include "auth/auth_link.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "auth/auth_proto.h"
#include "base/buf.h"
#include "base/xalloc.h"

struct auth_link {
	uv_pipe_t pipe;
	uv_connect_t connect_req;
	const struct auth_link_ops *ops;
	void *context;
	struct buf in;
	bool connected;
	bool closing;
	/* Set when the link failed by itself: on_closed runs once the handle is closed, so
	 * the owner never sees it from inside one of its own calls. */
	bool report_closed;
	const char *why;
};

#define link_container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

struct link_write {
	uv_write_t req;
	char data[];
};

static void on_handle_closed(uv_handle_t *handle)
{
	struct auth_link *link = handle->data;

	if (link->report_closed)
		link->ops->on_closed(link, link->why, link->context);
	buf_free(&link->in);
	free(link);
}

static void link_shutdown(struct auth_link *link)
{
	if (link->closing)
		return;
	link->closing = true;
	uv_close((uv_handle_t *)&link->pipe, on_handle_closed);
}

static void link_fail(struct auth_link *link, const char *why)
{
	if (link->closing)
		return;
	link->report_closed = true;
	link->why = why;
	link_shutdown(link);
}

void auth_link_close(struct auth_link *link)
{
	link->report_closed = false;
	link_shutdown(link);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *out)
{
	struct auth_link *link = handle->data;
	(void)suggested;

	/* Read straight into the input buffer's spare room (one byte kept for the NUL). */
	size_t room = buf_room(&link->in);
	if (room > 4096)
		room = 4096;
	if (link->in.cap < link->in.len + room + 1) {
		link->in.data = xrealloc(link->in.data, link->in.len + room + 1);
		link->in.cap = link->in.len + room + 1;
	}
	*out = uv_buf_init(link->in.data + link->in.len, (unsigned)room);
}

static void link_parse_lines(struct auth_link *link)
{
	while (!link->closing) {
		char *nl = memchr(link->in.data, '\n', link->in.len);
		if (nl == NULL) {
			if (link->in.len >= AUTH_PROTO_MAX_LINE)
				link_fail(link, "line too long");
			return;
		}
		size_t len = (size_t)(nl - link->in.data);
		*nl = '\0';
		link->ops->on_line(link, link->in.data, len, link->context);
		if (link->closing)
			return;
		buf_consume(&link->in, len + 1);
	}
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b)
{
	struct auth_link *link = stream->data;
	(void)b;

	if (nread < 0) {
		link_fail(link,
		          nread == UV_EOF ? "connection closed by authd" : uv_strerror((int)nread));
		return;
	}
	if (nread == 0)
		return;
	link->in.len += (size_t)nread;
	link->in.data[link->in.len] = '\0';
	link_parse_lines(link);
}

static void on_connect(uv_connect_t *req, int status)
{
	struct auth_link *link = req->data;

	if (link->closing)
		return;
	if (status < 0) {
		link_fail(link, uv_strerror(status));
		return;
	}
	if (uv_read_start((uv_stream_t *)&link->pipe, on_alloc, on_read) < 0) {
		link_fail(link, "read start failed");
		return;
	}
	link->connected = true;
	link->ops->on_connected(link, link->context);
}

struct auth_link *auth_link_connect(uv_loop_t *loop, const char *path,
                                    const struct auth_link_ops *ops, void *context)
{
	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		return NULL;

	struct auth_link *link = xcalloc(1, sizeof(*link));
	link->ops = ops;
	link->context = context;
	buf_init(&link->in, AUTH_PROTO_MAX_LINE + 1);
	uv_pipe_init(loop, &link->pipe, 0);
	link->pipe.data = link;
	link->connect_req.data = link;
	/* libuv reports connect errors through on_connect, asynchronously. */
	uv_pipe_connect(&link->connect_req, &link->pipe, path, on_connect);
	return link;
}

static void on_write(uv_write_t *req, int status)
{
	struct link_write *w = link_container_of(req, struct link_write, req);
	struct auth_link *link = req->handle->data;

	free(w);
	if (status < 0 && status != UV_ECANCELED)
		link_fail(link, uv_strerror(status));
}

int auth_link_write(struct auth_link *link, const void *data, size_t len)
{
	if (!link->connected || link->closing)
		return -1;
	struct link_write *w = xmalloc(sizeof(*w) + len);
	memcpy(w->data, data, len);
	uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
	if (uv_write(&w->req, (uv_stream_t *)&link->pipe, &b, 1, on_write) < 0) {
		free(w);
		link_fail(link, "write failed");
		return -1;
	}
	return 0;
}
