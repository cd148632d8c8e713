/* Atomic edits of the Dovecot-format passwd-file for `ternctl user`. */
#include "ternctl_auth.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "authd_settings.h"
#include "base/buf.h"
#include "base/xalloc.h"
#include "commands.h"

#define PASSWD_MAX (256u * 1024 * 1024)

static char *read_line_from(FILE *f)
{
	struct buf b;
	int c;

	buf_init(&b, 4096);
	while ((c = fgetc(f)) != EOF && c != '\n') {
		if (buf_append_char(&b, (char)c) < 0)
			break;
	}
	if (c == EOF && b.len == 0) {
		buf_free(&b);
		return NULL;
	}
	if (b.len > 0 && b.data[b.len - 1] == '\r')
		buf_truncate(&b, b.len - 1);
	return buf_steal(&b);
}

static char *prompt_noecho(FILE *tty, FILE *err, const char *prompt)
{
	struct termios old, quiet;
	int fd = fileno(tty);

	fprintf(err, "%s", prompt);
	fflush(err);
	bool restore = tcgetattr(fd, &old) == 0;
	if (restore) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		tcsetattr(fd, TCSAFLUSH, &quiet);
	}
	char *pw = read_line_from(tty);
	if (restore)
		tcsetattr(fd, TCSAFLUSH, &old);
	fprintf(err, "\n");
	return pw;
}

char *ternctl_read_password(FILE *err, const char *prompt, int confirm)
{
	if (!isatty(STDIN_FILENO)) {
		char *pw = read_line_from(stdin);
		if (pw == NULL || pw[0] == '\0') {
			fprintf(err, "ternctl: no password on standard input\n");
			free(pw);
			return NULL;
		}
		return pw;
	}
	char *pw = prompt_noecho(stdin, err, prompt);
	if (pw == NULL || pw[0] == '\0') {
		fprintf(err, "ternctl: empty password\n");
		free(pw);
		return NULL;
	}
	if (confirm) {
		char *again = prompt_noecho(stdin, err, "Retype password: ");
		bool same = again != NULL && strcmp(pw, again) == 0;
		if (again != NULL) {
			secure_zero(again, strlen(again));
			free(again);
		}
		if (!same) {
			fprintf(err, "ternctl: passwords do not match\n");
			secure_zero(pw, strlen(pw));
			free(pw);
			return NULL;
		}
	}
	return pw;
}

int ternctl_auth_settings(struct ternctl *ctl, struct authd_settings *set)
{
	const struct config *cfg = ternctl_config(ctl);
	char *error = NULL;

	if (cfg == NULL)
		return -1;
	if (authd_settings_load(cfg, set, &error) < 0) {
		fprintf(ctl->err, "ternctl: %s\n", error);
		free(error);
		return -1;
	}
	return 0;
}

/* The canonical name of a passwd-file line's user, or NULL for comments and junk. */
static char *line_user(const struct authd_settings *set, const char *line, size_t len)
{
	const char *colon = memchr(line, ':', len);
	if (line[0] == '#' || colon == NULL)
		return NULL;
	char *name = xstrndup(line, (size_t)(colon - line));
	char *canon = authd_user_canonicalize(set, name);
	free(name);
	return canon;
}

static int read_whole(int fd, struct buf *b, char **error_r)
{
	char chunk[8192];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (n > 0 && buf_append(b, chunk, (size_t)n) < 0)) {
			*error_r =
			    xasprintf("read: %s", n < 0 ? strerror(errno) : "file too large");
			return -1;
		}
		if (n == 0)
			return 0;
	}
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

int passwd_file_edit(const struct authd_settings *set, const char *path, enum passwd_edit_op op,
                     const char *canonical_user, const char *password, char **error_r)
{
	char *lock_path = xasprintf("%s.lock", path);
	char *tmp_path = xasprintf("%s.tmp.%ld", path, (long)getpid());
	struct buf old, out;
	int lock_fd = -1, fd = -1, tmp_fd = -1, ret = -1;
	bool found = false;
	struct stat st = {.st_mode = S_IFREG | 0640, .st_uid = (uid_t)-1, .st_gid = (gid_t)-1};

	buf_init(&old, PASSWD_MAX);
	buf_init(&out, PASSWD_MAX);
	lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (lock_fd < 0 || flock(lock_fd, LOCK_EX) < 0) {
		*error_r = xasprintf("lock %s: %s", lock_path, strerror(errno));
		goto out;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT) {
		*error_r = xasprintf("open %s: %s", path, strerror(errno));
		goto out;
	}
	if (fd >= 0 && (fstat(fd, &st) < 0 || read_whole(fd, &old, error_r) < 0)) {
		if (*error_r == NULL)
			*error_r = xasprintf("stat %s: %s", path, strerror(errno));
		goto out;
	}
	const char *p = buf_cstr(&old), *end = p + old.len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		char *user = line_user(set, p, len);
		bool match = user != NULL && strcmp(user, canonical_user) == 0;
		free(user);
		if (match && !found) {
			found = true;
			if (op == PASSWD_SET) {
				/* Keep uid, gid, home and extra fields; replace the password. */
				const char *c1 = memchr(p, ':', len);
				const char *c2 = memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - p));
				buf_append(&out, p, (size_t)(c1 + 1 - p));
				buf_append_str(&out, password);
				if (c2 != NULL)
					buf_append(&out, c2, len - (size_t)(c2 - p));
				buf_append_char(&out, '\n');
			}
		} else if (buf_append(&out, p, len) < 0 || buf_append_char(&out, '\n') < 0) {
			*error_r = xstrdup("passwd-file too large");
			goto out;
		}
		p += len + (nl != NULL ? 1 : 0);
	}
	if ((op == PASSWD_ADD) == found) {
		ret = 1;
		goto out;
	}
	if (op == PASSWD_ADD && buf_printf(&out, "%s:%s::::::\n", canonical_user, password) < 0) {
		*error_r = xstrdup("passwd-file too large");
		goto out;
	}
	tmp_fd = open(tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 07777);
	if (tmp_fd < 0) {
		*error_r = xasprintf("create %s: %s", tmp_path, strerror(errno));
		goto out;
	}
	if ((st.st_uid != (uid_t)-1 && fchown(tmp_fd, st.st_uid, st.st_gid) < 0 &&
	     geteuid() == 0) ||
	    fchmod(tmp_fd, st.st_mode & 07777) < 0 || write_all(tmp_fd, out.data, out.len) < 0 ||
	    fsync(tmp_fd) < 0) {
		*error_r = xasprintf("write %s: %s", tmp_path, strerror(errno));
		goto out;
	}
	if (close(tmp_fd) < 0) {
		tmp_fd = -1;
		*error_r = xasprintf("close %s: %s", tmp_path, strerror(errno));
		goto out;
	}
	tmp_fd = -1;
	if (rename(tmp_path, path) < 0) {
		*error_r = xasprintf("rename %s: %s", path, strerror(errno));
		goto out;
	}
	ret = 0;
out:
	if (tmp_fd >= 0)
		close(tmp_fd);
	if (ret != 0)
		(void)unlink(tmp_path);
	if (fd >= 0)
		close(fd);
	if (lock_fd >= 0)
		close(lock_fd);
	if (old.data != NULL)
		secure_zero(old.data, old.len);
	if (out.data != NULL)
		secure_zero(out.data, out.len);
	buf_free(&old);
	buf_free(&out);
	free(lock_path);
	free(tmp_path);
	return ret;
}
