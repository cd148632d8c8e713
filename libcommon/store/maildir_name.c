/*
 * Unique names and the flag letters of Maildir file names. Uniqueness does not rest on the
 * clock alone (it may jump back): the pid, a per-process counter and 64 random bits are in
 * every name too.
 */
#include "store/maildir_name.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/xalloc.h"

static const struct {
	char letter;
	unsigned int flag;
} flag_letters[] = {
    /* ASCII order, which is the order the spec asks names to be written in. */
    {'D', STORE_FLAG_DRAFT},    {'F', STORE_FLAG_FLAGGED}, {'P', STORE_FLAG_PASSED},
    {'R', STORE_FLAG_ANSWERED}, {'S', STORE_FLAG_SEEN},    {'T', STORE_FLAG_DELETED},
};

/* The host name with '/' and ':' escaped as Dovecot and qmail do (\057, \072). */
static void name_append_host(struct buf *b)
{
	char host[256];
	if (gethostname(host, sizeof(host)) < 0)
		memcpy(host, "localhost", sizeof("localhost"));
	host[sizeof(host) - 1] = '\0';
	for (const char *p = host; *p != '\0'; p++) {
		if (*p == '/')
			buf_append_str(b, "\\057");
		else if (*p == ':')
			buf_append_str(b, "\\072");
		else if (*p == ',')
			buf_append_str(b, "\\054");
		else
			buf_append_char(b, *p);
	}
}

char *maildir_name_unique(void)
{
	static unsigned long counter;
	struct timeval tv;
	uint64_t rnd = 0;
	gettimeofday(&tv, NULL);
	if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
		rnd ^= (uint64_t)tv.tv_usec << 20 ^ (uint64_t)getpid();
	unsigned long n = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
	struct buf b;
	buf_init(&b, 0);
	buf_printf(&b, "%lld.M%ldP%ldQ%luR%016llx.", (long long)tv.tv_sec, (long)tv.tv_usec,
	           (long)getpid(), n, (unsigned long long)rnd);
	name_append_host(&b);
	return buf_steal(&b);
}

size_t maildir_name_base_len(const char *name)
{
	const char *colon = strchr(name, ':');
	return colon != NULL ? (size_t)(colon - name) : strlen(name);
}

bool maildir_name_get_size(const char *name, char field, uint64_t *size_r)
{
	size_t base = maildir_name_base_len(name);
	for (size_t i = 0; i + 3 < base; i++) {
		if (name[i] != ',' || name[i + 1] != field || name[i + 2] != '=')
			continue;
		uint64_t v = 0;
		size_t j = i + 3;
		if (j >= base || name[j] < '0' || name[j] > '9')
			return false;
		for (; j < base && name[j] >= '0' && name[j] <= '9'; j++) {
			if (v > (UINT64_MAX - 9) / 10)
				return false;
			v = v * 10 + (uint64_t)(name[j] - '0');
		}
		if (j < base && name[j] != ',')
			return false;
		*size_r = v;
		return true;
	}
	return false;
}

uint64_t maildir_count_bare_lf(const void *data, size_t len, bool *last_cr)
{
	const char *p = data, *s = p, *end = p + len, *lf;
	uint64_t bare = 0;
	if (len == 0)
		return 0;
	while ((lf = memchr(s, '\n', (size_t)(end - s))) != NULL) {
		bool cr = lf > p ? lf[-1] == '\r' : *last_cr;
		bare += cr ? 0 : 1;
		s = lf + 1;
	}
	*last_cr = end[-1] == '\r';
	return bare;
}

void maildir_name_get_flags(const char *name, unsigned int *flags_r, uint32_t *keywords_r)
{
	*flags_r = 0;
	*keywords_r = 0;
	const char *info = strchr(name, ':');
	if (info == NULL || strncmp(info, ":2,", 3) != 0)
		return;
	for (const char *p = info + 3; *p != '\0'; p++) {
		if (*p >= 'a' && *p <= 'z') {
			*keywords_r |= 1u << (*p - 'a');
			continue;
		}
		for (size_t i = 0; i < sizeof(flag_letters) / sizeof(flag_letters[0]); i++) {
			if (flag_letters[i].letter == *p)
				*flags_r |= flag_letters[i].flag;
		}
	}
}

char *maildir_name_set_flags(const char *name, unsigned int flags, uint32_t keywords)
{
	struct buf b;
	buf_init(&b, 0);
	buf_append(&b, name, maildir_name_base_len(name));
	buf_append_str(&b, ":2,");
	for (size_t i = 0; i < sizeof(flag_letters) / sizeof(flag_letters[0]); i++) {
		if ((flags & flag_letters[i].flag) != 0)
			buf_append_char(&b, flag_letters[i].letter);
	}
	for (int i = 0; i < STORE_KEYWORDS_MAX; i++) {
		if ((keywords & (1u << i)) != 0)
			buf_append_char(&b, (char)('a' + i));
	}
	return buf_steal(&b);
}

bool maildir_name_is_valid(const char *name)
{
	return name[0] != '\0' && name[0] != '.' && strchr(name, '/') == NULL;
}
