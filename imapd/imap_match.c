/* LIST pattern matching by a set of reachable name positions (see imap_match.h). */
#include "imap_match.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/xalloc.h"

/* "inbox/x" -> "INBOX/x", so the INBOX prefix compares without regard to case. */
static char *canonical_inbox(const char *s, char sep)
{
	char *c = xstrdup(s);
	if (strncasecmp(c, "INBOX", 5) == 0 && (c[5] == '\0' || c[5] == sep))
		memcpy(c, "INBOX", 5);
	return c;
}

bool imap_match(const char *pattern, const char *name, char separator)
{
	char *p = canonical_inbox(pattern, separator);
	char *n = canonical_inbox(name, separator);
	size_t nlen = strlen(n);
	/* reach[i]: the pattern read so far can end right before n[i]. */
	bool *reach = xcalloc(nlen + 1, sizeof(bool));
	bool *next = xcalloc(nlen + 1, sizeof(bool));
	reach[0] = true;
	for (const char *pc = p; *pc != '\0'; pc++) {
		memset(next, 0, nlen + 1);
		if (*pc == '*' || *pc == '%') {
			bool on = false;
			for (size_t i = 0; i <= nlen; i++) {
				if (reach[i])
					on = true;
				if (on)
					next[i] = true;
				if (*pc == '%' && i < nlen && n[i] == separator)
					on = false;
			}
		} else {
			for (size_t i = 0; i < nlen; i++) {
				if (reach[i] && n[i] == *pc)
					next[i + 1] = true;
			}
		}
		bool *t = reach;
		reach = next;
		next = t;
	}
	bool matched = reach[nlen];
	free(reach);
	free(next);
	free(p);
	free(n);
	return matched;
}
