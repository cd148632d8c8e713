/* The blocking LMTP client of the sendmail command (see lmtp_client.h). */
#include "lmtp_client.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/xalloc.h"

int lmtp_client_connect(struct lmtp_client *c, const char *path, int timeout_ms, char **error_r)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->timeout_ms = timeout_ms;
	buf_init(&c->in, LMTP_CLIENT_MAX_REPLY);
	buf_init(&c->out, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path)) {
		*error_r = xasprintf("%s: socket path too long", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		*error_r = xasprintf("connect to %s: %s", path, strerror(errno));
		return -1;
	}
	struct buf reply;
	buf_init(&reply, 0);
	int code = lmtp_client_reply(c, &reply, error_r);
	if (code != 220 && code >= 0)
		*error_r = xasprintf("%s: %s", path, buf_cstr(&reply));
	buf_free(&reply);
	return code == 220 ? 0 : -1;
}

static int fill(struct lmtp_client *c, char **error_r)
{
	struct pollfd p = {.fd = c->fd, .events = POLLIN};
	int r = poll(&p, 1, c->timeout_ms);
	if (r == 0) {
		*error_r = xstrdup("timeout waiting for deliverd");
		return -1;
	}
	if (r < 0) {
		*error_r = xasprintf("poll: %s", strerror(errno));
		return -1;
	}
	char chunk[4096];
	size_t room = buf_room(&c->in);
	if (room == 0) {
		*error_r = xstrdup("reply too long");
		return -1;
	}
	ssize_t n = read(c->fd, chunk, room < sizeof(chunk) ? room : sizeof(chunk));
	if (n < 0 && errno == EINTR)
		return 0;
	if (n <= 0) {
		*error_r = xstrdup(n == 0 ? "deliverd closed the connection" : strerror(errno));
		return -1;
	}
	buf_append(&c->in, chunk, (size_t)n);
	return 0;
}

int lmtp_client_reply(struct lmtp_client *c, struct buf *reply, char **error_r)
{
	buf_reset(reply);
	for (;;) {
		char *nl = memchr(c->in.data != NULL ? c->in.data : "", '\n', c->in.len);
		if (nl == NULL) {
			if (fill(c, error_r) < 0)
				return -1;
			continue;
		}
		size_t len = (size_t)(nl - c->in.data);
		if (len > 0 && c->in.data[len - 1] == '\r')
			len--;
		if (len < 3 || !isdigit((unsigned char)c->in.data[0]) ||
		    !isdigit((unsigned char)c->in.data[1]) ||
		    !isdigit((unsigned char)c->in.data[2]) ||
		    (len > 3 && c->in.data[3] != ' ' && c->in.data[3] != '-')) {
			*error_r = xstrdup("malformed reply from deliverd");
			return -1;
		}
		bool more = len > 3 && c->in.data[3] == '-';
		int code = (c->in.data[0] - '0') * 100 + (c->in.data[1] - '0') * 10 +
		           (c->in.data[2] - '0');
		if (reply->len > 0)
			buf_append_char(reply, '\n');
		if (buf_append(reply, c->in.data, len) < 0) {
			*error_r = xstrdup("reply too long");
			return -1;
		}
		buf_consume(&c->in, (size_t)(nl - c->in.data) + 1);
		if (!more)
			return code;
	}
}

int lmtp_client_flush(struct lmtp_client *c, char **error_r)
{
	size_t off = 0;
	while (off < c->out.len) {
		ssize_t n = send(c->fd, c->out.data + off, c->out.len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*error_r = xasprintf("write to deliverd: %s", strerror(errno));
			return -1;
		}
		off += (size_t)n;
	}
	buf_reset(&c->out);
	return 0;
}

int lmtp_client_send(struct lmtp_client *c, const void *data, size_t len, char **error_r)
{
	buf_append(&c->out, data, len);
	if (c->out.len >= 64 * 1024)
		return lmtp_client_flush(c, error_r);
	return 0;
}

int lmtp_client_command(struct lmtp_client *c, const char *line, struct buf *reply, char **error_r)
{
	if (lmtp_client_send(c, line, strlen(line), error_r) < 0 ||
	    lmtp_client_send(c, "\r\n", 2, error_r) < 0 || lmtp_client_flush(c, error_r) < 0)
		return -1;
	return lmtp_client_reply(c, reply, error_r);
}

void lmtp_client_close(struct lmtp_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	buf_free(&c->in);
	buf_free(&c->out);
}
