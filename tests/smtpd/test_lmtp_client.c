/*
 * The LMTP hand-off over a real Unix socket: a scripted LMTP server (as deliverd answers)
 * on the libuv loop, a session driven by transcript, and the real lmtp_client. Checks the
 * wire (LHLO, parameters filtered by capabilities, dot-stuffing, the final dot), one
 * reply per recipient, and that every failure (no server, drop mid-message, garbage) is a
 * 4xx to the client, never a 250.
 */
#include <sys/stat.h>
#include <unistd.h>

#include "lmtp_client.h"
#include "net/conn.h"
#include "net/listener.h"
#include "smtpd_harness.h"

struct lsrv {
	struct listener *l;
	struct buf wire; /* everything the server received */
	bool in_data;
	unsigned accepted;
	bool drop_in_data, garbage, no_rset;
	int conns, closes;
};

static struct lsrv srv;

static void ls_open(struct conn *c)
{
	srv.conns++;
	srv.accepted = 0;
	srv.in_data = false;
	conn_write_str(c, "220 deliverd LMTP ready\r\n");
}

static void ls_data(struct conn *c, struct buf *in)
{
	while (in->len > 0) {
		const char *lf = memchr(in->data, '\n', in->len);
		if (lf == NULL)
			return;
		size_t n = (size_t)(lf - in->data) + 1;
		buf_append(&srv.wire, in->data, n);
		char *line = xstrndup(in->data, n - 2);
		buf_consume(in, n);
		if (srv.in_data) {
			if (srv.drop_in_data) {
				free(line);
				conn_abort(c);
				return;
			}
			if (strcmp(line, ".") == 0) {
				srv.in_data = false;
				for (unsigned i = 0; i < srv.accepted; i++)
					conn_printf(c, "250 2.0.0 <r%u> Saved\r\n", i);
			}
		} else if (strncmp(line, "LHLO ", 5) == 0) {
			conn_write_str(
			    c, "250-deliverd\r\n250-PIPELINING\r\n250-ENHANCEDSTATUSCODES\r\n"
			       "250 DSN\r\n");
		} else if (strncmp(line, "MAIL ", 5) == 0) {
			conn_write_str(c, srv.garbage ? "hello?\r\n" : "250 2.1.0 Ok\r\n");
		} else if (strncmp(line, "RCPT ", 5) == 0) {
			if (strstr(line, "<nobody@") != NULL) {
				conn_write_str(
				    c, "550 5.1.1 <nobody@example.org> User doesn't exist\r\n");
			} else {
				srv.accepted++;
				conn_write_str(c, "250 2.1.5 Ok\r\n");
			}
		} else if (strcmp(line, "DATA") == 0) {
			srv.in_data = true;
			conn_write_str(c, "354 OK\r\n");
		} else if (strcmp(line, "RSET") == 0 && !srv.no_rset) {
			srv.accepted = 0;
			conn_write_str(c, "250 2.0.0 Ok\r\n");
		} else if (strcmp(line, "QUIT") == 0) {
			conn_write_str(c, "221 2.0.0 Bye\r\n");
			conn_close(c);
		} else {
			conn_write_str(c, "500 5.5.2 what\r\n");
		}
		free(line);
	}
}

static void ls_close(struct conn *c)
{
	(void)c;
	srv.closes++;
}

static const struct conn_ops ls_ops = {
    .on_open = ls_open, .on_data = ls_data, .on_close = ls_close};

struct env {
	uv_loop_t loop;
	char dir[64];
	char path[128];
	struct lmtp_client_config cfg;
	struct harness h;
};

