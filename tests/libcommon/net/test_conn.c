/*
 * Connections and listeners over real loopback sockets: a plaintext round trip, output
 * back-pressure and the max_output cap, input overflow, idle and session timeouts,
 * per-IP and global caps, EMFILE survival, Unix sockets with SO_PEERCRED, and client
 * connects that fail.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <poll.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <signal.h>
#include <dirent.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "net_test.h"

/* --- plaintext round trip ------------------------------------------------------------ */

static void *client_round_trip(void *arg)
{
	int port = *(int *)arg;
	int fd = nt_connect(port);
	NT_CHECK(fd >= 0, "connect");
	NT_EXPECT_LINE(fd, "220 hello");
	/* Pipelined commands in one packet, one split mid-line. */
	NT_CHECK(nt_send(fd, "ECHO one\r\nECHO two\r\nECH"), "send");
	NT_EXPECT_LINE(fd, "one");
	NT_EXPECT_LINE(fd, "two");
	NT_CHECK(nt_send(fd, "O three\r\n"), "send");
	NT_EXPECT_LINE(fd, "three");
	/* Byte by byte, each in its own segment. */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (const char *p = "ECHO trickle\r\n"; *p != '\0'; p++) {
		NT_CHECK(send(fd, p, 1, MSG_NOSIGNAL) == 1, "send");
		usleep(1000);
	}
	NT_EXPECT_LINE(fd, "trickle");
	NT_CHECK(nt_send(fd, "bare\nPEER\r\n"), "send");
	NT_EXPECT_LINE(fd, "500 bare CR or LF");
	NT_EXPECT_LINE(fd, "peer=127.0.0.1 loop=1");
	NT_CHECK(nt_send(fd, "TLS\r\nQUIT\r\nECHO after-quit\r\n"), "send");
	NT_EXPECT_LINE(fd, "tls=none none");
	NT_EXPECT_LINE(fd, "221 bye");
	NT_CHECK(nt_read_to_eof(fd) == 0, "data after QUIT or no EOF");
	close(fd);
	return NULL;
}

static void test_plaintext_round_trip(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = {0};
	nt_server_start(&srv, &loop, &cfg);
	const char *err = nt_run_client(&loop, client_round_trip, &srv.port);
	if (err != NULL)
		fail_msg("%s", err);
	assert_string_equal(buf_cstr(&srv.seen),
	                    "ECHO one|ECHO two|ECHO three|ECHO trickle|PEER|TLS|QUIT|");
	assert_int_equal(srv.opens, 1);
	assert_int_equal(listener_conn_count(srv.l) + srv.closes, 1);
	nt_server_finish(&srv);
	assert_int_equal(srv.closes, 1);
}

/* --- pause/resume and half-close ------------------------------------------------------ */

static void *client_async(void *arg)
{
	int port = *(int *)arg;
	int fd = nt_connect(port);
	NT_CHECK(fd >= 0, "connect");
	NT_EXPECT_LINE(fd, "220 hello");
	/* The ECHO behind ASYNC waits, kept in the conn, until the backend answered. */
	NT_CHECK(nt_send(fd, "ASYNC 100\r\nECHO after\r\nECHO last\r\n"), "send");
	NT_EXPECT_LINE(fd, "async done");
	NT_EXPECT_LINE(fd, "after");
	NT_EXPECT_LINE(fd, "last");
	/* Half-close: what was sent before the FIN is still answered. */
	NT_CHECK(nt_send(fd, "ASYNC 50\r\nECHO before-fin\r\n"), "send");
	NT_CHECK(shutdown(fd, SHUT_WR) == 0, "shutdown");
	NT_EXPECT_LINE(fd, "async done");
	NT_EXPECT_LINE(fd, "before-fin");
	NT_CHECK(nt_read_to_eof(fd) == 0, "no EOF after the half-close");
	close(fd);
	return NULL;
}

