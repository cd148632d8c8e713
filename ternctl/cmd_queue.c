/*
 * `ternctl queue list [--json] | flush | delete QID... | delete ALL | hold QID... |
 * release QID...`: the outbound queue of tern-deliverd (deliverd/queue.h), read and changed
 * in place. The daemon notices: flush through the queue's trigger file, hold and release
 * through the hold markers it checks before each try, delete by the missing file.
 */
#include "commands.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "config/config.h"
#include "queue.h"

static int usage(struct ternctl *ctl, const char *why)
{
	fprintf(ctl->err, "ternctl queue: %s\n", why);
	ternctl_print_usage(ctl->err, ternctl_find_command("queue"));
	return EX_USAGE;
}

/* Runs op on each id (or on every queued message for "ALL", when allowed). */
static int for_each_id(struct ternctl *ctl, struct queue *q, int argc, char **argv, bool allow_all,
                       int (*op)(struct queue *, const char *, void *, char **), void *arg,
                       const char *verb)
{
	char **ids = NULL;
	size_t n = 0;
	char *err = NULL;
	if (argc == 1 && allow_all && strcmp(argv[0], "ALL") == 0) {
		if (queue_list_ids(q, &ids, &n, &err) < 0) {
			fprintf(ctl->err, "ternctl queue: %s\n", err);
			free(err);
			return EX_IOERR;
		}
	} else {
		ids = calloc((size_t)argc + 1, sizeof(char *));
		for (int i = 0; i < argc; i++)
			ids[n++] = strdup(argv[i]);
	}
	int rc = EX_OK;
	for (size_t i = 0; i < n; i++) {
		if (!queue_id_valid(ids[i])) {
			fprintf(ctl->err, "ternctl queue: %s: not a queue id\n", ids[i]);
			rc = EX_DATAERR;
			continue;
		}
		if (op(q, ids[i], arg, &err) < 0) {
			fprintf(ctl->err, "ternctl queue: %s\n", err);
			free(err);
			err = NULL;
			rc = EX_NOINPUT;
			continue;
		}
		fprintf(ctl->out, "%s: %s\n", ids[i], verb);
	}
	queue_ids_free(ids, n);
	return rc;
}

static int op_delete(struct queue *q, const char *qid, void *arg, char **error_r)
{
	(void)arg;
	return queue_remove(q, qid, error_r);
}

static int op_hold(struct queue *q, const char *qid, void *arg, char **error_r)
{
	return queue_set_hold(q, qid, *(bool *)arg, error_r);
}

int cmd_queue(struct ternctl *ctl, int argc, char **argv)
{
	if (argc < 2)
		return usage(ctl, "missing subcommand");
	const struct config *cfg = ternctl_config(ctl);
	if (cfg == NULL)
		return EX_CONFIG;
	const char *dir = config_str(cfg, "deliverd", "queue_dir");
	const char *sub = argv[1];
	bool json = argc == 3 && strcmp(argv[2], "--json") == 0;
	if (strcmp(sub, "list") == 0 && argc > 2 && !json)
		return usage(ctl, "list takes only --json");
	struct queue *q = NULL;
	char *err = NULL;
	if (queue_open_existing(dir, &q, &err) < 0) {
		bool missing = errno == ENOENT;
		if (missing && strcmp(sub, "list") == 0) {
			/* deliverd never ran: nothing is queued. */
			free(err);
			if (!json)
				fprintf(ctl->out, "Mail queue is empty\n");
			return EX_OK;
		}
		fprintf(ctl->err, "ternctl queue: %s\n", err);
		free(err);
		return missing ? EX_UNAVAILABLE : EX_NOPERM;
	}
	int rc = EX_OK;
	if (strcmp(sub, "list") == 0) {
		if (queue_print(q, ctl->out, json, &err) < 0) {
			fprintf(ctl->err, "ternctl queue: %s\n", err);
			free(err);
			rc = EX_IOERR;
		}
	} else if (strcmp(sub, "flush") == 0) {
		if (argc != 2) {
			rc = usage(ctl, "flush takes no arguments");
		} else if (queue_request_flush(q, &err) < 0) {
			fprintf(ctl->err, "ternctl queue: %s\n", err);
			free(err);
			rc = EX_IOERR;
		} else {
			fprintf(ctl->out, "queue flush requested\n");
		}
	} else if (strcmp(sub, "delete") == 0 || strcmp(sub, "hold") == 0 ||
	           strcmp(sub, "release") == 0) {
		bool hold = strcmp(sub, "hold") == 0;
		if (argc < 3)
			rc = usage(ctl, "missing queue id");
		else if (strcmp(sub, "delete") == 0)
			rc = for_each_id(ctl, q, argc - 2, argv + 2, true, op_delete, NULL,
			                 "removed");
		else
			rc = for_each_id(ctl, q, argc - 2, argv + 2, true, op_hold, &hold,
			                 hold ? "placed on hold" : "released from hold");
	} else {
		rc = usage(ctl, "unknown subcommand");
	}
	queue_close(&q);
	return rc;
}
