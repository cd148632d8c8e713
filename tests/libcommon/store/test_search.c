/*
 * Unit tests for search: encoded words, base64 and quoted-printable bodies, legacy
 * charsets through iconv, case-insensitive matching beyond ASCII, and the cached fields.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "mime/mime_decode.h"
#include "store/maildir_deliver.h"
#include "store/mailbox.h"
#include "store/search.h"

static void test_header_decode(void **state)
{
	(void)state;
	static const struct {
		const char *in, *out;
	} cases[] = {
	    {"plain text", "plain text"},
	    {"=?UTF-8?B?R3LDvMOfZQ==?=", "Gr\xc3\xbc\xc3\x9f"
	                                 "e"},
	    {"=?iso-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?=", "Gr\xc3\xbc\xc3\x9f"
	                                              "e aus K\xc3\xb6ln"},
	    /* White space between encoded words goes; around plain words it stays. */
	    {"=?UTF-8?Q?a?= =?UTF-8?Q?b?= c", "ab c"},
	    {"x =?UTF-8?Q?y?=", "x y"},
	    {"=?KOI8-R?B?8NLJ18XU?=", "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82"},
	    /* Broken words stay as they are. */
	    {"=?UTF-8?X?abc?=", "=?UTF-8?X?abc?="},
	    {"=?UTF-8?B?abc", "=?UTF-8?B?abc"},
	    {"=?no-such-charset?Q?ok?=", "ok"},
	    /* 8-bit that is not UTF-8 becomes '?'. */
	    {"a\xff"
	     "b",
	     "a?b"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct buf b;
		buf_init(&b, 0);
		mime_header_decode(cases[i].in, strlen(cases[i].in), &b);
		if (strcmp(buf_cstr(&b), cases[i].out) != 0)
			fail_msg("case %zu: got \"%s\"", i, buf_cstr(&b));
		buf_free(&b);
	}
}

static void test_transfer_decoding(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	mime_base64_decode("aGVs\r\nbG8g\r\nd29y bGQ=\r\n", 23, &b);
	assert_string_equal(buf_cstr(&b), "hello world");
	buf_reset(&b);
	const char *qp = "soft=\r\nbreak =3D equals=\nx =ZZ";
	mime_qp_decode(qp, strlen(qp), &b);
	assert_string_equal(buf_cstr(&b), "softbreak = equalsx =ZZ");
	buf_reset(&b);
	/* Output respects the buffer cap. */
	struct buf small;
	buf_init(&small, 4);
	mime_base64_decode("aGVsbG8gd29ybGQ=", 16, &small);
	assert_int_equal(small.len, 4);
	buf_free(&small);
	buf_free(&b);
	assert_true(search_text_contains("Gr\xc3\x9c\xc3\x9f"
	                                 "E",
	                                 6, "gr\xc3\xbc\xc3\x9f"));
	assert_true(search_text_contains("HELLO World", 11, "o wor"));
	assert_false(search_text_contains("HELLO World", 11, "worlds"));
	assert_true(search_text_contains("x", 1, ""));
}

static char root[256];

static void deliver(const char *msg)
{
	struct maildir_delivery *d;
	char *error = NULL;
	assert_int_equal(maildir_delivery_begin(root, &d, &error), MAILDIR_OK);
	assert_int_equal(maildir_delivery_write(d, msg, strlen(msg), &error), MAILDIR_OK);
	assert_int_equal(maildir_delivery_commit(d, &error), MAILDIR_OK);
	maildir_delivery_free(&d);
}

static void test_search_messages(void **state)
{
	(void)state;
	snprintf(root, sizeof(root), "/tmp/tern-search-XXXXXX");
	assert_non_null(mkdtemp(root));
	deliver("From: =?UTF-8?Q?J=C3=BCrgen?= <j@example.de>\r\n"
	        "Subject: =?iso-8859-1?Q?Gr=FC=DFe?=\r\nX-Tag: Blue Moon\r\n"
	        "Content-Type: multipart/mixed; boundary=b\r\n\r\n"
	        "--b\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
	        "Content-Transfer-Encoding: quoted-printable\r\n\r\nsch=F6ne W=FCrste\r\n"
	        "--b\r\nContent-Type: text/html; charset=utf-8\r\n"
	        "Content-Transfer-Encoding: base64\r\n\r\nPGI+S8O2bG48L2I+\r\n"
	        "--b\r\nContent-Type: application/octet-stream\r\n\r\nsecretword\r\n--b--\r\n");
	deliver("From: other@example.org\r\nSubject: nothing\r\n\r\nplain body\r\n");
	struct store_mailbox *box;
	const char *error;
	assert_int_equal(store_mailbox_open(root, &box, &error), STORE_OK);
	bool m;
	assert_int_equal(store_search_header(box, 1, "subject", "GR\xc3\x9c\xc3\x9f", &m),
	                 STORE_OK);
	assert_true(m);
	assert_int_equal(store_search_header(box, 2, "SUBJECT", "gr\xc3\xbc", &m), STORE_OK);
	assert_false(m);
	assert_int_equal(store_search_header(box, 1, "From", "j\xc3\xbcrgen", &m), STORE_OK);
	assert_true(m);
	/* A field the cache does not hold is read from the file. */
	assert_int_equal(store_search_header(box, 1, "x-tag", "moon", &m), STORE_OK);
	assert_true(m);
	assert_int_equal(store_search_header(box, 2, "x-tag", "", &m), STORE_OK);
	assert_false(m);
	/* Bodies: quoted-printable Latin-1, base64 UTF-8 HTML; not attachments. */
	assert_int_equal(store_search_body(box, 1, "W\xc3\x9cRSTE", false, &m), STORE_OK);
	assert_true(m);
	assert_int_equal(store_search_body(box, 1, "k\xc3\xb6ln", false, &m), STORE_OK);
	assert_true(m);
	assert_int_equal(store_search_body(box, 1, "secretword", false, &m), STORE_OK);
	assert_false(m);
	assert_int_equal(store_search_body(box, 1, "blue moon", false, &m), STORE_OK);
	assert_false(m);
	assert_int_equal(store_search_body(box, 1, "blue moon", true, &m), STORE_OK);
	assert_true(m);
	assert_int_equal(store_search_body(box, 2, "PLAIN", false, &m), STORE_OK);
	assert_true(m);
	store_mailbox_close(&box);
	pid_t pid = fork();
	if (pid == 0) {
		execlp("rm", "rm", "-rf", root, (char *)NULL);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_header_decode),
	    cmocka_unit_test(test_transfer_decoding),
	    cmocka_unit_test(test_search_messages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
