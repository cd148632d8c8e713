/*
 * The auth-userdb client (see userdb_client.h): VERSION handshake, then USER lookups
 * multiplexed by id. authd down, a malformed reply or no reply in time is TEMPFAIL.
 */
#include "auth/userdb_client.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_link.h"
#include "auth/auth_proto.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/xalloc.h"

struct userdb_lookup {
	struct userdb_client *client;
	struct userdb_lookup *prev, *next;
	unsigned id;
	userdb_callback_t *callback;
	void *context;
	char *line; /* the USER line, until it is sent */
	uv_timer_t timer;
	bool fail_pending;
};

struct userdb_client {
	uv_loop_t *loop;
	char *path;
	struct auth_link *link;
	bool ready; /* authd's VERSION arrived */
	unsigned next_id;
	unsigned timeout_ms;
	struct userdb_lookup *lookups;
};

static void on_timer_closed(uv_handle_t *handle)
{
	free(handle->data);
}

/* Frees a lookup that is no longer in the client's list. */
static void lookup_release(struct userdb_lookup *l)
{
	free(l->line);
	l->line = NULL;
	uv_timer_stop(&l->timer);
	uv_close((uv_handle_t *)&l->timer, on_timer_closed);
}

static void lookup_destroy(struct userdb_lookup *l)
{
	struct userdb_client *client = l->client;

	if (l->prev != NULL)
		l->prev->next = l->next;
	else
		client->lookups = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
	lookup_release(l);
}

static void lookup_finish(struct userdb_lookup *l, enum userdb_result result,
                          const struct userdb_reply *reply)
{
	userdb_callback_t *callback = l->callback;
	void *context = l->context;

	lookup_destroy(l);
	callback(result, reply, context);
}

static void on_lookup_timer(uv_timer_t *timer)
{
	struct userdb_lookup *l = timer->data;

	if (!l->fail_pending)
		log_warn("userdb-client: lookup %u to %s timed out", l->id, l->client->path);
	lookup_finish(l, USERDB_TEMPFAIL, NULL);
}

static void client_link_lost(struct userdb_client *client, const char *why)
{
	if (client->link != NULL) {
		auth_link_close(client->link);
		client->link = NULL;
	}
	client->ready = false;
	if (client->lookups != NULL)
		log_warn("userdb-client: %s: %s", client->path, why);
	/* Fail only the lookups that exist now; callbacks may start new ones. */
	struct userdb_lookup *list = client->lookups;
	client->lookups = NULL;
	while (list != NULL) {
		struct userdb_lookup *l = list;
		list = l->next;
		userdb_callback_t *callback = l->callback;
		void *lcontext = l->context;
		lookup_release(l);
		callback(USERDB_TEMPFAIL, NULL, lcontext);
	}
}

static void client_send_queued(struct userdb_client *client)
{
	for (struct userdb_lookup *l = client->lookups; l != NULL; l = l->next) {
		if (l->line == NULL)
			continue;
		char *line = l->line;
		l->line = NULL;
		int r = auth_link_write(client->link, line, strlen(line));
		free(line);
		if (r < 0)
			return;
	}
}

static int parse_u64(const char *s, uint64_t *v_r)
{
	char *end;

	if (s == NULL) {
		*v_r = 0;
		return 0;
	}
	if (*s < '0' || *s > '9')
		return -1;
	*v_r = strtoull(s, &end, 10);
	return *end == '\0' ? 0 : -1;
}

static int client_reply(struct userdb_client *client, char **f, int n)
{
	if (strcmp(f[0], "VERSION") == 0) {
		if (n < 3 || strcmp(f[1], "1") != 0)
			return -1;
		client->ready = true;
		client_send_queued(client);
		return 0;
	}
	if (!client->ready)
		return -1;
	if (strcmp(f[0], "SPID") == 0)
		return 0;
	bool user = strcmp(f[0], "USER") == 0, notfound = strcmp(f[0], "NOTFOUND") == 0;
	if ((!user && !notfound && strcmp(f[0], "FAIL") != 0) || n < 2)
		return -1;
	unsigned id;
	if (auth_parse_uint(f[1], &id) < 0)
		return -1;
	for (int i = 2; i < n; i++) {
		if (auth_tab_unescape(f[i]) < 0)
			return -1;
	}
	struct userdb_lookup *l = client->lookups;
	while (l != NULL && (l->id != id || l->line != NULL))
		l = l->next;
	if (l == NULL)
		return 0; /* an aborted lookup */
	if (notfound) {
		lookup_finish(l, USERDB_NOTFOUND, NULL);
		return 0;
	}
	if (!user || n < 3) {
		lookup_finish(l, USERDB_TEMPFAIL, NULL);
		return 0;
	}
	struct userdb_reply reply = {.user = f[2]};
	reply.home = auth_field_find(f + 3, (size_t)n - 3, "home");
	if (reply.home == NULL || reply.home[0] != '/' ||
	    parse_u64(auth_field_find(f + 3, (size_t)n - 3, "quota_bytes"), &reply.quota_bytes) <
	        0 ||
	    parse_u64(auth_field_find(f + 3, (size_t)n - 3, "quota_messages"),
	              &reply.quota_messages) < 0) {
		log_warn("userdb-client: %s: bad USER reply for id %u", client->path, id);
		lookup_finish(l, USERDB_TEMPFAIL, NULL);
		return 0;
	}
	lookup_finish(l, USERDB_FOUND, &reply);
	return 0;
}

