/*
 * Fuzz target for the index reader: the input becomes a folder's tern-index,
 * tern-index.log and tern-cache (lengths in the first four bytes). Opening the
 * folder must always succeed (damage means a rebuild from the files), and every cached
 * entry must read back or be rebuilt, with the view's UIDs strictly increasing.
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
		struct store_cache c;
		if (store_mailbox_cache(box, seq, &c) == STORE_OK)
			store_cache_free(&c);
	}
	if (store_mailbox_count(box) != 2)
		abort(); /* the files are the truth: both messages are always there */
	store_mailbox_close(&box);
	return 0;
}
