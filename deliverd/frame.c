/* The interim daemon frame (see frame.h). */
#include "frame.h"

#include <errno.h>
#include <stddef.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "config/config.h"

static struct {
	const struct daemon_hooks *hooks;
	const char *path;
	struct config *cfg;
	uv_signal_t sighup, sigterm, sigint;
	uv_timer_t stop_timer;
	bool stopping;
} F;

static int drop_privileges(const char *user, char **error_r)
{
	struct passwd *pw = getpwnam(user);
	if (pw == NULL) {
		*error_r = xasprintf("unknown user \"%s\"", user);
		return -1;
	}
	/* Fixed order: supplementary groups, gid, uid; then verify it cannot be undone. */
	if (setgroups(0, NULL) < 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0) {
		*error_r = xasprintf("dropping privileges to %s: %s", user, strerror(errno));
		return -1;
	}
	if (pw->pw_uid != 0 && (setuid(0) == 0 || geteuid() == 0)) {
		*error_r = xstrdup("privileges could be regained after the drop");
		return -1;
	}
	return 0;
}

static void notify_ready(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	if (path == NULL || (path[0] != '/' && path[0] != '@'))
		return;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(path);
	if (n >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, n);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, "READY=1", 7, 0, (struct sockaddr *)&sa,
	           (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0)
		log_warn("sd_notify: %s", strerror(errno));
	close(fd);
}

static void on_stop_timer(uv_timer_t *t)
{
	log_info("shutdown timeout: stopping with sessions still open");
	uv_stop(t->loop);
}

static void close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h) && h->type == UV_SIGNAL)
		uv_close(h, NULL);
}

static void on_signal(uv_signal_t *sig, int signum)
{
	if (signum == SIGHUP) {
		struct config *cfg = NULL;
		char *err = NULL;
		if (config_load(F.path, &cfg, &err) < 0 ||
		    (F.hooks->reload != NULL && F.hooks->reload(cfg, &err) < 0)) {
			log_warn("reload failed, keeping the old configuration: %s", err);
			free(err);
			config_free(&cfg);
			return;
		}
		config_free(&F.cfg);
		F.cfg = cfg;
		log_info("reloaded");
		return;
	}
	if (F.stopping)
		return;
	F.stopping = true;
	log_info("terminating on signal %d", signum);
	F.hooks->shutdown();
	uv_timer_init(sig->loop, &F.stop_timer);
	uv_timer_start(&F.stop_timer, on_stop_timer,
	               config_time_ms(F.cfg, "global", "shutdown_timeout") + 1, 0);
	uv_unref((uv_handle_t *)&F.stop_timer);
	uv_walk(sig->loop, close_walk, NULL);
}

int deliverd_frame_run(int argc, char **argv, const struct daemon_hooks *hooks)
{
	F.hooks = hooks;
	F.path = "/etc/tern/tern.conf";
	bool check_only = false, debug = false;
	int opt;
	while ((opt = getopt(argc, argv, "c:dt")) != -1) {
		if (opt == 'c')
			F.path = optarg;
		else if (opt == 'd')
			debug = true;
		else if (opt == 't')
			check_only = true;
		else {
			fprintf(stderr, "usage: tern-%s [-c CONFIG] [-d] [-t]\n", hooks->service);
			return 64;
		}
	}
	char *err = NULL;
	if (config_load(F.path, &F.cfg, &err) < 0) {
		fprintf(stderr, "tern-%s: fatal: %s\n", hooks->service, err);
		return 1;
	}
	if (check_only)
		return 0;
	bool syslog_target = strcmp(config_str(F.cfg, "global", "log_target"), "syslog") == 0;
	log_init(hooks->service, syslog_target ? LOG_TARGET_SYSLOG : LOG_TARGET_STDERR);
	log_set_debug(debug || config_bool(F.cfg, "global", "log_debug"));
	signal(SIGPIPE, SIG_IGN);
	uv_loop_t *loop = uv_default_loop();
	if (hooks->setup(loop, F.cfg, &err) < 0)
		log_fatal("%s", err);
	if (geteuid() == 0 &&
	    drop_privileges(config_str(F.cfg, "global", hooks->user_key), &err) < 0)
		log_fatal("%s", err);
	uv_signal_init(loop, &F.sighup);
	uv_signal_init(loop, &F.sigterm);
	uv_signal_init(loop, &F.sigint);
	uv_signal_start(&F.sighup, on_signal, SIGHUP);
	uv_signal_start(&F.sigterm, on_signal, SIGTERM);
	uv_signal_start(&F.sigint, on_signal, SIGINT);
	notify_ready();
	uv_run(loop, UV_RUN_DEFAULT);
	config_free(&F.cfg);
	return 0;
}
