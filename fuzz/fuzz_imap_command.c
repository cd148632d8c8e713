/*
 * Fuzz target: IMAP command framing and argument parsing together. The input is split
 * into chunks at arbitrary points (the first byte chooses the chunk size) so literal and
 * line boundaries fall everywhere; every complete command is parsed into arguments and
 * then run through the UTF8=ACCEPT translation (imap_utf8.c).
 */
// links: imapd_lib
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/buf.h"
#include "imap_args.h"
#include "imap_reader.h"
#include "imap_utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int discard_sink(const void *data, size_t len, void *context)
{
	(void)data;
	(void)context;
	return len > 0 ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct imap_reader_limits rl = {
	    .max_line = 256,
	    .max_command = 1024,
	    .max_inline_literal = 64,
	    .max_literal = 4096,
	    .max_literals = 8,
	};
	static const struct imap_args_limits al = {.max_depth = 16, .max_args = 256};
	if (size == 0)
		return 0;
	size_t chunk = (size_t)(data[0] % 17) + 1;
	data++;
	size--;

	struct imap_reader *r = imap_reader_new(&rl);
	struct buf in;
	buf_init(&in, 0);
	size_t pos = 0;
	bool closed = false;
	while (pos < size && !closed) {
		size_t n = size - pos < chunk ? size - pos : chunk;
		(void)buf_append(&in, data + pos, n);
		pos += n;
		for (unsigned guard = 0; guard < 1000 && !closed; guard++) {
			enum imap_read_result res = imap_reader_feed(r, &in);
			if (res == IMAP_READ_NEED_MORE)
				break;
			if (res == IMAP_READ_STREAM) {
				if (imap_reader_literal_size(r) % 2 == 0)
					imap_reader_stream_accept(r, discard_sink, NULL);
				else
					imap_reader_stream_refuse(r, "NO no");
			} else if (res == IMAP_READ_ERROR) {
				closed = imap_reader_error_fatal(r);
			} else if (res == IMAP_READ_COMMAND) {
				size_t len, ns;
				const char *text = imap_reader_command(r, &len);
				const struct imap_streamed_literal *st =
				    imap_reader_streamed(r, &ns);
				struct imap_command cmd;
				const char *error;
				char *tag;
				if (imap_args_parse(text, len, st, ns, &al, &cmd, &error, &tag) ==
				    0) {
					/* As a UTF8=ACCEPT session would see it, too. */
					const char *status;
					(void)imap_utf8_command_in(&cmd, &status, &error);
					imap_command_free(&cmd);
				} else {
					free(tag);
				}
			}
		}
	}
	buf_free(&in);
	imap_reader_free(&r);
	return 0;
}
