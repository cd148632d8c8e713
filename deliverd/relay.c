/*
 * The relay scheduler (relay.h): which queued recipients are due, grouping them into jobs
 * per destination, concurrency limits, recording outcomes durably, expiry, bounces and
 * delay warnings.
 */
#include "relay.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <pwd.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "config/config.h"
#include "dns/dns.h"
#include "dsn.h"
#include "net/tls.h"
#include "relay_maildrop.h"
#include "relay_private.h"

static struct {
	uv_loop_t *loop;
	struct queue *q;
	struct relay_settings set;
	struct dns_resolver *dns;
	struct tls_ctx *tls_mx, *tls_relayhost;
	char *hostname;
	char *maildrop_dir;
	struct maildrop_policy drop;
	uid_t *drop_trusted;
	uv_timer_t scan_timer, due_timer;
	uv_fs_event_t watch;
	bool watching;
	bool started, stopping;
	struct relay_msg *msgs;
	struct relay_dest *dests;
	unsigned total_active;
} R;

static uint64_t now_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

const struct relay_settings *relay_settings(void)
{
	return &R.set;
}

bool relay_stopping(void)
{
	return R.stopping;
}

uv_loop_t *relay_loop(void)
{
	return R.loop;
}

struct dns_resolver *relay_dns(void)
{
	return R.dns;
}

struct tls_ctx *relay_tls_ctx(bool relayhost)
{
	return relayhost ? R.tls_relayhost : R.tls_mx;
}

struct queue *relay_queue(void)
{
	return R.q;
}

/* --- destinations ------------------------------------------------------------------------ */

const char *relay_rcpt_domain(const char *address)
{
	const char *at = strrchr(address, '@');
	return at != NULL ? at + 1 : "";
}

