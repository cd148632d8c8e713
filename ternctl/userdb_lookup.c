/* See userdb_lookup.h. */
#include "userdb_lookup.h"

#include <inttypes.h>
#include <stdlib.h>
#include <sysexits.h>
#include <uv.h>

#include "auth/userdb_client.h"
#include "base/buf.h"
#include "base/xalloc.h"
#include "commands.h"
#include "config/config.h"

struct lookup_result {
	int done;
	enum userdb_result result;
	struct buf *text;
	char *home;
};

static void on_lookup(enum userdb_result result, const struct userdb_reply *reply, void *context)
{
	struct lookup_result *lr = context;
	lr->done = 1;
	lr->result = result;
	if (reply != NULL) {
		buf_printf(lr->text,
		           "user=%s\nhome=%s\nquota_bytes=%" PRIu64 "\nquota_messages=%" PRIu64
		           "\n",
		           reply->user, reply->home, reply->quota_bytes, reply->quota_messages);
		lr->home = xstrdup(reply->home);
	}
}

int ternctl_userdb_lookup(struct ternctl *ctl, const char *name, struct buf *text, char **home_r)
{
	const struct config *cfg = ternctl_config(ctl);
	if (cfg == NULL)
		return EX_CONFIG;
	uv_loop_t loop;
	struct lookup_result lr = {.text = text};
	uv_loop_init(&loop);
	struct userdb_client *client =
	    userdb_client_new(&loop, config_str(cfg, "authd", "userdb_socket"));
	userdb_client_lookup(client, name, "ternctl", on_lookup, &lr);
	while (!lr.done && uv_run(&loop, UV_RUN_ONCE) != 0)
		;
	userdb_client_free(&client);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	if (lr.done && lr.result == USERDB_FOUND) {
		if (home_r != NULL)
			*home_r = lr.home;
		else
			free(lr.home);
		return EX_OK;
	}
	free(lr.home);
	if (lr.done && lr.result == USERDB_NOTFOUND) {
		fprintf(ctl->err, "ternctl: user %s not found\n", name);
		return EX_NOUSER;
	}
	fprintf(ctl->err, "ternctl: authd's userdb socket %s is not answering\n",
	        config_str(cfg, "authd", "userdb_socket"));
	return EX_UNAVAILABLE;
}
