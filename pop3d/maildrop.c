/*
 * The POP3 maildrop over a Maildir INBOX: snapshot at login, marks in memory, one commit
 * at QUIT. Everything is done relative to directory fds opened with O_NOFOLLOW, and only
 * file names read from cur/ and new/ (checked: no '/', no leading '.') are used as paths.
 */
#include "maildrop.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/xalloc.h"
#include "output.h"

#define MAILDROP_LOCK_NAME "tern-pop3.lock"

struct maildrop_msg {
	char *name;      /* file name in its directory as seen at login (may change) */
	bool in_new;     /* the file was in new/ */
	size_t base_len; /* bytes before ':' */
	uint64_t size;   /* RETR size */
	char *uidl;
	unsigned long long delivered; /* leading seconds of the name, for ordering */
	bool deleted;
	bool seen; /* RETR asked for \Seen */
};

struct maildrop {
	int home_fd, cur_fd, new_fd, lock_fd;
	enum maildrop_uidl_format format;
	struct maildrop_msg *msgs;
	unsigned n, alloc;
};

static bool name_is_valid(const char *name)
{
	return name[0] != '\0' && name[0] != '.' && strchr(name, '/') == NULL;
}

static size_t name_base_len(const char *name)
{
	const char *colon = strchr(name, ':');
	return colon != NULL ? (size_t)(colon - name) : strlen(name);
}

/* ",W=<n>" in the base name is Dovecot's cached CRLF size; trust it when present. */
static bool name_get_vsize(const char *name, size_t base_len, uint64_t *size_r)
{
	for (size_t i = 0; i + 3 < base_len; i++) {
		if (name[i] == ',' && name[i + 1] == 'W' && name[i + 2] == '=') {
			uint64_t v = 0;
			size_t j = i + 3;
			if (j >= base_len || name[j] < '0' || name[j] > '9')
				return false;
			for (; j < base_len && name[j] >= '0' && name[j] <= '9'; j++) {
				if (v > UINT64_MAX / 10 - 10)
					return false;
				v = v * 10 + (uint64_t)(name[j] - '0');
			}
			*size_r = v;
			return true;
		}
	}
	return false;
}

static int file_vsize(int dir_fd, const char *name, uint64_t *size_r)
{
	struct pop3_size_counter c = {0, false};
	int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	char *chunk;
	ssize_t r;

	if (fd < 0)
		return -1;
	chunk = xmalloc(65536);
	while ((r = read(fd, chunk, 65536)) > 0)
		pop3_size_feed(&c, chunk, (size_t)r);
	free(chunk);
	if (r < 0) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	close(fd);
	*size_r = c.size;
	return 0;
}

/* Maildir names start with the delivery time in seconds: order by it, then by name. */
static int msg_cmp(const void *a, const void *b)
{
	const struct maildrop_msg *ma = a, *mb = b;
	unsigned long long ta = ma->delivered, tb = mb->delivered;

	if (ta != tb)
		return ta < tb ? -1 : 1;
	size_t la = ma->base_len, lb = mb->base_len;
	int c = memcmp(ma->name, mb->name, la < lb ? la : lb);
	if (c != 0)
		return c;
	return la < lb ? -1 : la > lb;
}