static struct relay_dest *dest_for(const char *address)
{
	char *key;
	const char *domain = relay_rcpt_domain(address);
	bool local = false;
	for (size_t i = 0; i < R.set.n_local_domains && !local; i++)
		local = strcasecmp(R.set.local_domains[i], domain) == 0;
	if (local) {
		key = xstrdup("[local]");
	} else if (R.set.relayhost != NULL) {
		key = xstrdup("[relayhost]");
	} else {
		key = xstrdup(relay_rcpt_domain(address));
		for (char *p = key; *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
	}
	for (struct relay_dest *d = R.dests; d != NULL; d = d->next) {
		if (strcmp(d->key, key) == 0) {
			free(key);
			return d;
		}
	}
	struct relay_dest *d = xcalloc(1, sizeof(*d));
	d->key = key;
	if (local) {
		d->name = xstrdup(R.set.lmtp_socket);
		d->is_local = true;
	} else if (R.set.relayhost != NULL) {
		d->name = xstrdup(R.set.relayhost);
		d->mx = R.set.relayhost_mx;
		d->port = R.set.relayhost_port;
		d->is_relayhost = true;
	} else {
		size_t len = strlen(key);
		/* A domain literal "[192.0.2.1]" (RFC 5321 4.1.3) is connected to directly. */
		if (len > 2 && key[0] == '[' && key[len - 1] == ']') {
			d->name = xstrndup(key + 1, len - 2);
			d->mx = false;
		} else {
			d->name = xstrdup(key);
			d->mx = true;
		}
		d->port = R.set.smtp_port;
	}
	d->next = R.dests;
	R.dests = d;
	return d;
}

static void dispatch(void)
{
	if (R.stopping)
		return;
	for (struct relay_dest *d = R.dests; d != NULL; d = d->next) {
		while (d->head != NULL) {
			if (d->idle != NULL) {
				struct relay_session *s = d->idle;
				relay_session_unpark(d, s);
				relay_session_give(s, relay_dest_next_job(d));
				continue;
			}
			if (d->active >= R.set.max_per_dest || R.total_active >= R.set.max_total)
				break;
			d->active++;
			R.total_active++;
			relay_session_start(d, relay_dest_next_job(d));
		}
	}
}

void relay_dest_requeue(struct relay_dest *d, struct relay_job *job)
{
	job->next = d->head;
	d->head = job;
	if (d->tail == NULL)
		d->tail = job;
}

struct relay_job *relay_dest_next_job(struct relay_dest *d)
{
	struct relay_job *j = d->head;
	if (j != NULL) {
		d->head = j->next;
		if (d->head == NULL)
			d->tail = NULL;
		j->next = NULL;
	}
	return j;
}

void relay_session_gone(struct relay_dest *d, struct relay_session *s)
{
	(void)s;
	d->active--;
	R.total_active--;
	dispatch();
}

void relay_session_park(struct relay_dest *d, struct relay_session *s)
{
	relay_session_set_next_parked(s, d->idle);
	d->idle = s;
}

void relay_session_unpark(struct relay_dest *d, struct relay_session *s)
{
	/* The parked list is short (at most the destination's concurrency). */
	struct relay_session *prev = NULL, *cur = d->idle;
	while (cur != NULL && cur != s) {
		prev = cur;
		cur = relay_session_next_parked(cur);
	}
	if (cur == NULL)
		return;
	if (prev == NULL)
		d->idle = relay_session_next_parked(cur);
	else
		relay_session_set_next_parked(prev, relay_session_next_parked(cur));
	relay_session_set_next_parked(cur, NULL);
}

/* --- messages ---------------------------------------------------------------------------- */

static struct relay_msg *find_msg(const char *qid)
{
	for (struct relay_msg *rm = R.msgs; rm != NULL; rm = rm->next)
		if (strcmp(rm->m->qid, qid) == 0)
			return rm;
	return NULL;
}

static void drop_msg(struct relay_msg *rm)
{
	struct relay_msg **pp = &R.msgs;
	while (*pp != rm)
		pp = &(*pp)->next;
	*pp = rm->next;
	queue_msg_free(&rm->m);
	free(rm);
}

static struct relay_msg *load_msg(const char *qid)
{
	struct relay_msg *rm = find_msg(qid);
	if (rm != NULL)
		return rm;
	struct queue_msg *m;
	char *err = NULL;
	int r = queue_load(R.q, qid, &m, &err);
	if (r < 0) {
		if (r == -2)
			log_warn("%s", err);
		free(err);
		return NULL;
	}
	rm = xcalloc(1, sizeof(*rm));
	rm->m = m;
	rm->next = R.msgs;
	R.msgs = rm;
	return rm;
}

static double delay_s(const struct queue_msg *m, uint64_t now)
{
	return now > m->env.arrival_ms ? (double)(now - m->env.arrival_ms) / 1000.0 : 0.0;
}

static void log_rcpt(const struct queue_msg *m, const struct queue_rcpt *r, const char *relay_desc,
                     const char *dsn, const char *status, const char *diag)
{
	struct buf to, why;
	buf_init(&to, 0);
	buf_init(&why, 0);
	log_sanitize(&to, r->address, strlen(r->address), 256);
	log_sanitize(&why, diag, strlen(diag), 512);
	log_info("%s: to=<%s>, relay=%s, delay=%.2f, dsn=%s, status=%s (%s)", m->qid, buf_cstr(&to),
	         relay_desc, delay_s(m, now_ms()), dsn, status, buf_cstr(&why));
	buf_free(&to);
	buf_free(&why);
}

static void set_text(char **field, const char *v)
{
	free(*field);
	*field = v != NULL ? xstrdup(v) : NULL;
}

void relay_job_result(struct relay_job *job, size_t k, enum relay_outcome o, const char *dsn,
                      const char *diag, const char *relay_desc)
{
	struct queue_msg *m = job->msg->m;
	struct queue_rcpt *r = &m->env.rcpts[job->rcpts[k]];
	uint64_t now = now_ms();
	r->tries++;
	set_text(&r->dsn, dsn);
	set_text(&r->diag, diag);
	if (o == RELAY_SENT) {
		r->state = QUEUE_RCPT_SENT;
		log_rcpt(m, r, relay_desc, dsn, "sent", diag);
	} else if (o == RELAY_BOUNCED) {
		r->state = QUEUE_RCPT_BOUNCED;
		log_rcpt(m, r, relay_desc, dsn, "bounced", diag);
	} else {
		r->next_try_ms = retry_next_try_ms(&R.set.retry, m->env.arrival_ms, now, r->tries);
		if (r->next_try_ms == 0) {
			/* RFC 5321 4.5.4.1: give up; the last reason goes into the bounce. */
			r->state = QUEUE_RCPT_BOUNCED;
			char *why =
			    xasprintf("delivery temporarily suspended, gave up after %u tries: %s",
			              r->tries, diag);
			set_text(&r->diag, why);
			set_text(&r->dsn, "4.4.7");
			log_rcpt(m, r, relay_desc, "4.4.7", "expired", why);
			free(why);
		} else {
			log_rcpt(m, r, relay_desc, dsn, "deferred", diag);
		}
	}
}

/* Sends one DSN for every bounced recipient of m not yet reported (bounced in this run:
 * tries > 0 and the recipient's dsn set), when the sender wants one. */
static void send_notifications(struct relay_msg *rm, const bool *newly_bounced)
{
	struct queue_msg *m = rm->m;
	const struct queue_rcpt **list = xcalloc(m->env.n_rcpts, sizeof(*list));
	size_t n = 0;
	for (size_t i = 0; i < m->env.n_rcpts; i++)
		if (newly_bounced[i] && dsn_wanted(m, &m->env.rcpts[i], DSN_FAILED))
			list[n++] = &m->env.rcpts[i];
	if (n > 0) {
		struct dsn_params p = {.reporting_mta = R.hostname,
		                       .kind = DSN_FAILED,
		                       .now_ms = now_ms(),
		                       .boundary_seed = m->qid};
		char dqid[QUEUE_ID_LEN + 1];
		char *err = NULL;
		if (dsn_queue(R.q, &p, m, list, n, dqid, &err) < 0) {
			log_warn("%s: cannot queue the non-delivery notification: %s", m->qid, err);
			free(err);
		} else {
			log_info("%s: sender non-delivery notification: %s", m->qid, dqid);
			relay_notify_new(dqid);
		}
	} else {
		for (size_t i = 0; i < m->env.n_rcpts; i++)
			if (newly_bounced[i] && (m->env.sender[0] == '\0' || m->env.is_dsn))
				log_info("%s: no notification for a bounce (null sender)", m->qid);
	}
	free(list);
}

static void warn_delayed(struct relay_msg *rm, uint64_t now)
{
	struct queue_msg *m = rm->m;
	if (!retry_warning_due(&R.set.retry, m->env.arrival_ms, now, m->warned))
		return;
	const struct queue_rcpt **list = xcalloc(m->env.n_rcpts, sizeof(*list));
	size_t n = 0;
	for (size_t i = 0; i < m->env.n_rcpts; i++) {
		struct queue_rcpt *r = &m->env.rcpts[i];
		if (r->state == QUEUE_RCPT_PENDING && r->tries > 0 && dsn_wanted(m, r, DSN_DELAYED))
			list[n++] = r;
	}
	m->warned = true;
	if (n > 0) {
		struct dsn_params p = {.reporting_mta = R.hostname,
		                       .kind = DSN_DELAYED,
		                       .now_ms = now,
		                       .retry_until_ms =
		                           m->env.arrival_ms + R.set.retry.lifetime_ms,
		                       .boundary_seed = m->qid};
		char dqid[QUEUE_ID_LEN + 1];
		char *err = NULL;
		if (dsn_queue(R.q, &p, m, list, n, dqid, &err) < 0) {
			log_warn("%s: cannot queue the delay notification: %s", m->qid, err);
			free(err);
		} else {
			log_info("%s: sender delay notification: %s", m->qid, dqid);
			relay_notify_new(dqid);
		}
	}
	free(list);
	char *err = NULL;
	if (queue_save_state(R.q, m, &err) < 0) {
		log_warn("%s: %s", m->qid, err);
		free(err);
	}
}

static void arm_due_timer(void);

/* Records the finished round of rm durably, bounces, removes a finished message. */
static void finish_round(struct relay_msg *rm, bool *newly_bounced)
{
	struct queue_msg *m = rm->m;
	char *err = NULL;
	if (!queue_exists(R.q, m->qid)) {
		/* Deleted by the admin while it was being sent: forget it (once its last job
		 * is back), write nothing. */
		if (rm->jobs == 0) {
			log_info("%s: removed while in flight (ternctl queue delete)", m->qid);
			drop_msg(rm);
		}
		return;
	}
	/* The DSN is queued before the state that says "bounced" is written, so a crash in
	 * between repeats the bounce rather than losing it. */
	send_notifications(rm, newly_bounced);
	if (queue_msg_done(m)) {
		if (queue_remove(R.q, m->qid, &err) < 0) {
			log_warn("%s: %s", m->qid, err);
			free(err);
		} else {
			log_info("%s: removed", m->qid);
		}
		drop_msg(rm);
		return;
	}
	if (queue_save_state(R.q, m, &err) < 0) {
		log_warn("%s: %s", m->qid, err);
		free(err);
	}
}

void relay_job_done(struct relay_job *job)
{
	struct relay_msg *rm = job->msg;
	struct queue_msg *m = rm->m;
	/* Which of this job's recipients bounced now, for the notification. */
	bool *bounced = xcalloc(m->env.n_rcpts, sizeof(bool));
	for (size_t k = 0; k < job->n; k++)
		if (m->env.rcpts[job->rcpts[k]].state == QUEUE_RCPT_BOUNCED)
			bounced[job->rcpts[k]] = true;
	free(job->rcpts);
	free(job);
	rm->jobs--;
	finish_round(rm, bounced);
	free(bounced);
	arm_due_timer();
}

static void enqueue_job(struct relay_job *j)
{
	struct relay_dest *d = j->dest;
	if (d->tail != NULL)
		d->tail->next = j;
	else
		d->head = j;
	d->tail = j;
}

/* Makes jobs of every due recipient of rm. force: ignore next_try (flush). */
static void schedule_msg(struct relay_msg *rm, uint64_t now, bool force)
{
	struct queue_msg *m = rm->m;
	if (rm->jobs > 0 || R.stopping)
		return;
	m->hold = queue_is_held(R.q, m->qid);
	if (m->hold)
		return;
	warn_delayed(rm, now);
	struct relay_job **open_jobs = xcalloc(m->env.n_rcpts, sizeof(*open_jobs));
	size_t n_open = 0;
	for (size_t i = 0; i < m->env.n_rcpts; i++) {
		struct queue_rcpt *r = &m->env.rcpts[i];
		if (r->state != QUEUE_RCPT_PENDING || (!force && r->next_try_ms > now))
			continue;
		struct relay_dest *d = dest_for(r->address);
		struct relay_job *j = NULL;
		for (size_t k = 0; k < n_open && j == NULL; k++)
			if (open_jobs[k]->dest == d && open_jobs[k]->n < R.set.max_rcpts)
				j = open_jobs[k];
		if (j == NULL) {
			j = xcalloc(1, sizeof(*j));
			j->msg = rm;
			j->dest = d;
			j->rcpts = xcalloc(m->env.n_rcpts, sizeof(size_t));
			open_jobs[n_open++] = j;
		}
		j->rcpts[j->n++] = i;
	}
	for (size_t k = 0; k < n_open; k++) {
		rm->jobs++;
		enqueue_job(open_jobs[k]);
	}
	free(open_jobs);
}

static void schedule_all(bool force)
{
	uint64_t now = now_ms();
	for (struct relay_msg *rm = R.msgs; rm != NULL; rm = rm->next)
		schedule_msg(rm, now, force);
	dispatch();
	arm_due_timer();
}

static void on_due_timer(uv_timer_t *t)
{
	(void)t;
	schedule_all(false);
}

static void arm_due_timer(void)
{
	if (R.stopping)
		return;
	uint64_t now = now_ms(), next = UINT64_MAX;
	for (struct relay_msg *rm = R.msgs; rm != NULL; rm = rm->next) {
		if (rm->jobs > 0 || rm->m->hold)
			continue;
		for (size_t i = 0; i < rm->m->env.n_rcpts; i++) {
			const struct queue_rcpt *r = &rm->m->env.rcpts[i];
			if (r->state == QUEUE_RCPT_PENDING && r->next_try_ms < next)
				next = r->next_try_ms;
		}
	}
	if (next == UINT64_MAX) {
		uv_timer_stop(&R.due_timer);
		return;
	}
	uv_timer_start(&R.due_timer, on_due_timer, next > now ? next - now : 0, 0);
}

/* Loads what is in the queue directory and forgets messages that are gone. */
static void scan(void)
{
	relay_maildrop_pickup(R.maildrop_dir, R.q, &R.drop);
	char **ids;
	size_t n;
	char *err = NULL;
	if (queue_list_ids(R.q, &ids, &n, &err) < 0) {
		log_warn("queue scan: %s", err);
		free(err);
		return;
	}
	for (struct relay_msg *rm = R.msgs; rm != NULL; rm = rm->next)
		rm->seen = false;
	for (size_t i = 0; i < n; i++) {
		struct relay_msg *rm = load_msg(ids[i]);
		if (rm != NULL)
			rm->seen = true;
	}
	queue_ids_free(ids, n);
	/* Deleted behind our back (ternctl queue delete): forget, unless a session still
	 * works on it (its results then go nowhere but the log). */
	for (struct relay_msg *rm = R.msgs, *next; rm != NULL; rm = next) {
		next = rm->next;
		if (!rm->seen && rm->jobs == 0)
			drop_msg(rm);
	}
}

static void on_scan_timer(uv_timer_t *t)
{
	(void)t;
	bool force = queue_take_flush(R.q);
	scan();
	schedule_all(force);
}

static void on_watch(uv_fs_event_t *h, const char *filename, int events, int status)
{
	(void)h;
	(void)events;
	if (status < 0 || filename == NULL || strcmp(filename, "flush") != 0)
		return;
	if (queue_take_flush(R.q))
		relay_flush();
}

void relay_flush(void)
{
	if (!R.started || R.stopping)
		return;
	log_info("queue flush requested");
	scan();
	schedule_all(true);
}

void relay_notify_new(const char *qid)
{
	if (!R.started || R.stopping)
		return;
	struct relay_msg *rm = load_msg(qid);
	if (rm != NULL) {
		schedule_msg(rm, now_ms(), false);
		dispatch();
		arm_due_timer();
	}
}

/* --- setup ------------------------------------------------------------------------------- */

static enum relay_tls tls_level(const char *v)
{
	return strcmp(v, "none") == 0      ? RELAY_TLS_NONE
	       : strcmp(v, "encrypt") == 0 ? RELAY_TLS_ENCRYPT
	                                   : RELAY_TLS_MAY;
}

/* "[host]:port", "[host]", "host:port", "host". */
int relay_parse_relayhost(const char *v, struct relay_settings *s, char **error_r)
{
	const char *port = NULL;
	if (v[0] == '[') {
		const char *close = strchr(v, ']');
		if (close == NULL || close == v + 1) {
			*error_r = xasprintf("relayhost %s: missing ]", v);
			return -1;
		}
		s->relayhost = xstrndup(v + 1, (size_t)(close - v - 1));
		s->relayhost_mx = false;
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0') {
			*error_r = xasprintf("relayhost %s: junk after ]", v);
			return -1;
		}
	} else {
		const char *colon = strrchr(v, ':');
		s->relayhost = colon != NULL ? xstrndup(v, (size_t)(colon - v)) : xstrdup(v);
		s->relayhost_mx = true;
		port = colon != NULL ? colon + 1 : NULL;
	}
	s->relayhost_port = 25;
	if (port != NULL) {
		char *end;
		long p = strtol(port, &end, 10);
		if (*port == '\0' || *end != '\0' || p < 1 || p > 65535) {
			*error_r = xasprintf("relayhost %s: bad port", v);
			return -1;
		}
		s->relayhost_port = (int)p;
	}
	return 0;
}