static void test_pause_resume_and_half_close(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = {0};
	nt_server_start(&srv, &loop, &cfg);
	const char *err = nt_run_client(&loop, client_async, &srv.port);
	if (err != NULL)
		fail_msg("%s", err);
	assert_string_equal(buf_cstr(&srv.seen),
	                    "ASYNC 100|ECHO after|ECHO last|ASYNC 50|ECHO before-fin|");
	nt_server_finish(&srv);
	assert_int_equal(srv.closes, 1);
}

/* --- back-pressure ------------------------------------------------------------------- */

#define BIG_BYTES 4000000

static void *client_big(void *arg)
{
	int port = *(int *)arg;
	int fd = nt_connect(port);
	NT_CHECK(fd >= 0, "connect");
	NT_EXPECT_LINE(fd, "220 hello");
	NT_CHECK(nt_send(fd, "BIG 4000000\r\n"), "send");
	/* Let the server hit its low-water mark before we start reading. */
	usleep(200 * 1000);
	static char tmp[65536];
	size_t got = 0;
	while (got < BIG_BYTES) {
		size_t want = BIG_BYTES - got < sizeof(tmp) ? BIG_BYTES - got : sizeof(tmp);
		ssize_t r = recv(fd, tmp, want, 0);
		NT_CHECK(r > 0, "EOF or timeout in the middle of BIG");
		for (ssize_t i = 0; i < r; i++)
			NT_CHECK(tmp[i] == 'x', "corrupted BIG stream");
		got += (size_t)r;
	}
	NT_EXPECT_LINE(fd, "");
	NT_EXPECT_LINE(fd, "END");
	NT_CHECK(nt_send(fd, "QUIT\r\n"), "send");
	NT_EXPECT_LINE(fd, "221 bye");
	close(fd);
	return NULL;
}

static void test_output_back_pressure(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = {
	    .limits = {.max_output = 256 * 1024, .output_lowat = 32 * 1024},
	};
	nt_server_start(&srv, &loop, &cfg);
	const char *err = nt_run_client(&loop, client_big, &srv.port);
	if (err != NULL)
		fail_msg("%s", err);
	/* The producer paused and resumed, and never queued past the cap. */
	assert_true(srv.drains >= 1);
	assert_true(srv.max_pending > 32 * 1024);
	assert_true(srv.max_pending <= 256 * 1024);
	nt_server_finish(&srv);
}

static void *client_flood(void *arg)
{
	int port = *(int *)arg;
	int fd = nt_connect(port);
	NT_CHECK(fd >= 0, "connect");
	NT_EXPECT_LINE(fd, "220 hello");
	NT_CHECK(nt_send(fd, "FLOOD 1000000\r\n"), "send");
	long n = nt_read_to_eof(fd);
	NT_CHECK(n >= 0, "no EOF after the output cap");
	NT_CHECK(n < 1000000, "the whole flood was sent past max_output");
	close(fd);
	return NULL;
}

static void test_output_cap_closes(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = {
	    .limits = {.max_output = 256 * 1024, .output_lowat = 32 * 1024},
	};
	nt_server_start(&srv, &loop, &cfg);
	const char *err = nt_run_client(&loop, client_flood, &srv.port);
	if (err != NULL)
		fail_msg("%s", err);
	assert_int_equal(srv.flood_result, -1);
	nt_server_finish(&srv);
	assert_int_equal(srv.closes, 1);
}

/* --- input caps ---------------------------------------------------------------------- */

static void *client_overflow(void *arg)
{
	int port = *(int *)arg;
	int fd = nt_connect(port);
	NT_CHECK(fd >= 0, "connect");
	NT_EXPECT_LINE(fd, "220 hello");
	char junk[300];
	memset(junk, 'j', sizeof(junk) - 1);
	junk[sizeof(junk) - 1] = '\0';
	NT_CHECK(nt_send(fd, junk), "send");
	NT_EXPECT_LINE(fd, "500 input overflow");
	NT_CHECK(nt_read_to_eof(fd) == 0, "no EOF after overflow");
	close(fd);
	return NULL;
}

