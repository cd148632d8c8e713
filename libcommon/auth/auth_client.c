/*
 * The auth-client side of the Dovecot auth protocol (see auth_client.h): one link to
 * authd, a handshake (VERSION/CPID out; VERSION, MECH..., DONE in), then any number of
 * AUTH requests multiplexed by id. Every way authd can misbehave ends a request with
 * TEMPFAIL: the link drops, a reply is malformed, or no reply comes in time.
 */
#include "auth/auth_client.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth_link.h"
#include "auth/auth_proto.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/xalloc.h"

enum client_state {
	CLIENT_DOWN,
	CLIENT_HANDSHAKE, /* connecting, or waiting for DONE */
	CLIENT_READY,
};

struct auth_request {
	struct auth_client *client;
	struct auth_request *prev, *next;
	unsigned id;
	auth_callback_t *callback;
	void *context;
	char *auth_line; /* the AUTH line, until it is sent */
	uv_timer_t timer;
	/* A failure decided outside the loop's callbacks, reported from a zero timer. */
	bool fail_pending;
};

struct auth_client {
	uv_loop_t *loop;
	char *path;
	struct auth_link *link;
	enum client_state state;
	bool got_version;
	unsigned next_id;
	unsigned timeout_ms;
	struct auth_request *requests; /* every unfinished request */
	struct auth_mech *mechs;
	size_t n_mechs;
	/* Mechanisms being collected during a handshake. */
	struct auth_mech *new_mechs;
	size_t n_new_mechs;
	/* After the link is lost, reconnect on a timer (1 s doubling to 30 s) so the
	 * mechanism list comes back without waiting for a request. Unreferenced: it never
	 * keeps the loop alive on its own. */
	uv_timer_t *retry_timer;
	unsigned retry_ms;
	bool wanted; /* someone asked to connect at least once */
};

#define AUTH_CLIENT_RETRY_MIN_MS 1000
#define AUTH_CLIENT_RETRY_MAX_MS 30000

static void free_mechs(struct auth_mech **mechs, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		free((char *)(*mechs)[i].name);
	free(*mechs);
	*mechs = NULL;
	*n = 0;
}

static void on_request_timer_closed(uv_handle_t *handle)
{
	free(handle->data);
}

static void request_unlink(struct auth_request *req)
{
	struct auth_client *client = req->client;

	if (req->prev != NULL)
		req->prev->next = req->next;
	else
		client->requests = req->next;
	if (req->next != NULL)
		req->next->prev = req->prev;
	req->prev = req->next = NULL;
}

static void request_destroy(struct auth_request *req)
{
	request_unlink(req);
	free(req->auth_line);
	req->auth_line = NULL;
	uv_timer_stop(&req->timer);
	uv_close((uv_handle_t *)&req->timer, on_request_timer_closed);
}

/* Ends a request with a final result: the callback runs, then the request is freed. */
static void request_finish(struct auth_request *req, enum auth_result result, const char *data)
{
	auth_callback_t *callback = req->callback;
	void *context = req->context;

	request_destroy(req);
	callback(result, data, context);
}

static void on_request_timer(uv_timer_t *timer)
{
	struct auth_request *req = timer->data;

	if (!req->fail_pending)
		log_warn("auth-client: request %u to %s timed out", req->id, req->client->path);
	request_finish(req, AUTH_RESULT_TEMPFAIL, NULL);
}

static void request_arm_timer(struct auth_request *req)
{
	uv_timer_start(&req->timer, on_request_timer, req->client->timeout_ms, 0);
}

static void request_fail_later(struct auth_request *req)
{
	req->fail_pending = true;
	uv_timer_start(&req->timer, on_request_timer, 0, 0);
}

static void on_retry_timer(uv_timer_t *timer)
{
	auth_client_connect(timer->data);
}

static void on_retry_timer_closed(uv_handle_t *handle)
{
	free(handle);
}

/* The link is gone: every request fails temporarily. Callbacks may begin new requests,
 * which then start a fresh connection. */
