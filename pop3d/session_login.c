/*
 * Login: USER/PASS and AUTH go to authd, an OK is followed by the userdb lookup of the
 * home and the opening (and locking) of the maildrop; a FAIL is answered after the
 * failed-login delay. Also the Dovecot-shaped login and disconnect log lines that
 * fail2ban's dovecot filter reads.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "session_private.h"

/* Client-given text in log lines: printable, and none of the characters fail2ban's
 * dovecot filter uses as field delimiters, so a user name cannot forge "rip=". */
static const char *log_safe(struct buf *tmp, const char *s)
{
	buf_reset(tmp);
	for (size_t i = 0; s != NULL && s[i] != '\0' && i < 64; i++) {
		char c = s[i];
		if (c < 0x21 || c > 0x7e || c == '<' || c == '>' || c == ',' || c == '=')
			c = '?';
		(void)buf_append_char(tmp, c);
	}
	if (s != NULL && strlen(s) > 64)
		(void)buf_append_str(tmp, "...");
	return buf_cstr(tmp);
}

static const char *session_security(const struct pop3_session *s)
{
	return s->tls ? ", TLS" : s->loopback ? ", secured" : "";
}

static void session_log_login(struct pop3_session *s)
{
	struct buf tmp;
	buf_init(&tmp, 256);
	log_info("pop3-login: Login: user=<%s>, method=%s, rip=%s, lip=%s, mpid=%d%s, "
	         "session=<%016llx>",
	         log_safe(&tmp, s->user), s->mech, s->remote_ip, s->local_ip, (int)getpid(),
	         session_security(s), (unsigned long long)s->id);
	buf_free(&tmp);
}

/* Opening the maildrop syncs the store index (reads new files, builds the cache), which
 * may take long for a big new mailbox: it runs in the thread pool, not on the loop. */
struct pop3_open_job {
	struct pop3_session *s; /* NULL once the session is gone */
	char *home;
	enum maildrop_uidl_format format;
	enum maildrop_open_result result;
	struct maildrop *md;
	char *error;
};

static void open_job_work(void *arg)
{
	struct pop3_open_job *job = arg;
	job->result = maildrop_open(job->home, job->format, &job->md, &job->error);
}

static void open_job_done(void *arg)
{
	struct pop3_open_job *job = arg;
	struct pop3_session *s = job->s;
	enum maildrop_open_result r = job->result;
	char *error = job->error;

	if (s == NULL) {
		/* The client left while we opened: release the lock, apply nothing. */
		maildrop_free(&job->md);
	} else {
		s->open_job = NULL;
		s->md = job->md;
	}
	free(job->home);
	free(job);
	if (s == NULL) {
		free(error);
		return;
	}
	s->busy = false;
	if (r == MAILDROP_OPEN_IN_USE) {
		session_reply(s, "-ERR [IN-USE] Mailbox is locked by another POP3 session.");
		session_close(s);
		return;
	}
	if (r == MAILDROP_OPEN_ERROR) {
		log_warn("pop3(%s): Couldn't open INBOX: %s", s->user, error);
		free(error);
		session_reply(s, "-ERR [SYS/TEMP] Couldn't open INBOX.");
		session_close(s);
		return;
	}
	s->state = POP3_STATE_TRANSACTION;
	s->msg_count = maildrop_count(s->md);
	for (unsigned n = 1; n <= s->msg_count; n++)
		s->mailbox_size += maildrop_size(s->md, n);
	session_log_login(s);
	session_reply(s, "+OK Logged in.");
	session_resume(s);
}

void session_open_job_orphan(struct pop3_session *s)
{
	if (s->open_job != NULL) {
		s->open_job->s = NULL;
		s->open_job = NULL;
	}
}

static void session_home_done(enum pop3_home_result result, const char *home, void *context)
{
	struct pop3_session *s = context;

	s->home_lookup = NULL;
	if (result == POP3_HOME_TEMPFAIL) {
		s->busy = false;
		session_reply(s, "-ERR [SYS/TEMP] Temporary user lookup failure.");
		session_close(s);
		return;
	}
	if (result == POP3_HOME_NOTFOUND) {
		s->busy = false;
		log_warn("pop3(%s): authenticated but has no mailbox", s->user);
		session_reply(s, "-ERR [SYS/PERM] No mailbox for this user.");
		session_close(s);
		return;
	}
	/* Still busy until the maildrop is open. */
	struct pop3_open_job *job = xcalloc(1, sizeof(*job));
	job->s = s;
	job->home = xstrdup(home);
	job->format = s->set.uidl_format;
	s->open_job = job;
	s->io->run_blocking(s->io_ctx, open_job_work, open_job_done, job);
}

