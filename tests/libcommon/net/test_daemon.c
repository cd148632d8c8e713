/*
 * The daemon frame, run for real in a forked child: READY/RELOADING/STOPPING over a
 * $NOTIFY_SOCKET we listen on, SIGHUP with a good and a bad config, SIGTERM with one
 * session that finishes and one that must be cut at shutdown_timeout, -t, bad options,
 * the privilege drop (as root: really dropped; otherwise: refused cleanly) and
 * daemon_notify() on path and abstract sockets.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>

#include "net/daemon.h"
#include "net_test.h"

struct dtest {
	char dir[64];
	char conf[128];
	char sock[128];
	char notify[128];
	char log[128];
	int notify_fd;
};

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, 0644);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return strdup("");
	static char tmp[65536];
	size_t n = fread(tmp, 1, sizeof(tmp) - 1, f);
	tmp[n] = '\0';
	fclose(f);
	return strdup(tmp);
}

static void dtest_init(struct dtest *t)
{
	strcpy(t->dir, "/tmp/tern-daemon-test-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	chmod(t->dir, 0755); /* readable after the child dropped privileges */
	snprintf(t->conf, sizeof(t->conf), "%s/tern.conf", t->dir);
	snprintf(t->sock, sizeof(t->sock), "%s/sock", t->dir);
	snprintf(t->notify, sizeof(t->notify), "%s/notify", t->dir);
	snprintf(t->log, sizeof(t->log), "%s/log", t->dir);
	t->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	strcpy(sun.sun_path, t->notify);
	assert_int_equal(bind(t->notify_fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	chmod(t->notify, 0666);
}

static void dtest_cleanup(struct dtest *t)
{
	close(t->notify_fd);
	unlink(t->notify);
	unlink(t->conf);
	unlink(t->sock);
	unlink(t->log);
	rmdir(t->dir);
}

/* Waits (bounded) for one notify datagram; returns false on timeout. */
static bool wait_notify(struct dtest *t, char *out, size_t size)
{
	struct pollfd p = {.fd = t->notify_fd, .events = POLLIN};
	if (poll(&p, 1, 15000) != 1)
		return false;
	ssize_t n = recv(t->notify_fd, out, size - 1, 0);
	if (n < 0)
		return false;
	out[n] = '\0';
	return true;
}

static int wait_child(pid_t pid)
{
	int status = -1;
	for (int i = 0; i < 200; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		usleep(50 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

/* --- the child's tiny protocol ------------------------------------------------------- */

struct dsession {
	struct conn *c;
	bool stay; /* ignores the shutdown request */
	struct dsession *next, **prev;
};

static struct dsession *dsessions;
static struct listener *dlistener;
static char dsock_addr[160];
static int dreloads;

static void d_on_open(struct conn *c)
{
	struct dsession *s = calloc(1, sizeof(*s));
	s->c = c;
	s->next = dsessions;
	if (dsessions != NULL)
		dsessions->prev = &s->next;
	s->prev = &dsessions;
	dsessions = s;
	conn_set_data(c, s);
	conn_write_str(c, "220 hi\r\n");
}

static void d_on_data(struct conn *c, struct buf *in)
{
	struct dsession *s = conn_data(c);
	size_t len, used;
	while (line_next(in->data, in->len, 512, LINE_MODE_CRLF, &len, &used) == LINE_OK) {
		if (len == 4 && memcmp(in->data, "STAY", 4) == 0) {
			s->stay = true;
			conn_write_str(c, "250 staying\r\n");
		} else if (len == 3 && memcmp(in->data, "UID", 3) == 0) {
			conn_printf(c, "uid=%ld reloads=%d\r\n", (long)getuid(), dreloads);
		} else {
			conn_write_str(c, "250 ok\r\n");
		}
		buf_consume(in, used);
	}
}

static void d_on_close(struct conn *c)
{
	struct dsession *s = conn_data(c);
	if (s->next != NULL)
		s->next->prev = s->prev;
	*s->prev = s->next;
	free(s);
}

static const struct conn_ops d_ops = {
    .on_open = d_on_open,
    .on_data = d_on_data,
    .on_close = d_on_close,
};

static int d_setup(uv_loop_t *loop, const struct config *cfg, char **error_r)
{
	(void)cfg;
	struct listener_config lc = {.name = "dtest", .address = dsock_addr, .ops = &d_ops};
	dlistener = listener_start(loop, &lc, error_r);
	return dlistener != NULL ? 0 : -1;
}

static int d_reload(const struct config *cfg, char **error_r)
{
	(void)cfg;
	(void)error_r;
	dreloads++;
	return 0;
}

static void d_shutdown(void)
{
	listener_stop(dlistener);
	for (struct dsession *s = dsessions; s != NULL; s = s->next) {
		if (!s->stay) {
			conn_write_str(s->c, "421 shutting down\r\n");
			conn_close(s->c);
		}
	}
}

static const struct daemon_hooks d_hooks = {
    .service = "dtest",
    .user_key = "default_user",
    .setup = d_setup,
    .reload = d_reload,
    .shutdown = d_shutdown,
};

/* A daemon whose ready hook turns true 400 ms after setup. */
static uv_timer_t ready_timer;
static bool ready_flag;

static void on_ready_timer(uv_timer_t *t)
{
	(void)t;
	ready_flag = true;
}

static int d_setup_slow(uv_loop_t *loop, const struct config *cfg, char **error_r)
{
	int r = d_setup(loop, cfg, error_r);
	uv_timer_init(loop, &ready_timer);
	uv_timer_start(&ready_timer, on_ready_timer, 400, 0);
	return r;
}

static bool d_ready(void)
{
	return ready_flag;
}

static const struct daemon_hooks d_hooks_ready = {
    .service = "dtest",
    .user_key = "default_user",
    .setup = d_setup_slow,
    .reload = d_reload,
    .shutdown = d_shutdown,
    .ready = d_ready,
};

static const struct daemon_hooks *spawn_hooks = &d_hooks;

static pid_t spawn_daemon(struct dtest *t, const char *extra_arg, int stdout_fd)
{
	snprintf(dsock_addr, sizeof(dsock_addr), "unix:%s", t->sock);
	setenv("NOTIFY_SOCKET", t->notify, 1);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(t->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		dup2(fd, STDERR_FILENO);
		if (stdout_fd >= 0)
			dup2(stdout_fd, STDOUT_FILENO);
		char *argv[] = {"tern-dtest", "-c", t->conf, (char *)extra_arg, NULL};
		_exit(daemon_main(extra_arg != NULL ? 4 : 3, argv, spawn_hooks));
	}
	unsetenv("NOTIFY_SOCKET");
	return pid;
}

static const char *good_conf = "log_target = stderr\n"
                               "shutdown_timeout = 500ms\n"
                               "default_user = nobody\n";

static void test_daemon_life_cycle(void **state)
{
	(void)state;
	struct dtest t;
	dtest_init(&t);
	write_file(t.conf, good_conf);
	pid_t pid = spawn_daemon(&t, NULL, -1);
	char msg[256];
	assert_true(wait_notify(&t, msg, sizeof(msg)));
	char want[64];
	snprintf(want, sizeof(want), "READY=1\nMAINPID=%ld", (long)pid);
	assert_string_equal(msg, want);

	int s1 = nt_connect_unix(t.sock);
	assert_true(s1 >= 0);
	char line[128];
	assert_true(nt_read_line(s1, line, sizeof(line)));
	assert_string_equal(line, "220 hi");
	/* As root the daemon runs as nobody now; otherwise as us. */
	long want_uid = (long)getuid();
	if (geteuid() == 0) {
		struct passwd *pw = getpwnam("nobody");
		assert_non_null(pw);
		want_uid = (long)pw->pw_uid;
	}
	assert_true(nt_send(s1, "UID\r\n"));
	assert_true(nt_read_line(s1, line, sizeof(line)));
	char uid_line[64];
	snprintf(uid_line, sizeof(uid_line), "uid=%ld reloads=0", want_uid);
	assert_string_equal(line, uid_line);

	/* SIGHUP with a good config: RELOADING, READY, and the hook ran. */
	kill(pid, SIGHUP);
	assert_true(wait_notify(&t, msg, sizeof(msg)));
	assert_string_equal(msg, "RELOADING=1");
	assert_true(wait_notify(&t, msg, sizeof(msg)));
	assert_string_equal(msg, "READY=1");
	assert_true(nt_send(s1, "UID\r\n"));
	assert_true(nt_read_line(s1, line, sizeof(line)));
	snprintf(uid_line, sizeof(uid_line), "uid=%ld reloads=1", want_uid);
	assert_string_equal(line, uid_line);

	/* SIGHUP with a broken config: a warning, the old config stays, sessions live on. */
	write_file(t.conf, "log_target = stderr\nno_such_key = 1\n");
	kill(pid, SIGHUP);
	assert_true(wait_notify(&t, msg, sizeof(msg)));
	assert_string_equal(msg, "RELOADING=1");
	assert_true(wait_notify(&t, msg, sizeof(msg)));
	assert_string_equal(msg, "READY=1");
	assert_true(nt_send(s1, "UID\r\n"));
	assert_true(nt_read_line(s1, line, sizeof(line)));
	assert_string_equal(line, uid_line); /* reload hook not called again */

	/* SIGTERM: s1 is told to go, s2 ignores it and is cut at shutdown_timeout. */
	int s2 = nt_connect_unix(t.sock);
	assert_true(s2 >= 0);
	assert_true(nt_read_line(s2, line, sizeof(line)));
	assert_true(nt_send(s2, "STAY\r\n"));
	assert_true(nt_read_line(s2, line, sizeof(line)));
	assert_string_equal(line, "250 staying");
	uint64_t start = nt_now_ms();
	kill(pid, SIGTERM);
	assert_true(wait_notify(&t, msg, sizeof(msg)));
	assert_string_equal(msg, "STOPPING=1");
	assert_true(nt_read_line(s1, line, sizeof(line)));
	assert_string_equal(line, "421 shutting down");
	assert_int_equal(nt_read_to_eof(s1), 0);
	assert_int_equal(nt_read_to_eof(s2), 0);
	assert_true(nt_now_ms() - start >= 450); /* shutdown_timeout = 500ms */
	assert_int_equal(wait_child(pid), 0);
	close(s1);
	close(s2);

	char *log = read_file(t.log);
	if (strstr(log, "closed 1 connection") == NULL)
		fprintf(stderr, "%s", log);
	assert_non_null(strstr(log, "tern/dtest["));
	assert_non_null(strstr(log, "daemon started -- version"));
	assert_non_null(strstr(log, "reloaded -- configuration"));
	assert_non_null(strstr(log, "warning: reload: "));
	assert_non_null(strstr(log, "tern.conf:2: "));
	assert_non_null(strstr(log, "terminating on signal 15"));
	assert_non_null(strstr(log, "closed 1 connection"));
	free(log);
	dtest_cleanup(&t);
}

static void test_daemon_check_config(void **state)
{
	(void)state;
	struct dtest t;
	dtest_init(&t);
	write_file(t.conf, "log_target = stderr\nshutdown_timeout = forever\n");
	pid_t pid = spawn_daemon(&t, "-t", -1);
	assert_int_equal(wait_child(pid), 1);
	char *log = read_file(t.log);
	assert_non_null(strstr(log, "fatal: "));
	assert_non_null(strstr(log, "tern.conf:2: "));
	free(log);

	write_file(t.conf, good_conf);
	int out[2];
	assert_int_equal(pipe(out), 0);
	pid = spawn_daemon(&t, "-t", out[1]);
	close(out[1]);
	assert_int_equal(wait_child(pid), 0);
	char buf[256] = {0};
	assert_true(read(out[0], buf, sizeof(buf) - 1) > 0);
	close(out[0]);
	assert_non_null(strstr(buf, "configuration OK"));
	/* -t never binds. */
	assert_int_equal(access(t.sock, F_OK), -1);

	pid = spawn_daemon(&t, "-x", -1);
	assert_int_equal(wait_child(pid), 2);
	dtest_cleanup(&t);
}

static void test_notify_sockets(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_int_equal(daemon_notify("READY=1"), 0);

	struct dtest t;
	dtest_init(&t);
	setenv("NOTIFY_SOCKET", t.notify, 1);
	assert_int_equal(daemon_notify("STATUS=path"), 1);
	char msg[64];
	assert_true(wait_notify(&t, msg, sizeof(msg)));
	assert_string_equal(msg, "STATUS=path");

	/* Abstract namespace: '@' stands for the leading NUL. */
	char name[64];
	snprintf(name, sizeof(name), "@tern-notify-test-%ld", (long)getpid());
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	memcpy(sun.sun_path + 1, name + 1, strlen(name) - 1);
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
	assert_int_equal(bind(fd, (struct sockaddr *)&sun, len), 0);
	setenv("NOTIFY_SOCKET", name, 1);
	assert_int_equal(daemon_notify("READY=1"), 1);
	struct pollfd p = {.fd = fd, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 5000), 1);
	ssize_t n = recv(fd, msg, sizeof(msg) - 1, 0);
	assert_true(n > 0);
	msg[n] = '\0';
	assert_string_equal(msg, "READY=1");
	close(fd);

	setenv("NOTIFY_SOCKET", "relative/path", 1);
	assert_true(daemon_notify("READY=1") < 0);
	unsetenv("NOTIFY_SOCKET");
	dtest_cleanup(&t);
}

static void test_drop_privileges(void **state)
{
	(void)state;
	char *error = NULL;
	assert_int_equal(daemon_drop_privileges("no-such-user-tern-test", &error), -1);
	assert_non_null(strstr(error, "no-such-user-tern-test"));
	free(error);
	error = NULL;
	assert_int_equal(daemon_drop_privileges("root", &error), -1);
	assert_non_null(error);
	free(error);
	struct passwd *pw = getpwnam("nobody");
	if (pw == NULL)
		return;
	uid_t nobody_uid = pw->pw_uid;
	if (geteuid() != 0) {
		/* Not root: "dropping" to ourselves is a no-op, to anyone else an error. */
		struct passwd *me = getpwuid(getuid());
		if (me != NULL) {
			char *name = strdup(me->pw_name);
			assert_int_equal(daemon_drop_privileges(name, &error), 0);
			free(name);
		}
		const char *other = getuid() == nobody_uid ? "daemon" : "nobody";
		if (getpwnam(other) != NULL) {
			error = NULL;
			assert_int_equal(daemon_drop_privileges(other, &error), -1);
			assert_non_null(strstr(error, "not running as root"));
			free(error);
		}
		return;
	}
	/* As root: drop for real in a child and look at the result from inside. */
	uid_t uid = pw->pw_uid;
	gid_t gid = pw->pw_gid;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char *err = NULL;
		if (daemon_drop_privileges("nobody", &err) < 0)
			_exit(10);
		uid_t r, e, s;
		gid_t rg, eg, sg;
		getresuid(&r, &e, &s);
		getresgid(&rg, &eg, &sg);
		if (r != uid || e != uid || s != uid || rg != gid || eg != gid || sg != gid)
			_exit(11);
		if (setuid(0) == 0)
			_exit(12);
		_exit(0);
	}
	assert_int_equal(wait_child(pid), 0);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* READY=1 waits for the ready hook; clients are served meanwhile. */
static void test_ready_waits_for_hook(void **state)
{
	(void)state;
	struct dtest t;
	dtest_init(&t);
	write_file(t.conf, good_conf);
	spawn_hooks = &d_hooks_ready;
	uint64_t t0 = mono_ms();
	pid_t pid = spawn_daemon(&t, NULL, -1);
	spawn_hooks = &d_hooks;
	int s1 = -1;
	for (int i = 0; i < 300 && s1 < 0; i++) {
		s1 = nt_connect_unix(t.sock);
		if (s1 < 0)
			usleep(10000);
	}
	assert_true(s1 >= 0);
	char line[128];
	assert_true(nt_read_line(s1, line, sizeof(line)));
	assert_string_equal(line, "220 hi");
	char msg[256];
	assert_true(wait_notify(&t, msg, sizeof(msg)));
	assert_true(strncmp(msg, "READY=1", 7) == 0);
	/* Not before the hook said yes (400 ms after setup). */
	assert_true(mono_ms() - t0 >= 390);
	close(s1);
	kill(pid, SIGTERM);
	assert_int_equal(wait_child(pid), 0);
	dtest_cleanup(&t);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	log_init("test", LOG_TARGET_STDERR);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_daemon_life_cycle),    cmocka_unit_test(test_daemon_check_config),
	    cmocka_unit_test(test_notify_sockets),       cmocka_unit_test(test_drop_privileges),
	    cmocka_unit_test(test_ready_waits_for_hook),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
