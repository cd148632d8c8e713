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

int sendmail_mailq(const struct config *cfg, FILE *out)
{
	/* The outbound queue lives in $state_dir/queue; deliverd creates it when it first
	 * queues a message. Report what is there, as Postfix's mailq summary does. */
	char *dir = xasprintf("%s/queue", config_str(cfg, "global", "state_dir"));
	DIR *d = opendir(dir);
	if (d == NULL) {
		int e = errno;
		if (e == ENOENT) {
			free(dir);
			fprintf(out, "Mail queue is empty\n");
			return EX_OK;
		}
		fprintf(stderr, "mailq: %s: %s\n", dir, strerror(e));
		free(dir);
		return EX_NOPERM;
	}
	unsigned long count = 0;
	unsigned long long bytes = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(st.st_mode)) {
			count++;
			bytes += (unsigned long long)st.st_size;
		}
	}
	closedir(d);
	free(dir);
	if (count == 0)
		fprintf(out, "Mail queue is empty\n");
	else
		fprintf(out, "-- %llu Kbytes in %lu Request%s.\n", (bytes + 1023) / 1024, count,
		        count == 1 ? "" : "s");
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
