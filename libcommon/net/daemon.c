/*
 * The frame every daemon runs in (see daemon.h): options, config, logging, setup as
 * root, privilege drop, sd_notify, and the signal-driven life cycle: SIGHUP reloads
 * (a bad new config keeps the old one), SIGTERM/SIGINT shut down gracefully within
 * global shutdown_timeout, after which the remaining connections are cut. A second
 * SIGTERM cuts at once.
 */
#include "net/daemon.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "config/config.h"
#include "net/conn.h"

#define DAEMON_DEFAULT_CONFIG "/etc/tern/tern.conf"
/* After the cut, how long closing handles get before the loop is stopped outright. */
#define DAEMON_CUT_GRACE_MS 2000

struct daemon {
	const struct daemon_hooks *hooks;
	const char *config_path; /* NULL: built-in defaults */
	struct config *cfg;
	uv_loop_t loop;
	uv_signal_t sig_hup, sig_term, sig_int;
	uv_timer_t shutdown_timer;
	uv_timer_t ready_tick; /* wakes the loop while READY=1 waits for hooks->ready */
	bool shutting_down;
	bool cut;
	bool debug_forced;
};

static struct daemon daemon_state;

const struct config *daemon_config(void)
{
	return daemon_state.cfg;
}

static void daemon_usage(const char *service)
{
	fprintf(stderr,
	        "usage: tern-%s [-c CONFIG] [-d] [-t]\n"
	        "  -c CONFIG  configuration file (default %s)\n"
	        "  -d         log debug lines\n"
	        "  -t         check the configuration and exit\n",
	        service, DAEMON_DEFAULT_CONFIG);
}

static void daemon_apply_logging(struct daemon *d)
{
	const char *target = config_str(d->cfg, "global", "log_target");
	enum log_target t = LOG_TARGET_STDERR;
	/* Syslog only where there is one (a container or a test run may have none). */
	if (strcmp(target, "syslog") == 0 && access("/dev/log", W_OK) == 0)
		t = LOG_TARGET_SYSLOG;
	log_init(d->hooks->service, t);
	log_set_debug(d->debug_forced || config_bool(d->cfg, "global", "log_debug"));
}

static void daemon_reload(struct daemon *d)
{
	daemon_notify("RELOADING=1");
	struct config *cfg = NULL;
	char *error = NULL;
	if (config_load(d->config_path, &cfg, &error) < 0) {
		log_warn("reload: %s; keeping the previous configuration", error);
		free(error);
	} else if (d->hooks->reload != NULL && d->hooks->reload(cfg, &error) < 0) {
		log_warn("reload: %s; keeping the previous configuration",
		         error != NULL ? error : "rejected");
		free(error);
		config_free(&cfg);
	} else {
		struct config *old = d->cfg;
		d->cfg = cfg;
		config_free(&old);
		log_set_debug(d->debug_forced || config_bool(d->cfg, "global", "log_debug"));
		log_info("reloaded -- configuration %s",
		         d->config_path != NULL ? d->config_path : "(built-in defaults)");
	}
	daemon_notify("READY=1");
}

static void daemon_on_cut_grace(uv_timer_t *t)
{
	log_warn("shutdown: handles still open after the cut; stopping the loop");
	uv_stop(t->loop);
}

static void daemon_cut(struct daemon *d, const char *why)
{
	if (d->cut)
		return;
	d->cut = true;
	unsigned n = conn_abort_all(&d->loop);
	if (n > 0)
		log_warn("shutdown: %s; closed %u connection%s", why, n, n == 1 ? "" : "s");
	uv_timer_start(&d->shutdown_timer, daemon_on_cut_grace, DAEMON_CUT_GRACE_MS, 0);
}

static void daemon_on_shutdown_timer(uv_timer_t *t)
{
	daemon_cut(&daemon_state, "shutdown_timeout passed");
	(void)t;
}

static void daemon_shutdown(struct daemon *d, int signum)
{
	if (d->shutting_down) {
		daemon_cut(d, "second signal");
		return;
	}
	d->shutting_down = true;
	log_info("terminating on signal %d", signum);
	daemon_notify("STOPPING=1");
	/* Signals and the bound must not keep the loop alive by themselves: the loop ends
	 * as soon as the last session and listener are gone. */
	uv_unref((uv_handle_t *)&d->sig_hup);
	uv_unref((uv_handle_t *)&d->sig_term);
	uv_unref((uv_handle_t *)&d->sig_int);
	uint64_t ms = config_time_ms(d->cfg, "global", "shutdown_timeout");
	uv_timer_start(&d->shutdown_timer, daemon_on_shutdown_timer, ms, 0);
	uv_unref((uv_handle_t *)&d->shutdown_timer);
	if (d->hooks->shutdown != NULL)
		d->hooks->shutdown();
	if (ms == 0)
		daemon_cut(d, "shutdown_timeout is 0");
}

static void daemon_on_signal(uv_signal_t *s, int signum)
{
	struct daemon *d = &daemon_state;
	(void)s;
	if (signum == SIGHUP) {
		if (!d->shutting_down)
			daemon_reload(d);
		return;
	}
	daemon_shutdown(d, signum);
}

static void daemon_on_ready_tick(uv_timer_t *t)
{
	(void)t; /* only wakes the loop so the ready hook is asked again */
}

