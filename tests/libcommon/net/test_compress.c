/*
 * COMPRESS=DEFLATE on a conn (conn_compress.c) over real loopback sockets, with a client
 * speaking raw DEFLATE through zlib: round trips with pipelined and trickled compressed
 * input, the sync flush (every reply is readable without the client sending anything
 * more), a big streamed reply under back-pressure, a second start refused, the
 * decompression bomb (bounded by max_input, ending in on_overflow or a skipped line as
 * in plaintext), a corrupt stream, and zlib's memory per connection.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <netinet/tcp.h>
#include <zlib.h>

#include "net_test.h"

/* --- a raw-DEFLATE client ------------------------------------------------------------ */

struct zc {
	int fd;
	z_stream def, inf;
	char in[1 << 16]; /* inflated bytes not yet returned */
	size_t in_len;
	uint64_t wire_read;
};

static void zc_init(struct zc *z, int fd)
{
	memset(z, 0, sizeof(*z));
	z->fd = fd;
	assert_int_equal(deflateInit2(&z->def, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
	assert_int_equal(inflateInit2(&z->inf, -15), Z_OK);
}

static void zc_free(struct zc *z)
{
	deflateEnd(&z->def);
	inflateEnd(&z->inf);
}

/* Compresses data with flush into out (which grows); returns the compressed length. */
static size_t zc_deflate(struct zc *z, const void *data, size_t len, int flush, char **out,
                         size_t *cap)
{
	size_t n = 0;
	z->def.next_in = (Bytef *)(uintptr_t)data;
	z->def.avail_in = (uInt)len;
	do {
		if (*cap - n < 65536) {
			*cap = *cap * 2 + 65536;
			*out = realloc(*out, *cap);
		}
		z->def.next_out = (Bytef *)*out + n;
		z->def.avail_out = (uInt)(*cap - n);
		int r = deflate(&z->def, flush);
		if (r != Z_OK && r != Z_BUF_ERROR)
			return 0;
		n = *cap - z->def.avail_out;
	} while (z->def.avail_out == 0 || z->def.avail_in > 0);
	return n;
}

/* Sends text compressed and sync-flushed; trickle: one byte per segment. */
static bool zc_send(struct zc *z, const char *text, bool trickle)
{
	char *out = NULL;
	size_t cap = 0;
	size_t n = zc_deflate(z, text, strlen(text), Z_SYNC_FLUSH, &out, &cap);
	bool ok = n > 0;
	for (size_t i = 0; ok && i < n;) {
		size_t k = trickle ? 1 : n - i;
		ssize_t w = send(z->fd, out + i, k, MSG_NOSIGNAL);
		ok = w > 0;
		i += ok ? (size_t)w : 0;
		if (trickle)
			usleep(500);
	}
	free(out);
	return ok;
}

/* Reads and inflates until `in` holds a line; false on EOF, error, timeout or bad data. */
static bool zc_read_line(struct zc *z, char *line, size_t size)
{
	for (int rounds = 0; rounds < 100000; rounds++) {
		char *lf = memchr(z->in, '\n', z->in_len);
		if (lf != NULL) {
			size_t len = (size_t)(lf - z->in);
			size_t keep = len > 0 && z->in[len - 1] == '\r' ? len - 1 : len;
			if (keep >= size)
				keep = size - 1;
			memcpy(line, z->in, keep);
			line[keep] = '\0';
			memmove(z->in, lf + 1, z->in_len - len - 1);
			z->in_len -= len + 1;
			return true;
		}
		if (z->in_len == sizeof(z->in))
			return false;
		unsigned char raw[4096];
		ssize_t r = recv(z->fd, raw, sizeof(raw), 0);
		if (r <= 0)
			return false;
		z->wire_read += (uint64_t)r;
		z->inf.next_in = raw;
		z->inf.avail_in = (uInt)r;
		while (z->inf.avail_in > 0) {
			if (z->in_len == sizeof(z->in))
				return false;
			z->inf.next_out = (Bytef *)z->in + z->in_len;
			z->inf.avail_out = (uInt)(sizeof(z->in) - z->in_len);
			int e = inflate(&z->inf, Z_SYNC_FLUSH);
			if (e != Z_OK && e != Z_BUF_ERROR)
				return false;
			z->in_len = sizeof(z->in) - z->inf.avail_out;
			if (e == Z_BUF_ERROR)
				break;
		}
	}
	return false;
}

#define ZC_EXPECT_LINE(z, want)                                                                    \
	do {                                                                                       \
		char zline_[512];                                                                  \
		NT_CHECK(zc_read_line(z, zline_, sizeof(zline_)), "EOF waiting for " want);        \
		NT_CHECK(strcmp(zline_, want) == 0, "unexpected reply, wanted " want);             \
	} while (0)

/* Connects, reads the greeting and switches to DEFLATE; piped is sent compressed in the
 * same packet as the COMPRESS command (it must be taken as compressed input). */
static const char *zc_start(struct zc *z, int port, const char *piped)
{
	int fd = nt_connect(port);
	NT_CHECK(fd >= 0, "connect");
	zc_init(z, fd);
	NT_EXPECT_LINE(fd, "220 hello");
	char *out = malloc(64);
	size_t cap = 64;
	memcpy(out, "COMPRESS\r\n", 10);
	size_t n = 10;
	if (piped != NULL) {
		char *zout = NULL;
		size_t zcap = 0;
		size_t zn = zc_deflate(z, piped, strlen(piped), Z_SYNC_FLUSH, &zout, &zcap);
		NT_CHECK(zn > 0, "deflate");
		cap = n + zn;
		out = realloc(out, cap);
		memcpy(out + n, zout, zn);
		n += zn;
		free(zout);
	}
	bool ok = send(fd, out, n, MSG_NOSIGNAL) == (ssize_t)n;
	free(out);
	NT_CHECK(ok, "send");
	/* The OK is plaintext: read it byte by byte so nothing compressed is taken. */
	NT_EXPECT_LINE(fd, "OK deflate");
	return NULL;
}

/* --- round trips ------------------------------------------------------------------ */

#define ZBIG 3000000

static void *client_compress_round_trip(void *arg)
{
	int port = *(int *)arg;
	struct zc *z = malloc(sizeof(*z));
	const char *err = zc_start(z, port, "ECHO piped\r\n");
	if (err != NULL)
		return (void *)err;
	ZC_EXPECT_LINE(z, "piped");
	/* Pipelined commands in one flush; the replies come without us sending more. */
	NT_CHECK(zc_send(z, "ECHO one\r\nECHO two\r\n", false), "send");
	ZC_EXPECT_LINE(z, "one");
	ZC_EXPECT_LINE(z, "two");
	/* A command split inside a line, then one trickled a byte per segment. */
	NT_CHECK(zc_send(z, "ECHO thr", false), "send");
	NT_CHECK(zc_send(z, "ee\r\n", false), "send");
	ZC_EXPECT_LINE(z, "three");
	int one = 1;
	setsockopt(z->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	NT_CHECK(zc_send(z, "ECHO trickle\r\n", true), "send");
	ZC_EXPECT_LINE(z, "trickle");
	/* A big reply under back-pressure, compressed as it streams. */
	NT_CHECK(zc_send(z, "BIG 3000000\r\n", false), "send");
	usleep(100 * 1000);
	size_t got = 0;
	uint64_t wire_before = z->wire_read;
	while (got < ZBIG) {
		if (z->in_len == 0) {
			/* Pull more: read a line that cannot be complete yet refills `in`. */
			unsigned char raw[16384];
			ssize_t r = recv(z->fd, raw, sizeof(raw), 0);
			NT_CHECK(r > 0, "EOF in the middle of BIG");
			z->wire_read += (uint64_t)r;
			z->inf.next_in = raw;
			z->inf.avail_in = (uInt)r;
			while (z->inf.avail_in > 0) {
				z->inf.next_out = (Bytef *)z->in + z->in_len;
				z->inf.avail_out = (uInt)(sizeof(z->in) - z->in_len);
				int e = inflate(&z->inf, Z_SYNC_FLUSH);
				NT_CHECK(e == Z_OK || e == Z_BUF_ERROR, "inflate BIG");
				z->in_len = sizeof(z->in) - z->inf.avail_out;
				size_t take = ZBIG - got < z->in_len ? ZBIG - got : z->in_len;
				for (size_t i = 0; i < take; i++)
					NT_CHECK(z->in[i] == 'x', "corrupted BIG stream");
				got += take;
				memmove(z->in, z->in + take, z->in_len - take);
				z->in_len -= take;
			}
		} else {
			size_t take = ZBIG - got < z->in_len ? ZBIG - got : z->in_len;
			for (size_t i = 0; i < take; i++)
				NT_CHECK(z->in[i] == 'x', "corrupted BIG stream");
			got += take;
			memmove(z->in, z->in + take, z->in_len - take);
			z->in_len -= take;
		}
	}
	ZC_EXPECT_LINE(z, "");
	ZC_EXPECT_LINE(z, "END");
	NT_CHECK(z->wire_read - wire_before < ZBIG / 20, "BIG was not compressed");
	/* A second COMPRESS is refused (its OK line is the echo server's, then NO). */
	NT_CHECK(zc_send(z, "COMPRESS\r\n", false), "send");
	ZC_EXPECT_LINE(z, "OK deflate");
	ZC_EXPECT_LINE(z, "NO already");
	NT_CHECK(zc_send(z, "QUIT\r\nECHO after-quit\r\n", false), "send");
	ZC_EXPECT_LINE(z, "221 bye");
	char extra[64];
	NT_CHECK(!zc_read_line(z, extra, sizeof(extra)), "data after QUIT or no EOF");
	close(z->fd);
	zc_free(z);
	free(z);
	return NULL;
}

static void test_compress_round_trip(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = {
	    .limits = {.max_output = 256 * 1024, .output_lowat = 32 * 1024},
	};
	nt_server_start(&srv, &loop, &cfg);
	const char *err = nt_run_client(&loop, client_compress_round_trip, &srv.port);
	if (err != NULL)
		fail_msg("%s", err);
	assert_string_equal(buf_cstr(&srv.seen), "COMPRESS|ECHO piped|ECHO one|ECHO two|ECHO three|"
	                                         "ECHO trickle|BIG 3000000|COMPRESS|QUIT|");
	nt_server_finish(&srv);
	assert_int_equal(srv.closes, 1);
}

/* --- the decompression bomb ---------------------------------------------------------- */

#define BOMB_BYTES (64u * 1024 * 1024)

/* Sends BOMB_BYTES of 'A' (no line end) compressed: about 64 KB on the wire. */
static bool zc_send_bomb(struct zc *z, size_t *wire_r)
{
	static char block[1 << 16];
	memset(block, 'A', sizeof(block));
	char *out = NULL;
	size_t cap = 0;
	*wire_r = 0;
	bool ok = true;
	for (size_t sent = 0; ok && sent < BOMB_BYTES; sent += sizeof(block)) {
		int flush = sent + sizeof(block) >= BOMB_BYTES ? Z_SYNC_FLUSH : Z_NO_FLUSH;
		size_t n = zc_deflate(z, block, sizeof(block), flush, &out, &cap);
		for (size_t i = 0; ok && i < n;) {
			ssize_t w = send(z->fd, out + i, n - i, MSG_NOSIGNAL);
			ok = w > 0;
			i += ok ? (size_t)w : 0;
		}
		*wire_r += n;
	}
	free(out);
	return ok;
}

static void *client_bomb_overflow(void *arg)
{
	int port = *(int *)arg;
	struct zc *z = malloc(sizeof(*z));
	const char *err = zc_start(z, port, "STALL\r\n");
	if (err != NULL)
		return (void *)err;
	size_t wire;
	/* The server stops reading once its buffers are full: a send error is expected. */
	(void)zc_send_bomb(z, &wire);
	ZC_EXPECT_LINE(z, "500 input overflow");
	char extra[64];
	NT_CHECK(!zc_read_line(z, extra, sizeof(extra)), "no EOF after the overflow");
	close(z->fd);
	zc_free(z);
	free(z);
	return NULL;
}

static void test_compress_bomb_overflow(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = {.limits = {.max_input = 2048}};
	nt_server_start(&srv, &loop, &cfg);
	const char *err = nt_run_client(&loop, client_bomb_overflow, &srv.port);
	if (err != NULL)
		fail_msg("%s", err);
	/* The same path as a plaintext line past max_input: on_overflow, then close. */
	assert_int_equal(srv.overflows, 1);
	nt_server_finish(&srv);
	assert_int_equal(srv.closes, 1);
}

struct bomb_skip {
	int port;
	size_t wire;
};

static void *client_bomb_skipped(void *arg)
{
	struct bomb_skip *b = arg;
	struct zc *z = malloc(sizeof(*z));
	const char *err = zc_start(z, b->port, NULL);
	if (err != NULL)
		return (void *)err;
	NT_CHECK(zc_send(z, "ECHO ", false), "send");
	NT_CHECK(zc_send_bomb(z, &b->wire), "send bomb");
	NT_CHECK(zc_send(z, "\r\nECHO ok\r\nZMEM\r\n", false), "send");
	ZC_EXPECT_LINE(z, "500 line too long");
	ZC_EXPECT_LINE(z, "ok");
	char line[128];
	NT_CHECK(zc_read_line(z, line, sizeof(line)), "EOF waiting for zmem");
	NT_CHECK(strncmp(line, "zmem=", 5) == 0, "unexpected ZMEM reply");
	size_t now = 0, peak = 0;
	NT_CHECK(sscanf(line, "zmem=%zu peak=%zu", &now, &peak) == 2, "ZMEM reply");
	/* zlib's state stays what it is for any input: inflate ~7 KiB + a 32 KiB window,
	 * deflate ~6 KiB + 32 KiB for one batch. */
	NT_CHECK(peak < 96 * 1024, "zlib memory grew with the bomb");
	close(z->fd);
	zc_free(z);
	free(z);
	return NULL;
}

static void test_compress_bomb_skipped(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = {.limits = {.max_input = 2048}};
	nt_server_start(&srv, &loop, &cfg);
	struct bomb_skip b = {.port = srv.port};
	const char *err = nt_run_client(&loop, client_bomb_skipped, &b);
	if (err != NULL)
		fail_msg("%s", err);
	/* 64 MiB of line through a 2 KiB input buffer: one error, then business as usual. */
	assert_true(b.wire < BOMB_BYTES / 500);
	assert_string_equal(buf_cstr(&srv.seen), "COMPRESS|ECHO ok|ZMEM|");
	assert_int_equal(srv.overflows, 0);
	nt_server_finish(&srv);
}

/* --- a corrupt stream, and memory ------------------------------------------------------ */

static void *client_corrupt(void *arg)
{
	int port = *(int *)arg;
	struct zc *z = malloc(sizeof(*z));
	const char *err = zc_start(z, port, "ECHO fine\r\n");
	if (err != NULL)
		return (void *)err;
	ZC_EXPECT_LINE(z, "fine");
	/* 0xff: a reserved block type (BTYPE 11) is a DEFLATE error. */
	NT_CHECK(send(z->fd, "\xff\xff\xff\xff", 4, MSG_NOSIGNAL) == 4, "send");
	char extra[64];
	NT_CHECK(!zc_read_line(z, extra, sizeof(extra)), "no EOF after corrupt input");
	close(z->fd);
	zc_free(z);
	free(z);
	return NULL;
}

static void test_compress_corrupt_closes(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = {0};
	nt_server_start(&srv, &loop, &cfg);
	const char *err = nt_run_client(&loop, client_corrupt, &srv.port);
	if (err != NULL)
		fail_msg("%s", err);
	assert_string_equal(buf_cstr(&srv.seen), "COMPRESS|ECHO fine|");
	nt_server_finish(&srv);
	assert_int_equal(srv.closes, 1);
}

struct zmem_result {
	int port;
	size_t idle_now, idle_peak;
};

static void *client_zmem(void *arg)
{
	struct zmem_result *m = arg;
	struct zc *z = malloc(sizeof(*z));
	const char *err = zc_start(z, m->port, NULL);
	if (err != NULL)
		return (void *)err;
	/* Some traffic both ways, then ask in a batch of its own. */
	NT_CHECK(zc_send(z, "BIG 60000\r\n", false), "send");
	char line[128];
	for (int i = 0; i < 1000; i++) {
		NT_CHECK(zc_read_line(z, line, sizeof(line)), "EOF in BIG");
		if (strcmp(line, "END") == 0)
			break;
	}
	NT_CHECK(zc_send(z, "ZMEM\r\n", false), "send");
	NT_CHECK(zc_read_line(z, line, sizeof(line)), "EOF waiting for zmem");
	NT_CHECK(sscanf(line, "zmem=%zu peak=%zu", &m->idle_now, &m->idle_peak) == 2, "ZMEM");
	close(z->fd);
	zc_free(z);
	free(z);
	return NULL;
}

static void test_compress_memory(void **state)
{
	(void)state;
	uv_loop_t loop;
	uv_loop_init(&loop);
	struct nt_server srv;
	struct listener_config cfg = {0};
	nt_server_start(&srv, &loop, &cfg);
	struct zmem_result m = {.port = srv.port};
	const char *err = nt_run_client(&loop, client_zmem, &m);
	if (err != NULL)
		fail_msg("%s", err);
	/* ZMEM measures before it writes: the batch's deflater is not made yet, so "now" is
	 * what a conn between batches holds (the inflater); the peak adds one deflater. */
	print_message("zlib per conn: %zu bytes between batches, peak %zu\n", m.idle_now,
	              m.idle_peak);
	assert_true(m.idle_now > 0);
	assert_true(m.idle_now < 48 * 1024);
	assert_true(m.idle_peak < 96 * 1024);
	nt_server_finish(&srv);
}

int main(void)
{
	log_init("test", LOG_TARGET_STDERR);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_compress_round_trip),
	    cmocka_unit_test(test_compress_bomb_overflow),
	    cmocka_unit_test(test_compress_bomb_skipped),
	    cmocka_unit_test(test_compress_corrupt_closes),
	    cmocka_unit_test(test_compress_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