static int read_password(const char *path, char **out_r, char **error_r)
{
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		*error_r = xasprintf("relayhost_password_file %s: %s", path, strerror(errno));
		return -1;
	}
	char line[1024];
	if (fgets(line, sizeof(line), f) == NULL)
		line[0] = '\0';
	fclose(f);
	line[strcspn(line, "\r\n")] = '\0';
	*out_r = xstrdup(line);
	secure_zero(line, sizeof(line));
	return 0;
}

static int read_settings(const struct config *cfg, const char *hostname, char **error_r)
{
	struct relay_settings *s = &R.set;
	const char *sec = "deliverd";
	const char *helo = config_str(cfg, sec, "smtp_helo_name");
	s->helo_name = xstrdup(helo[0] != '\0' ? helo : hostname);
	const char *rh = config_str(cfg, sec, "relayhost");
	if (rh[0] != '\0' && relay_parse_relayhost(rh, s, error_r) < 0)
		return -1;
	const char *user = config_str(cfg, sec, "relayhost_user");
	if (user[0] != '\0') {
		s->relayhost_user = xstrdup(user);
		if (read_password(config_str(cfg, sec, "relayhost_password_file"),
		                  &s->relayhost_password, error_r) < 0)
			return -1;
	}
	size_t n = 0;
	const char *const *doms = config_list(cfg, "global", "domains", &n);
	s->local_domains = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		s->local_domains[i] = xstrdup(doms[i]);
	s->n_local_domains = n;
	s->lmtp_socket = xstrdup(config_str(cfg, sec, "lmtp_socket"));
	s->tls = tls_level(config_str(cfg, sec, "smtp_tls"));
	s->relayhost_tls = tls_level(config_str(cfg, sec, "relayhost_tls"));
	s->smtp_port = (int)config_int(cfg, sec, "smtp_port");
	s->max_total = (unsigned)config_int(cfg, sec, "relay_max_connections");
	s->max_per_dest = (unsigned)config_int(cfg, sec, "relay_destination_concurrency");
	s->max_rcpts = (unsigned)config_int(cfg, sec, "relay_max_recipients");
	s->max_msgs_per_conn = (unsigned)config_int(cfg, sec, "relay_messages_per_connection");
	s->reuse_ms = config_time_ms(cfg, sec, "relay_reuse_time");
	s->connect_timeout_ms = config_time_ms(cfg, sec, "relay_connect_timeout");
	s->command_timeout_ms = config_time_ms(cfg, sec, "relay_command_timeout");
	s->scan_interval_ms = config_time_ms(cfg, sec, "queue_run_interval");
	s->retry.min_backoff_ms = config_time_ms(cfg, sec, "retry_min_backoff");
	s->retry.max_backoff_ms = config_time_ms(cfg, sec, "retry_max_backoff");
	s->retry.lifetime_ms = config_time_ms(cfg, sec, "queue_lifetime");
	s->retry.delay_warning_ms = config_time_ms(cfg, sec, "delay_warning_time");
	return 0;
}

