/*
 * Fuzz target for the streaming MIME parser: any input parses with bounded memory, sizes
 * add up to the input, and feeding it in two pieces (split chosen by the first byte)
 * gives the same BODYSTRUCTURE and ENVELOPE as feeding it whole.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "mime/imap_bodystructure.h"
#include "mime/mime_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct mime_limits limits = {
    .max_depth = 8, .max_parts = 64, .max_header_size = 4096, .max_boundary_len = 70};

static char *render(const uint8_t *data, size_t size, size_t split)
{
	struct mime_parser *p = mime_parser_new(&limits);
	mime_parser_feed(p, data, split);
	mime_parser_feed(p, data + split, size - split);
	struct mime_part *root = mime_parser_finish(&p);
	if (root->header.physical + root->body.physical != size)
		abort();
	struct buf out;
	buf_init(&out, 0);
	imap_envelope_append(&out, root);
	imap_bodystructure_append(&out, root, true);
	mime_part_free(&root);
	return buf_steal(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	size_t split = (size_t)data[0] * 7919 % (size + 1);
	char *whole = render(data, size, size);
	char *parts = render(data, size, split);
	if (strcmp(whole, parts) != 0)
		abort();
	free(whole);
	free(parts);
	return 0;
}