static void on_link_line(struct auth_link *link, char *line, size_t len, void *context)
{
	struct userdb_client *client = context;
	char *f[AUTH_PROTO_MAX_FIELDS];
	(void)link;

	int n = strlen(line) == len ? auth_split_fields(line, f, AUTH_PROTO_MAX_FIELDS) : -1;
	if (n <= 0 || client_reply(client, f, n) < 0)
		client_link_lost(client, "unexpected reply from authd");
}

static void on_link_connected(struct auth_link *link, void *context)
{
	(void)context;
	(void)auth_link_write(link, "VERSION\t1\t0\n", 12);
}

static void on_link_closed(struct auth_link *link, const char *why, void *context)
{
	struct userdb_client *client = context;
	(void)link;

	client->link = NULL;
	client_link_lost(client, why);
}

static const struct auth_link_ops userdb_link_ops = {
    .on_connected = on_link_connected,
    .on_line = on_link_line,
    .on_closed = on_link_closed,
};

struct userdb_client *userdb_client_new(uv_loop_t *loop, const char *socket_path)
{
	struct userdb_client *client = xcalloc(1, sizeof(*client));

	client->loop = loop;
	client->path = xstrdup(socket_path);
	client->next_id = 1;
	client->timeout_ms = USERDB_CLIENT_DEFAULT_TIMEOUT_MS;
	return client;
}

void userdb_client_set_timeout(struct userdb_client *client, unsigned timeout_ms)
{
	client->timeout_ms = timeout_ms;
}

void userdb_client_free(struct userdb_client **clientp)
{
	struct userdb_client *client = *clientp;

	if (client == NULL)
		return;
	*clientp = NULL;
	while (client->lookups != NULL)
		lookup_destroy(client->lookups);
	if (client->link != NULL)
		auth_link_close(client->link);
	free(client->path);
	free(client);
}

struct userdb_lookup *userdb_client_lookup(struct userdb_client *client, const char *user,
                                           const char *service, userdb_callback_t *callback,
                                           void *context)
{
	struct userdb_lookup *l = xcalloc(1, sizeof(*l));
	struct buf b;

	l->client = client;
	l->callback = callback;
	l->context = context;
	l->id = client->next_id++;
	if (client->next_id == 0)
		client->next_id = 1;
	buf_init(&b, 0);
	buf_printf(&b, "USER\t%u\t", l->id);
	auth_tab_escape(&b, user);
	buf_append_str(&b, "\tservice=");
	auth_tab_escape(&b, service != NULL ? service : "lmtp");
	buf_append_char(&b, '\n');
	l->line = buf_steal(&b);
	uv_timer_init(client->loop, &l->timer);
	l->timer.data = l;
	l->next = client->lookups;
	if (l->next != NULL)
		l->next->prev = l;
	client->lookups = l;

	if (client->link == NULL) {
		client->link =
		    auth_link_connect(client->loop, client->path, &userdb_link_ops, client);
		if (client->link == NULL) {
			l->fail_pending = true;
			uv_timer_start(&l->timer, on_lookup_timer, 0, 0);
			return l;
		}
	}
	uv_timer_start(&l->timer, on_lookup_timer, client->timeout_ms, 0);
	if (client->ready)
		client_send_queued(client);
	return l;
}

void userdb_lookup_abort(struct userdb_lookup **lp)
{
	if (*lp == NULL)
		return;
	lookup_destroy(*lp);
	*lp = NULL;
}
