/*
 * `ternctl mailbox status USER [FOLDER] | reindex USER [FOLDER]`: a user's folders as the
 * store sees them (messages, unseen, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ), and a rescan
 * of their files into a fresh index keeping UIDs (after a restore from backup, or files
 * changed by hand). The user's Maildir comes from authd's userdb, as deliverd finds it;
 * run as root, ternctl works as vmail_user so that every file it creates belongs to the
 * store's owner.
 */
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "base/buf.h"
#include "commands.h"
#include "config/config.h"
#include "net/daemon.h"
#include "store/folder.h"
#include "store/mailbox.h"
#include "userdb_lookup.h"

static int mailbox_usage(struct ternctl *ctl)
{
	ternctl_print_usage(ctl->err, ternctl_find_command("mailbox"));
	return EX_USAGE;
}

static const char *error_text(enum store_error e)
{
	return e == STORE_ETEMP      ? "temporary failure (I/O, lock or resources)"
	       : e == STORE_ECORRUPT ? "damaged data that could not be repaired"
	                             : "failed";
}

static void print_status(struct ternctl *ctl, const char *name, struct store_mailbox *box)
{
	size_t count = store_mailbox_count(box), unseen = 0;
	for (size_t seq = 1; seq <= count; seq++)
		unseen += (store_mailbox_msg(box, seq)->flags & STORE_FLAG_SEEN) == 0;
	fprintf(ctl->out,
	        "%s messages=%zu unseen=%zu uidvalidity=%u uidnext=%u highestmodseq=%llu\n", name,
	        count, unseen, store_mailbox_uidvalidity(box), store_mailbox_uidnext(box),
	        (unsigned long long)store_mailbox_highestmodseq(box));
}

/* Runs the subcommand on one folder; 0 or -1 after printing why. */
static int one_folder(struct ternctl *ctl, bool reindex, const char *home, const char *name)
{
	char *path = folder_path(home, name);
	if (path == NULL || !folder_exists(home, name)) {
		fprintf(ctl->err, "ternctl: no folder %s\n", name);
		free(path);
		return -1;
	}
	struct store_mailbox *box;
	const char *error;
	enum store_error e = store_mailbox_open(path, &box, &error);
	free(path);
	if (e != STORE_OK) {
		fprintf(ctl->err, "ternctl: %s: %s\n", name, error);
		return -1;
	}
	struct store_sync_result res;
	if (reindex && (e = store_mailbox_reindex(box)) == STORE_OK)
		e = store_mailbox_sync(box, &res);
	if (e != STORE_OK)
		fprintf(ctl->err, "ternctl: %s: reindex failed: %s\n", name, error_text(e));
	else
		print_status(ctl, name, box);
	store_mailbox_close(&box);
	return e == STORE_OK ? 0 : -1;
}

int cmd_mailbox(struct ternctl *ctl, int argc, char **argv)
{
	if (argc < 3 || argc > 4)
		return mailbox_usage(ctl);
	bool reindex = strcmp(argv[1], "reindex") == 0;
	if (!reindex && strcmp(argv[1], "status") != 0)
		return mailbox_usage(ctl);
	char *home = NULL;
	struct buf text;
	buf_init(&text, 0);
	int ret = ternctl_userdb_lookup(ctl, argv[2], &text, &home);
	buf_free(&text);
	if (ret != EX_OK)
		return ret;
	if (geteuid() == 0) {
		char *error = NULL;
		const char *owner = config_str(ternctl_config(ctl), "global", "vmail_user");
		if (daemon_drop_privileges(owner, &error) < 0) {
			fprintf(ctl->err, "ternctl: %s\n", error);
			free(error);
			free(home);
			return EX_NOPERM;
		}
	}
	char **names = NULL;
	size_t count = 0;
	if (argc == 4) {
		ret = one_folder(ctl, reindex, home, argv[3]) == 0 ? EX_OK : EX_DATAERR;
	} else if (folder_list(home, &names, &count) != STORE_OK) {
		fprintf(ctl->err, "ternctl: cannot list the folders in %s\n", home);
		ret = EX_IOERR;
	} else {
		for (size_t i = 0; i < count; i++) {
			if (one_folder(ctl, reindex, home, names[i]) < 0)
				ret = EX_DATAERR;
		}
		folder_list_free(names, count);
	}
	free(home);
	return ret;
}