static void test_input_overflow(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = {.limits = {.max_input = 128}};
	nt_server_start(&srv, &loop, &cfg);
	srv.consume_nothing = true;
	const char *err = nt_run_client(&loop, client_overflow, &srv.port);
	if (err != NULL)
		fail_msg("%s", err);
	assert_int_equal(srv.overflows, 1);
	nt_server_finish(&srv);
}

static void *client_overflow_default(void *arg)
{
	int port = *(int *)arg;
	int fd = nt_connect(port);
	NT_CHECK(fd >= 0, "connect");
	NT_EXPECT_LINE(fd, "220 hello");
	char junk[300];
	memset(junk, 'j', sizeof(junk) - 1);
	junk[sizeof(junk) - 1] = '\0';
	NT_CHECK(nt_send(fd, junk), "send");
	NT_CHECK(nt_read_to_eof(fd) == 0, "the default overflow handler did not close");
	close(fd);
	return NULL;
}

static void test_input_overflow_default_closes(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	static struct conn_ops ops;
	ops = nt_ops;
	ops.on_overflow = NULL;
	struct listener_config cfg = {.limits = {.max_input = 128}, .ops = &ops};
	nt_server_start(&srv, &loop, &cfg);
	srv.consume_nothing = true;
	const char *err = nt_run_client(&loop, client_overflow_default, &srv.port);
	if (err != NULL)
		fail_msg("%s", err);
	assert_int_equal(srv.overflows, 0);
	nt_server_finish(&srv);
	assert_int_equal(srv.closes, 1);
}

static void *client_long_line(void *arg)
{
	int port = *(int *)arg;
	int fd = nt_connect(port);
	NT_CHECK(fd >= 0, "connect");
	NT_EXPECT_LINE(fd, "220 hello");
	/* 100 KB on one line through a 2 KB input buffer: one error, then business as usual. */
	static char junk[100001];
	memset(junk, 'j', sizeof(junk) - 1);
	NT_CHECK(nt_send(fd, "ECHO "), "send");
	NT_CHECK(nt_send(fd, junk), "send");
	NT_CHECK(nt_send(fd, "\r\nECHO ok\r\n"), "send");
	NT_EXPECT_LINE(fd, "500 line too long");
	NT_EXPECT_LINE(fd, "ok");
	close(fd);
	return NULL;
}

static void test_long_line_skipped(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = {.limits = {.max_input = 2048}};
	nt_server_start(&srv, &loop, &cfg);
	const char *err = nt_run_client(&loop, client_long_line, &srv.port);
	if (err != NULL)
		fail_msg("%s", err);
	assert_string_equal(buf_cstr(&srv.seen), "ECHO ok|");
	nt_server_finish(&srv);
}

/* --- timeouts ------------------------------------------------------------------------ */

static void *client_idle(void *arg)
{
	int port = *(int *)arg;
	uint64_t start = nt_now_ms();
	int fd = nt_connect(port);
	NT_CHECK(fd >= 0, "connect");
	NT_EXPECT_LINE(fd, "220 hello");
	NT_EXPECT_LINE(fd, "421 timeout");
	NT_CHECK(nt_read_to_eof(fd) == 0, "no EOF after the idle timeout");
	/* 300 ms idle, minus the loop clock's coarseness. */
	NT_CHECK(nt_now_ms() - start >= 250, "idle timeout fired early");
	close(fd);
	return NULL;
}

static void test_idle_timeout(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = {.limits = {.idle_ms = 300}};
	nt_server_start(&srv, &loop, &cfg);
	const char *err = nt_run_client(&loop, client_idle, &srv.port);
	if (err != NULL)
		fail_msg("%s", err);
	assert_int_equal(srv.timeouts, 1);
	nt_server_finish(&srv);
	assert_int_equal(srv.closes, 1);
}

