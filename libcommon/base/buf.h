/*
 * A growable byte buffer with a hard maximum.
 *
 * The data is always NUL-terminated (the NUL is not counted in len), so buf_cstr() is
 * valid for text. Growth never passes `max`: an append that would is refused whole with
 * -1 and leaves the buffer unchanged, so network input past a limit becomes a protocol
 * error, never an allocation. A buffer is usable after buf_init() and must be released
 * with buf_free(). Pointers into the data are invalidated by any call that appends.
 */
#ifndef TERN_BASE_BUF_H
#define TERN_BASE_BUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
};

/* max is the largest len the buffer may reach; 0 means SIZE_MAX / 2. */
void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
/* Empties the buffer and keeps its allocation. */
void buf_reset(struct buf *b);

/* Returns 0, or -1 (buffer unchanged) when the result would pass max. */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_append_str(struct buf *b, const char *s);
int buf_append_char(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Removes the first n bytes (all when n >= len). */
void buf_consume(struct buf *b, size_t n);
/* Shortens to len bytes; no effect when len >= b->len. */
void buf_truncate(struct buf *b, size_t len);

static inline const char *buf_cstr(const struct buf *b)
{
	return b->data != NULL ? b->data : "";
}

/* Bytes that may still be appended before max is reached. */
static inline size_t buf_room(const struct buf *b)
{
	return b->max - b->len;
}

/* Hands the NUL-terminated data to the caller (free() it) and resets b to empty. */
char *buf_steal(struct buf *b);

#endif