int relay_setup(uv_loop_t *loop, const struct config *cfg, const char *hostname, char **error_r)
{
	memset(&R, 0, sizeof(R));
	R.loop = loop;
	R.hostname = xstrdup(hostname);
	if (read_settings(cfg, hostname, error_r) < 0)
		return -1;
	if (queue_open(config_str(cfg, "deliverd", "queue_dir"), &R.q, error_r) < 0)
		return -1;
	const char *user = config_str(cfg, "global", "vmail_user");
	struct passwd *pw = getpwnam(user);
	if (pw == NULL) {
		*error_r = xasprintf("unknown vmail_user \"%s\"", user);
		return -1;
	}
	uid_t vmail_uid = pw->pw_uid;
	gid_t vmail_gid = pw->pw_gid;
	/* Started as root: the queue belongs to the user deliverd drops to. */
	if (geteuid() == 0 && queue_chown(R.q, vmail_uid, vmail_gid, error_r) < 0)
		return -1;
	R.maildrop_dir = xstrdup(config_str(cfg, "deliverd", "maildrop_dir"));
	if (relay_maildrop_prepare(R.maildrop_dir, vmail_uid, vmail_gid, error_r) < 0)
		return -1;
	size_t n_trusted = 0;
	const char *const *tu = config_list(cfg, "deliverd", "trusted_users", &n_trusted);
	R.drop_trusted = xcalloc(n_trusted + 1, sizeof(uid_t));
	for (size_t i = 0; i < n_trusted; i++) {
		struct passwd *t = getpwnam(tu[i]);
		if (t != NULL)
			R.drop_trusted[R.drop.n_trusted++] = t->pw_uid;
	}
	R.drop.trusted = R.drop_trusted;
	R.drop.self = vmail_uid;
	R.drop.domain = R.set.n_local_domains > 0 ? R.set.local_domains[0] : R.hostname;
	R.drop.max_size = config_size(cfg, "deliverd", "max_message_size");
	if (dns_resolver_new(loop, config_str(cfg, "deliverd", "dns_servers"),
	                     (unsigned)config_time_ms(cfg, "deliverd", "relay_dns_timeout"), 2,
	                     &R.dns, error_r) < 0)
		return -1;
	R.tls_mx = tls_ctx_client_new(NULL, false, error_r);
	if (R.tls_mx == NULL)
		return -1;
	const char *ca = config_str(cfg, "deliverd", "smtp_tls_ca_file");
	R.tls_relayhost = tls_ctx_client_new(ca[0] != '\0' ? ca : NULL, ca[0] != '\0', error_r);
	if (R.tls_relayhost == NULL)
		return -1;
	R.set.relayhost_verify = ca[0] != '\0';
	uv_timer_init(loop, &R.scan_timer);
	uv_timer_init(loop, &R.due_timer);
	uv_timer_start(&R.scan_timer, on_scan_timer, 0, R.set.scan_interval_ms);
	if (uv_fs_event_init(loop, &R.watch) == 0 &&
	    uv_fs_event_start(&R.watch, on_watch, queue_dir(R.q), 0) == 0)
		R.watching = true;
	R.started = true;
	log_info("relay: queue=%s, relayhost=%s, max connections %u (%u per destination)",
	         queue_dir(R.q), R.set.relayhost != NULL ? R.set.relayhost : "none",
	         R.set.max_total, R.set.max_per_dest);
	return 0;
}

void relay_shutdown(void)
{
	if (!R.started || R.stopping)
		return;
	R.stopping = true;
	uv_timer_stop(&R.scan_timer);
	uv_timer_stop(&R.due_timer);
	uv_close((uv_handle_t *)&R.scan_timer, NULL);
	uv_close((uv_handle_t *)&R.due_timer, NULL);
	if (R.watching)
		uv_close((uv_handle_t *)&R.watch, NULL);
	for (struct relay_dest *d = R.dests; d != NULL; d = d->next) {
		while (d->idle != NULL) {
			struct relay_session *s = d->idle;
			relay_session_unpark(d, s);
			relay_session_quit(s);
		}
	}
	dns_resolver_free(&R.dns);
}
