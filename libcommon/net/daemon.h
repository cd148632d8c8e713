/*
 * The frame every tern daemon runs in (a thin main.c calls daemon_main()):
 *
 *   tern-<service> [-c CONFIG] [-d] [-t]     (-d: debug log, -t: check config and exit)
 *
 * Order of events: parse options; load the config (error -> "fatal: file:line: problem",
 * exit 1); init logging (log_target from config; stderr when not root and no syslog);
 * create the libuv loop; call hooks->setup() to bind listeners and open files that need
 * privileges; drop privileges to the configured user when running as root (setgroups,
 * setresgid, setresuid, then verified); notify systemd (READY=1 over $NOTIFY_SOCKET when
 * set); run the loop.
 * SIGHUP: load the config again; on success call hooks->reload() (which may swap TLS
 * contexts) and log "reloaded"; on error log a warning and keep the old config.
 * SIGTERM/SIGINT: call hooks->shutdown() (stop listeners, ask sessions to finish) and
 * stop the loop once every handle is closed or after global shutdown_timeout.
 */
#ifndef TERN_NET_DAEMON_H
#define TERN_NET_DAEMON_H

#include <stdbool.h>
#include <uv.h>

struct config;

struct daemon_hooks {
	const char *service;  /* "smtpd" -> logs as tern/smtpd */
	const char *user_key; /* global key naming the user to drop to ("vmail_user") */
	/* Bind listeners etc. Return 0, or -1 with *error_r (logged as fatal). */
	int (*setup)(uv_loop_t *loop, const struct config *cfg, char **error_r);
	/* Optional: a new config was loaded on SIGHUP (the old one stays valid until this
	 * returns). Return -1 with *error_r to keep the old one. */
	int (*reload)(const struct config *cfg, char **error_r);
	/* Stop accepting and start closing sessions; the loop ends when all handles close. */
	void (*shutdown)(void);
	/* Optional: true once the daemon can serve every client fully (e.g. its auth client
	 * has learned authd's mechanisms, so the first CAPABILITY lists them). At start,
	 * READY=1 waits for it — the loop runs and serves meanwhile — at most
	 * DAEMON_READY_WAIT_MS, then is sent anyway with a warning. */
	bool (*ready)(void);
};

#define DAEMON_READY_WAIT_MS 5000

int daemon_main(int argc, char **argv, const struct daemon_hooks *hooks);
/* The config in force (changes on reload). */
const struct config *daemon_config(void);
/* sd_notify(3)-compatible, without libsystemd: sends state to $NOTIFY_SOCKET if set. */
int daemon_notify(const char *state);
/* Drops to user name (and its primary group). Returns 0 or -1 with *error_r. */
int daemon_drop_privileges(const char *user, char **error_r);

#endif
