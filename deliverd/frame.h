/*
 * Interim daemon frame for tern-deliverd, with the same command line and order of events
 * as net/daemon.h's daemon_main() (which replaces it once it is in the tree):
 *   tern-deliverd [-c CONFIG] [-d] [-t]
 * load config -> log -> loop -> hooks->setup -> drop privileges (when root) -> sd_notify
 * READY=1 -> run; SIGHUP reloads, SIGTERM/SIGINT shut down (bounded by shutdown_timeout).
 */
#ifndef TERN_DELIVERD_FRAME_H
#define TERN_DELIVERD_FRAME_H

#include "net/daemon.h"

int deliverd_frame_run(int argc, char **argv, const struct daemon_hooks *hooks);

#endif
