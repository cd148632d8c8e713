/* Picking up the maildrop into the outbound queue (relay_maildrop.h). */
#include "relay_maildrop.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "queue.h"
#include "queue_maildrop.h"

#define STALE_TMP_SECONDS (24 * 3600)

int relay_maildrop_prepare(const char *dir, uid_t owner, gid_t group, char **error_r)
{
	/* The directory never exists with another mode (mkdir applies the umask, and a stop
	 * between mkdir and chmod would leave it so): a new one is made under a temporary name,
	 * given its owner and mode, then renamed into place. An existing one is fixed up. */
	struct stat sb;
	if (stat(dir, &sb) < 0 && errno == ENOENT) {
		char *tmp = xasprintf("%s.new.%ld", dir, (long)getpid());
		(void)rmdir(tmp); /* left by an earlier attempt of this pid number */
		if (mkdir(tmp, 0700) < 0) {
			*error_r = xasprintf("mkdir %s: %s", tmp, strerror(errno));
			free(tmp);
			return -1;
		}
		if ((geteuid() == 0 && chown(tmp, owner, group) < 0) || chmod(tmp, 01733) < 0) {
			*error_r = xasprintf("chown/chmod %s: %s", tmp, strerror(errno));
			(void)rmdir(tmp);
			free(tmp);
			return -1;
		}
		if (rename(tmp, dir) < 0)
			(void)rmdir(tmp); /* someone else made it meanwhile: fixed up below */
		free(tmp);
	}
	if (geteuid() == 0 && chown(dir, owner, group) < 0) {
		*error_r = xasprintf("chown %s: %s", dir, strerror(errno));
		return -1;
	}
	if (chmod(dir, 01733) < 0) {
		*error_r = xasprintf("chmod %s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

static bool trusted(const struct maildrop_policy *p, uid_t uid)
{
	if (uid == 0 || uid == p->self)
		return true;
	for (size_t i = 0; i < p->n_trusted; i++)
		if (p->trusted[i] == uid)
			return true;
	return false;
}

/* Queues one file; returns 1 when queued, 0 when it was refused (and removed), -1 when it
 * should be tried again later. */
static int pick_one(int dir_fd, const char *name, struct queue *q, const struct maildrop_policy *p)
{
	int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		log_warn("maildrop: %s: %s", name, strerror(errno));
		if (errno == ELOOP)
			unlinkat(dir_fd, name, 0);
		return 0;
	}
	struct stat st;
	struct maildrop_msg m;
	char *err = NULL;
	const char *why = NULL;
	if (fstat(fd, &st) < 0)
		why = "cannot stat";
	else if (!S_ISREG(st.st_mode) || st.st_nlink != 1)
		why = "not a plain file";
	else if ((uint64_t)st.st_size > p->max_size + MAILDROP_MAX_HEADER)
		why = "too large";
	else if (maildrop_parse(fd, &m, &err) < 0)
		why = err;
	if (why != NULL) {
		log_warn("maildrop: %s (uid=%ld): refused: %s", name, (long)st.st_uid, why);
		free(err);
		close(fd);
		unlinkat(dir_fd, name, 0);
		return 0;
	}
	struct queue_envelope env = {0};
	if (trusted(p, st.st_uid)) {
		env.sender = xstrdup(m.sender);
	} else {
		struct passwd *pw = getpwuid(st.st_uid);
		env.sender = pw != NULL ? xasprintf("%s@%s", pw->pw_name, p->domain)
		                        : xasprintf("uid%ld@%s", (long)st.st_uid, p->domain);
	}
	env.arrival_ms = (uint64_t)st.st_mtime * 1000;
	for (size_t i = 0; i < m.n_rcpts; i++)
		queue_envelope_add_rcpt(&env, m.rcpts[i], NULL, 0);
	char qid[QUEUE_ID_LEN + 1];
	int r = queue_add_fd_at(q, &env, fd, m.body_offset, (uint64_t)st.st_size - m.body_offset,
	                        qid, &err);
	close(fd);
	if (r < 0) {
		log_warn("maildrop: %s: cannot queue: %s", name, err);
		free(err);
		queue_envelope_free(&env);
		maildrop_msg_free(&m);
		return -1;
	}
	/* Queued durably first, removed second: a crash in between queues it twice, never
	 * zero times. */
	if (unlinkat(dir_fd, name, 0) < 0)
		log_warn("maildrop: cannot remove %s: %s", name, strerror(errno));
	struct buf s;
	buf_init(&s, 0);
	log_sanitize(&s, env.sender, strlen(env.sender), 256);
	log_info("%s: maildrop %s: uid=%ld from=<%s>, nrcpt=%zu", qid, name, (long)st.st_uid,
	         buf_cstr(&s), env.n_rcpts);
	buf_free(&s);
	queue_envelope_free(&env);
	maildrop_msg_free(&m);
	return 1;
}

unsigned relay_maildrop_pickup(const char *dir, struct queue *q, const struct maildrop_policy *p)
{
	int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return 0;
	int fd2 = dup(dir_fd);
	DIR *d = fd2 >= 0 ? fdopendir(fd2) : NULL;
	if (d == NULL) {
		if (fd2 >= 0)
			close(fd2);
		close(dir_fd);
		return 0;
	}
	unsigned queued = 0;
	time_t now = time(NULL);
	struct dirent *de;
	/* Bounded per run: a flood of files cannot stall the loop for long. */
	for (unsigned seen = 0; seen < 1000 && (de = readdir(d)) != NULL; seen++) {
		if (strncmp(de->d_name, "m.", 2) == 0) {
			if (pick_one(dir_fd, de->d_name, q, p) > 0)
				queued++;
		} else if (strncmp(de->d_name, "t.", 2) == 0) {
			/* A writer that died long ago. */
			struct stat st;
			if (fstatat(dir_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    now - st.st_mtime > STALE_TMP_SECONDS)
				unlinkat(dir_fd, de->d_name, 0);
		}
	}
	closedir(d);
	if (queued > 0)
		fsync(dir_fd);
	close(dir_fd);
	return queued;
}