static void client_link_lost(struct auth_client *client, const char *why)
{
	struct auth_request *list = client->requests;

	if (client->link != NULL) {
		auth_link_close(client->link);
		client->link = NULL;
	}
	client->state = CLIENT_DOWN;
	client->got_version = false;
	free_mechs(&client->mechs, &client->n_mechs);
	free_mechs(&client->new_mechs, &client->n_new_mechs);
	if (list != NULL)
		log_warn("auth-client: %s: %s", client->path, why);
	if (client->wanted) {
		client->retry_ms = client->retry_ms == 0 ? AUTH_CLIENT_RETRY_MIN_MS
		                   : client->retry_ms * 2 > AUTH_CLIENT_RETRY_MAX_MS
		                       ? AUTH_CLIENT_RETRY_MAX_MS
		                       : client->retry_ms * 2;
		uv_timer_start(client->retry_timer, on_retry_timer, client->retry_ms, 0);
	}
	client->requests = NULL;
	while (list != NULL) {
		struct auth_request *req = list;
		list = req->next;
		req->prev = req->next = NULL;
		/* Not in the client's list any more: unlink would touch the new list. */
		auth_callback_t *callback = req->callback;
		void *context = req->context;
		free(req->auth_line);
		req->auth_line = NULL;
		uv_timer_stop(&req->timer);
		uv_close((uv_handle_t *)&req->timer, on_request_timer_closed);
		callback(AUTH_RESULT_TEMPFAIL, NULL, context);
	}
}

static void client_send_queued(struct auth_client *client)
{
	for (struct auth_request *req = client->requests; req != NULL; req = req->next) {
		if (req->auth_line == NULL)
			continue;
		char *line = req->auth_line;
		req->auth_line = NULL;
		int r = auth_link_write(client->link, line, strlen(line));
		free(line);
		if (r < 0)
			return; /* the link failed; on_closed handles the requests */
	}
}

static struct auth_request *client_find(struct auth_client *client, const char *id_str)
{
	unsigned id;

	if (auth_parse_uint(id_str, &id) < 0)
		return NULL;
	for (struct auth_request *req = client->requests; req != NULL; req = req->next) {
		if (req->id == id && req->auth_line == NULL)
			return req;
	}
	return NULL;
}

static int client_handshake_line(struct auth_client *client, char **f, int n)
{
	if (strcmp(f[0], "VERSION") == 0) {
		if (n < 3 || strcmp(f[1], "1") != 0)
			return -1;
		client->got_version = true;
		return 0;
	}
	if (!client->got_version)
		return -1; /* VERSION must come first */
	if (strcmp(f[0], "MECH") == 0) {
		if (n < 2 || auth_tab_unescape(f[1]) < 0 || f[1][0] == '\0')
			return -1;
		bool private = false, plaintext = false;
		for (int i = 2; i < n; i++) {
			private |= strcmp(f[i], "private") == 0;
			plaintext |= strcmp(f[i], "plaintext") == 0;
		}
		if (private || client->n_new_mechs >= 32)
			return 0;
		client->new_mechs = xreallocarray(client->new_mechs, client->n_new_mechs + 1,
		                                  sizeof(*client->new_mechs));
		client->new_mechs[client->n_new_mechs++] =
		    (struct auth_mech){.name = xstrdup(f[1]), .plaintext = plaintext};
		return 0;
	}
	if (strcmp(f[0], "DONE") == 0) {
		free_mechs(&client->mechs, &client->n_mechs);
		client->mechs = client->new_mechs;
		client->n_mechs = client->n_new_mechs;
		client->new_mechs = NULL;
		client->n_new_mechs = 0;
		client->state = CLIENT_READY;
		client->retry_ms = 0;
		client_send_queued(client);
		return 0;
	}
	/* SPID, CUID, COOKIE and anything newer: unknown handshake lines are ignored. */
	return 0;
}

