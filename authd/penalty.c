/* The per-IP failure table behind the growing auth failure delay. */
#include "penalty.h"

#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"

#define PENALTY_BUCKETS 4096
#define PENALTY_FORGET_MS (3600ULL * 1000)

struct penalty_entry {
	struct penalty_entry *next;
	uint64_t last_ms;
	unsigned failures;
	char ip[];
};

struct penalty {
	uint64_t base_ms, max_ms;
	unsigned max_entries, n_entries;
	struct penalty_entry *buckets[PENALTY_BUCKETS];
};

static unsigned ip_hash(const char *ip)
{
	unsigned h = 2166136261u;

	for (; *ip != '\0'; ip++)
		h = (h ^ (unsigned char)*ip) * 16777619u;
	return h % PENALTY_BUCKETS;
}

struct penalty *penalty_new(uint64_t base_ms, uint64_t max_ms, unsigned max_entries)
{
	struct penalty *p = xcalloc(1, sizeof(*p));

	p->base_ms = base_ms;
	p->max_ms = max_ms;
	p->max_entries = max_entries;
	return p;
}

void penalty_free(struct penalty **pp)
{
	struct penalty *p = *pp;

	if (p == NULL)
		return;
	*pp = NULL;
	for (unsigned i = 0; i < PENALTY_BUCKETS; i++) {
		while (p->buckets[i] != NULL) {
			struct penalty_entry *e = p->buckets[i];
			p->buckets[i] = e->next;
			free(e);
		}
	}
	free(p);
}

static struct penalty_entry **find(struct penalty *p, const char *ip)
{
	struct penalty_entry **ep = &p->buckets[ip_hash(ip)];

	while (*ep != NULL && strcmp((*ep)->ip, ip) != 0)
		ep = &(*ep)->next;
	return ep;
}

/* Drops forgotten entries; when still full, drops the least recently failed one. */
static void evict(struct penalty *p, uint64_t now_ms)
{
	struct penalty_entry **oldest = NULL;

	for (unsigned i = 0; i < PENALTY_BUCKETS; i++) {
		for (struct penalty_entry **ep = &p->buckets[i]; *ep != NULL;) {
			if (now_ms - (*ep)->last_ms >= PENALTY_FORGET_MS) {
				struct penalty_entry *e = *ep;
				*ep = e->next;
				free(e);
				p->n_entries--;
				continue;
			}
			if (oldest == NULL || (*ep)->last_ms < (*oldest)->last_ms)
				oldest = ep;
			ep = &(*ep)->next;
		}
	}
	if (p->n_entries >= p->max_entries && oldest != NULL) {
		struct penalty_entry *e = *oldest;
		*oldest = e->next;
		free(e);
		p->n_entries--;
	}
}

uint64_t penalty_failure(struct penalty *p, const char *ip, uint64_t now_ms)
{
	struct penalty_entry **ep = find(p, ip);
	struct penalty_entry *e = *ep;

	if (e != NULL && now_ms - e->last_ms >= PENALTY_FORGET_MS)
		e->failures = 0;
	if (e == NULL) {
		if (p->n_entries >= p->max_entries) {
			evict(p, now_ms);
			ep = find(p, ip);
		}
		size_t len = strlen(ip);
		e = xcalloc(1, sizeof(*e) + len + 1);
		memcpy(e->ip, ip, len);
		e->next = *ep;
		*ep = e;
		p->n_entries++;
	}
	if (e->failures < 64)
		e->failures++;
	e->last_ms = now_ms;
	uint64_t delay = p->base_ms;
	for (unsigned i = 1; i < e->failures && delay < p->max_ms; i++)
		delay *= 2;
	return delay < p->max_ms ? delay : p->max_ms;
}

void penalty_success(struct penalty *p, const char *ip)
{
	struct penalty_entry **ep = find(p, ip);

	if (*ep != NULL) {
		struct penalty_entry *e = *ep;
		*ep = e->next;
		free(e);
		p->n_entries--;
	}
}

unsigned penalty_count(struct penalty *p, const char *ip, uint64_t now_ms)
{
	struct penalty_entry *e = *find(p, ip);

	return e != NULL && now_ms - e->last_ms < PENALTY_FORGET_MS ? e->failures : 0;
}
