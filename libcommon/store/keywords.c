/* The dovecot-keywords letter map: parse, look up and extend it (write new + rename). */
#include "store/keywords.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "store/atomic_file.h"

#define KEYWORDS_FILE "dovecot-keywords"
#define KEYWORDS_FILE_MAX (64 * 1024)

void keywords_free(struct keywords *kw)
{
	for (int i = 0; i < STORE_KEYWORDS_MAX; i++) {
		free(kw->names[i]);
		kw->names[i] = NULL;
	}
}

bool keywords_name_is_valid(const char *name)
{
	size_t len = strlen(name);
	if (len == 0 || len > KEYWORD_NAME_MAX || name[0] == '\\')
		return false;
	for (const char *p = name; *p != '\0'; p++) {
		unsigned char c = (unsigned char)*p;
		/* RFC 3501 atom-specials and list-wildcards; also ']' (resp-specials). */
		if (c <= 0x20 || c >= 0x7f || strchr("(){%*\"\\]", c) != NULL)
			return false;
	}
	return true;
}

static void keywords_parse(struct keywords *kw, char *text)
{
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char *end;
		long idx = strtol(line, &end, 10);
		if (end == line || *end != ' ' || idx < 0 || idx >= STORE_KEYWORDS_MAX)
			continue;
		if (!keywords_name_is_valid(end + 1) || kw->names[idx] != NULL)
			continue;
		kw->names[idx] = xstrdup(end + 1);
	}
}

int keywords_load(int folder_fd, struct keywords *kw, const char **error_r)
{
	keywords_free(kw);
	struct buf b;
	buf_init(&b, KEYWORDS_FILE_MAX);
	int ret = atomic_file_read(folder_fd, KEYWORDS_FILE, &b);
	if (ret < 0) {
		*error_r = "cannot read dovecot-keywords";
	} else {
		keywords_parse(kw, b.data != NULL ? b.data : (char[]){'\0'});
		ret = 0;
	}
	buf_free(&b);
	return ret;
}

int keywords_lookup(const struct keywords *kw, const char *name)
{
	for (int i = 0; i < STORE_KEYWORDS_MAX; i++) {
		if (kw->names[i] != NULL && strcmp(kw->names[i], name) == 0)
			return i;
	}
	for (int i = 0; i < STORE_KEYWORDS_MAX; i++) {
		if (kw->names[i] != NULL && strcasecmp(kw->names[i], name) == 0)
			return i;
	}
	return -1;
}

int keywords_add(int folder_fd, struct keywords *kw, const char *name, const char **error_r)
{
	if (!keywords_name_is_valid(name)) {
		*error_r = "Invalid keyword";
		return -1;
	}
	if (keywords_load(folder_fd, kw, error_r) < 0)
		return -1;
	int idx = keywords_lookup(kw, name);
	if (idx >= 0)
		return idx;
	for (idx = 0; idx < STORE_KEYWORDS_MAX && kw->names[idx] != NULL; idx++)
		;
	if (idx == STORE_KEYWORDS_MAX) {
		*error_r = "Too many keywords in this folder";
		return -1;
	}
	kw->names[idx] = xstrdup(name);
	struct buf b;
	buf_init(&b, 0);
	for (int i = 0; i < STORE_KEYWORDS_MAX; i++) {
		if (kw->names[i] != NULL)
			buf_printf(&b, "%d %s\n", i, kw->names[i]);
	}
	int ret = atomic_file_write(folder_fd, KEYWORDS_FILE, b.data, b.len);
	buf_free(&b);
	if (ret < 0) {
		free(kw->names[idx]);
		kw->names[idx] = NULL;
		*error_r = "cannot write dovecot-keywords";
		return -1;
	}
	return idx;
}
