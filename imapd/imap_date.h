/*
 * Dates as IMAP needs them, in one place: the month names, the IMAP date ("1-Feb-2024",
 * SEARCH SINCE/BEFORE/ON), the IMAP date-time ("01-Feb-2024 10:00:00 +0100", APPEND and
 * INTERNALDATE) and RFC 5322 Date header values (SORT DATE, SEARCH SENT*).
 */
#ifndef TERN_IMAPD_IMAP_DATE_H
#define TERN_IMAPD_IMAP_DATE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

struct buf;

/* "Jan".."Dec" by month 0..11. */
extern const char *const imap_month_names[12];

/* Month 0..11 of a three-letter English month name (any case), or -1. */
int imap_month_index(const char *name3);

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1..12). */
int32_t imap_days_from_civil(int year, unsigned month, unsigned day);

/* IMAP date (RFC 3501 "date", unquoted): "d-Mon-yyyy" or "dd-Mon-yyyy" -> days since
 * 1970-01-01 in *day_r. Returns 0, or -1 when malformed or not a real day. */
int imap_date_parse(const char *s, int32_t *day_r);

/* IMAP date-time "dd-Mon-yyyy hh:mm:ss +zzzz" (day may be space-padded, 25 or 26
 * characters without the quotes) -> seconds since the epoch. Returns 0 or -1. */
int imap_date_time_parse(const char *s, time_t *t_r);

/* Appends the quoted IMAP date-time of t in local time ("17-Jul-1996 02:44:25 -0700"). */
void imap_date_time_append(struct buf *out, int64_t t);

/* The parts of an RFC 5322 date ("Tue, 1 Jul 2003 10:52:37 +0200"; the day name, the
 * seconds, the time and the zone may be missing; two-digit years are 19xx/20xx). */
struct imap_rfc5322_date {
	int year, month, day; /* month 0..11 */
	int hour, min, sec;   /* 0 when absent */
	long zone_secs;       /* east of UTC; 0 when absent or a named zone */
};
/* Returns 0, or -1 when there is no "day month year" at the start. */
int imap_rfc5322_date_split(const char *value, struct imap_rfc5322_date *d);

/* RFC 5322 date -> seconds since the epoch (the zone applied), or -1. */
time_t imap_rfc822_date_parse(const char *value);
/* The date part only (RFC 3501 SENT*: time and zone disregarded): days since 1970-01-01.
 * Returns 0 or -1. */
int imap_rfc822_date_day(const char *value, int *day_r);

#endif
