/*
 * Unit tests for the snapshot used in place (format 3, docs/store.md "Snapshot format 3"):
 * snapshots of formats 1 and 2 are read with their UIDs and replaced by a current one; a
 * damaged hot or cold record costs that message its UID and nothing else, also when the
 * damage is found only when the message is first used; a record with a good CRC but
 * fields only memory may set (a pointer, where it lives, its slot, a name with '/' or out
 * of its area) is refused; a reload does not keep the newer snapshot mapped for the few
 * messages it adds; a small snapshot is read into the heap and used there.
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

/* Where things are in a format-3 snapshot b. */
static uint32_t snap_count(const struct buf *b)
{
	return index_get_u32((const unsigned char *)b->data + 20);
}

static unsigned char *hot_at(struct buf *b, size_t i)
{
	assert_true(i < snap_count(b));
	return (unsigned char *)b->data + INDEX_HEADER_SIZE + i * sizeof(struct mbox_msg);
}

static unsigned char *cold_at(struct buf *b, size_t i)
{
	assert_true(i < snap_count(b));
	return (unsigned char *)b->data + INDEX_HEADER_SIZE +
	       snap_count(b) * sizeof(struct mbox_msg) + i * sizeof(struct mbox_cold);
}

static unsigned char *name_at(struct buf *b, size_t i)
{
	return (unsigned char *)b->data +
	       index_get_u32(cold_at(b, i) + offsetof(struct mbox_cold, name_off));
}

static size_t name_len_at(struct buf *b, size_t i)
{
	const unsigned char *c = cold_at(b, i) + offsetof(struct mbox_cold, name_len);
	return (size_t)c[0] | (size_t)c[1] << 8;
}

/* Recompute the CRCs of record i after a test changed it (the cold one only when its
 * name lies inside the file: else nothing reads it). */
static void refresh_hot_crc(struct buf *b, size_t i)
{
	unsigned char *h = hot_at(b, i);
	uint32_t crc = crc32c(0, h, offsetof(struct mbox_msg, crc));
	memcpy(h + offsetof(struct mbox_msg, crc), &crc, 4);
}