/* PR-6: the name authd returns is checked again before it names anything. */
static bool user_name_is_valid(const char *user)
{
	size_t len = user != NULL ? strlen(user) : 0;
	if (len == 0 || len > 255)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (user[i] < 0x21 || user[i] > 0x7e || user[i] == '/')
			return false;
	}
	return true;
}

static void session_auth_done(enum auth_result result, const char *data, void *context)
{
	struct pop3_session *s = context;

	switch (result) {
	case AUTH_RESULT_CONTINUE:
		s->busy = false;
		s->sasl_continue = true;
		session_reply(s, "+ %s", data != NULL ? data : "");
		break;
	case AUTH_RESULT_OK:
		s->auth_req = NULL;
		if (!user_name_is_valid(data)) {
			log_warn("pop3-login: authd returned an invalid user name");
			s->busy = false;
			session_reply(s, "-ERR [SYS/TEMP] Temporary authentication failure.");
			break;
		}
		free(s->user);
		s->user = xstrdup(data);
		s->home_lookup = s->auth->lookup_home(s->auth_ctx, s->user, session_home_done, s);
		return; /* still busy */
	case AUTH_RESULT_FAIL:
		s->auth_req = NULL;
		s->auth_failures++;
		s->fail_close_after_delay =
		    s->set.max_auth_attempts > 0 && s->auth_failures >= s->set.max_auth_attempts;
		/* Stay busy: the answer and any pipelined command wait for the delay. */
		s->io->timer_start(s->io_ctx, s->set.auth_fail_delay_ms);
		return;
	case AUTH_RESULT_TEMPFAIL:
		s->auth_req = NULL;
		s->busy = false;
		session_reply(s, "-ERR [SYS/TEMP] Temporary authentication failure.");
		break;
	}
	session_resume(s);
}

void pop3_session_timer(struct pop3_session *s)
{
	/* The failed-login delay is over. */
	s->busy = false;
	session_reply(s, "-ERR [AUTH] Authentication failed.");
	if (s->fail_close_after_delay) {
		session_close(s);
		return;
	}
	session_resume(s);
}

void session_auth_begin(struct pop3_session *s, const char *mech, const char *ir_b64)
{
	struct auth_request_info info = {
	    .mech = mech,
	    .service = "pop3",
	    .local_ip = s->local_ip,
	    .remote_ip = s->remote_ip,
	    .local_port = s->local_port,
	    .remote_port = s->remote_port,
	    .secured = s->tls || s->loopback,
	    .initial_response_b64 = ir_b64,
	};

	free(s->mech);
	s->mech = xstrdup(mech);
	for (char *p = s->mech; *p != '\0'; p++) {
		if (*p >= 'a' && *p <= 'z')
			*p = (char)(*p - 'a' + 'A');
	}
	s->auth_attempts++;
	s->busy = true;
	s->auth_req = s->auth->begin(s->auth_ctx, &info, session_auth_done, s);
	if (s->auth_req == NULL && s->busy)
		session_auth_done(AUTH_RESULT_TEMPFAIL, NULL, s);
}

void session_log_disconnect(struct pop3_session *s)
{
	long secs = (long)(time(NULL) - s->connected_at);
	struct buf tmp;

	buf_init(&tmp, 256);
	if (s->state != POP3_STATE_AUTHORIZATION) {
		log_info("pop3(%s)<%d><%016llx>: Disconnected: %s top=%u/%llu, retr=%u/%llu, "
		         "del=%u/%u, size=%llu",
		         log_safe(&tmp, s->user), (int)getpid(), (unsigned long long)s->id,
		         s->committed ? "Logged out" : "Connection closed", s->top_count,
		         (unsigned long long)s->top_bytes, s->retr_count,
		         (unsigned long long)s->retr_bytes, s->expunged, s->msg_count,
		         (unsigned long long)s->mailbox_size);
	} else if (s->auth_failures > 0) {
		log_info("pop3-login: Disconnected (auth failed, %u attempts in %ld secs): "
		         "user=<%s>, method=%s, rip=%s, lip=%s%s, session=<%016llx>",
		         s->auth_failures, secs, log_safe(&tmp, s->user), s->mech, s->remote_ip,
		         s->local_ip, session_security(s), (unsigned long long)s->id);
	} else if (s->plaintext_refused) {
		log_info("pop3-login: Disconnected (tried to use disallowed plaintext auth): "
		         "user=<%s>, rip=%s, lip=%s, session=<%016llx>",
		         log_safe(&tmp, s->user), s->remote_ip, s->local_ip,
		         (unsigned long long)s->id);
	} else {
		log_info("pop3-login: Disconnected (no auth attempts in %ld secs): user=<>, "
		         "rip=%s, lip=%s%s, session=<%016llx>",
		         secs, s->remote_ip, s->local_ip, session_security(s),
		         (unsigned long long)s->id);
	}
	buf_free(&tmp);
}
