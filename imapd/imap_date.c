/* Date parsing and formatting for imapd (see imap_date.h). */
#include "imap_date.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"

const char *const imap_month_names[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

int imap_month_index(const char *name3)
{
	for (int m = 0; m < 12; m++) {
		if (strncasecmp(name3, imap_month_names[m], 3) == 0)
			return m;
	}
	return -1;
}

/* Howard Hinnant's days_from_civil. */
int32_t imap_days_from_civil(int y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int32_t)doe - 719468;
}

int imap_date_parse(const char *s, int32_t *day_r)
{
	char *e;
	long day = strtol(s, &e, 10);
	if (e == s || e - s > 2 || *e != '-' || day < 1 || day > 31)
		return -1;
	const char *mon = e + 1;
	int m = imap_month_index(mon);
	if (m < 0 || mon[3] != '-')
		return -1;
	const char *ys = mon + 4;
	long year = strtol(ys, &e, 10);
	if (e - ys != 4 || *e != '\0' || year < 1000)
		return -1;
	static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if ((unsigned)day > mdays[m])
		return -1;
	*day_r = imap_days_from_civil((int)year, (unsigned)m + 1, (unsigned)day);
	return 0;
}

int imap_date_time_parse(const char *s, time_t *t_r)
{
	int day, year, hh, mm, ss, zone;
	char mon[4], sign;
	if (strlen(s) != 26 && strlen(s) != 25)
		return -1;
	if (sscanf(s, "%2d-%3s-%4d %2d:%2d:%2d %c%4d", &day, mon, &year, &hh, &mm, &ss, &sign,
	           &zone) != 8 ||
	    (sign != '+' && sign != '-'))
		return -1;
	int m = strlen(mon) == 3 ? imap_month_index(mon) : -1;
	if (m < 0 || day < 1 || day > 31 || hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 ||
	    ss > 60 || zone < 0 || zone % 100 > 59)
		return -1;
	struct tm tm = {.tm_sec = ss,
	                .tm_min = mm,
	                .tm_hour = hh,
	                .tm_mday = day,
	                .tm_mon = m,
	                .tm_year = year - 1900};
	time_t t = timegm(&tm);
	long off = (zone / 100) * 3600 + (zone % 100) * 60;
	*t_r = sign == '+' ? t - off : t + off;
	return 0;
}

void imap_date_time_append(struct buf *out, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	localtime_r(&tt, &tm);
	long off = tm.tm_gmtoff / 60;
	char sign = off < 0 ? '-' : '+';
	if (off < 0)
		off = -off;
	(void)buf_printf(out, "\"%02d-%s-%04d %02d:%02d:%02d %c%02ld%02ld\"", tm.tm_mday,
	                 imap_month_names[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
	                 tm.tm_sec, sign, off / 60, off % 60);
}

int imap_rfc5322_date_split(const char *value, struct imap_rfc5322_date *d)
{
	const char *p = value;
	while (*p != '\0' && !isdigit((unsigned char)*p))
		p++; /* "Tue, " */
	int day, year, hh = 0, mm = 0, ss = 0;
	char mon[4], zone[8] = "";
	int n = sscanf(p, "%2d %3s %4d %2d:%2d:%2d %7s", &day, mon, &year, &hh, &mm, &ss, zone);
	if (n < 3)
		return -1;
	if (n < 6) {
		ss = 0;
		if (n < 5 &&
		    sscanf(p, "%2d %3s %4d %2d:%2d %7s", &day, mon, &year, &hh, &mm, zone) < 5)
			hh = mm = 0;
	}
	int m = strlen(mon) == 3 ? imap_month_index(mon) : -1;
	if (m < 0)
		return -1;
	if (year < 100)
		year += year < 50 ? 2000 : 1900;
	d->year = year;
	d->month = m;
	d->day = day;
	d->hour = hh;
	d->min = mm;
	d->sec = ss;
	d->zone_secs = 0;
	if ((zone[0] == '+' || zone[0] == '-') && isdigit((unsigned char)zone[1])) {
		long z = strtol(zone + 1, NULL, 10);
		long off = (z / 100) * 3600 + (z % 100) * 60;
		d->zone_secs = zone[0] == '+' ? off : -off;
	}
	return 0;
}

time_t imap_rfc822_date_parse(const char *value)
{
	struct imap_rfc5322_date d;
	if (imap_rfc5322_date_split(value, &d) < 0)
		return -1;
	struct tm tm = {.tm_sec = d.sec,
	                .tm_min = d.min,
	                .tm_hour = d.hour,
	                .tm_mday = d.day,
	                .tm_mon = d.month,
	                .tm_year = d.year - 1900};
	return timegm(&tm) - d.zone_secs;
}

int imap_rfc822_date_day(const char *value, int *day_r)
{
	struct imap_rfc5322_date d;
	if (imap_rfc5322_date_split(value, &d) < 0)
		return -1;
	struct tm tm = {.tm_mday = d.day, .tm_mon = d.month, .tm_year = d.year - 1900};
	*day_r = (int)(timegm(&tm) / 86400);
	return 0;
}
