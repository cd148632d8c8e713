/*
 * The MIME parser under hostile input: caps on header size, nesting depth and part count
 * hold, memory stays bounded, and the IMAP output stays well-formed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "mime/imap_bodystructure.h"
#include "mime/mime_parser.h"

/* Parentheses balance outside strings and literals, and the text is not empty. */
static void assert_balanced(const struct buf *b)
{
	int depth = 0;
	bool quoted = false;
	for (size_t i = 0; i < b->len; i++) {
		char c = b->data[i];
		if (quoted) {
			if (c == '\\')
				i++;
			else if (c == '"')
				quoted = false;
		} else if (c == '"') {
			quoted = true;
		} else if (c == '{') {
			size_t n = strtoul(b->data + i + 1, NULL, 10);
			i = (size_t)(strchr(b->data + i, '}') - b->data) + 2 + n;
		} else if (c == '(') {
			depth++;
		} else if (c == ')') {
			assert_true(depth > 0);
			depth--;
		}
	}
	assert_false(quoted);
	assert_int_equal(depth, 0);
}

static void render_check(struct mime_part *root)
{
	struct buf out;
	buf_init(&out, 0);
	imap_bodystructure_append(&out, root, true);
	assert_balanced(&out);
	buf_reset(&out);
	imap_envelope_append(&out, root);
	assert_balanced(&out);
	buf_free(&out);
}

static void test_huge_header_is_capped(void **state)
{
	(void)state;
	struct buf msg;
	buf_init(&msg, 0);
	buf_append_str(&msg, "From: a@b.c\r\nSubject: ");
	for (int i = 0; i < 200000; i++)
		buf_append_char(&msg, (char)('a' + i % 26));
	buf_append_str(&msg, "\r\nTo: late@x.y\r\n\r\nbody\r\n");
	struct mime_limits lim = {
	    .max_depth = 10, .max_parts = 100, .max_header_size = 4096, .max_boundary_len = 70};
	struct mime_part *root = mime_parse_buffer(msg.data, msg.len, &lim);
	assert_true(root->truncated);
	/* Sizes still count every byte. */
	assert_int_equal(root->header.physical + root->body.physical, msg.len);
	assert_int_equal(root->body.physical, 6);
	assert_string_equal(root->fields[MIME_FIELD_FROM], "a@b.c");
	assert_true(strlen(root->fields[MIME_FIELD_SUBJECT]) < 4096);
	/* A field after the cap is not seen: bounded, not exact. */
	assert_null(root->fields[MIME_FIELD_TO]);
	render_check(root);
	mime_part_free(&root);
	buf_free(&msg);
}

static void test_many_address_lines(void **state)
{
	(void)state;
	/* CVE-2024-23184 shape: thousands of To: lines. Linear work, first field kept. */
	struct buf msg;
	buf_init(&msg, 0);
	for (int i = 0; i < 20000; i++)
		buf_printf(&msg, "To: user%d@example.org\r\n", i);
	buf_append_str(&msg, "\r\nx\r\n");
	struct mime_part *root = mime_parse_buffer(msg.data, msg.len, NULL);
	assert_string_equal(root->fields[MIME_FIELD_TO], "user0@example.org");
	render_check(root);
	mime_part_free(&root);
	buf_free(&msg);
}

static void test_nesting_beyond_cap(void **state)
{
	(void)state;
	enum { LEVELS = 60 };
	struct buf msg;
	buf_init(&msg, 0);
	buf_append_str(&msg, "From: a@b.c\r\n");
	for (int i = 0; i < LEVELS; i++)
		buf_printf(&msg, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n",
		           i, i);
	buf_append_str(&msg, "Content-Type: text/plain\r\n\r\ndeep\r\n");
	for (int i = LEVELS - 1; i >= 0; i--)
		buf_printf(&msg, "--b%d--\r\n", i);
	struct mime_limits lim = {
	    .max_depth = 8, .max_parts = 1000, .max_header_size = 65536, .max_boundary_len = 70};
	struct mime_part *root = mime_parse_buffer(msg.data, msg.len, &lim);
	unsigned int depth = 0;
	bool truncated = false;
	for (struct mime_part *p = root; p != NULL; p = p->children) {
		assert_true(p->depth < 8);
		depth = p->depth;
		truncated |= p->truncated;
	}
	assert_int_equal(depth, 7);
	assert_true(truncated);
	assert_int_equal(root->header.physical + root->body.physical, msg.len);
	render_check(root);
	mime_part_free(&root);
	buf_free(&msg);
}

