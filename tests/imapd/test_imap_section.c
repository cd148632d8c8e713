/* FETCH body sections from real files: part numbering through multipart and
 * message/rfc822, HEADER/TEXT/MIME, HEADER.FIELDS(.NOT), partials, LF->CRLF at chunk
 * boundaries, and missing parts. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/buf.h"
#include "imap_args.h"
#include "imap_fetch_items.h"
#include "imap_section.h"
#include "mime/mime_parser.h"

static const char simple_msg[] = "From: Alice <alice@example.test>\n"
                                 "To: bob@example.test\n"
                                 "Subject: hello\n"
                                 " world\n"
                                 "X-Other: x\n"
                                 "\n"
                                 "line one\n"
                                 "line two\r\n";

static const char nested_msg[] = "From: a@example.test\r\n"
                                 "Subject: nested\r\n"
                                 "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
                                 "\r\n"
                                 "preamble\r\n"
                                 "--outer\r\n"
                                 "Content-Type: text/plain\r\n"
                                 "\r\n"
                                 "first part\r\n"
                                 "--outer\r\n"
                                 "Content-Type: message/rfc822\r\n"
                                 "\r\n"
                                 "From: inner@example.test\r\n"
                                 "Subject: inner\r\n"
                                 "Content-Type: multipart/alternative; boundary=\"inner\"\r\n"
                                 "\r\n"
                                 "--inner\r\n"
                                 "Content-Type: text/plain\r\n"
                                 "\r\n"
                                 "plain\r\n"
                                 "--inner\r\n"
                                 "Content-Type: text/html\r\n"
                                 "\r\n"
                                 "<p>html</p>\r\n"
                                 "--inner--\r\n"
                                 "--outer--\r\n";

/* Writes msg to a temp file, fetches `item` and returns "<size>:<bytes>" or "NIL". */
static char *fetch(const char *msg, size_t len, const char *item)
{
	char path[] = "/tmp/tern-section-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, msg, len), (ssize_t)len);
	struct mime_part *root = mime_parse_buffer(msg, len, NULL);

	struct buf line, out;
	buf_init(&line, 0);
	buf_init(&out, 0);
	(void)buf_printf(&line, "t FETCH 1 %s\r\n", item);
	static const struct imap_args_limits limits = {.max_depth = 8, .max_args = 100};
	struct imap_command cmd;
	const char *error;
	char *tag;
	assert_int_equal(imap_args_parse(line.data, line.len, NULL, 0, &limits, &cmd, &error, &tag),
	                 0);
	struct imap_fetch_items items;
	assert_int_equal(imap_fetch_items_parse(&cmd.args[1], &items, &error), 0);
	assert_int_equal(items.n_bodies, 1);

	struct imap_section *s;
	if (items.bodies[0].kind == BODY_KIND_BODY) {
		assert_int_equal(imap_section_open(fd, root, &items.bodies[0], &s), 0);
	} else {
		int r = imap_section_open_binary(fd, root, &items.bodies[0], &s);
		if (r < 0) {
			assert_true(r == IMAP_BINARY_UNKNOWN_CTE);
			s = NULL;
			(void)buf_append_str(&out, "UNKNOWN-CTE");
		} else if (s == NULL) {
			(void)buf_append_str(&out, "NIL");
		}
		if (s != NULL && imap_section_has_nul(s))
			(void)buf_append_char(&out, '~');
		if (r < 0 || s == NULL)
			goto done;
	}
	if (s == NULL) {
		(void)buf_append_str(&out, "NIL");
	} else {
		uint64_t size = imap_section_size(s);
		(void)buf_printf(&out, "%llu:", (unsigned long long)size);
		char chunk[7]; /* small on purpose: exercises resuming mid-stream */
		ssize_t n;
		uint64_t got = 0;
		while ((n = imap_section_read(s, chunk, sizeof(chunk))) > 0) {
			(void)buf_append(&out, chunk, (size_t)n);
			got += (uint64_t)n;
		}
		assert_int_equal(n, 0);
		assert_int_equal(got, size);
		imap_section_free(&s);
	}
done:
	imap_fetch_items_free(&items);
	imap_command_free(&cmd);
	mime_part_free(&root);
	buf_free(&line);
	close(fd);
	return buf_steal(&out);
}

/* want is the section's text ("NIL" for none); its size prefix is derived from it. */
static void expect(const char *msg, const char *item, const char *want_text)
{
	struct buf want;
	buf_init(&want, 0);
	if (strcmp(want_text, "NIL") == 0)
		(void)buf_append_str(&want, "NIL");
	else
		(void)buf_printf(&want, "%zu:%s", strlen(want_text), want_text);
	char *got = fetch(msg, strlen(msg), item);
	if (strcmp(got, want.data) != 0) {
		print_error("%s:\n want [%s]\n got  [%s]\n", item, want.data, got);
		fail();
	}
	free(got);
	buf_free(&want);
}

static void test_simple_message(void **state)
{
	(void)state;
	expect(simple_msg, "BODY[]",
	       "From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nSubject: hello\r\n"
	       " world\r\nX-Other: x\r\n\r\nline one\r\nline two\r\n");
	expect(simple_msg, "BODY[HEADER]",
	       "From: Alice <alice@example.test>\r\nTo: bob@example.test\r\nSubject: hello\r\n"
	       " world\r\nX-Other: x\r\n\r\n");
	expect(simple_msg, "BODY[TEXT]", "line one\r\nline two\r\n");
	expect(simple_msg, "BODY[1]", "line one\r\nline two\r\n");
	expect(simple_msg, "BODY[2]", "NIL");
	expect(simple_msg, "BODY[1.1]", "NIL");
	expect(simple_msg, "BODY[HEADER.FIELDS (subject TO)]",
	       "To: bob@example.test\r\nSubject: hello\r\n world\r\n\r\n");
	expect(simple_msg, "BODY[HEADER.FIELDS.NOT (Subject To From)]", "X-Other: x\r\n\r\n");
	expect(simple_msg, "BODY[HEADER.FIELDS (Nope)]", "\r\n");
	expect(simple_msg, "BODY[TEXT]<5.7>", "one\r\nli");
	expect(simple_msg, "BODY[TEXT]<18.100>", "\r\n");
	expect(simple_msg, "BODY[TEXT]<500.1>", "");
	expect(simple_msg, "BODY[HEADER.FIELDS (To)]<4.3>", "bob");
}

