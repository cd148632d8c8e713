/*
 * Reading Dovecot's dovecot-uidlist (versions 1 and 3): "3 V<uidvalidity> N<uidnext> ..."
 * then "<uid> [<ext> ...] :<file name>" lines (version 1: "1 <uidvalidity> <uidnext>" and
 * "<uid> <file name>"). Only base names matter: flags after ':' change over time.
 */
#include "store/mailbox_private.h"

#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "store/atomic_file.h"
#include "store/maildir_name.h"

#define UIDLIST_FILE "dovecot-uidlist"
#define UIDLIST_MAX (256u * 1024 * 1024)

struct uid_entry {
	char *base;
	uint32_t uid;
};

static int cmp_entries(const void *a, const void *b)
{
	return strcmp(((const struct uid_entry *)a)->base, ((const struct uid_entry *)b)->base);
}

bool uidlist_parse_header(const char *line, uint32_t *uidvalidity_r, uint32_t *uidnext_r,
                          int *version_r)
{
	char *end;
	long version = strtol(line, &end, 10);
	*uidvalidity_r = *uidnext_r = 0;
	if (version == 1) {
		unsigned long v = strtoul(end, &end, 10), n = strtoul(end, &end, 10);
		*uidvalidity_r = (uint32_t)v;
		*uidnext_r = (uint32_t)n;
	} else if (version == 3) {
		for (const char *p = end; *p != '\0';) {
			while (*p == ' ')
				p++;
			if (*p == 'V')
				*uidvalidity_r = (uint32_t)strtoul(p + 1, NULL, 10);
			else if (*p == 'N')
				*uidnext_r = (uint32_t)strtoul(p + 1, NULL, 10);
			p += strcspn(p, " ");
		}
	} else {
		return false;
	}
	*version_r = (int)version;
	return *uidvalidity_r != 0;
}

int uidlist_read(int dir_fd, struct uidlist *ul)
{
	memset(ul, 0, sizeof(*ul));
	struct buf b;
	buf_init(&b, UIDLIST_MAX);
	if (atomic_file_read(dir_fd, UIDLIST_FILE, &b) < 0 || b.len == 0) {
		buf_free(&b);
		return -1;
	}
	char *save = NULL;
	char *line = strtok_r(b.data, "\n", &save);
	int version = 0;
	if (line == NULL || !uidlist_parse_header(line, &ul->uidvalidity, &ul->uidnext, &version)) {
		buf_free(&b);
		memset(ul, 0, sizeof(*ul));
		return -1;
	}
	struct uid_entry *entries = NULL;
	size_t n = 0, cap = 0;
	while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
		char *end;
		unsigned long uid = strtoul(line, &end, 10);
		if (uid == 0 || uid > UINT32_MAX || *end != ' ')
			continue;
		const char *name = version == 3 ? strstr(end, " :") : end;
		if (name == NULL)
			continue;
		name += version == 3 ? 2 : 1;
		if (!maildir_name_is_valid(name))
			continue;
		if (n == cap) {
			cap = cap * 2 + 256;
			entries = xreallocarray(entries, cap, sizeof(*entries));
		}
		entries[n].base = xstrndup(name, maildir_name_base_len(name));
		entries[n++].uid = (uint32_t)uid;
	}
	buf_free(&b);
	if (n > 1)
		qsort(entries, n, sizeof(*entries), cmp_entries);
	ul->bases = xcalloc(n + 1, sizeof(char *));
	ul->uids = xcalloc(n + 1, sizeof(uint32_t));
	for (size_t i = 0; i < n; i++) {
		ul->bases[i] = entries[i].base;
		ul->uids[i] = entries[i].uid;
	}
	ul->count = n;
	free(entries);
	return 0;
}

uint32_t uidlist_lookup(const struct uidlist *ul, const char *name)
{
	size_t len = maildir_name_base_len(name);
	size_t lo = 0, hi = ul->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strncmp(ul->bases[mid], name, len);
		if (c == 0 && ul->bases[mid][len] != '\0')
			c = 1;
		if (c == 0)
			return ul->uids[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

void uidlist_free(struct uidlist *ul)
{
	for (size_t i = 0; i < ul->count; i++)
		free(ul->bases[i]);
	free(ul->bases);
	free(ul->uids);
	memset(ul, 0, sizeof(*ul));
}