static void *client_session(void *arg)
{
	int port = *(int *)arg;
	uint64_t start = nt_now_ms();
	int fd = nt_connect(port);
	NT_CHECK(fd >= 0, "connect");
	NT_EXPECT_LINE(fd, "220 hello");
	int echoes = 0;
	bool timed_out = false;
	for (int i = 0; i < 400 && !timed_out; i++) {
		char line[128];
		if (!nt_send(fd, "ECHO busy\r\n"))
			break;
		if (!nt_read_line(fd, line, sizeof(line)))
			break;
		if (strcmp(line, "421 timeout") == 0)
			timed_out = true;
		else if (strcmp(line, "busy") == 0)
			echoes++;
		usleep(20 * 1000);
	}
	NT_CHECK(timed_out, "no session timeout while busy");
	NT_CHECK(echoes >= 1, "no echo before the session timeout");
	NT_CHECK(nt_now_ms() - start >= 550, "session timeout fired early");
	close(fd);
	return NULL;
}

static void test_session_timeout(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	/* The idle timeout is longer than the session: only the session cap can fire. */
	struct listener_config cfg = {.limits = {.idle_ms = 10000, .session_ms = 600}};
	nt_server_start(&srv, &loop, &cfg);
	const char *err = nt_run_client(&loop, client_session, &srv.port);
	if (err != NULL)
		fail_msg("%s", err);
	assert_int_equal(srv.timeouts, 1);
	nt_server_finish(&srv);
}

/* --- connection caps ----------------------------------------------------------------- */

#define REJECT "421 4.7.0 too many connections"

struct caps_arg {
	int port;
	bool per_ip;
};

static void *client_caps(void *p)
{
	struct caps_arg *a = p;
	int c1 = nt_connect(a->port);
	NT_CHECK(c1 >= 0, "connect 1");
	NT_EXPECT_LINE(c1, "220 hello");
	int c2 = nt_connect(a->port);
	NT_CHECK(c2 >= 0, "connect 2");
	NT_EXPECT_LINE(c2, "220 hello");
	int c3 = nt_connect(a->port);
	NT_CHECK(c3 >= 0, "connect 3");
	NT_EXPECT_LINE(c3, REJECT);
	NT_CHECK(nt_read_to_eof(c3) == 0, "rejected conn not closed");
	close(c3);
	/* Another address: accepted under a per-IP cap, rejected under the global one. */
	int c4 = nt_connect_from(a->port, "127.0.0.2");
	NT_CHECK(c4 >= 0, "connect from 127.0.0.2");
	if (a->per_ip) {
		NT_EXPECT_LINE(c4, "220 hello");
		NT_CHECK(nt_send(c4, "PEER\r\n"), "send");
		NT_EXPECT_LINE(c4, "peer=127.0.0.2 loop=1");
	} else {
		NT_EXPECT_LINE(c4, REJECT);
	}
	close(c4);
	/* Freeing a slot lets the next connection in (once the server saw the close). */
	NT_CHECK(nt_send(c1, "QUIT\r\n"), "send");
	NT_EXPECT_LINE(c1, "221 bye");
	close(c1);
	bool in = false;
	for (int i = 0; i < 100 && !in; i++) {
		int c5 = nt_connect(a->port);
		NT_CHECK(c5 >= 0, "connect 5");
		char line[128];
		if (nt_read_line(c5, line, sizeof(line)) && strcmp(line, "220 hello") == 0)
			in = true;
		close(c5);
		if (!in)
			usleep(20 * 1000);
	}
	NT_CHECK(in, "a freed slot was never reused");
	close(c2);
	return NULL;
}

static void test_per_ip_cap(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = {.max_conns_per_ip = 2, .reject_banner = REJECT "\r\n"};
	nt_server_start(&srv, &loop, &cfg);
	struct caps_arg a = {srv.port, true};
	const char *err = nt_run_client(&loop, client_caps, &a);
	if (err != NULL)
		fail_msg("%s", err);
	/* c1, c2, c4 and c5 reached the protocol; c3 never did. */
	assert_int_equal(srv.opens, 4);
	nt_server_finish(&srv);
	assert_int_equal(srv.closes, 4);
}

