/*
 * Store benchmark (see run.sh): generates a folder, then times first open (index build),
 * warm open, FLAGS+ENVELOPE of every message, a header search, and deliveries per second
 * with 1 and N concurrent writers. Prints "name wall-seconds cpu-seconds ..." lines.
 *
 *   bench_store gen DIR N | open DIR | reopen DIR N | fetch DIR | search DIR NEEDLE | deliver DIR N
 * THREADS
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "base/buf.h"
#include "base/xalloc.h"
#include "store/maildir_deliver.h"
#include "store/mailbox.h"
#include "store/search.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds (user + system) of this process so far. */
static double cpu(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static char *message(unsigned int i)
{
	struct buf b;
	buf_init(&b, 0);
	buf_printf(&b,
	           "Return-Path: <sender%u@example.org>\r\nReceived: from mx.example.org by "
	           "mail.example.net with ESMTPS; Mon, 1 Jan 2024 10:00:00 +0000\r\n"
	           "From: \"Sender %u\" <sender%u@example.org>\r\nTo: Rcpt <rcpt@example.net>\r\n"
	           "Cc: list%u@lists.example.org\r\nSubject: Benchmark message number %u %s\r\n"
	           "Date: Mon, 1 Jan 2024 10:%02u:%02u +0000\r\nMessage-ID: <%u@example.org>\r\n"
	           "MIME-Version: 1.0\r\n",
	           i, i, i, i % 50, i, i % 97 == 0 ? "needle" : "haystack", i / 60 % 60, i % 60, i);
	if (i % 3 == 0) {
		buf_append_str(&b, "Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n"
		                   "--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n");
	} else {
		buf_append_str(&b, "Content-Type: text/plain; charset=utf-8\r\n\r\n");
	}
	for (int l = 0; l < 30; l++)
		buf_printf(&b, "Line %d of the body of message %u, some ordinary text.\r\n", l, i);
	if (i % 3 == 0)
		buf_append_str(&b, "--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
		                   "<p>html</p>\r\n--alt--\r\n");
	return buf_steal(&b);
}

static int gen(const char *dir, unsigned int n)
{
	char *path = xasprintf("%s/new", dir);
	for (unsigned int i = 1; i <= n; i++) {
		char *name = xasprintf("%s/new/%u.M%uP1.bench", dir, 1700000000 + i, i);
		FILE *f = fopen(name, "wb");
		if (f == NULL) {
			perror(name);
			return 1;
		}
		char *m = message(i);
		fputs(m, f);
		fclose(f);
		free(m);
		free(name);
	}
	free(path);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static struct store_mailbox *open_box(const char *dir)
{
	struct store_mailbox *box;
	const char *error;
	if (store_mailbox_open(dir, &box, &error) != STORE_OK) {
		fprintf(stderr, "open %s: %s\n", dir, error);
		exit(1);
	}
	return box;
}

struct writer {
	const char *dir;
	unsigned int count;
	int failed;
};

static void *writer_run(void *arg)
{
	struct writer *w = arg;
	for (unsigned int i = 0; i < w->count; i++) {
		struct maildir_delivery *d;
		char *error = NULL, *m = message(i);
		if (maildir_delivery_begin(w->dir, &d, &error) != MAILDIR_OK ||
		    maildir_delivery_write(d, m, strlen(m), &error) != MAILDIR_OK ||
		    maildir_delivery_commit(d, &error) != MAILDIR_OK)
			w->failed++;
		maildir_delivery_free(&d);
		free(error);
		free(m);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[1], "gen") == 0)
		return gen(argv[2], (unsigned int)strtoul(argv[3], NULL, 10));
	if (argc < 3)
		return 2;
	const char *dir = argv[2];
	double t0 = now(), c0 = cpu();
	if (strcmp(argv[1], "open") == 0) {
		struct store_mailbox *box = open_box(dir);
		printf("open %.4f %.4f count=%zu\n", now() - t0, cpu() - c0,
		       store_mailbox_count(box));
		store_mailbox_close(&box);
	} else if (strcmp(argv[1], "reopen") == 0 && argc >= 4) {
		/* Warm open + close of an indexed folder, repeated: median wall and CPU. */
		unsigned int n = (unsigned int)strtoul(argv[3], NULL, 10);
		if (n == 0 || n > 1000)
			return 2;
		double *w = xcalloc(n, sizeof(*w)), *c = xcalloc(n, sizeof(*c));
		for (unsigned int i = 0; i < n; i++) {
			double t1 = now(), c1 = cpu();
			struct store_mailbox *box = open_box(dir);
			store_mailbox_close(&box);
			w[i] = now() - t1;
			c[i] = cpu() - c1;
		}
		qsort(w, n, sizeof(*w), cmp_double);
		qsort(c, n, sizeof(*c), cmp_double);
		printf("reopen %.4f %.4f n=%u\n", w[n / 2], c[n / 2], n);
		free(w);
		free(c);
	} else if (strcmp(argv[1], "fetch") == 0) {
		struct store_mailbox *box = open_box(dir);
		size_t bytes = 0;
		for (size_t seq = 1; seq <= store_mailbox_count(box); seq++) {
			struct store_cache c;
			if (store_mailbox_cache(box, seq, &c) != STORE_OK)
				return 1;
			bytes += strlen(c.envelope) + store_mailbox_msg(box, seq)->flags;
			store_cache_free(&c);
		}
		printf("fetch %.3f %.3f bytes=%zu\n", now() - t0, cpu() - c0, bytes);
		store_mailbox_close(&box);
	} else if (strcmp(argv[1], "search") == 0 && argc >= 4) {
		struct store_mailbox *box = open_box(dir);
		size_t hits = 0;
		for (size_t seq = 1; seq <= store_mailbox_count(box); seq++) {
			bool m;
			if (store_search_header(box, seq, "subject", argv[3], &m) != STORE_OK)
				return 1;
			hits += m;
		}
		printf("search %.3f %.3f hits=%zu\n", now() - t0, cpu() - c0, hits);
		store_mailbox_close(&box);
	} else if (strcmp(argv[1], "deliver") == 0 && argc >= 5) {
		unsigned int n = (unsigned int)strtoul(argv[3], NULL, 10);
		unsigned int t = (unsigned int)strtoul(argv[4], NULL, 10);
		pthread_t *th = xcalloc(t, sizeof(*th));
		struct writer *w = xcalloc(t, sizeof(*w));
		for (unsigned int i = 0; i < t; i++) {
			w[i] = (struct writer){dir, n / t, 0};
			pthread_create(&th[i], NULL, writer_run, &w[i]);
		}
		int failed = 0;
		for (unsigned int i = 0; i < t; i++) {
			pthread_join(th[i], NULL);
			failed += w[i].failed;
		}
		double s = now() - t0;
		printf("deliver%u %.3f per_second=%.0f failed=%d\n", t, s, (n / t * t) / s, failed);
		free(th);
		free(w);
	} else {
		return 2;
	}
	return 0;
}