static void test_nested_message(void **state)
{
	(void)state;
	expect(nested_msg, "BODY[1]",
	       "first part"); /* RFC 2046: the CRLF before a boundary is the boundary's */
	expect(nested_msg, "BODY[1.MIME]", "Content-Type: text/plain\r\n\r\n");
	expect(nested_msg, "BODY[2.HEADER.FIELDS (Subject)]", "Subject: inner\r\n\r\n");
	expect(nested_msg, "BODY[2.1]", "plain");
	expect(nested_msg, "BODY[2.2]", "<p>html</p>");
	expect(nested_msg, "BODY[2.2.MIME]", "Content-Type: text/html\r\n\r\n");
	expect(nested_msg, "BODY[2.3]", "NIL");
	expect(nested_msg, "BODY[3]", "NIL");
	expect(nested_msg, "BODY[1.HEADER]", "NIL"); /* not a message/rfc822 part */
	char *whole = fetch(nested_msg, strlen(nested_msg), "BODY[2]");
	assert_non_null(strstr(whole, "From: inner@example.test\r\n"));
	assert_non_null(strstr(whole, "--inner--\r\n"));
	free(whole);
	char *text = fetch(nested_msg, strlen(nested_msg), "BODY[2.TEXT]");
	assert_true(strncmp(strchr(text, ':') + 1, "--inner\r\n", 9) == 0);
	free(text);
}

/* A CRLF split across the 64 KiB read boundary must not gain a second CR, and bare LFs
 * on either side of it are converted. */
static void test_chunk_boundary(void **state)
{
	(void)state;
	struct buf msg;
	buf_init(&msg, 0);
	(void)buf_append_str(&msg, "Subject: big\n\n");
	while (msg.len < 65536 - 1)
		(void)buf_append_char(&msg, 'a');
	(void)buf_append_str(&msg, "\r\nb\nc\n");
	char *got = fetch(msg.data, msg.len, "BODY[]");
	const char *colon = strchr(got, ':');
	unsigned long long size = strtoull(got, NULL, 10);
	assert_int_equal(strlen(colon + 1), size);
	assert_int_equal(size, msg.len + 4); /* two bare LFs in the header, two at the end */
	const char *tail = colon + 1 + size - 8;
	assert_string_equal(tail, "\r\nb\r\nc\r\n");
	assert_null(strstr(colon + 1, "\r\r"));
	free(got);
	buf_free(&msg);
}

static const char binary_msg[] = "Subject: bin\n"
                                 "Content-Type: multipart/mixed; boundary=b\n"
                                 "\n"
                                 "--b\n"
                                 "Content-Type: application/octet-stream\n"
                                 "Content-Transfer-Encoding: BASE64\n"
                                 "\n"
                                 "AAFoaQ0K\n"
                                 "/w==\n"
                                 "--b\n"
                                 "Content-Type: text/plain\n"
                                 "Content-Transfer-Encoding: quoted-printable\n"
                                 "\n"
                                 "caf=C3=A9 long=\n"
                                 " line\n"
                                 "end=0A\n"
                                 "--b\n"
                                 "Content-Transfer-Encoding: x-uuencode\n"
                                 "\n"
                                 "begin 644 f\n"
                                 "--b\n"
                                 "Content-Transfer-Encoding: 8bit\n"
                                 "\n"
                                 "a\nb\n"
                                 "--b--\n";

/* BINARY (RFC 3516): base64 with a NUL (literal8 needed), quoted-printable with soft and
 * hard line breaks, an unknown encoding, 8bit as BODY[] has it, partials on the decoded
 * bytes. */
static void test_binary(void **state)
{
	(void)state;
	static const char b64[] = {'\0', 1, 'h', 'i', '\r', '\n', (char)0xff};
	char *got = fetch(binary_msg, strlen(binary_msg), "BINARY[1]");
	assert_int_equal(got[0], '~');
	assert_string_equal(got + 1, "7:");
	assert_memory_equal(got + 3, b64, sizeof(b64));
	free(got);
	got = fetch(binary_msg, strlen(binary_msg), "BINARY.PEEK[1]<2.3>");
	assert_string_equal(got, "3:hi\r");
	free(got);
	expect(binary_msg, "BINARY[2]", "caf\xc3\xa9 long line\r\nend\n");
	got = fetch(binary_msg, strlen(binary_msg), "BINARY[3]");
	assert_string_equal(got, "UNKNOWN-CTE");
	free(got);
	expect(binary_msg, "BINARY[4]", "a\r\nb");
	expect(binary_msg, "BINARY[5]", "NIL");
	got = fetch(binary_msg, strlen(binary_msg), "BINARY.SIZE[2]");
	assert_string_equal(got, "21:caf\xc3\xa9 long line\r\nend\n");
	free(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_simple_message),
	    cmocka_unit_test(test_nested_message),
	    cmocka_unit_test(test_chunk_boundary),
	    cmocka_unit_test(test_binary),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
