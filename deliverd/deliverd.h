/* The daemon's entry point (server.c): the daemon frame with deliverd's hooks. */
#ifndef TERN_DELIVERD_DELIVERD_H
#define TERN_DELIVERD_DELIVERD_H

int deliverd_main(int argc, char **argv);

#endif