/* Runs the loop until hooks->ready() says yes, a signal stops the daemon, or
 * DAEMON_READY_WAIT_MS pass (bounded by count and time). */
static void daemon_wait_ready(struct daemon *d)
{
	if (d->hooks->ready == NULL || d->hooks->ready())
		return;
	uv_timer_init(&d->loop, &d->ready_tick);
	uv_timer_start(&d->ready_tick, daemon_on_ready_tick, 20, 20);
	uint64_t start = uv_now(&d->loop);
	for (int i = 0; i < DAEMON_READY_WAIT_MS; i++) {
		if (d->shutting_down || d->hooks->ready() ||
		    uv_now(&d->loop) - start >= DAEMON_READY_WAIT_MS)
			break;
		uv_run(&d->loop, UV_RUN_ONCE);
		uv_update_time(&d->loop);
	}
	if (!d->shutting_down && !d->hooks->ready())
		log_warn("not fully ready after %d ms (authd not answering?); serving anyway",
		         DAEMON_READY_WAIT_MS);
	uv_close((uv_handle_t *)&d->ready_tick, NULL);
}

static void daemon_close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* Parses options; returns -1 after printing usage. */
static int daemon_options(struct daemon *d, int argc, char **argv, bool *check_only_r)
{
	int opt;
	d->config_path = DAEMON_DEFAULT_CONFIG;
	optind = 1;
	while ((opt = getopt(argc, argv, "c:dt")) != -1) {
		switch (opt) {
		case 'c':
			d->config_path = optarg;
			break;
		case 'd':
			d->debug_forced = true;
			break;
		case 't':
			*check_only_r = true;
			break;
		default:
			daemon_usage(d->hooks->service);
			return -1;
		}
	}
	if (optind != argc) {
		daemon_usage(d->hooks->service);
		return -1;
	}
	return 0;
}

static void daemon_load_config(struct daemon *d, bool explicit_path)
{
	char *error = NULL;
	if (!explicit_path && access(d->config_path, F_OK) < 0 && errno == ENOENT) {
		log_warn("%s does not exist; using built-in defaults", d->config_path);
		d->config_path = NULL;
	}
	if (config_load(d->config_path, &d->cfg, &error) < 0)
		log_fatal("%s", error);
}

/*
 * A daemon holding many connections (imapd: a socket plus the selected folder's
 * directories) needs more than the soft default of 1024 descriptors: take the hard limit,
 * which the admin (or systemd's LimitNOFILE) sets.
 */
static void daemon_raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("cannot raise the open file limit to %llu: %m",
			         (unsigned long long)rl.rlim_max);
	}
}

int daemon_main(int argc, char **argv, const struct daemon_hooks *hooks)
{
	struct daemon *d = &daemon_state;
	memset(d, 0, sizeof(*d));
	d->hooks = hooks;
	bool check_only = false;
	log_init(hooks->service, LOG_TARGET_STDERR);
	if (daemon_options(d, argc, argv, &check_only) < 0)
		return 2;
	bool explicit_path = strcmp(d->config_path, DAEMON_DEFAULT_CONFIG) != 0;
	daemon_load_config(d, explicit_path);
	if (check_only) {
		printf("%s: configuration OK\n",
		       d->config_path != NULL ? d->config_path : "(built-in defaults)");
		config_free(&d->cfg);
		fflush(stdout);
		return 0;
	}
	daemon_apply_logging(d);
	/* A peer that vanishes mid-write must be an error code, never a signal. */
	signal(SIGPIPE, SIG_IGN);

	daemon_raise_nofile();
	if (uv_loop_init(&d->loop) < 0)
		log_fatal("cannot create the event loop");
	char *error = NULL;
	if (hooks->setup != NULL && hooks->setup(&d->loop, d->cfg, &error) < 0)
		log_fatal("%s", error != NULL ? error : "setup failed");
	if (geteuid() == 0) {
		const char *key = hooks->user_key != NULL ? hooks->user_key : "default_user";
		const char *user = config_str(d->cfg, "global", key);
		if (daemon_drop_privileges(user, &error) < 0)
			log_fatal("%s", error);
	}
	uv_signal_init(&d->loop, &d->sig_hup);
	uv_signal_init(&d->loop, &d->sig_term);
	uv_signal_init(&d->loop, &d->sig_int);
	uv_timer_init(&d->loop, &d->shutdown_timer);
	uv_signal_start(&d->sig_hup, daemon_on_signal, SIGHUP);
	uv_signal_start(&d->sig_term, daemon_on_signal, SIGTERM);
	uv_signal_start(&d->sig_int, daemon_on_signal, SIGINT);

	log_info("daemon started -- version %s, configuration %s", TERN_VERSION,
	         d->config_path != NULL ? d->config_path : "(built-in defaults)");
	daemon_wait_ready(d);
	char ready[64];
	snprintf(ready, sizeof(ready), "READY=1\nMAINPID=%ld", (long)getpid());
	daemon_notify(ready);

	uv_run(&d->loop, UV_RUN_DEFAULT);

	/* Whatever is left (our signal handles, the timer, a stopped loop's stragglers). */
	uv_walk(&d->loop, daemon_close_walk, NULL);
	uv_run(&d->loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&d->loop) != 0)
		log_warn("event loop closed with handles still open");
	log_info("stopped");
	config_free(&d->cfg);
	return 0;
}
