/*
 * `ternctl auth test USER [PASSWORD]`: authenticates USER with PLAIN through authd's
 * auth-client socket, the same path smtpd and imapd take (like `doveadm auth test`).
 */
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <uv.h>

#include "auth/auth_client.h"
#include "auth/base64.h"
#include "base/buf.h"
#include "base/xalloc.h"
#include "commands.h"
#include "config/config.h"
#include "ternctl_auth.h"

struct auth_test {
	int done;
	enum auth_result result;
	char *data;
};

static void on_auth(enum auth_result result, const char *data, void *context)
{
	struct auth_test *t = context;
	t->result = result;
	t->done = 1;
	free(t->data);
	t->data = data != NULL ? xstrdup(data) : NULL;
}

int cmd_auth(struct ternctl *ctl, int argc, char **argv)
{
	if (argc < 3 || argc > 4 || strcmp(argv[1], "test") != 0) {
		ternctl_print_usage(ctl->err, ternctl_find_command("auth"));
		return EX_USAGE;
	}
	const struct config *cfg = ternctl_config(ctl);
	if (cfg == NULL)
		return EX_CONFIG;
	const char *user = argv[2];
	char *password =
	    argc == 4 ? xstrdup(argv[3]) : ternctl_read_password(ctl->err, "Password: ", 0);
	if (password == NULL)
		return EX_DATAERR;

	/* PLAIN: authzid NUL authcid NUL password (RFC 4616). */
	struct buf raw, resp;
	buf_init(&raw, 0);
	buf_init(&resp, 0);
	buf_append_char(&raw, '\0');
	buf_append_str(&raw, user);
	buf_append_char(&raw, '\0');
	buf_append_str(&raw, password);
	base64_encode(&resp, raw.data, raw.len);
	secure_zero(raw.data, raw.len);
	secure_zero(password, strlen(password));
	free(password);

	uv_loop_t loop;
	struct auth_test t = {0};
	uv_loop_init(&loop);
	const char *socket_path = config_str(cfg, "authd", "auth_socket");
	struct auth_client *client = auth_client_new(&loop, socket_path);
	struct auth_request_info info = {.mech = "PLAIN",
	                                 .service = "ternctl",
	                                 .nologin = true,
	                                 .secured = true,
	                                 .initial_response_b64 = buf_cstr(&resp)};
	auth_client_begin(client, &info, on_auth, &t);
	while (!t.done && uv_run(&loop, UV_RUN_ONCE) != 0)
		;
	auth_client_free(&client);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	secure_zero(resp.data, resp.len);
	buf_free(&raw);
	buf_free(&resp);

	int ret;
	if (t.done && t.result == AUTH_RESULT_OK) {
		fprintf(ctl->out, "auth succeeded: user=%s\n", t.data);
		ret = EX_OK;
	} else if (t.done && t.result == AUTH_RESULT_FAIL) {
		fprintf(ctl->out, "auth failed%s%s\n", t.data != NULL ? ": " : "",
		        t.data != NULL ? t.data : "");
		ret = EX_NOPERM;
	} else {
		fprintf(ctl->err, "ternctl: authd is not answering on %s\n", socket_path);
		ret = EX_TEMPFAIL;
	}
	free(t.data);
	return ret;
}
