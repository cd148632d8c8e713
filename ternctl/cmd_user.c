/*
 * `ternctl user add|passwd USER [PASSWORD] | del USER | list | lookup USER`: virtual users
 * in the passwd-file (authd re-reads it when it changes), and a lookup through authd's
 * userdb socket exactly as deliverd does it.
 */
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <sysexits.h>

#include "authd_settings.h"
#include "base/buf.h"
#include "base/xalloc.h"
#include "commands.h"
#include "config/config.h"
#include "passdb_file.h"
#include "password_scheme.h"
#include "ternctl_auth.h"
#include "userdb_lookup.h"

static int user_usage(struct ternctl *ctl)
{
	ternctl_print_usage(ctl->err, ternctl_find_command("user"));
	return EX_USAGE;
}

/* A passwd-file that `user add` creates must be readable by authd once it dropped to
 * auth_user: root-owned, group auth_user's group, mode 0640. */
static void create_passwd_file(struct ternctl *ctl, const char *path)
{
	const struct config *cfg = ternctl_config(ctl);
	struct passwd *pw = cfg != NULL ? getpwnam(config_str(cfg, "global", "auth_user")) : NULL;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);

	if (fd < 0)
		return; /* it exists, or passwd_file_edit() will report why not */
	if (pw != NULL && geteuid() == 0 && fchown(fd, 0, pw->pw_gid) < 0)
		fprintf(ctl->err, "ternctl: warning: cannot give %s to group of %s\n", path,
		        pw->pw_name);
	close(fd);
}

static int user_set_password(struct ternctl *ctl, const struct authd_settings *set,
                             enum passwd_edit_op op, const char *name, const char *arg_password)
{
	char *canon = authd_user_canonicalize(set, name);
	if (canon == NULL) {
		fprintf(ctl->err, "ternctl: invalid user name '%s'\n", name);
		return EX_DATAERR;
	}
	char *password = arg_password != NULL ? xstrdup(arg_password)
	                                      : ternctl_read_password(ctl->err, "Password: ", 1);
	if (password == NULL) {
		free(canon);
		return EX_DATAERR;
	}
	const char *error = NULL;
	char *hash = password_generate(set->default_scheme, password, &error);
	secure_zero(password, strlen(password));
	free(password);
	if (hash == NULL) {
		fprintf(ctl->err, "ternctl: %s\n", error);
		free(canon);
		return EX_SOFTWARE;
	}
	char *err = NULL;
	if (op == PASSWD_ADD)
		create_passwd_file(ctl, set->passwd_file);
	int r = passwd_file_edit(set, set->passwd_file, op, canon, hash, &err);
	int ret = EX_OK;
	if (r < 0) {
		fprintf(ctl->err, "ternctl: %s\n", err);
		ret = EX_IOERR;
	} else if (r > 0) {
		fprintf(ctl->err, "ternctl: user %s %s\n", canon,
		        op == PASSWD_ADD ? "already exists" : "does not exist");
		ret = op == PASSWD_ADD ? EX_CANTCREAT : EX_NOUSER;
	} else {
		fprintf(ctl->out, "%s %s\n", canon,
		        op == PASSWD_ADD ? "added" : "password changed");
	}
	free(err);
	secure_zero(hash, strlen(hash));
	free(hash);
	free(canon);
	return ret;
}

static int user_del(struct ternctl *ctl, const struct authd_settings *set, const char *name)
{
	char *canon = authd_user_canonicalize(set, name);
	char *err = NULL;
	if (canon == NULL) {
		fprintf(ctl->err, "ternctl: invalid user name '%s'\n", name);
		return EX_DATAERR;
	}
	int r = passwd_file_edit(set, set->passwd_file, PASSWD_DELETE, canon, NULL, &err);
	int ret = r < 0 ? EX_IOERR : r > 0 ? EX_NOUSER : EX_OK;
	if (r < 0)
		fprintf(ctl->err, "ternctl: %s\n", err);
	else if (r > 0)
		fprintf(ctl->err, "ternctl: user %s does not exist\n", canon);
	else
		fprintf(ctl->out, "%s deleted\n", canon);
	free(err);
	free(canon);
	return ret;
}

static int user_list(struct ternctl *ctl, const struct authd_settings *set)
{
	char *err = NULL;
	struct passdb_file *pf = passdb_file_open(set, set->passwd_file, &err);
	if (pf == NULL) {
		fprintf(ctl->err, "ternctl: %s\n", err);
		free(err);
		return EX_NOINPUT;
	}
	struct passdb *db = passdb_file_get(pf);
	for (size_t i = 0; i < db->n_users; i++)
		fprintf(ctl->out, "%s\n", db->users[i].name);
	passdb_unref(&db);
	passdb_file_free(&pf);
	return EX_OK;
}

static int user_lookup(struct ternctl *ctl, const char *name)
{
	struct buf text;
	buf_init(&text, 0);
	int ret = ternctl_userdb_lookup(ctl, name, &text, NULL);
	if (ret == EX_OK)
		fputs(buf_cstr(&text), ctl->out);
	buf_free(&text);
	return ret;
}

int cmd_user(struct ternctl *ctl, int argc, char **argv)
{
	if (argc < 2)
		return user_usage(ctl);
	const char *sub = argv[1];
	if (strcmp(sub, "lookup") == 0)
		return argc == 3 ? user_lookup(ctl, argv[2]) : user_usage(ctl);
	bool is_add = strcmp(sub, "add") == 0, is_passwd = strcmp(sub, "passwd") == 0;
	bool is_del = strcmp(sub, "del") == 0, is_list = strcmp(sub, "list") == 0;
	if ((is_add || is_passwd) ? (argc < 3 || argc > 4)
	    : is_del              ? argc != 3
	    : is_list             ? argc != 2
	                          : true)
		return user_usage(ctl);
	struct authd_settings set;
	if (ternctl_auth_settings(ctl, &set) < 0)
		return EX_CONFIG;
	int ret;
	if (is_list)
		ret = user_list(ctl, &set);
	else if (is_del)
		ret = user_del(ctl, &set, argv[2]);
	else
		ret = user_set_password(ctl, &set, is_add ? PASSWD_ADD : PASSWD_SET, argv[2],
		                        argc == 4 ? argv[3] : NULL);
	authd_settings_free(&set);
	return ret;
}
