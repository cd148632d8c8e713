/* Fuzz target: log_sanitize() must emit only printable ASCII and respect its cap. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/buf.h"
#include "base/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf out;
	buf_init(&out, 0);
	log_sanitize(&out, data, size, 64);
	for (size_t i = 0; i < out.len; i++) {
		if (out.data[i] < 0x20 || out.data[i] > 0x7e)
			abort();
	}
	if (out.len > 64 + 3)
		abort();
	buf_free(&out);
	return 0;
}
