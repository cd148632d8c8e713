/*
 * The passwd-file backend: parsing Dovecot's format into an immutable, sorted snapshot,
 * and reloading it when the file changes on disk.
 */
#include "passdb_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "authd_settings.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "password_scheme.h"

#define PASSDB_MAX_FILE_SIZE (256u * 1024 * 1024)
#define PASSDB_REFRESH_MIN_NS (100 * 1000000LL)

struct passdb_file {
	const struct authd_settings *set;
	char *path;
	struct passdb *current;
	struct stat st;
	int64_t last_check_ns;
};

static void passdb_free(struct passdb *db)
{
	for (size_t i = 0; i < db->n_users; i++) {
		struct passdb_user *u = &db->users[i];
		free(u->name);
		if (u->password != NULL) {
			secure_zero(u->password, strlen(u->password));
			free(u->password);
		}
		free(u->uid);
		free(u->gid);
	}
	free(db->users);
	free(db);
}

void passdb_unref(struct passdb **dbp)
{
	struct passdb *db = *dbp;

	*dbp = NULL;
	if (db != NULL && --db->refcount == 0)
		passdb_free(db);
}

/* "10", "10K", "1G"... with powers of 1024; `unit` multiplies a bare number. */
static int parse_size(const char *s, uint64_t unit, uint64_t *v_r)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	uint64_t mul = unit;
	switch (*end) {
	case '\0':
		break;
	case 'k':
	case 'K':
		mul = 1ULL << 10;
		end++;
		break;
	case 'm':
	case 'M':
		mul = 1ULL << 20;
		end++;
		break;
	case 'g':
	case 'G':
		mul = 1ULL << 30;
		end++;
		break;
	case 't':
	case 'T':
		mul = 1ULL << 40;
		end++;
		break;
	default:
		return -1;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end != '\0' || errno != 0 || (v != 0 && mul > UINT64_MAX / v))
		return -1;
	*v_r = v * mul;
	return 0;
}

static int parse_extra_field(struct passdb_user *u, char *word)
{
	if (strcmp(word, "nologin") == 0 || strcmp(word, "nologin=y") == 0 ||
	    strcmp(word, "nologin=yes") == 0) {
		u->nologin = true;
		return 0;
	}
	if (strncmp(word, "userdb_quota_bytes=", 19) == 0)
		return parse_size(word + 19, 1, &u->quota_bytes);
	if (strncmp(word, "userdb_quota_messages=", 22) == 0)
		return parse_size(word + 22, 1, &u->quota_messages);
	if (strncmp(word, "userdb_quota_rule=", 18) == 0) {
		const char *rule = word + 18;
		if (strncmp(rule, "*:", 2) != 0)
			return 0; /* per-mailbox rules are not supported; ignored */
		rule += 2;
		if (strncmp(rule, "bytes=", 6) == 0)
			return parse_size(rule + 6, 1, &u->quota_bytes);
		if (strncmp(rule, "storage=", 8) == 0)
			return parse_size(rule + 8, 1024, &u->quota_bytes);
		if (strncmp(rule, "messages=", 9) == 0)
			return parse_size(rule + 9, 1, &u->quota_messages);
		return 0;
	}
	return 0; /* unknown extra fields are ignored, as Dovecot passes them on */
}

/* Parses one line (NUL-terminated, without LF). Returns 1 with *u filled, 0 for a blank
 * or comment line, -1 with *why for a bad line. */
static int parse_line(const struct authd_settings *set, char *line, struct passdb_user *u,
                      const char **why)
{
	char *f[8] = {0};
	size_t n = 0;
	char *p = line;

	if (line[0] == '#' || line[strspn(line, " \t\r")] == '\0')
		return 0;
	size_t len = strlen(line);
	if (len > 0 && line[len - 1] == '\r')
		line[len - 1] = '\0';
	/* The 8th field (extra fields) takes the rest of the line, colons included. */
	while (n < 7) {
		f[n++] = p;
		char *colon = strchr(p, ':');
		if (colon == NULL)
			break;
		*colon = '\0';
		p = colon + 1;
		if (n == 7)
			f[n++] = p;
	}
	memset(u, 0, sizeof(*u));
	u->name = authd_user_canonicalize(set, f[0]);
	if (u->name == NULL) {
		*why = "invalid user name";
		return -1;
	}
	const char *pw = n > 1 ? f[1] : "";
	u->password = pw[0] != '\0' ? xstrdup(pw) : NULL;
	u->uid = xstrdup(n > 2 ? f[2] : "");
	u->gid = xstrdup(n > 3 ? f[3] : "");
	if (n > 7) {
		char *save = NULL;
		for (char *w = strtok_r(f[7], " \t", &save); w != NULL;
		     w = strtok_r(NULL, " \t", &save)) {
			if (parse_extra_field(u, w) < 0) {
				*why = "invalid extra field";
				return -1;
			}
		}
	}
	return 1;
}

static int user_cmp(const void *a, const void *b)
{
	return strcmp(((const struct passdb_user *)a)->name, ((const struct passdb_user *)b)->name);
}

static void user_clear(struct passdb_user *u)
{
	free(u->name);
	if (u->password != NULL)
		secure_zero(u->password, strlen(u->password));
	free(u->password);
	free(u->uid);
	free(u->gid);
	memset(u, 0, sizeof(*u));
}

