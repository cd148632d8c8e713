/*
 * The MIME corpus: real-world shaped messages (nested multipart, broken and missing
 * boundaries, missing headers, 8-bit, odd addresses, digests) whose ENVELOPE, BODY and
 * BODYSTRUCTURE must equal what Dovecot answers for them (the .expected files, written by
 * corpus/make_expected.py from a real Dovecot). Every message is parsed whole, one byte
 * at a time and in odd-sized chunks; all must give the same answer.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "mime/imap_bodystructure.h"
#include "mime/mime_parser.h"

#define CORPUS TERN_SOURCE_DIR "/tests/libcommon/mime/corpus"

static char *read_file(const char *path, size_t *len_r)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	struct buf b;
	buf_init(&b, 0);
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	*len_r = b.len;
	return buf_steal(&b);
}

/* "size\n=====\nenvelope\n=====\nbody\n=====\nbodystructure\n" as Dovecot wrote it. */
static char *render(const char *data, size_t len, size_t chunk)
{
	struct mime_parser *p = mime_parser_new(NULL);
	for (size_t off = 0; off < len; off += chunk)
		mime_parser_feed(p, data + off, len - off < chunk ? len - off : chunk);
	struct mime_part *root = mime_parser_finish(&p);
	struct buf out;
	buf_init(&out, 0);
	buf_printf(&out, "%llu\n=====\n",
	           (unsigned long long)(root->header.virtual_size + root->body.virtual_size));
	imap_envelope_append(&out, root);
	buf_append_str(&out, "\n=====\n");
	imap_bodystructure_append(&out, root, false);
	buf_append_str(&out, "\n=====\n");
	imap_bodystructure_append(&out, root, true);
	buf_append_str(&out, "\n");
	mime_part_free(&root);
	return buf_steal(&out);
}

static void test_corpus_matches_dovecot(void **state)
{
	(void)state;
	DIR *d = opendir(CORPUS);
	assert_non_null(d);
	struct dirent *de;
	int checked = 0, failed = 0;
	while ((de = readdir(d)) != NULL) {
		size_t nlen = strlen(de->d_name);
		if (nlen < 5 || strcmp(de->d_name + nlen - 4, ".eml") != 0)
			continue;
		char *eml = xasprintf("%s/%s", CORPUS, de->d_name);
		char *exp = xasprintf("%s/%.*s.expected", CORPUS, (int)(nlen - 4), de->d_name);
		size_t len, elen;
		char *data = read_file(eml, &len);
		char *expected = read_file(exp, &elen);
		assert_non_null(data);
		if (expected != NULL) {
			char *got = render(data, len, len + 1);
			if (strcmp(got, expected) != 0) {
				print_error("%s:\n got: %s\nwant: %s\n", de->d_name, got, expected);
				failed++;
			}
			free(got);
			checked++;
		}
		/* Any split gives the same answer: one byte at a time, and odd chunks. */
		char *whole = render(data, len, len + 1);
		static const size_t chunks[] = {1, 2, 3, 7, 64};
		for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
			char *split = render(data, len, chunks[i]);
			if (strcmp(split, whole) != 0) {
				print_error("%s: chunk %zu differs:\n%s\n", de->d_name, chunks[i],
				            split);
				failed++;
			}
			free(split);
		}
		free(whole);
		free(data);
		free(expected);
		free(eml);
		free(exp);
	}
	closedir(d);
	assert_true(checked >= 14);
	assert_int_equal(failed, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_corpus_matches_dovecot),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