static void test_global_cap(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = {.max_conns = 2, .reject_banner = REJECT "\r\n"};
	nt_server_start(&srv, &loop, &cfg);
	struct caps_arg a = {srv.port, false};
	const char *err = nt_run_client(&loop, client_caps, &a);
	if (err != NULL)
		fail_msg("%s", err);
	assert_int_equal(srv.opens, 3);
	nt_server_finish(&srv);
}

/* --- a burst larger than the per-turn accept budget ----------------------------------- */

#define BURST 150

static void *client_burst(void *arg)
{
	int port = *(int *)arg;
	static int fds[BURST];
	/* All connects first, so the backlog holds more than one turn's budget. */
	for (int i = 0; i < BURST; i++) {
		fds[i] = nt_connect(port);
		NT_CHECK(fds[i] >= 0, "connect");
	}
	for (int i = 0; i < BURST; i++) {
		NT_EXPECT_LINE(fds[i], "220 hello");
		close(fds[i]);
	}
	return NULL;
}

static bool all_closed(void *arg)
{
	struct nt_server *srv = arg;
	return srv->closes == BURST;
}

static void test_accept_burst(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = {0};
	nt_server_start(&srv, &loop, &cfg);
	const char *err = nt_run_client(&loop, client_burst, &srv.port);
	if (err != NULL)
		fail_msg("%s", err);
	assert_int_equal(srv.opens, BURST);
	assert_true(nt_run_until(&loop, all_closed, &srv));
	assert_int_equal(listener_conn_count(srv.l), 0);
	nt_server_finish(&srv);
	assert_int_equal(conn_count(&loop), 0);
}

/* --- EMFILE -------------------------------------------------------------------------- */

static int count_open_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		return 64;
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/* The child: an echo server whose descriptor limit is a handful above what it uses. */
static void emfile_child(int report_fd)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = {0};
	nt_server_start(&srv, &loop, &cfg);
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = (rlim_t)count_open_fds() + 4;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		_exit(3);
	if (write(report_fd, &srv.port, sizeof(srv.port)) != sizeof(srv.port))
		_exit(4);
	close(report_fd);
	uv_timer_t deadline;
	bool expired = false;
	uv_timer_init(&loop, &deadline);
	deadline.data = &expired;
	uv_timer_start(&deadline, nt_on_deadline, 25000, 0);
	uv_unref((uv_handle_t *)&deadline);
	/* SHUTDOWN stops the listener; the loop then ends when the last conn closes. */
	while (!expired && uv_run(&loop, UV_RUN_ONCE) != 0)
		;
	_exit(expired ? 5 : srv.opens >= 2 ? 0 : 6);
}

static void test_emfile_survival(void **state)
{
	(void)state;
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(pfd[0]);
		emfile_child(pfd[1]);
	}
	close(pfd[1]);
	int port = 0;
	struct pollfd pp = {.fd = pfd[0], .events = POLLIN};
	assert_int_equal(poll(&pp, 1, 10000), 1);
	assert_int_equal(read(pfd[0], &port, sizeof(port)), sizeof(port));
	close(pfd[0]);

	/* Flood: far more connections than the child has descriptors. */
	enum { N = 40 };
	int fds[N];
	int greeted = 0, shed = 0;
	for (int i = 0; i < N; i++) {
		fds[i] = nt_connect(port);
		assert_true(fds[i] >= 0);
	}
	for (int i = 0; i < N; i++) {
		char line[64];
		if (nt_read_line(fds[i], line, sizeof(line)) && strcmp(line, "220 hello") == 0)
			greeted++;
		else
			shed++;
	}
	assert_true(greeted >= 1);
	assert_true(shed >= 1); /* the limit was really hit */
	for (int i = 0; i < N; i++)
		close(fds[i]);

	/* Once descriptors are free again, the same listener serves normally. */
	bool served = false;
	for (int i = 0; i < 100 && !served; i++) {
		int fd = nt_connect(port);
		assert_true(fd >= 0);
		char line[64];
		if (nt_read_line(fd, line, sizeof(line)) && strcmp(line, "220 hello") == 0 &&
		    nt_send(fd, "ECHO alive\r\n") && nt_read_line(fd, line, sizeof(line)) &&
		    strcmp(line, "alive") == 0) {
			served = true;
			nt_send(fd, "SHUTDOWN\r\n");
			nt_read_line(fd, line, sizeof(line));
		}
		close(fd);
		if (!served)
			usleep(50 * 1000);
	}
	assert_true(served);
	int status = -1;
	for (int i = 0; i < 300; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		usleep(100 * 1000);
		if (i == 299) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
		}
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* --- Unix sockets -------------------------------------------------------------------- */