static void env_init(struct env *e, bool with_server)
{
	memset(e, 0, sizeof(*e));
	memset(&srv, 0, sizeof(srv));
	buf_init(&srv.wire, 0);
	uv_loop_init(&e->loop);
	strcpy(e->dir, "/tmp/tern-lmtp-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->path, sizeof(e->path), "%s/lmtp", e->dir);
	if (with_server) {
		char addr[160], *err = NULL;
		snprintf(addr, sizeof(addr), "unix:%s", e->path);
		struct listener_config lc = {
		    .name = "lmtp",
		    .address = addr,
		    .unix_mode = 0600,
		    .ops = &ls_ops,
		    .limits = {.max_input = 65536, .max_output = 1 << 20, .output_lowat = 65536},
		};
		srv.l = listener_start(&e->loop, &lc, &err);
		if (srv.l == NULL)
			fail_msg("listener: %s", err);
	}
	e->cfg.loop = &e->loop;
	e->cfg.socket_path = e->path;
	e->cfg.hostname = "mx.example.org";
	e->cfg.timeout_ms = 5000;
	h_init_role(&e->h, "203.0.113.9", SMTP_ROLE_SMTP);
	e->h.set.max_recipients = 5000;
	e->h.s = smtp_session_new(&e->h.set, &e->h.client, &h_io, &e->h);
	smtp_session_set_delivery(e->h.s, &lmtp_delivery_ops, &e->cfg);
	smtp_session_start(e->h.s);
	free(h_take(&e->h));
}

/* Feeds client bytes, then runs the loop until output ending in want_end appears. */
static char *env_talk(struct env *e, const char *text, const char *want_end)
{
	buf_append(&e->h.in, text, strlen(text));
	smtp_session_input(e->h.s, &e->h.in);
	for (int i = 0; i < 2000; i++) {
		const char *o = buf_cstr(&e->h.out);
		size_t ol = strlen(o), wl = strlen(want_end);
		if (ol >= wl && strcmp(o + ol - wl, want_end) == 0)
			break;
		uv_run(&e->loop, UV_RUN_NOWAIT);
		usleep(1000);
		if (e->h.want_input && e->h.in.len > 0)
			smtp_session_input(e->h.s, &e->h.in);
	}
	return h_take(&e->h);
}

static void env_done(struct env *e)
{
	smtp_session_free(&e->h.s);
	lmtp_client_close_idle(&e->cfg);
	if (srv.l != NULL)
		listener_stop(srv.l);
	for (int i = 0; i < 200 && uv_run(&e->loop, UV_RUN_NOWAIT) != 0; i++)
		usleep(1000);
	h_done(&e->h);
	buf_free(&srv.wire);
	unlink(e->path);
	rmdir(e->dir);
	uv_walk(&e->loop, (uv_walk_cb)(void (*)(void))uv_close, NULL);
	uv_run(&e->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&e->loop), 0);
}

