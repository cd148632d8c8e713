/*
 * Fuzz target for the index reader: the input becomes a folder's tern-index,
 * tern-index.log and tern-cache (lengths in the first four bytes). Opening the
 * folder must always succeed (damage means a rebuild from the files), and every cached
 * entry must read back or be rebuilt, with the view's UIDs strictly increasing, and the
 * expunge tombstones (VANISHED record, EXPUNGE log records) must give a sane answer.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/mailbox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64];

static void put(const char *name, const uint8_t *data, size_t len)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		abort();
	if (len > 0 && write(fd, data, len) != (ssize_t)len)
		abort();
	close(fd);
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/tern-fuzz-index-XXXXXX");
	if (mkdtemp(dir) == NULL)
		abort();
	/* Two real messages for the index to describe (or to rebuild from). */
	static const char *const names[] = {"1.M1P1Q1.fuzz,S=24:2,S", "2.M2P1Q2.fuzz,S=24:2,"};
	char path[160];
	snprintf(path, sizeof(path), "%s/cur", dir);
	mkdir(path, 0700);
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "cur/%s", names[i]);
		put(path, (const uint8_t *)"Subject: x\r\n\r\nbody text\r\n", 25);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (dir[0] == '\0')
		setup();
	if (size < 4)
		return 0;
	/* u16 index length, u16 log length (little-endian), then the three files. */
	size_t a = (size_t)data[0] | (size_t)data[1] << 8;
	size_t b = (size_t)data[2] | (size_t)data[3] << 8;
	data += 4;
	size -= 4;
	a = a < size ? a : size;
	b = b < size - a ? b : size - a;
	put("tern-index", data, a);
	put("tern-index.log", data + a, b);
	put("tern-cache", data + a + b, size - a - b);
	struct store_mailbox *box;
	const char *error;
	if (store_mailbox_open(dir, &box, &error) != STORE_OK)
		abort();
	uint32_t last = 0;
	for (size_t seq = 1; seq <= store_mailbox_count(box); seq++) {
		const struct store_msg *m = store_mailbox_msg(box, seq);
		if (m->uid <= last)
			abort();
		last = m->uid;
		/* The cold part of the entry, checked when first read: sizes, name, sort key. */
		(void)store_mailbox_msg_info(box, seq)->vsize;
		free(store_mailbox_msg_path(box, seq));
		store_mailbox_set_sort_date(box, seq, (int64_t)seq);
		struct store_cache c;
		if (store_mailbox_cache(box, seq, &c) == STORE_OK)
			store_cache_free(&c);
	}
	if (store_mailbox_count(box) != 2)
		abort(); /* the files are the truth: both messages are always there */
	/* Tombstones (QRESYNC): whatever the index said, the answer is sorted, merged, below
	 * UIDNEXT and never names a message of the folder. */
	const uint64_t since[] = {0, 1, store_mailbox_highestmodseq(box) / 2,
	                          store_mailbox_highestmodseq(box), UINT64_MAX};
	for (size_t k = 0; k < sizeof(since) / sizeof(since[0]); k++) {
		struct store_uid_range *r;
		size_t n = store_mailbox_vanished_since(box, since[k], &r, NULL);
		for (size_t i = 0; i < n; i++) {
			if (r[i].first == 0 || r[i].first > r[i].last ||
			    r[i].last >= store_mailbox_uidnext(box) ||
			    (i > 0 && r[i].first <= r[i - 1].last + 1))
				abort();
			for (size_t seq = 1; seq <= store_mailbox_count(box); seq++) {
				uint32_t uid = store_mailbox_msg(box, seq)->uid;
				if (uid >= r[i].first && uid <= r[i].last)
					abort();
			}
		}
		free(r);
	}
	store_mailbox_close(&box);
	return 0;
}
