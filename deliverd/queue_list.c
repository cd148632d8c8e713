/*
 * Showing the queue to people and scripts: Postfix's mailq layout, and one JSON object
 * per message in the shape of `postqueue -j` (queue_print() in queue.h).
 */
#include "queue.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/xalloc.h"

static void json_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(out, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(out, "\\u%04x", *p);
		else
			fputc(*p, out);
	}
	fputc('"', out);
}

/* "deferred" once a try failed, "hold" when held, else "active" (due or being sent). */
static const char *queue_name(const struct queue_msg *m)
{
	if (m->hold)
		return "hold";
	for (size_t i = 0; i < m->env.n_rcpts; i++)
		if (m->env.rcpts[i].state == QUEUE_RCPT_PENDING && m->env.rcpts[i].tries > 0)
			return "deferred";
	return "active";
}

static void print_json(FILE *out, const struct queue_msg *m)
{
	fprintf(out,
	        "{\"queue_name\": \"%s\", \"queue_id\": \"%s\", \"arrival_time\": %" PRIu64
	        ", \"message_size\": %" PRIu64 ", \"sender\": ",
	        queue_name(m), m->qid, m->env.arrival_ms / 1000, m->body_size);
	json_string(out, m->env.sender);
	fputs(", \"recipients\": [", out);
	bool first = true;
	for (size_t i = 0; i < m->env.n_rcpts; i++) {
		const struct queue_rcpt *r = &m->env.rcpts[i];
		if (r->state != QUEUE_RCPT_PENDING)
			continue;
		fputs(first ? "{\"address\": " : ", {\"address\": ", out);
		first = false;
		json_string(out, r->address);
		fprintf(out, ", \"tries\": %u", r->tries);
		if (r->next_try_ms != 0)
			fprintf(out, ", \"next_try\": %" PRIu64, r->next_try_ms / 1000);
		if (r->diag != NULL) {
			fputs(", \"delay_reason\": ", out);
			json_string(out, r->diag);
		}
		fputc('}', out);
	}
	fputs("]}\n", out);
}

static void print_text(FILE *out, const struct queue_msg *m)
{
	time_t t = (time_t)(m->env.arrival_ms / 1000);
	struct tm tm;
	localtime_r(&t, &tm);
	char when[32];
	strftime(when, sizeof(when), "%a %b %e %H:%M:%S", &tm);
	/* Postfix marks held mail with '!' and mail being worked on with '*'. */
	const char *name = queue_name(m);
	char mark = strcmp(name, "hold") == 0 ? '!' : strcmp(name, "active") == 0 ? '*' : ' ';
	struct buf s;
	buf_init(&s, 0);
	log_sanitize(&s, m->env.sender, strlen(m->env.sender), 200);
	fprintf(out, "%s%c %8" PRIu64 " %s  %s\n", m->qid, mark, m->body_size, when,
	        s.len > 0 ? buf_cstr(&s) : "MAILER-DAEMON");
	for (size_t i = 0; i < m->env.n_rcpts; i++) {
		const struct queue_rcpt *r = &m->env.rcpts[i];
		if (r->state != QUEUE_RCPT_PENDING)
			continue;
		if (r->diag != NULL) {
			buf_reset(&s);
			log_sanitize(&s, r->diag, strlen(r->diag), 300);
			fprintf(out, "%*s(%s)\n", 8, "", buf_cstr(&s));
		}
		buf_reset(&s);
		log_sanitize(&s, r->address, strlen(r->address), 200);
		fprintf(out, "%*s%s\n", 47, "", buf_cstr(&s));
	}
	fputc('\n', out);
	buf_free(&s);
}

int queue_print(struct queue *q, FILE *out, bool json, char **error_r)
{
	char **ids;
	size_t n;
	if (queue_list_ids(q, &ids, &n, error_r) < 0)
		return -1;
	uint64_t bytes = 0;
	size_t shown = 0;
	for (size_t i = 0; i < n; i++) {
		struct queue_msg *m;
		char *err = NULL;
		/* A message may finish between the listing and the load: skip it quietly. */
		if (queue_load(q, ids[i], &m, &err) < 0) {
			free(err);
			continue;
		}
		if (shown == 0 && !json)
			fprintf(out, "-Queue ID-------  --Size-- ----Arrival Time---- "
			             "-Sender/Recipient-------\n");
		if (json)
			print_json(out, m);
		else
			print_text(out, m);
		bytes += m->body_size;
		shown++;
		queue_msg_free(&m);
	}
	queue_ids_free(ids, n);
	if (!json) {
		if (shown == 0)
			fprintf(out, "Mail queue is empty\n");
		else
			fprintf(out, "-- %" PRIu64 " Kbytes in %zu Request%s.\n",
			        (bytes + 1023) / 1024, shown, shown == 1 ? "" : "s");
	}
	return 0;
}