static void test_delivery_over_lmtp(void **state)
{
	struct env e;
	char *out;
	(void)state;
	env_init(&e, true);
	out = env_talk(&e, "EHLO c\r\nMAIL FROM:<a@example.com> BODY=8BITMIME RET=HDRS\r\n",
	               "250 2.1.0 Ok\r\n");
	assert_non_null(strstr(out, "250 2.1.0 Ok\r\n"));
	free(out);
	out = env_talk(&e,
	               "RCPT TO:<t@example.org> NOTIFY=NEVER\r\nRCPT TO:<nobody@example.org>\r\n"
	               "RCPT TO:<u@example.org>\r\nDATA\r\n",
	               "354 End data with <CR><LF>.<CR><LF>\r\n");
	assert_string_equal(out, "250 2.1.5 Ok\r\n550 5.1.1 <nobody@example.org>: Recipient "
	                         "address rejected: User unknown in virtual mailbox table\r\n250 "
	                         "2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n");
	free(out);
	out = env_talk(&e, "Subject: s\r\n\r\n..one dot\r\n.\r\n", "\r\n");
	assert_non_null(strstr(out, "250 2.0.0 Ok: queued as "));
	free(out);
	out = env_talk(&e, "QUIT\r\n", "221 2.0.0 Bye\r\n");
	free(out);
	for (int i = 0; i < 500 && strstr(buf_cstr(&srv.wire), "QUIT\r\n") == NULL; i++) {
		uv_run(&e.loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	const char *w = buf_cstr(&srv.wire);
	/* No 8BITMIME advertised: BODY dropped; DSN advertised: RET and NOTIFY kept. */
	assert_non_null(strstr(w, "LHLO mx.example.org\r\nMAIL FROM:<a@example.com> RET=HDRS\r\n"));
	assert_non_null(strstr(w, "RCPT TO:<t@example.org> NOTIFY=NEVER\r\n"));
	/* The dot is stuffed again on the way out, and the message ends with the dot. */
	assert_non_null(strstr(w, "\r\n\r\n..one dot\r\n.\r\nQUIT\r\n"));
	env_done(&e);
}

static void test_deliverd_down(void **state)
{
	struct env e;
	(void)state;
	env_init(&e, false);
	char *out = env_talk(&e, "HELO c\r\nMAIL FROM:<a@example.com>\r\n", "later\r\n");
	assert_string_equal(out, "250 mx.example.org\r\n451 4.3.0 Error: delivery service "
	                         "unavailable, try again later\r\n");
	free(out);
	env_done(&e);
}

static void test_drop_mid_message(void **state)
{
	struct env e;
	(void)state;
	env_init(&e, true);
	srv.drop_in_data = true;
	char *out = env_talk(&e,
	                     "HELO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<t@example.org>\r\n"
	                     "DATA\r\n",
	                     "<CR><LF>\r\n");
	free(out);
	out = env_talk(&e, "Subject: s\r\n\r\nbody\r\n", "");
	free(out);
	for (int i = 0; i < 100; i++) {
		uv_run(&e.loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	out = env_talk(&e, ".\r\n", "later\r\n");
	assert_true(strncmp(out, "451 4.3.0 Error: delivery service ", 34) == 0);
	free(out);
	env_done(&e);
}

static void test_garbage_reply(void **state)
{
	struct env e;
	(void)state;
	env_init(&e, true);
	srv.garbage = true;
	char *out = env_talk(&e, "HELO c\r\nMAIL FROM:<a@example.com>\r\n", "later\r\n");
	assert_string_equal(out, "250 mx.example.org\r\n451 4.3.0 Error: delivery service "
	                         "unavailable, try again later\r\n");
	free(out);
	env_done(&e);
}

static void test_many_recipients(void **state)
{
	struct env e;
	struct buf cmds;
	(void)state;
	/* More recipients than any fixed reply queue: one final reply each, in order. */
	env_init(&e, true);
	buf_init(&cmds, 0);
	buf_printf(&cmds, "HELO c\r\nMAIL FROM:<a@example.com>\r\n");
	for (int i = 0; i < 1500; i++)
		buf_printf(&cmds, "RCPT TO:<u%d@example.org>\r\n", i);
	buf_printf(&cmds, "DATA\r\n");
	char *out = env_talk(&e, buf_cstr(&cmds), "354 End data with <CR><LF>.<CR><LF>\r\n");
	free(out);
	buf_free(&cmds);
	out = env_talk(&e, "Subject: many\r\n\r\nx\r\n.\r\n", "\r\n");
	for (int i = 0; i < 3000 && strstr(out, "queued as") == NULL; i++) {
		char *more = env_talk(&e, "", "\r\n");
		char *both = xasprintf("%s%s", out, more);
		free(out);
		free(more);
		out = both;
	}
	assert_non_null(strstr(out, "250 2.0.0 Ok: queued as "));
	free(out);
	env_done(&e);
}

static void test_connection_pool(void **state)
{
	struct env e;
	char *out;
	(void)state;
	env_init(&e, true);
	e.cfg.max_idle = 4;
	e.cfg.idle_ms = 60000;
	for (int i = 0; i < 3; i++) {
		out = env_talk(
		    &e,
		    i == 0 ? "HELO c\r\nMAIL FROM:<a@example.com>\r\nRCPT "
		             "TO:<t@example.org>\r\nDATA\r\n"
		           : "MAIL FROM:<a@example.com>\r\nRCPT TO:<t@example.org>\r\nDATA\r\n",
		    "354 End data with <CR><LF>.<CR><LF>\r\n");
		if (strstr(out, "354 ") == NULL)
			fail_msg("round %d: [%s] wire [%s]", i, out, buf_cstr(&srv.wire));
		free(out);
		out = env_talk(&e, "x\r\n.\r\n", "\r\n");
		assert_non_null(strstr(out, "250 2.0.0 Ok: queued as "));
		free(out);
	}
	/* One connection, one LHLO, an RSET after each transaction. */
	for (int i = 0; i < 200 && e.cfg.n_idle == 0; i++) {
		uv_run(&e.loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	assert_int_equal(srv.conns, 1);
	const char *w = buf_cstr(&srv.wire);
	assert_non_null(strstr(w, "\r\n.\r\nRSET\r\nMAIL FROM:<a@example.com>\r\n"));
	assert_null(strstr(strstr(w, "LHLO") + 4, "LHLO"));
	assert_int_equal(e.cfg.n_idle, 1);
	/* A transaction that fails (unknown user only, then RSET by the client) also goes
	 * back clean; a connection dropped by the server while idle leaves the pool. */
	srv.drop_in_data = true;
	out = env_talk(&e, "MAIL FROM:<a@example.com>\r\nRCPT TO:<t@example.org>\r\nDATA\r\n",
	               "<CR><LF>\r\n");
	free(out);
	out = env_talk(&e, "x\r\n.\r\n", "later\r\n");
	assert_true(strncmp(out, "451 4.3.0 ", 10) == 0);
	free(out);
	srv.drop_in_data = false;
	out = env_talk(&e, "MAIL FROM:<a@example.com>\r\nRCPT TO:<t@example.org>\r\nDATA\r\n",
	               "354 End data with <CR><LF>.<CR><LF>\r\n");
	free(out);
	out = env_talk(&e, "y\r\n.\r\n", "\r\n");
	assert_non_null(strstr(out, "250 2.0.0 Ok: queued as "));
	free(out);
	assert_int_equal(srv.conns, 2);
	/* A server that refuses RSET: the transaction that was pipelined behind it gets a
	 * 4xx (never a 250), the connection is dropped, the next one is fresh. */
	for (int j = 0; j < 50; j++) {
		uv_run(&e.loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	srv.no_rset = true;
	/* Round 0 ends with a pause, so its refused RSET closes the connection before round
	 * 1 starts (fresh connection, fine). Round 2 starts right after round 1: its MAIL
	 * is pipelined behind the RSET that fails. Round 3 is on a fresh connection. */
	const char *const want[] = {"250 2.0.0 Ok: queued as ", "250 2.0.0 Ok: queued as ",
	                            "451 4.3.0 ", "250 2.0.0 Ok: queued as "};
	for (int i = 0; i < 4; i++) {
		out = env_talk(&e, "MAIL FROM:<a@example.com>\r\n", "\r\n");
		if (strncmp(out, "250 2.1.0", 9) != 0) {
			if (strncmp(out, want[i], strlen(want[i])) != 0)
				fail_msg("no-RSET round %d: %s", i, out);
			free(out);
			continue;
		}
		free(out);
		out = env_talk(&e, "RCPT TO:<t@example.org>\r\nDATA\r\n",
		               "354 End data with <CR><LF>.<CR><LF>\r\n");
		free(out);
		out = env_talk(&e, "z\r\n.\r\n", "\r\n");
		if (strncmp(out, want[i], strlen(want[i])) != 0)
			fail_msg("no-RSET round %d: %s", i, out);
		free(out);
		for (int j = 0; j < 50 && i != 1; j++) {
			uv_run(&e.loop, UV_RUN_NOWAIT);
			usleep(1000);
		}
	}
	assert_int_equal(srv.conns, 4);
	env_done(&e);
}

static void test_filter_params(void **state)
{
	(void)state;
	char *s =
	    lmtp_filter_params("MAIL FROM:<\"a> b\"@x> BODY=8BITMIME SMTPUTF8 SIZE=10 RET=FULL",
	                       LMTP_CAP_SMTPUTF8 | LMTP_CAP_DSN);
	assert_string_equal(s, "MAIL FROM:<\"a> b\"@x> SMTPUTF8 RET=FULL");
	free(s);
	s = lmtp_filter_params("RCPT TO:<x@y> NOTIFY=NEVER ORCPT=rfc822;x@y", 0);
	assert_string_equal(s, "RCPT TO:<x@y>");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_delivery_over_lmtp), cmocka_unit_test(test_deliverd_down),
	    cmocka_unit_test(test_drop_mid_message),   cmocka_unit_test(test_garbage_reply),
	    cmocka_unit_test(test_many_recipients),    cmocka_unit_test(test_connection_pool),
	    cmocka_unit_test(test_filter_params),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