static int scan_dir(struct maildrop *md, int dir_fd, bool is_new, char **error_r)
{
	int fd = dup(dir_fd);
	DIR *d;
	struct dirent *de;

	if (fd < 0 || (d = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		*error_r =
		    xasprintf("opendir(%s) failed: %s", is_new ? "new" : "cur", strerror(errno));
		return -1;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		struct maildrop_msg m = {0};
		if (!name_is_valid(de->d_name))
			continue;
		if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
			continue;
		m.in_new = is_new;
		m.base_len = name_base_len(de->d_name);
		if (!name_get_vsize(de->d_name, m.base_len, &m.size) &&
		    file_vsize(dir_fd, de->d_name, &m.size) < 0) {
			/* Expunged by someone else while we scanned: not part of the view. */
			if (errno == ENOENT)
				continue;
			closedir(d);
			*error_r = xasprintf("read(%s) failed: %s", de->d_name, strerror(errno));
			return -1;
		}
		m.name = xstrdup(de->d_name);
		m.delivered = strtoull(m.name, NULL, 10);
		if (md->n == md->alloc) {
			md->alloc = md->alloc == 0 ? 64 : md->alloc * 2;
			md->msgs = xreallocarray(md->msgs, md->alloc, sizeof(*md->msgs));
		}
		md->msgs[md->n++] = m;
	}
	closedir(d);
	return 0;
}

static bool home_is_safe(const char *home)
{
	if (home[0] != '/')
		return false;
	for (const char *p = home; *p != '\0'; p++) {
		if (p[0] == '/' && p[1] == '.' &&
		    (p[2] == '/' || p[2] == '\0' || (p[2] == '.' && (p[3] == '/' || p[3] == '\0'))))
			return false;
	}
	return true;
}

static void make_uidls(struct maildrop *md)
{
	for (unsigned i = 0; i < md->n; i++) {
		struct maildrop_msg *m = &md->msgs[i];
		/* RFC 1939 7: a unique-id is 1..70 characters in 0x21..0x7E. Maildir base
		 * names are that already; longer ones are cut (still unique in practice: the
		 * unique part comes first). */
		size_t len = m->base_len > 70 ? 70 : m->base_len;
		m->uidl = xstrndup(m->name, len);
		for (char *p = m->uidl; *p != '\0'; p++) {
			if (*p < 0x21 || *p > 0x7e)
				*p = '_';
		}
	}
}

enum maildrop_open_result maildrop_open(const char *home, enum maildrop_uidl_format format,
                                        struct maildrop **md_r, char **error_r)
{
	struct maildrop *md;

	*md_r = NULL;
	if (!home_is_safe(home)) {
		*error_r = xasprintf("unsafe home directory path: %s", home);
		return MAILDROP_OPEN_ERROR;
	}
	if (format != MAILDROP_UIDL_FILENAME) {
		*error_r = xstrdup("UIDL format %08Xu%08Xv needs the store index");
		return MAILDROP_OPEN_ERROR;
	}
	md = xcalloc(1, sizeof(*md));
	md->cur_fd = md->new_fd = md->lock_fd = -1;
	md->format = format;
	md->home_fd = open(home, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (md->home_fd < 0) {
		*error_r = xasprintf("open(%s) failed: %s", home, strerror(errno));
		goto fail;
	}
	md->lock_fd = openat(md->home_fd, MAILDROP_LOCK_NAME,
	                     O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (md->lock_fd < 0) {
		*error_r =
		    xasprintf("open(%s/%s) failed: %s", home, MAILDROP_LOCK_NAME, strerror(errno));
		goto fail;
	}
	/* flock locks belong to the open file description: a second session in this
	 * process conflicts just like one in another process. */
	if (flock(md->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK) {
			maildrop_free(&md);
			return MAILDROP_OPEN_IN_USE;
		}
		*error_r = xasprintf("flock(%s) failed: %s", MAILDROP_LOCK_NAME, strerror(errno));
		goto fail;
	}
	md->cur_fd = openat(md->home_fd, "cur", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	md->new_fd = openat(md->home_fd, "new", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (md->cur_fd < 0 || md->new_fd < 0) {
		*error_r = xasprintf("open(%s/cur or new) failed: %s", home, strerror(errno));
		goto fail;
	}
	if (scan_dir(md, md->cur_fd, false, error_r) < 0 ||
	    scan_dir(md, md->new_fd, true, error_r) < 0)
		goto fail;
	if (md->n > 1)
		qsort(md->msgs, md->n, sizeof(*md->msgs), msg_cmp);
	make_uidls(md);
	*md_r = md;
	return MAILDROP_OPEN_OK;
fail:
	maildrop_free(&md);
	return MAILDROP_OPEN_ERROR;
}

void maildrop_free(struct maildrop **mdp)
{
	struct maildrop *md = *mdp;

	if (md == NULL)
		return;
	for (unsigned i = 0; i < md->n; i++) {
		free(md->msgs[i].name);
		free(md->msgs[i].uidl);
	}
	free(md->msgs);
	if (md->cur_fd >= 0)
		close(md->cur_fd);
	if (md->new_fd >= 0)
		close(md->new_fd);
	if (md->lock_fd >= 0)
		close(md->lock_fd); /* releases the flock */
	if (md->home_fd >= 0)
		close(md->home_fd);
	free(md);
	*mdp = NULL;
}

unsigned maildrop_count(const struct maildrop *md)
{
	return md->n;
}

bool maildrop_exists(const struct maildrop *md, unsigned n)
{
	return n >= 1 && n <= md->n && !md->msgs[n - 1].deleted;
}

bool maildrop_is_deleted(const struct maildrop *md, unsigned n)
{
	return n >= 1 && n <= md->n && md->msgs[n - 1].deleted;
}

uint64_t maildrop_size(const struct maildrop *md, unsigned n)
{
	return md->msgs[n - 1].size;
}

void maildrop_stat(const struct maildrop *md, unsigned *count_r, uint64_t *size_r)
{
	*count_r = 0;
	*size_r = 0;
	for (unsigned i = 0; i < md->n; i++) {
		if (!md->msgs[i].deleted) {
			(*count_r)++;
			*size_r += md->msgs[i].size;
		}
	}
}

const char *maildrop_uidl(const struct maildrop *md, unsigned n)
{
	return md->msgs[n - 1].uidl;
}

/* The message's file moved (flags changed by another client): find it by base name. */
static int find_moved(struct maildrop *md, struct maildrop_msg *m)
{
	for (int pass = 0; pass < 2; pass++) {
		int dir_fd = pass == 0 ? md->cur_fd : md->new_fd;
		int fd = dup(dir_fd);
		DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
		struct dirent *de;
		if (d == NULL) {
			if (fd >= 0)
				close(fd);
			return -1;
		}
		rewinddir(d);
		while ((de = readdir(d)) != NULL) {
			if (name_is_valid(de->d_name) && name_base_len(de->d_name) == m->base_len &&
			    memcmp(de->d_name, m->name, m->base_len) == 0) {
				free(m->name);
				m->name = xstrdup(de->d_name);
				m->in_new = pass == 1;
				closedir(d);
				return 0;
			}
		}
		closedir(d);
	}
	errno = ENOENT;
	return -1;
}

int maildrop_open_message(struct maildrop *md, unsigned n, char **error_r)
{
	struct maildrop_msg *m = &md->msgs[n - 1];
	int fd;

	for (int attempt = 0; attempt < 2; attempt++) {
		fd = openat(m->in_new ? md->new_fd : md->cur_fd, m->name,
		            O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0)
			return fd;
		if (errno != ENOENT || find_moved(md, m) < 0)
			break;
	}
	*error_r = xasprintf("open(%s) failed: %s", m->name, strerror(errno));
	return -1;
}

void maildrop_mark_deleted(struct maildrop *md, unsigned n)
{
	md->msgs[n - 1].deleted = true;
}

void maildrop_reset(struct maildrop *md)
{
	for (unsigned i = 0; i < md->n; i++)
		md->msgs[i].deleted = false;
}

void maildrop_mark_seen(struct maildrop *md, unsigned n)
{
	md->msgs[n - 1].seen = true;
}

/* The name with 'S' added to its ":2," flags, kept in ASCII order (Maildir spec). */
static char *name_with_seen(const struct maildrop_msg *m)
{
	const char *info = m->name + m->base_len;
	char flags[64];
	size_t n = 0;

	if (strncmp(info, ":2,", 3) == 0) {
		for (const char *p = info + 3; *p != '\0' && n < sizeof(flags) - 2; p++) {
			if (*p == 'S')
				return NULL; /* already seen */
			flags[n++] = *p;
		}
	}
	flags[n++] = 'S';
	flags[n] = '\0';
	/* Insertion sort of a handful of letters. */
	for (size_t i = 1; i < n; i++) {
		for (size_t j = i; j > 0 && flags[j - 1] > flags[j]; j--) {
			char t = flags[j];
			flags[j] = flags[j - 1];
			flags[j - 1] = t;
		}
	}
	return xasprintf("%.*s:2,%s", (int)m->base_len, m->name, flags);
}

static int apply_one(struct maildrop *md, struct maildrop_msg *m, char **error_r)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		int dir_fd = m->in_new ? md->new_fd : md->cur_fd;
		int r;
		if (m->deleted) {
			r = unlinkat(dir_fd, m->name, 0);
		} else {
			char *to = name_with_seen(m);
			if (to == NULL && !m->in_new)
				return 0;
			if (to == NULL)
				to = xstrdup(m->name);
			/* A message POP3 has read moves to cur/ (it is no longer "new"). */
			r = renameat(dir_fd, m->name, md->cur_fd, to);
			free(to);
		}
		if (r == 0)
			return 0;
		if (errno != ENOENT)
			break;
		if (find_moved(md, m) < 0) {
			/* Already expunged by another client: a deletion is then done. */
			return m->deleted ? 0 : -1;
		}
	}
	*error_r = xasprintf("%s(%s) failed: %s", m->deleted ? "unlink" : "rename", m->name,
	                     strerror(errno));
	return -1;
}

int maildrop_commit(struct maildrop *md, unsigned *deleted_r, char **error_r)
{
	int ret = 0;

	*deleted_r = 0;
	*error_r = NULL;
	for (unsigned i = 0; i < md->n; i++) {
		struct maildrop_msg *m = &md->msgs[i];
		char *err = NULL;
		if (!m->deleted && !m->seen)
			continue;
		if (apply_one(md, m, &err) < 0) {
			if (*error_r == NULL)
				*error_r = err;
			else
				free(err);
			ret = -1;
		} else if (m->deleted) {
			(*deleted_r)++;
		}
	}
	if (*deleted_r > 0 && (fsync(md->cur_fd) < 0 || fsync(md->new_fd) < 0) && ret == 0) {
		*error_r = xasprintf("fsync(cur) failed: %s", strerror(errno));
		ret = -1;
	}
	return ret;
}
