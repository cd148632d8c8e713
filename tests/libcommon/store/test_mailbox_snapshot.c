/*
 * Unit tests for the snapshot used in place (format 2, docs/store.md "Snapshot format 2"):
 * a format-1 snapshot is read with its UIDs and replaced by a current one; a damaged
 * record costs that message its UID and nothing else; a record with a good CRC but fields
 * only memory may set (a pointer, where it lives, its offset, a name with '/') is refused;
 * a reload does not keep the newer snapshot mapped for the few messages it adds; a small
 * snapshot is read into the heap and used there.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "store/atomic_file.h"
#include "store/index_format.h"
#include "store/mailbox.h"
#include "store/mailbox_private.h"

#include "store_test_util.h"

static int setup(void **state)
{
	(void)state;
	store_test_mkroot("snapshot");
	mbox_map_min = 0; /* map every snapshot, however small */
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	store_test_rmroot();
	return 0;
}

static int root_fd(void)
{
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

static struct buf read_index(void)
{
	struct buf b;
	buf_init(&b, 0);
	int fd = root_fd();
	assert_int_equal(atomic_file_read(fd, INDEX_FILE, &b), 0);
	close(fd);
	return b;
}

/* Replaces tern-index by data (a new file, as tern's writers do). */
static void write_index(const void *data, size_t len)
{
	int fd = root_fd();
	assert_int_equal(atomic_file_write(fd, INDEX_FILE, data, len), 0);
	close(fd);
}

/* Offset of the frame of message i (0-based) in a format-2 snapshot. */
static size_t frame_at(const struct buf *b, size_t i)
{
	size_t pos = INDEX_HEADER_SIZE;
	for (size_t k = 0; k < i; k++)
		pos += 8 + index_get_u32((const unsigned char *)b->data + pos);
	assert_true(pos + 8 < b->len);
	return pos;
}

/* Recomputes the CRC of the frame at pos after a test changed its payload. */
static void refresh_crc(struct buf *b, size_t pos)
{
	unsigned char *p = (unsigned char *)b->data + pos;
	uint32_t len = index_get_u32(p), crc = crc32c(0, p + 8, len);
	memcpy(p + 4, &crc, 4);
}

static void uids_of(uint32_t *uids, size_t n)
{
	struct store_mailbox *box = store_test_open(root);
	assert_int_equal(store_mailbox_count(box), n);
	for (size_t i = 0; i < n; i++)
		uids[i] = store_mailbox_msg(box, i + 1)->uid;
	store_mailbox_close(&box);
}

static ino_t index_ino(void)
{
	char *p = xasprintf("%s/" INDEX_FILE, root);
	struct stat sb;
	assert_int_equal(stat(p, &sb), 0);
	free(p);
	return sb.st_ino;
}

/* Changes flags of box's first message until the log is folded into a new snapshot. */
static bool fold_log(struct store_mailbox *box)
{
	ino_t ino = index_ino();
	uint32_t uid = store_mailbox_msg(box, 1)->uid;
	for (int i = 0; i < 10000 && index_ino() == ino; i++) {
		if (store_mailbox_set_flags(box, uid,
		                            i % 2 == 0 ? STORE_FLAGS_ADD : STORE_FLAGS_REMOVE,
		                            STORE_FLAG_FLAGGED, 0, 0) != STORE_OK)
			return false;
	}
	return index_ino() != ino && store_mailbox_set_flags(box, uid, STORE_FLAGS_REMOVE,
	                                                     STORE_FLAG_FLAGGED, 0, 0) == STORE_OK;
}

/* Delivers n messages and puts them into a snapshot (not just the log). */
static void deliver_and_index(size_t n)
{
	for (size_t i = 0; i < n; i++)
		store_test_deliver(root, "s");
	struct store_mailbox *box = store_test_open(root);
	assert_int_equal(store_mailbox_count(box), n);
	assert_true(fold_log(box));
	store_mailbox_close(&box);
}

static uint32_t index_version(void)
{
	struct buf b = read_index();
	uint32_t v = index_get_u32((const unsigned char *)b.data + 8);
	buf_free(&b);
	return v;
}

static void test_format1_is_read_and_replaced(void **state)
{
	(void)state;
	deliver_and_index(3);
	struct store_mailbox *box = store_test_open(root);
	uint32_t uidvalidity = store_mailbox_uidvalidity(box);
	char *names[3];
	for (size_t i = 0; i < 3; i++) {
		char *path = store_mailbox_msg_path(box, i + 1);
		names[i] = xstrdup(strrchr(path, '/') + 1);
		free(path);
	}
	store_mailbox_close(&box);
	/* A format-1 snapshot giving them UIDs 7, 9 and 12, and an empty log of its
	 * generation: what an older tern left behind. */
	struct index_header h = {
	    .uidvalidity = uidvalidity, .uidnext = 13, .count = 3, .highestmodseq = 40, .gen = 77};
	struct buf b, payload;
	buf_init(&b, 0);
	buf_init(&payload, 0);
	index_header_encode(&b, &h);
	b.data[8] = 1; /* version 1, and the header's checksum again */
	uint32_t crc = crc32c(0, b.data, 60);
	memcpy(b.data + 60, &crc, 4);
	const uint32_t uids[3] = {7, 9, 12};
	for (size_t i = 0; i < 3; i++) {
		struct index_rec r = {.uid = uids[i],
		                      .modseq = 30 + i,
		                      .psize = 10,
		                      .vsize = 11,
		                      .idate = 1700000000,
		                      .name = names[i]};
		buf_reset(&payload);
		index_rec_encode(&payload, &r);
		index_frame(&b, &payload);
	}
	write_index(b.data, b.len);
	buf_reset(&b);
	buf_append(&b, INDEX_LOG_MAGIC, 8);
	index_put_u64(&b, 77);
	index_put_u32(&b, crc32c(0, b.data, 16));
	char *log = xasprintf("%s/" INDEX_LOG_FILE, root);
	FILE *f = fopen(log, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(b.data, 1, b.len, f), b.len);
	fclose(f);

	box = store_test_open(root);
	assert_int_equal(store_mailbox_uidvalidity(box), uidvalidity);
	assert_int_equal(store_mailbox_count(box), 3);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(store_mailbox_msg(box, i + 1)->uid, uids[i]);
	assert_int_equal(store_mailbox_uidnext(box), 13);
	store_mailbox_close(&box);
	assert_int_equal(index_version(), 2); /* replaced by a current one */
	uint32_t again[3];
	uids_of(again, 3);
	assert_memory_equal(again, uids, sizeof(uids));
	box = store_test_open(root);
	assert_int_equal(store_mailbox_uidvalidity(box), uidvalidity);
	store_mailbox_close(&box);
	for (size_t i = 0; i < 3; i++)
		free(names[i]);
	free(log);
	buf_free(&b);
	buf_free(&payload);
}

static void test_damaged_record_costs_one_uid(void **state)
{
	(void)state;
	deliver_and_index(4);
	assert_int_equal(index_version(), 2);
	uint32_t before[4], after[4];
	uids_of(before, 4);
	struct store_mailbox *box = store_test_open(root);
	uint32_t uidvalidity = store_mailbox_uidvalidity(box), uidnext = store_mailbox_uidnext(box);
	store_mailbox_close(&box);
	struct buf b = read_index();
	size_t pos = frame_at(&b, 1);
	b.data[pos + 8 + sizeof(struct mbox_msg) + 2] ^= 0x01; /* a bit of its name */
	write_index(b.data, b.len);
	uids_of(after, 4);
	box = store_test_open(root);
	assert_int_equal(store_mailbox_uidvalidity(box), uidvalidity);
	store_mailbox_close(&box);
	/* The others keep their UIDs; the damaged one is found again as a new file. */
	assert_int_equal(after[0], before[0]);
	assert_int_equal(after[1], before[2]);
	assert_int_equal(after[2], before[3]);
	assert_true(after[3] >= uidnext);
	buf_free(&b);
}

/* One forgery of message 2's record, its CRC made right again. */
#define NAME_LAST ((size_t)-1) /* the name's last byte */
#define NAME_FILL ((size_t)-2) /* every byte from the name to the record's end */
struct forgery {
	const char *what;
	size_t off; /* in the payload; past the struct: in the name */
	unsigned char value;
	bool flip; /* XOR value in, else store it */
};

static void test_forged_fields_are_refused(void **state)
{
	(void)state;
	const size_t name = sizeof(struct mbox_msg);
	const struct forgery forgeries[] = {
	    {"a pointer to a name", offsetof(struct mbox_msg, name_heap) + 1, 0x40, false},
	    {"a heap message", offsetof(struct mbox_msg, home), MBOX_HOME_HEAP, false},
	    {"a bad home", offsetof(struct mbox_msg, home), 7, false},
	    {"another offset", offsetof(struct mbox_msg, map_off), 0x08, true},
	    {"a far offset", offsetof(struct mbox_msg, map_off) + 4, 0x01, true},
	    {"expunged", offsetof(struct mbox_msg, m.expunged), 1, false},
	    {"a bool of 2", offsetof(struct mbox_msg, in_new), 2, false},
	    {"a sort date set", offsetof(struct mbox_msg, sort_date_set), 1, false},
	    {"reserved", offsetof(struct mbox_msg, reserved), 1, false},
	    {"a / in the name", name + 1, '/', false},
	    {"an empty name", name, 0, false},
	    {"UID 0", offsetof(struct mbox_msg, m.uid), 0, false},
	    {"a / last", NAME_LAST, '/', false},
	    {"no NUL in the record", NAME_FILL, 'x', false},
	};
	deliver_and_index(3);
	uint32_t before[3];
	uids_of(before, 3);
	struct store_mailbox *box = store_test_open(root);
	uint32_t uidvalidity = store_mailbox_uidvalidity(box);
	store_mailbox_close(&box);
	struct buf good = read_index();
	size_t pos = frame_at(&good, 1);
	for (size_t i = 0; i < sizeof(forgeries) / sizeof(forgeries[0]); i++) {
		struct buf b;
		buf_init(&b, 0);
		buf_append(&b, good.data, good.len);
		unsigned char *payload = (unsigned char *)b.data + pos + 8;
		size_t plen = index_get_u32((const unsigned char *)b.data + pos);
		if (forgeries[i].off == offsetof(struct mbox_msg, m.uid))
			memset(payload, 0, 4);
		else if (forgeries[i].off == NAME_LAST)
			payload[name + strlen((const char *)payload + name) - 1] =
			    forgeries[i].value;
		else if (forgeries[i].off == NAME_FILL)
			memset(payload + name, forgeries[i].value, plen - name);
		else if (forgeries[i].flip)
			payload[forgeries[i].off] ^= forgeries[i].value;
		else
			payload[forgeries[i].off] = forgeries[i].value;
		refresh_crc(&b, pos);
		write_index(b.data, b.len);
		box = store_test_open(root);
		assert_int_equal(store_mailbox_uidvalidity(box), uidvalidity);
		assert_int_equal(store_mailbox_count(box), 3);
		uint32_t u1 = store_mailbox_msg(box, 1)->uid, u2 = store_mailbox_msg(box, 2)->uid;
		if (u1 != before[0] || u2 != before[2])
			fail_msg("%s: uids %u %u, expected %u %u", forgeries[i].what, u1, u2,
			         before[0], before[2]);
		/* The refused record's file is a new message now. */
		assert_true(store_mailbox_msg(box, 3)->uid > before[2]);
		char *path = store_mailbox_msg_path(box, 3);
		assert_int_equal(access(path, F_OK), 0);
		free(path);
		store_mailbox_close(&box);
		/* Start the next forgery from the same index. */
		write_index(good.data, good.len);
		char *log = xasprintf("%s/" INDEX_LOG_FILE, root);
		unlink(log);
		free(log);
		buf_free(&b);
		box = store_test_open(root);
		store_mailbox_close(&box);
		uids_of(before, 3);
	}
	buf_free(&good);
}

/* Whether this process maps a file with inode ino (from /proc/self/maps). */
static bool mapped(ino_t ino)
{
	FILE *f = fopen("/proc/self/maps", "r");
	assert_non_null(f);
	char line[1024];
	bool found = false;
	while (fgets(line, sizeof(line), f) != NULL) {
		unsigned long long inode = 0;
		if (sscanf(line, "%*s %*s %*s %*s %llu", &inode) == 1 &&
		    inode == (unsigned long long)ino && strstr(line, INDEX_FILE) != NULL)
			found = true;
	}
	fclose(f);
	return found;
}

static void test_reload_keeps_one_mapping(void **state)
{
	(void)state;
	deliver_and_index(10);
	struct store_mailbox *box = store_test_open(root);
	ino_t first = index_ino();
	assert_true(mapped(first)); /* the messages live in it */
	const struct store_msg *m1 = store_mailbox_msg(box, 1);
	/* Another process delivers and writes a new snapshot (a child, so that only box's
	 * mappings are in this process). */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		for (int i = 0; i < 5; i++)
			store_test_deliver(root, "n");
		struct store_mailbox *other;
		const char *error;
		if (store_mailbox_open(root, &other, &error) != STORE_OK)
			_exit(1);
		if (!fold_log(other) ||
		    store_mailbox_set_flags(other, store_mailbox_msg(other, 1)->uid,
		                            STORE_FLAGS_ADD, STORE_FLAG_SEEN, 0, 0) != STORE_OK)
			_exit(1);
		store_mailbox_close(&other);
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ino_t second = index_ino();
	assert_true(second != first);
	struct store_sync_result res;
	assert_int_equal(store_mailbox_sync(box, &res), STORE_OK);
	assert_int_equal(res.exists, 15);
	/* The old message took the new contents in place; the new ones are copies. */
	assert_true((m1->flags & STORE_FLAG_SEEN) != 0);
	for (size_t seq = 11; seq <= 15; seq++) {
		char *path = store_mailbox_msg_path(box, seq);
		assert_int_equal(access(path, F_OK), 0);
		free(path);
	}
	assert_false(mapped(second));
	store_mailbox_close(&box);
	assert_false(mapped(first)); /* gone with the last message */
}

static void test_small_snapshot_is_not_mapped(void **state)
{
	(void)state;
	mbox_map_min = 64 * 1024;
	deliver_and_index(10);
	struct store_mailbox *box = store_test_open(root);
	assert_false(mapped(index_ino())); /* read into the heap, used there in place */
	assert_int_equal(store_mailbox_count(box), 10);
	uint32_t uid = store_mailbox_msg(box, 3)->uid;
	assert_int_equal(store_mailbox_set_flags(box, uid, STORE_FLAGS_ADD, STORE_FLAG_SEEN, 0, 0),
	                 STORE_OK);
	char *path = store_mailbox_msg_path(box, 3);
	assert_non_null(strstr(path, ":2,S"));
	assert_int_equal(access(path, F_OK), 0);
	free(path);
	store_mailbox_close(&box);
	uint32_t uids[10];
	uids_of(uids, 10);
	assert_int_equal(uids[2], uid);
}

int main(void)
{
	if (!INDEX_IN_PLACE) {
		printf("format 2 is not written on this machine (format 1 is): nothing to test\n");
		return 0;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_format1_is_read_and_replaced, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_damaged_record_costs_one_uid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_forged_fields_are_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reload_keeps_one_mapping, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_small_snapshot_is_not_mapped, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