static int client_reply_line(struct auth_client *client, char **f, int n)
{
	if (n < 2)
		return -1;
	bool ok = strcmp(f[0], "OK") == 0, fail = strcmp(f[0], "FAIL") == 0;
	bool cont = strcmp(f[0], "CONT") == 0;
	if (!ok && !fail && !cont)
		return -1;
	for (int i = 2; i < n; i++) {
		if (auth_tab_unescape(f[i]) < 0)
			return -1;
	}
	struct auth_request *req = client_find(client, f[1]);
	if (req == NULL) {
		unsigned id;
		/* A well-formed reply to an aborted request is fine; a bad id is not. */
		return auth_parse_uint(f[1], &id) < 0 ? -1 : 0;
	}
	if (cont) {
		const char *data = n >= 3 ? f[2] : "";
		request_arm_timer(req);
		req->callback(AUTH_RESULT_CONTINUE, data, req->context);
		return 0;
	}
	if (fail) {
		const char *code = auth_field_find(f + 2, (size_t)n - 2, "code");
		bool temp = auth_field_find(f + 2, (size_t)n - 2, "temp") != NULL ||
		            (code != NULL && strcmp(code, "temp_fail") == 0);
		const char *reason = auth_field_find(f + 2, (size_t)n - 2, "reason");
		if (temp)
			request_finish(req, AUTH_RESULT_TEMPFAIL, NULL);
		else
			request_finish(req, AUTH_RESULT_FAIL, reason);
		return 0;
	}
	const char *user = auth_field_find(f + 2, (size_t)n - 2, "user");
	if (user == NULL || user[0] == '\0') {
		/* Postfix refuses this too ("missing Dovecot server OK username field"). */
		log_warn("auth-client: %s: OK without user=", client->path);
		request_finish(req, AUTH_RESULT_TEMPFAIL, NULL);
		return 0;
	}
	/* protocols.md 3.1: an OK with nologin or proxy means deny. */
	if (auth_field_find(f + 2, (size_t)n - 2, "nologin") != NULL ||
	    auth_field_find(f + 2, (size_t)n - 2, "proxy") != NULL) {
		request_finish(req, AUTH_RESULT_FAIL,
		               auth_field_find(f + 2, (size_t)n - 2, "reason"));
		return 0;
	}
	request_finish(req, AUTH_RESULT_OK, user);
	return 0;
}

static void on_link_line(struct auth_link *link, char *line, size_t len, void *context)
{
	struct auth_client *client = context;
	char *f[AUTH_PROTO_MAX_FIELDS];
	(void)link;

	int n = strlen(line) == len ? auth_split_fields(line, f, AUTH_PROTO_MAX_FIELDS) : -1;
	int r = -1;
	if (n > 0)
		r = client->state == CLIENT_READY ? client_reply_line(client, f, n)
		                                  : client_handshake_line(client, f, n);
	if (r < 0)
		client_link_lost(client, "unexpected reply from authd");
}

static void on_link_connected(struct auth_link *link, void *context)
{
	char hello[64];
	(void)context;

	int n = snprintf(hello, sizeof(hello), "VERSION\t1\t2\nCPID\t%ld\n", (long)getpid());
	(void)auth_link_write(link, hello, (size_t)n);
}

static void on_link_closed(struct auth_link *link, const char *why, void *context)
{
	struct auth_client *client = context;
	(void)link;

	client->link = NULL;
	client_link_lost(client, why);
}

static const struct auth_link_ops client_link_ops = {
    .on_connected = on_link_connected,
    .on_line = on_link_line,
    .on_closed = on_link_closed,
};

void auth_client_connect(struct auth_client *client)
{
	client->wanted = true;
	if (client->state != CLIENT_DOWN)
		return;
	uv_timer_stop(client->retry_timer);
	client->link = auth_link_connect(client->loop, client->path, &client_link_ops, client);
	if (client->link != NULL)
		client->state = CLIENT_HANDSHAKE;
}

struct auth_client *auth_client_new(uv_loop_t *loop, const char *socket_path)
{
	struct auth_client *client = xcalloc(1, sizeof(*client));

	client->loop = loop;
	client->path = xstrdup(socket_path);
	client->timeout_ms = AUTH_CLIENT_DEFAULT_TIMEOUT_MS;
	client->next_id = 1;
	client->retry_timer = xcalloc(1, sizeof(*client->retry_timer));
	uv_timer_init(loop, client->retry_timer);
	uv_unref((uv_handle_t *)client->retry_timer);
	client->retry_timer->data = client;
	return client;
}

void auth_client_set_timeout(struct auth_client *client, unsigned timeout_ms)
{
	client->timeout_ms = timeout_ms;
}