static void *client_unix(void *arg)
{
	const char *path = arg;
	int fd = nt_connect_unix(path);
	NT_CHECK(fd >= 0, "connect unix");
	NT_EXPECT_LINE(fd, "220 hello");
	NT_CHECK(nt_send(fd, "CRED\r\nPEER\r\nQUIT\r\n"), "send");
	char want[64];
	snprintf(want, sizeof(want), "uid=%ld", (long)getuid());
	char line[64];
	NT_CHECK(nt_read_line(fd, line, sizeof(line)), "EOF waiting for CRED");
	NT_CHECK(strcmp(line, want) == 0, "SO_PEERCRED uid is not ours");
	NT_EXPECT_LINE(fd, "peer=unix loop=1");
	NT_EXPECT_LINE(fd, "221 bye");
	close(fd);
	return NULL;
}

static void test_unix_peercred(void **state)
{
	(void)state;
	char dir[] = "/tmp/tern-net-unix-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128], addr[140];
	snprintf(path, sizeof(path), "%s/sock", dir);
	snprintf(addr, sizeof(addr), "unix:%s", path);

	/* A stale socket file left by a dead process is replaced. */
	int stale = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	strcpy(sun.sun_path, path);
	assert_int_equal(bind(stale, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(stale);

	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = {.address = addr, .unix_mode = 0660};
	/* As root the socket is handed to its owner (here: nobody, if present). */
	struct passwd *pw = geteuid() == 0 ? getpwnam("nobody") : NULL;
	if (pw != NULL) {
		cfg.unix_uid = pw->pw_uid;
		cfg.unix_gid = pw->pw_gid;
	}
	nt_server_start(&srv, &loop, &cfg);
	assert_int_equal(listener_port(srv.l), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0660);
	if (pw != NULL) {
		assert_int_equal(st.st_uid, pw->pw_uid);
		assert_int_equal(st.st_gid, pw->pw_gid);
	} else {
		assert_int_equal(st.st_uid, geteuid());
	}

	/* A second listener on a live socket is refused, not stolen. */
	char *error = NULL;
	struct listener_config cfg2 = {.name = "dup", .address = addr, .ops = &nt_ops};
	assert_null(listener_start(&loop, &cfg2, &error));
	assert_non_null(strstr(error, "in use"));
	free(error);

	const char *err = nt_run_client(&loop, client_unix, path);
	if (err != NULL)
		fail_msg("%s", err);
	nt_server_finish(&srv);
	/* Stopping removed the socket file. */
	assert_int_equal(stat(path, &st), -1);
	rmdir(dir);
}

static void test_unix_refuses_regular_file(void **state)
{
	(void)state;
	char dir[] = "/tmp/tern-net-unix-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128], addr[140];
	snprintf(path, sizeof(path), "%s/file", dir);
	snprintf(addr, sizeof(addr), "unix:%s", path);
	int fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	uv_loop_t loop;
	uv_loop_init(&loop);
	char *error = NULL;
	struct listener_config cfg = {.name = "x", .address = addr, .ops = &nt_ops};
	assert_null(listener_start(&loop, &cfg, &error));
	assert_non_null(strstr(error, "not a socket"));
	free(error);
	/* The file was not touched. */
	assert_int_equal(access(path, F_OK), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	unlink(path);
	rmdir(dir);
}

/* --- client connects ----------------------------------------------------------------- */

struct client_probe {
	int opens, closes;
	int error;
};

static void probe_on_open(struct conn *c)
{
	struct client_probe *p = conn_data(c);
	p->opens++;
}

static void probe_on_data(struct conn *c, struct buf *in)
{
	(void)c;
	buf_reset(in);
}

static void probe_on_close(struct conn *c)
{
	struct client_probe *p = conn_data(c);
	p->closes++;
	p->error = conn_connect_error(c);
}

static const struct conn_ops probe_ops = {
    .on_open = probe_on_open,
    .on_data = probe_on_data,
    .on_close = probe_on_close,
};

static bool probe_closed(void *arg)
{
	return ((struct client_probe *)arg)->closes > 0;
}

static void test_connect_unix_missing(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct client_probe p = {0};
	struct conn *c =
	    conn_connect_unix(&loop, "/nonexistent/tern-test/sock", &probe_ops, NULL, &p);
	assert_non_null(c);
	assert_true(nt_run_until(&loop, probe_closed, &p));
	assert_int_equal(p.opens, 0);
	assert_int_equal(p.closes, 1);
	assert_int_equal(p.error, UV_ENOENT);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	/* A path that cannot fit sun_path fails at once. */
	char longpath[200];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	uv_loop_init(&loop);
	assert_null(conn_connect_unix(&loop, longpath, &probe_ops, NULL, &p));
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_connect_tcp_refused(void **state)
{
	(void)state;
	/* Find a port nobody listens on: bind, read it, close. */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	socklen_t len = sizeof(sa);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	getsockname(s, (struct sockaddr *)&sa, &len);
	int port = ntohs(sa.sin_port);
	close(s);
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct client_probe p = {0};
	assert_non_null(conn_connect_tcp(&loop, "127.0.0.1", port, &probe_ops, NULL, &p));
	assert_true(nt_run_until(&loop, probe_closed, &p));
	assert_int_equal(p.opens, 0);
	assert_int_equal(p.error, UV_ECONNREFUSED);
	assert_null(conn_connect_tcp(&loop, "not-an-ip", 25, &probe_ops, NULL, &p));
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

/* A conn client talking to a listener in the same loop. */
struct loop_client {
	struct conn *c;
	struct buf got;
	int step;
	bool done;
	int closes;
};

static void lc_on_open(struct conn *c)
{
	(void)c;
}

static void lc_on_data(struct conn *c, struct buf *in)
{
	struct loop_client *lc = conn_data(c);
	size_t len, used;
	while (line_next(in->data, in->len, 512, LINE_MODE_CRLF, &len, &used) == LINE_OK) {
		buf_append(&lc->got, in->data, len);
		buf_append_char(&lc->got, '|');
		buf_consume(in, used);
		if (lc->step++ == 0)
			conn_write_str(c, "ECHO from-loop\r\nQUIT\r\n");
	}
}

static void lc_on_close(struct conn *c)
{
	struct loop_client *lc = conn_data(c);
	lc->closes++;
	lc->done = true;
}

static const struct conn_ops lc_ops = {
    .on_open = lc_on_open,
    .on_data = lc_on_data,
    .on_close = lc_on_close,
};

static bool lc_done(void *arg)
{
	return ((struct loop_client *)arg)->done;
}

static void test_connect_tcp_in_loop(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = {0};
	nt_server_start(&srv, &loop, &cfg);
	struct loop_client lc = {0};
	buf_init(&lc.got, 0);
	lc.c = conn_connect_tcp(&loop, "127.0.0.1", srv.port, &lc_ops, NULL, &lc);
	assert_non_null(lc.c);
	assert_true(nt_run_until(&loop, lc_done, &lc));
	assert_string_equal(buf_cstr(&lc.got), "220 hello|from-loop|221 bye|");
	assert_int_equal(lc.closes, 1);
	buf_free(&lc.got);
	nt_server_finish(&srv);
}

static void lc_unix_on_open(struct conn *c)
{
	/* The client side of a Unix socket knows its server's credentials too. */
	uid_t uid = (uid_t)-1;
	pid_t pid = 0;
	assert_int_equal(conn_peer_cred(c, &uid, NULL, &pid), 0);
	assert_int_equal(uid, getuid());
	assert_int_equal(pid, getpid());
	assert_true(conn_is_loopback(c));
	assert_null(conn_listener_name(c));
}

static const struct conn_ops lc_unix_ops = {
    .on_open = lc_unix_on_open,
    .on_data = lc_on_data,
    .on_close = lc_on_close,
};

static void test_connect_unix_in_loop(void **state)
{
	(void)state;
	char dir[] = "/tmp/tern-net-unix-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128], addr[140];
	snprintf(path, sizeof(path), "%s/sock", dir);
	snprintf(addr, sizeof(addr), "unix:%s", path);
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = {.address = addr};
	nt_server_start(&srv, &loop, &cfg);
	struct loop_client lc = {0};
	buf_init(&lc.got, 0);
	lc.c = conn_connect_unix(&loop, path, &lc_unix_ops, NULL, &lc);
	assert_non_null(lc.c);
	assert_true(nt_run_until(&loop, lc_done, &lc));
	assert_string_equal(buf_cstr(&lc.got), "220 hello|from-loop|221 bye|");
	buf_free(&lc.got);
	nt_server_finish(&srv);
	rmdir(dir);
}

static void test_addr_syntax(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	const char *bad[] = {"127.0.0.1",     "127.0.0.1:99999", "::1:25",      "localhost:25",
	                     "unix:relative", "[::1]:",          "1.2.3.4:2x5", ":25"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *error = NULL;
		struct listener_config cfg = {.name = "x", .address = bad[i], .ops = &nt_ops};
		if (listener_start(&loop, &cfg, &error) != NULL)
			fail_msg("%s was accepted", bad[i]);
		assert_non_null(error);
		free(error);
	}
	/* Good ones bind (port 0 = any free port). */
	const char *good[] = {"127.0.0.1:0", "[::1]:0", "*:0"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char *error = NULL;
		struct listener_config cfg = {.name = "x", .address = good[i], .ops = &nt_ops};
		struct listener *l = listener_start(&loop, &cfg, &error);
		if (l == NULL && strstr(good[i], "::1") != NULL)
			continue; /* no IPv6 on this machine */
		if (l == NULL)
			fail_msg("%s: %s", good[i], error);
		assert_true(listener_port(l) > 0);
		listener_free(&l);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	log_init("test", LOG_TARGET_STDERR);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plaintext_round_trip),
	    cmocka_unit_test(test_pause_resume_and_half_close),
	    cmocka_unit_test(test_output_back_pressure),
	    cmocka_unit_test(test_output_cap_closes),
	    cmocka_unit_test(test_input_overflow),
	    cmocka_unit_test(test_input_overflow_default_closes),
	    cmocka_unit_test(test_long_line_skipped),
	    cmocka_unit_test(test_idle_timeout),
	    cmocka_unit_test(test_session_timeout),
	    cmocka_unit_test(test_per_ip_cap),
	    cmocka_unit_test(test_global_cap),
	    cmocka_unit_test(test_accept_burst),
	    cmocka_unit_test(test_emfile_survival),
	    cmocka_unit_test(test_unix_peercred),
	    cmocka_unit_test(test_unix_refuses_regular_file),
	    cmocka_unit_test(test_connect_unix_missing),
	    cmocka_unit_test(test_connect_tcp_refused),
	    cmocka_unit_test(test_connect_tcp_in_loop),
	    cmocka_unit_test(test_connect_unix_in_loop),
	    cmocka_unit_test(test_addr_syntax),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
