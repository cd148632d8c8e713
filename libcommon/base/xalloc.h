/*
 * Allocation wrappers. Every allocation in tern goes through these: on failure they log
 * a panic line and abort, so call sites never check for NULL. Memory returned is owned by
 * the caller and released with free().
 */
#ifndef TERN_BASE_XALLOC_H
#define TERN_BASE_XALLOC_H

#include <stdarg.h>
#include <stddef.h>

void *xmalloc(size_t size);
/* Zero-filled; aborts when nmemb * size overflows. */
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
/* realloc of an array; aborts when nmemb * size overflows. */
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
/* Copies at most n bytes of s and always NUL-terminates. */
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/*
 * Maps in the whole pages inside [p, p + len) now, in one system call, when len is large
 * (an array of a 100,000-message folder about to be written front to back): a page fault
 * each costs more than writing the page. Only a hint; does nothing where the kernel
 * cannot (Linux < 5.14).
 */
void prefault_write(void *p, size_t len);

/* Overwrites n bytes at p in a way the compiler may not elide (for secrets). */
void secure_zero(void *p, size_t n);

#endif
