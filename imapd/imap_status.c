/* STATUS data (see imap_status.h). */
#include "imap_status.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "imap_args.h"
#include "imap_mailbox.h"
#include "imap_session.h"
#include "imap_utf8.h"
#include "proto/imap_string.h"
#include "store/folder.h"
#include "store/mailbox.h"
#include "store/maildir_name.h"

enum status_item {
	STATUS_MESSAGES = 1 << 0,
	STATUS_RECENT = 1 << 1,
	STATUS_UIDNEXT = 1 << 2,
	STATUS_UIDVALIDITY = 1 << 3,
	STATUS_UNSEEN = 1 << 4,
	STATUS_SIZE = 1 << 5,
	STATUS_HIGHESTMODSEQ = 1 << 6,
};

static const struct {
	const char *name;
	unsigned bit;
} status_names[] = {
    {"MESSAGES", STATUS_MESSAGES},           {"RECENT", STATUS_RECENT}, {"UIDNEXT", STATUS_UIDNEXT},
    {"UIDVALIDITY", STATUS_UIDVALIDITY},     {"UNSEEN", STATUS_UNSEEN}, {"SIZE", STATUS_SIZE},
    {"HIGHESTMODSEQ", STATUS_HIGHESTMODSEQ},
};

int imap_status_parse_items(const struct imap_arg *list, unsigned *items_r)
{
	*items_r = 0;
	if (list->type != IMAP_ARG_LIST || list->count == 0)
		return -1;
	for (size_t i = 0; i < list->count; i++) {
		size_t j;
		for (j = 0; j < sizeof(status_names) / sizeof(status_names[0]); j++) {
			if (imap_arg_atom_is(&list->list[i], status_names[j].name))
				break;
		}
		if (j == sizeof(status_names) / sizeof(status_names[0]))
			return -1;
		*items_r |= status_names[j].bit;
	}
	return 0;
}

int imap_status_line(struct imap_session *s, const char *name, unsigned items, struct buf *line)
{
	char *path = folder_exists(s->home, name) ? folder_path(s->home, name) : NULL;
	struct store_mailbox *box = NULL;
	const char *error;
	if (path == NULL || imap_mailbox_open(path, &box, &error) != STORE_OK) {
		free(path);
		return -1;
	}
	free(path);
	size_t count = store_mailbox_count(box), unseen = 0;
	uint64_t size = 0;
	for (size_t seq = 1; seq <= count; seq++) {
		const struct store_msg *m = store_mailbox_msg(box, seq);
		unseen += !(m->flags & STORE_FLAG_SEEN);
		if (items & STATUS_SIZE) /* else the sizes need not be read */
			size += store_mailbox_msg_info(box, seq)->vsize;
	}
	(void)buf_append_str(line, "* STATUS ");
	imap_utf8_name_append(s, line, name);
	(void)buf_append_str(line, " (");
	size_t start = line->len;
#define ITEM(bit, fmt, val)                                                                        \
	if (items & (bit))                                                                         \
	(void)buf_printf(line, "%s" fmt, line->len > start ? " " : "", val)
	ITEM(STATUS_MESSAGES, "MESSAGES %zu", count);
	ITEM(STATUS_RECENT, "RECENT %d", 0);
	ITEM(STATUS_UIDNEXT, "UIDNEXT %u", store_mailbox_uidnext(box));
	ITEM(STATUS_UIDVALIDITY, "UIDVALIDITY %u", store_mailbox_uidvalidity(box));
	ITEM(STATUS_UNSEEN, "UNSEEN %zu", unseen);
	ITEM(STATUS_SIZE, "SIZE %llu", (unsigned long long)size);
	ITEM(STATUS_HIGHESTMODSEQ, "HIGHESTMODSEQ %llu",
	     (unsigned long long)store_mailbox_highestmodseq(box));
#undef ITEM
	(void)buf_append_char(line, ')');
	store_mailbox_close(&box);
	return 0;
}
