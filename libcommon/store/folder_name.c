/* Validation and mapping of folder names; the only place a name becomes a path part. */
#include "store/folder_name.h"

#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "store/mutf7.h"

bool folder_name_is_inbox(const char *name)
{
	return strcasecmp(name, "INBOX") == 0;
}

static const char *component_check(const char *s, size_t len)
{
	if (len == 0)
		return "Empty hierarchy level in folder name";
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '.' || c == '%' || c == '*')
			return "Character not allowed in folder name";
		if (c < 0x20 || c >= 0x7f)
			return "Folder name is not valid modified UTF-7";
	}
	struct buf utf8;
	buf_init(&utf8, 0);
	const char *err = NULL;
	if (mutf7_decode(s, len, &utf8) < 0) {
		err = "Folder name is not valid modified UTF-7";
	} else {
		for (size_t i = 0; i < utf8.len; i++) {
			unsigned char c = (unsigned char)utf8.data[i];
			/* Decoded C1 controls are U+0080..U+009F = C2 80..C2 9F in UTF-8. */
			if (c < 0x20 || c == 0x7f ||
			    (c == 0xc2 && i + 1 < utf8.len &&
			     (unsigned char)utf8.data[i + 1] < 0xa0))
				err = "Control character in folder name";
		}
	}
	buf_free(&utf8);
	return err;
}

int folder_name_to_dir(const char *name, struct buf *dir, const char **error_r)
{
	if (folder_name_is_inbox(name))
		return 0;
	size_t old = dir->len;
	const char *p = name;
	/* "inbox/x" names the INBOX hierarchy whatever its case. */
	if (strncasecmp(name, "INBOX/", 6) == 0) {
		buf_append_str(dir, ".INBOX");
		p = name + 5;
	} else {
		p = name - 1;
	}
	while (p != NULL) {
		const char *start = p + 1;
		const char *end = strchr(start, FOLDER_SEPARATOR);
		size_t len = end != NULL ? (size_t)(end - start) : strlen(start);
		const char *err = component_check(start, len);
		if (err != NULL) {
			buf_truncate(dir, old);
			*error_r = err;
			return -1;
		}
		buf_append_char(dir, '.');
		buf_append(dir, start, len);
		p = end;
	}
	if (dir->len - old > FOLDER_DIR_MAX) {
		buf_truncate(dir, old);
		*error_r = "Folder name too long";
		return -1;
	}
	return 0;
}

int folder_dir_to_name(const char *dir, struct buf *name)
{
	if (dir[0] != '.' || strlen(dir) > FOLDER_DIR_MAX)
		return -1;
	size_t old = name->len;
	const char *p = dir;
	while (p != NULL) {
		const char *start = p + 1;
		const char *end = strchr(start, '.');
		size_t len = end != NULL ? (size_t)(end - start) : strlen(start);
		if (component_check(start, len) != NULL) {
			buf_truncate(name, old);
			return -1;
		}
		if (p != dir)
			buf_append_char(name, FOLDER_SEPARATOR);
		buf_append(name, start, len);
		p = end;
	}
	/* ".INBOX" alone would alias INBOX: not a folder of its own. */
	if (folder_name_is_inbox(buf_cstr(name) + old)) {
		buf_truncate(name, old);
		return -1;
	}
	return 0;
}

int folder_name_to_utf8(const char *name, struct buf *utf8)
{
	return mutf7_decode(name, strlen(name), utf8);
}