static void refresh_cold_crc(struct buf *b, size_t i)
{
	unsigned char *c = cold_at(b, i);
	uint32_t off = index_get_u32(c + offsetof(struct mbox_cold, name_off));
	size_t len = name_len_at(b, i);
	if (off > b->len || b->len - off < len + 1)
		return;
	uint32_t crc =
	    crc32c(crc32c(0, c, offsetof(struct mbox_cold, crc)), name_at(b, i), len + 1);
	memcpy(c + offsetof(struct mbox_cold, crc), &crc, 4);
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

/* A message record of format 2 (the struct of then: 88 bytes, then the name, padded). */
static void v2_record(struct buf *payload, const struct index_rec *r)
{
	unsigned char rec[88];
	memset(rec, 0, sizeof(rec));
	memcpy(rec, &r->uid, 4);
	memcpy(rec + 4, &r->flags, 4);
	memcpy(rec + 8, &r->keywords, 4);
	memcpy(rec + 16, &r->modseq, 8);
	memcpy(rec + 24, &r->vsize, 8);
	memcpy(rec + 32, &r->psize, 8);
	memcpy(rec + 40, &r->idate, 8);
	rec[60] = 1; /* home: the mapping */
	buf_append(payload, rec, sizeof(rec));
	buf_append(payload, r->name, strlen(r->name));
	static const char zeros[8];
	buf_append(payload, zeros, 8 - (sizeof(rec) + strlen(r->name)) % 8);
}

/* An older tern's snapshot (format 1 or 2) of the 3 delivered messages, giving them UIDs
 * 7, 9 and 12, and an empty log of its generation: the current one reads them with their
 * UIDs and sizes and replaces the snapshot by a format-3 one. */
static void old_format_is_read_and_replaced(int version)
{
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
	struct index_header h = {
	    .uidvalidity = uidvalidity, .uidnext = 13, .count = 3, .highestmodseq = 40, .gen = 77};
	struct buf b, payload;
	buf_init(&b, 0);
	buf_init(&payload, 0);
	index_header_encode(&b, &h);
	b.data[8] = (char)version; /* and the header's checksum again */
	memset(b.data + 56, 0, 4);
	uint32_t crc = crc32c(0, b.data, 60);
	memcpy(b.data + 60, &crc, 4);
	const uint32_t uids[3] = {7, 9, 12};
	for (size_t i = 0; i < 3; i++) {
		struct index_rec r = {.uid = uids[i],
		                      .modseq = 30 + i,
		                      .psize = 10 + i,
		                      .vsize = 11 + i,
		                      .idate = 1700000000,
		                      .name = names[i]};
		buf_reset(&payload);
		if (version == 1)
			index_rec_encode(&payload, &r);
		else
			v2_record(&payload, &r);
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
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(store_mailbox_msg(box, i + 1)->uid, uids[i]);
		assert_int_equal(store_mailbox_msg(box, i + 1)->modseq, 30 + i);
		assert_int_equal(store_mailbox_msg_info(box, i + 1)->psize, 10 + i);
		assert_int_equal(store_mailbox_msg_info(box, i + 1)->vsize, 11 + i);
	}
	assert_int_equal(store_mailbox_uidnext(box), 13);
	store_mailbox_close(&box);
	assert_int_equal(index_version(), 3); /* replaced by a current one */
	uint32_t again[3];
	uids_of(again, 3);
	assert_memory_equal(again, uids, sizeof(uids));
	box = store_test_open(root);
	assert_int_equal(store_mailbox_uidvalidity(box), uidvalidity);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(store_mailbox_msg_info(box, i + 1)->vsize, 11 + i);
	store_mailbox_close(&box);
	for (size_t i = 0; i < 3; i++)
		free(names[i]);
	free(log);
	buf_free(&b);
	buf_free(&payload);
}

static void test_format1_is_read_and_replaced(void **state)
{
	(void)state;
	old_format_is_read_and_replaced(1);
}

static void test_format2_is_read_and_replaced(void **state)
{
	(void)state;
	old_format_is_read_and_replaced(2);
}

/* Damages the snapshot (damage(b) on a copy of it) and checks that of 4 messages the
 * second lost its UID, the others kept theirs, and UIDVALIDITY stayed. */
static void damage_costs_second_uid(void (*damage)(struct buf *b))
{
	deliver_and_index(4);
	assert_int_equal(index_version(), 3);
	uint32_t before[4], after[4];
	uids_of(before, 4);
	struct store_mailbox *box = store_test_open(root);
	uint32_t uidvalidity = store_mailbox_uidvalidity(box), uidnext = store_mailbox_uidnext(box);
	store_mailbox_close(&box);
	struct buf b = read_index();
	damage(&b);
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

static void flip_hot_bit(struct buf *b)
{
	hot_at(b, 1)[offsetof(struct store_msg, flags)] ^= 0x04;
}

static void flip_name_bit(struct buf *b)
{
	name_at(b, 1)[2] ^= 0x01;
}

static void test_damaged_hot_record_costs_one_uid(void **state)
{
	(void)state;
	damage_costs_second_uid(flip_hot_bit);
}

static void test_damaged_name_costs_one_uid(void **state)
{
	(void)state;
	damage_costs_second_uid(flip_name_bit);
}

/* Sets the mtimes of cur/ and new/ an hour back, so that opening does not scan. */
static void settle_dirs(void)
{
	const char *subs[] = {"cur", "new"};
	struct timespec ts[2] = {{time(NULL) - 3600, 0}, {time(NULL) - 3600, 0}};
	for (size_t i = 0; i < 2; i++) {
		char *dir = xasprintf("%s/%s", root, subs[i]);
		assert_int_equal(utimensat(AT_FDCWD, dir, ts, 0), 0);
		free(dir);
	}
}

/* Damage in a cold record is found when the message is first used (opening reads only
 * the hot records); the next sync reports it expunged and its file as a new message. */
static void test_damage_found_when_first_used(void **state)
{
	(void)state;
	deliver_and_index(4);
	settle_dirs();
	struct store_mailbox *box = store_test_open(root);
	assert_int_equal(store_mailbox_reindex(box), STORE_OK); /* notes the old mtimes */
	store_mailbox_close(&box);
	uint32_t before[4];
	uids_of(before, 4);
	struct buf b = read_index();
	cold_at(&b, 1)[offsetof(struct mbox_cold, info.vsize)] ^= 0x10;
	write_index(b.data, b.len);
	buf_free(&b);

	box = store_test_open(root);
	assert_int_equal(store_mailbox_count(box), 4);
	assert_int_equal(store_mailbox_msg(box, 2)->uid, before[1]); /* not read yet */
	assert_true(store_mailbox_msg_info(box, 1)->vsize > 0);
	/* Read now: refused, its sizes unknown and its file not found under its name. */
	assert_int_equal(store_mailbox_msg_info(box, 2)->vsize, 0);
	assert_null(store_mailbox_msg_path(box, 2));
	struct store_sync_result res;
	assert_int_equal(store_mailbox_sync(box, &res), STORE_OK);
	assert_int_equal(res.expunged_count, 1);
	assert_int_equal(res.expunged_uids[0], before[1]);
	assert_int_equal(res.exists, 4);
	assert_int_equal(store_mailbox_msg(box, 2)->uid, before[2]);
	assert_true(store_mailbox_msg(box, 4)->uid > before[3]);
	assert_true(store_mailbox_msg_info(box, 4)->vsize > 0);
	char *path = store_mailbox_msg_path(box, 4);
	assert_int_equal(access(path, F_OK), 0);
	free(path);
	store_mailbox_close(&box);
	/* The damaged record is gone from the snapshot: every record reads. */
	b = read_index();
	assert_int_equal(snap_count(&b), 4);
	buf_free(&b);
	uint32_t after[4];
	uids_of(after, 4);
	assert_int_equal(after[1], before[2]);
	box = store_test_open(root);
	for (size_t seq = 1; seq <= 4; seq++)
		assert_true(store_mailbox_msg_info(box, seq)->vsize > 0);
	store_mailbox_close(&box);
}

/* One forgery of message 2's record, its CRCs made right again. */
enum forged_part { HOT, COLD, NAME };
#define NAME_LAST ((size_t)-1) /* the name's last byte */
#define NAME_NUL ((size_t)-2)  /* the name's NUL */
struct forgery {
	const char *what;
	enum forged_part part;
	size_t off; /* in the record, or in the name */
	unsigned char value;
	bool flip; /* XOR value in, else store it */
};

static void forge(struct buf *b, const struct forgery *f)
{
	unsigned char *p = f->part == HOT ? hot_at(b, 1) : f->part == COLD ? cold_at(b, 1) : NULL;
	size_t off = f->off;
	if (f->part == NAME) {
		p = name_at(b, 1);
		if (off == NAME_LAST)
			off = name_len_at(b, 1) - 1;
		else if (off == NAME_NUL)
			off = name_len_at(b, 1);
	}
	if (f->flip)
		p[off] ^= f->value;
	else
		p[off] = f->value;
	refresh_hot_crc(b, 1);
	refresh_cold_crc(b, 1);
}

static void test_forged_fields_are_refused(void **state)
{
	(void)state;
	const struct forgery forgeries[] = {
	    {"a heap message", HOT, offsetof(struct mbox_msg, home), MBOX_HOME_HEAP, false},
	    {"a bad home", HOT, offsetof(struct mbox_msg, home), 7, false},
	    {"another slot", HOT, offsetof(struct mbox_msg, slot), 0x01, true},
	    {"a far slot", HOT, offsetof(struct mbox_msg, slot) + 3, 0x01, true},
	    {"expunged", HOT, offsetof(struct mbox_msg, m.expunged), 1, false},
	    {"a bool of 2", HOT, offsetof(struct mbox_msg, in_new), 2, false},
	    {"reserved", HOT, offsetof(struct mbox_msg, reserved), 1, false},
	    {"reserved2", HOT, offsetof(struct mbox_msg, reserved2), 1, false},
	    {"UID 0", HOT, offsetof(struct mbox_msg, m.uid), 0, false},
	    {"a pointer to a name", COLD, offsetof(struct mbox_cold, name_heap) + 1, 0x40, false},
	    {"a sort date set", COLD, offsetof(struct mbox_cold, sort_date_set), 1, false},
	    {"a sort date", COLD, offsetof(struct mbox_cold, sort_date), 1, false},
	    {"cold reserved", COLD, offsetof(struct mbox_cold, reserved), 1, false},
	    {"a name before the names", COLD, offsetof(struct mbox_cold, name_off) + 1, 0, false},
	    {"a name past the end", COLD, offsetof(struct mbox_cold, name_off) + 3, 0x01, true},
	    {"a name running past the end", COLD, offsetof(struct mbox_cold, name_len) + 1, 0x7f,
	     false},
	    {"an empty name", COLD, offsetof(struct mbox_cold, name_len), 0, false},
	    {"a / in the name", NAME, 1, '/', false},
	    {"a / last", NAME, NAME_LAST, '/', false},
	    {"a NUL inside", NAME, 1, 0, false},
	    {"no NUL after the name", NAME, NAME_NUL, 'x', false},
	};
	deliver_and_index(3);
	uint32_t before[3];
	uids_of(before, 3);
	struct store_mailbox *box = store_test_open(root);
	uint32_t uidvalidity = store_mailbox_uidvalidity(box);
	store_mailbox_close(&box);
	struct buf good = read_index();
	for (size_t i = 0; i < sizeof(forgeries) / sizeof(forgeries[0]); i++) {
		struct buf b;
		buf_init(&b, 0);
		buf_append(&b, good.data, good.len);
		forge(&b, &forgeries[i]);
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
		printf("format 3 is not written on this machine (format 1 is): nothing to test\n");
		return 0;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_format1_is_read_and_replaced, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_format2_is_read_and_replaced, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_damaged_hot_record_costs_one_uid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_damaged_name_costs_one_uid, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_damage_found_when_first_used, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_forged_fields_are_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reload_keeps_one_mapping, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_small_snapshot_is_not_mapped, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
