/* The queue handle, shared by queue.c and queue_load.c only. */
#ifndef TERN_DELIVERD_QUEUE_PRIVATE_H
#define TERN_DELIVERD_QUEUE_PRIVATE_H

#include <stdbool.h>

struct queue {
	char *dir;
	int dir_fd, tmp_fd, msg_fd, state_fd, hold_fd, corrupt_fd;
	unsigned counter;
	bool readonly; /* opened by a tool: never quarantine a file the daemon may own */
};

#endif
