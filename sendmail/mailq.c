/* mailq (-bp) and newaliases (-bi). */
#include "sendmail.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>

#include "aliases.h"
#include "base/xalloc.h"
#include "config/config.h"
#include "queue.h"

int sendmail_mailq(const struct config *cfg, FILE *out)
{
	/* The outbound queue (deliverd/queue.h), in Postfix's mailq layout. */
	const char *dir = config_str(cfg, "deliverd", "queue_dir");
	struct queue *q = NULL;
	char *err = NULL;
	if (queue_open_existing(dir, &q, &err) < 0) {
		int e = errno;
		free(err);
		if (e == ENOENT) {
			fprintf(out, "Mail queue is empty\n");
			return EX_OK;
		}
		fprintf(stderr, "mailq: %s: %s\n", dir, strerror(e));
		return EX_NOPERM;
	}
	int r = queue_print(q, out, false, &err);
	queue_close(&q);
	if (r < 0) {
		fprintf(stderr, "mailq: %s\n", err);
		free(err);
		return EX_IOERR;
	}
	return EX_OK;
}

int sendmail_flush(const struct config *cfg)
{
	const char *dir = config_str(cfg, "deliverd", "queue_dir");
	struct queue *q = NULL;
	char *err = NULL;
	if (queue_open_existing(dir, &q, &err) < 0 || queue_request_flush(q, &err) < 0) {
		fprintf(stderr, "sendmail: cannot flush the queue: %s\n", err);
		free(err);
		queue_close(&q);
		return EX_UNAVAILABLE;
	}
	queue_close(&q);
	return EX_OK;
}

int sendmail_newaliases(const struct config *cfg, FILE *out)
{
	static const struct {
		const char *key;
		enum alias_style style;
		bool missing_ok;
	} files[] = {
	    {"alias_file", ALIAS_LOCAL, true},
	    {"virtual_alias_file", ALIAS_VIRTUAL, false},
	};
	int rc = EX_OK;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		const char *path = config_str(cfg, "deliverd", files[i].key);
		if (path[0] == '\0')
			continue;
		struct alias_map *m = NULL;
		char *err = NULL;
		if (alias_map_load(path, files[i].style, files[i].missing_ok, &m, &err) < 0) {
			fprintf(stderr, "newaliases: %s\n", err);
			free(err);
			rc = EX_DATAERR;
			continue;
		}
		fprintf(out, "newaliases: %s: %zu aliases\n", path, alias_map_count(m));
		alias_map_free(&m);
	}
	if (rc == EX_OK)
		fprintf(out, "newaliases: deliverd reads the files again on reload (SIGHUP)\n");
	return rc;
}