static void test_message_rfc822_nesting_beyond_cap(void **state)
{
	(void)state;
	struct buf msg;
	buf_init(&msg, 0);
	for (int i = 0; i < 40; i++)
		buf_append_str(&msg, "Subject: fwd\r\nContent-Type: message/rfc822\r\n\r\n");
	buf_append_str(&msg, "Subject: innermost\r\n\r\nhi\r\n");
	struct mime_limits lim = {
	    .max_depth = 5, .max_parts = 1000, .max_header_size = 65536, .max_boundary_len = 70};
	struct mime_part *root = mime_parse_buffer(msg.data, msg.len, &lim);
	struct buf out;
	buf_init(&out, 0);
	imap_bodystructure_append(&out, root, true);
	/* The part past the cap is reported as an opaque attachment. */
	assert_non_null(strstr(buf_cstr(&out), "\"application\" \"octet-stream\""));
	assert_balanced(&out);
	buf_free(&out);
	mime_part_free(&root);
	buf_free(&msg);
}

static void test_part_count_cap(void **state)
{
	(void)state;
	struct buf msg;
	buf_init(&msg, 0);
	buf_append_str(&msg, "Content-Type: multipart/mixed; boundary=x\r\n\r\n");
	for (int i = 0; i < 5000; i++)
		buf_append_str(&msg, "--x\r\n\r\np\r\n");
	buf_append_str(&msg, "--x--\r\n");
	struct mime_limits lim = {
	    .max_depth = 5, .max_parts = 50, .max_header_size = 65536, .max_boundary_len = 70};
	struct mime_part *root = mime_parse_buffer(msg.data, msg.len, &lim);
	unsigned int n = 0;
	for (struct mime_part *p = root->children; p != NULL; p = p->next)
		n++;
	assert_int_equal(n, 49); /* the root counts too */
	assert_true(root->truncated);
	assert_int_equal(root->header.physical + root->body.physical, msg.len);
	render_check(root);
	mime_part_free(&root);
	buf_free(&msg);
}

static void test_long_lines_and_boundary_cap(void **state)
{
	(void)state;
	/* A boundary longer than the cap is not honoured; a 1 MB line is only counted. */
	struct buf msg;
	buf_init(&msg, 0);
	buf_append_str(&msg, "Content-Type: multipart/mixed; boundary=\"");
	for (int i = 0; i < 300; i++)
		buf_append_char(&msg, 'b');
	buf_append_str(&msg, "\"\r\n\r\n");
	for (int i = 0; i < 1000000; i++)
		buf_append_char(&msg, '-');
	buf_append_str(&msg, "\r\n");
	struct mime_part *root = mime_parse_buffer(msg.data, msg.len, NULL);
	assert_null(root->children);
	assert_true(root->truncated);
	assert_int_equal(root->body.lines, 1);
	render_check(root);
	mime_part_free(&root);
	buf_free(&msg);
}

static void test_unquoted_boundary_with_equals(void **state)
{
	(void)state;
	/* "boundary=----=_Part_1" unquoted is common: the whole value is the boundary. */
	const char *m = "Content-Type: multipart/mixed; boundary=----=_Part_1\r\n\r\n"
	                "------=_Part_1\r\n\r\none\r\n------=_Part_1\r\n\r\ntwo\r\n"
	                "------=_Part_1--\r\n";
	struct mime_part *root = mime_parse_buffer(m, strlen(m), NULL);
	assert_string_equal(mime_param_get(root->params, "boundary"), "----=_Part_1");
	assert_non_null(root->children);
	assert_non_null(root->children->next);
	assert_null(root->children->next->next);
	assert_int_equal(root->children->body.physical, 3);
	mime_part_free(&root);
}

static void test_empty_and_garbage(void **state)
{
	(void)state;
	static const char *const inputs[] = {
	    "",   "\r\n", "\n\n\n",    ":",
	    "\r", "--",   "From:\r\n", "Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n"};
	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
		struct mime_part *root = mime_parse_buffer(inputs[i], strlen(inputs[i]), NULL);
		assert_int_equal(root->header.physical + root->body.physical, strlen(inputs[i]));
		render_check(root);
		mime_part_free(&root);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_huge_header_is_capped),
	    cmocka_unit_test(test_many_address_lines),
	    cmocka_unit_test(test_nesting_beyond_cap),
	    cmocka_unit_test(test_message_rfc822_nesting_beyond_cap),
	    cmocka_unit_test(test_part_count_cap),
	    cmocka_unit_test(test_long_lines_and_boundary_cap),
	    cmocka_unit_test(test_unquoted_boundary_with_equals),
	    cmocka_unit_test(test_empty_and_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
