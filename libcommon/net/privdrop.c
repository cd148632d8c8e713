/*
 * Dropping root for good, in the fixed order (supplementary groups, then gid, then uid)
 * and verified afterwards: every one of the real/effective/saved ids must be the
 * target's, the group list must be just its primary group, and getting root back must
 * fail. Any surprise is an error; daemon_main() makes it fatal.
 */
#include "net/daemon.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/xalloc.h"

static int privdrop_verify(uid_t uid, gid_t gid, char **error_r)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0) {
		*error_r = xasprintf("getresuid/getresgid: %s", strerror(errno));
		return -1;
	}
	if (ru != uid || eu != uid || su != uid || rg != gid || eg != gid || sg != gid) {
		*error_r =
		    xasprintf("privilege drop did not stick (uid %ld/%ld/%ld gid %ld/%ld/%ld)",
		              (long)ru, (long)eu, (long)su, (long)rg, (long)eg, (long)sg);
		return -1;
	}
	gid_t groups[2];
	int n = getgroups(2, groups);
	if (n < 0 || n > 1 || (n == 1 && groups[0] != gid)) {
		*error_r = xasprintf("supplementary groups survived the privilege drop");
		return -1;
	}
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		*error_r = xasprintf("root could be regained after the privilege drop");
		return -1;
	}
	return 0;
}

int daemon_drop_privileges(const char *user, char **error_r)
{
	struct passwd pw, *res = NULL;
	long size = sysconf(_SC_GETPW_R_SIZE_MAX);
	if (size < 16384)
		size = 16384;
	char *tmp = xmalloc((size_t)size);
	int err = getpwnam_r(user, &pw, tmp, (size_t)size, &res);
	if (res == NULL) {
		*error_r = err != 0 ? xasprintf("cannot look up user %s: %s", user, strerror(err))
		                    : xasprintf("unknown user %s", user);
		free(tmp);
		return -1;
	}
	uid_t uid = pw.pw_uid;
	gid_t gid = pw.pw_gid;
	free(tmp);
	if (uid == 0) {
		*error_r = xasprintf("refusing to run as %s: it is a root account", user);
		return -1;
	}
	if (geteuid() != 0) {
		/* Not root: fine only when we already are that user. */
		if (getuid() == uid && geteuid() == uid)
			return 0;
		*error_r = xasprintf("cannot switch to user %s: not running as root", user);
		return -1;
	}
	if (setgroups(1, &gid) < 0) {
		*error_r = xasprintf("setgroups: %s", strerror(errno));
		return -1;
	}
	if (setresgid(gid, gid, gid) < 0) {
		*error_r = xasprintf("setresgid(%ld): %s", (long)gid, strerror(errno));
		return -1;
	}
	if (setresuid(uid, uid, uid) < 0) {
		*error_r = xasprintf("setresuid(%ld): %s", (long)uid, strerror(errno));
		return -1;
	}
	return privdrop_verify(uid, gid, error_r);
}