void auth_client_free(struct auth_client **clientp)
{
	struct auth_client *client = *clientp;

	if (client == NULL)
		return;
	*clientp = NULL;
	while (client->requests != NULL)
		request_destroy(client->requests);
	if (client->link != NULL)
		auth_link_close(client->link);
	uv_timer_stop(client->retry_timer);
	uv_close((uv_handle_t *)client->retry_timer, on_retry_timer_closed);
	free_mechs(&client->mechs, &client->n_mechs);
	free_mechs(&client->new_mechs, &client->n_new_mechs);
	free(client->path);
	free(client);
}

bool auth_client_is_ready(const struct auth_client *client)
{
	return client->state == CLIENT_READY;
}

size_t auth_client_mechs(struct auth_client *client, const struct auth_mech **mechs_r)
{
	/* Asking for the mechanisms is a reason to (re)connect: the answer comes soon. */
	if (client->state == CLIENT_DOWN)
		auth_client_connect(client);
	*mechs_r = client->mechs;
	return client->state == CLIENT_READY ? client->n_mechs : 0;
}

static void append_param(struct buf *b, const char *key, const char *value)
{
	if (value == NULL)
		return;
	buf_printf(b, "\t%s=", key);
	auth_tab_escape(b, value);
}

static char *build_auth_line(const struct auth_request_info *info, unsigned id)
{
	struct buf b;

	buf_init(&b, 0);
	buf_printf(&b, "AUTH\t%u\t", id);
	auth_tab_escape(&b, info->mech);
	append_param(&b, "service", info->service != NULL ? info->service : "smtp");
	if (info->nologin)
		buf_append_str(&b, "\tnologin");
	append_param(&b, "lip", info->local_ip);
	append_param(&b, "rip", info->remote_ip);
	if (info->local_port > 0)
		buf_printf(&b, "\tlport=%d", info->local_port);
	if (info->remote_port > 0)
		buf_printf(&b, "\trport=%d", info->remote_port);
	if (info->secured)
		buf_append_str(&b, "\tsecured");
	/* resp= must be the last parameter. */
	append_param(&b, "resp", info->initial_response_b64);
	buf_append_char(&b, '\n');
	return buf_steal(&b);
}

struct auth_request *auth_client_begin(struct auth_client *client,
                                       const struct auth_request_info *info,
                                       auth_callback_t *callback, void *context)
{
	struct auth_request *req = xcalloc(1, sizeof(*req));

	req->client = client;
	req->callback = callback;
	req->context = context;
	req->id = client->next_id++;
	if (client->next_id == 0)
		client->next_id = 1;
	uv_timer_init(client->loop, &req->timer);
	req->timer.data = req;
	req->auth_line = build_auth_line(info, req->id);
	req->next = client->requests;
	if (req->next != NULL)
		req->next->prev = req;
	client->requests = req;

	auth_client_connect(client);
	if (client->state == CLIENT_DOWN) {
		request_fail_later(req);
		return req;
	}
	request_arm_timer(req);
	if (client->state == CLIENT_READY)
		client_send_queued(client);
	return req;
}

void auth_request_continue(struct auth_request *req, const char *response_b64)
{
	struct auth_client *client = req->client;
	struct buf b;

	if (client->link == NULL || client->state != CLIENT_READY) {
		request_fail_later(req);
		return;
	}
	buf_init(&b, 0);
	buf_printf(&b, "CONT\t%u\t", req->id);
	auth_tab_escape(&b, response_b64);
	buf_append_char(&b, '\n');
	request_arm_timer(req);
	int r = auth_link_write(client->link, b.data, b.len);
	secure_zero(b.data, b.len);
	buf_free(&b);
	if (r < 0)
		request_fail_later(req);
}

void auth_request_abort(struct auth_request **reqp)
{
	struct auth_request *req = *reqp;

	if (req == NULL)
		return;
	*reqp = NULL;
	struct auth_client *client = req->client;
	if (req->auth_line == NULL && client->link != NULL && client->state == CLIENT_READY &&
	    !req->fail_pending) {
		char line[32];
		int n = snprintf(line, sizeof(line), "CANCEL\t%u\n", req->id);
		(void)auth_link_write(client->link, line, (size_t)n);
	}
	request_destroy(req);
}
