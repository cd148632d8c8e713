/*
 * Per-remote-IP failure delays: the first failed authentication from an IP is answered
 * after base_ms, each further one after twice the previous delay, up to max_ms (defaults
 * 2 s doubling to 15 s). A success from the IP clears it; an IP with no failure for an
 * hour is forgotten. The table is capped, so a flood of addresses costs bounded memory.
 * Callers apply the delay with a timer on the loop, never by sleeping.
 */
#ifndef TERN_AUTHD_PENALTY_H
#define TERN_AUTHD_PENALTY_H

#include <stdint.h>

struct penalty;

struct penalty *penalty_new(uint64_t base_ms, uint64_t max_ms, unsigned max_entries);
void penalty_free(struct penalty **p);
/* Records a failure from ip at now_ms; returns the delay for this failure's reply. */
uint64_t penalty_failure(struct penalty *p, const char *ip, uint64_t now_ms);
void penalty_success(struct penalty *p, const char *ip);
/* Failures counted for ip (0 when unknown); for tests and ternctl. */
unsigned penalty_count(struct penalty *p, const char *ip, uint64_t now_ms);

#endif
