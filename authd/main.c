/*
 * tern-authd: passwords, SASL and user lookups (see authd_server.h).
 * Interim frame until net's daemon_main() lands: -c CONFIG, stderr logging, SIGTERM/SIGINT
 * stop. No privilege drop here yet.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "authd_server.h"
#include "base/log.h"
#include "config/config.h"

static void on_signal(uv_signal_t *sig, int signum)
{
	(void)signum;
	authd_server_shutdown();
	uv_stop(sig->loop);
}

int main(int argc, char **argv)
{
	const char *path = "/etc/tern/tern.conf";
	struct config *cfg = NULL;
	char *error = NULL;
	int opt;

	while ((opt = getopt(argc, argv, "c:d")) != -1) {
		if (opt == 'c')
			path = optarg;
		else if (opt == 'd')
			log_set_debug(true);
		else
			return 64;
	}
	log_init("authd", LOG_TARGET_STDERR);
	if (config_load(path, &cfg, &error) < 0)
		log_fatal("%s", error);
	uv_loop_t *loop = uv_default_loop();
	if (authd_server_setup(loop, cfg, &error) < 0)
		log_fatal("%s", error);
	signal(SIGPIPE, SIG_IGN);
	uv_signal_t sigterm, sigint;
	uv_signal_init(loop, &sigterm);
	uv_signal_init(loop, &sigint);
	uv_signal_start(&sigterm, on_signal, SIGTERM);
	uv_signal_start(&sigint, on_signal, SIGINT);
	uv_run(loop, UV_RUN_DEFAULT);
	config_free(&cfg);
	return 0;
}