struct passdb *passdb_parse(const struct authd_settings *set, const char *text, size_t len,
                            const char *source)
{
	struct passdb *db = xcalloc(1, sizeof(*db));
	size_t cap = 0, lineno = 0;
	const char *p = text, *end = text + len;

	db->refcount = 1;
	db->all_plaintext = db->all_scram = true;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t llen = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
		char *line = xstrndup(p, llen);
		size_t line_alloc = strlen(line); /* xstrndup stops at a NUL */
		struct passdb_user u = {0};
		const char *why = NULL;

		lineno++;
		p += llen + (nl != NULL ? 1 : 0);
		int r = line_alloc == llen ? parse_line(set, line, &u, &why) : -1;
		if (r < 0 && why == NULL)
			why = "NUL byte in line";
		secure_zero(line, line_alloc);
		free(line);
		if (r < 0) {
			log_warn("passwd-file %s:%zu: %s; line ignored", source, lineno, why);
			user_clear(&u);
			continue;
		}
		if (r == 0)
			continue;
		if (db->n_users == cap) {
			cap = cap == 0 ? 16 : cap * 2;
			db->users = xreallocarray(db->users, cap, sizeof(*db->users));
		}
		db->users[db->n_users++] = u;
	}
	if (db->n_users > 0)
		qsort(db->users, db->n_users, sizeof(*db->users), user_cmp);
	/* Duplicates: the first line wins in Dovecot; keep the earliest by dropping later
	 * equal names (qsort is not stable, so warn and keep one). */
	size_t w = 0;
	for (size_t i = 0; i < db->n_users; i++) {
		if (w > 0 && strcmp(db->users[w - 1].name, db->users[i].name) == 0) {
			log_warn("passwd-file %s: duplicate user %s; one entry ignored", source,
			         db->users[i].name);
			user_clear(&db->users[i]);
			continue;
		}
		db->users[w++] = db->users[i];
	}
	db->n_users = w;
	for (size_t i = 0; i < db->n_users; i++) {
		const char *pw = db->users[i].password;
		bool plain = pw != NULL && password_plaintext(pw) != NULL;
		struct buf tmp;
		buf_init(&tmp, 0);
		bool scram = pw != NULL && password_scram_authpassword(pw, &tmp) == 0;
		buf_free(&tmp);
		db->all_plaintext &= plain;
		db->all_scram &= plain || scram;
	}
	if (db->n_users == 0)
		db->all_plaintext = db->all_scram = false;
	return db;
}

const struct passdb_user *passdb_lookup(const struct passdb *db, const char *canonical_name)
{
	struct passdb_user key = {.name = (char *)canonical_name};

	if (db->n_users == 0)
		return NULL;
	return bsearch(&key, db->users, db->n_users, sizeof(*db->users), user_cmp);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Reads the file into a new snapshot; *st_r gets the stat of what was read. */
static struct passdb *passdb_file_read(struct passdb_file *pf, struct stat *st_r, char **error_r)
{
	int fd = open(pf->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		*error_r = xasprintf("open(%s): %s", pf->path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, st_r) < 0 || !S_ISREG(st_r->st_mode) ||
	    (uint64_t)st_r->st_size > PASSDB_MAX_FILE_SIZE) {
		*error_r = xasprintf("%s: not a regular file of at most %u bytes", pf->path,
		                     PASSDB_MAX_FILE_SIZE);
		close(fd);
		return NULL;
	}
	struct buf b;
	buf_init(&b, PASSDB_MAX_FILE_SIZE);
	char chunk[8192];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || (n > 0 && buf_append(&b, chunk, (size_t)n) < 0)) {
			*error_r = xasprintf("read(%s): %s", pf->path,
			                     n < 0 ? strerror(errno) : "file too large");
			secure_zero(b.data, b.len);
			buf_free(&b);
			close(fd);
			return NULL;
		}
		if (n == 0)
			break;
	}
	secure_zero(chunk, sizeof(chunk));
	close(fd);
	struct passdb *db = passdb_parse(pf->set, buf_cstr(&b), b.len, pf->path);
	if (b.data != NULL)
		secure_zero(b.data, b.len);
	buf_free(&b);
	return db;
}

struct passdb_file *passdb_file_open(const struct authd_settings *set, const char *path,
                                     char **error_r)
{
	struct passdb_file *pf = xcalloc(1, sizeof(*pf));

	pf->set = set;
	pf->path = xstrdup(path);
	pf->current = passdb_file_read(pf, &pf->st, error_r);
	if (pf->current == NULL) {
		free(pf->path);
		free(pf);
		return NULL;
	}
	pf->last_check_ns = now_ns();
	log_info("passwd-file %s: %zu users", path, pf->current->n_users);
	return pf;
}

void passdb_file_free(struct passdb_file **pfp)
{
	struct passdb_file *pf = *pfp;

	if (pf == NULL)
		return;
	*pfp = NULL;
	passdb_unref(&pf->current);
	free(pf->path);
	free(pf);
}

void passdb_file_refresh(struct passdb_file *pf)
{
	struct stat st;
	int64_t now = now_ns();

	if (now - pf->last_check_ns < PASSDB_REFRESH_MIN_NS)
		return;
	pf->last_check_ns = now;
	if (stat(pf->path, &st) == 0 && st.st_ino == pf->st.st_ino && st.st_dev == pf->st.st_dev &&
	    st.st_size == pf->st.st_size && st.st_mtim.tv_sec == pf->st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == pf->st.st_mtim.tv_nsec &&
	    st.st_ctim.tv_sec == pf->st.st_ctim.tv_sec &&
	    st.st_ctim.tv_nsec == pf->st.st_ctim.tv_nsec)
		return;
	char *error = NULL;
	struct passdb *db = passdb_file_read(pf, &st, &error);
	if (db == NULL) {
		log_warn("passwd-file reload failed, keeping the old users: %s", error);
		free(error);
		return;
	}
	passdb_unref(&pf->current);
	pf->current = db;
	pf->st = st;
	log_info("passwd-file %s reloaded: %zu users", pf->path, db->n_users);
}

struct passdb *passdb_file_get(struct passdb_file *pf)
{
	pf->current->refcount++;
	return pf->current;
}
