/* Remote LMTP targets into the outbound queue (relay_intake.h). */
#include "relay_intake.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "queue.h"
#include "relay.h"

struct intake_job {
	uv_work_t req;
	struct lmtp_session *s;
	struct queue *q;
	struct queue_envelope env;
	size_t *index; /* target indices, one per envelope recipient */
	int fd;
	uint64_t len;
	char qid[QUEUE_ID_LEN + 1];
	int result;
	char *error;
};

/* RFC 6152: BODY=8BITMIME is what the next hop must be told; we look at the bytes rather
 * than trust the declaration, so a mislabelled message is still handled right. */
static bool spool_has_8bit(int fd, uint64_t len)
{
	char *chunk = xmalloc(65536);
	bool found = false;
	for (uint64_t off = 0; off < len && !found;) {
		ssize_t n =
		    pread(fd, chunk, len - off < 65536 ? (size_t)(len - off) : 65536, (off_t)off);
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n && !found; i++)
			found = (unsigned char)chunk[i] >= 0x80;
		off += (uint64_t)n;
	}
	free(chunk);
	return found;
}

static void on_work(uv_work_t *req)
{
	struct intake_job *j = req->data;
	j->env.body_8bit = spool_has_8bit(j->fd, j->len);
	j->result = queue_add_fd(j->q, &j->env, j->fd, j->len, j->qid, &j->error);
}

static void on_done(uv_work_t *req, int status)
{
	struct intake_job *j = req->data;
	if (status != 0 && j->result == 0 && j->error == NULL) {
		j->result = -1;
		j->error = xstrdup(uv_strerror(status));
	}
	if (j->result < 0)
		log_warn("queue: cannot queue the message: %s", j->error);
	bool nospace = j->result < 0 && j->error != NULL && strstr(j->error, strerror(ENOSPC));
	enum lmtp_delivery_status st = j->result == 0 ? LMTP_DELIVERED
	                               : nospace      ? LMTP_DELIVERY_NOSPACE
	                                              : LMTP_DELIVERY_TEMPFAIL;
	if (j->result == 0)
		relay_notify_new(j->qid);
	size_t n = j->env.n_rcpts;
	for (size_t i = 0; i < n; i++)
		lmtp_session_delivery_done(j->s, j->index[i], st, j->result == 0 ? j->qid : NULL);
	queue_envelope_free(&j->env);
	free(j->index);
	free(j->error);
	free(j);
}

void relay_queue_targets(uv_loop_t *loop, int spool_fd, uint64_t spool_len, struct lmtp_session *s,
                         struct lmtp_target *targets, size_t n)
{
	struct intake_job *j = NULL;
	for (size_t i = 0; i < n; i++) {
		if (!targets[i].remote)
			continue;
		if (j == NULL) {
			j = xcalloc(1, sizeof(*j));
			j->req.data = j;
			j->s = s;
			j->q = relay_queue();
			j->fd = spool_fd;
			j->len = spool_len;
			j->index = xcalloc(n, sizeof(size_t));
			j->env.sender = xstrdup(lmtp_session_sender(s));
			j->env.smtputf8 = lmtp_session_smtputf8(s);
			const char *ret = lmtp_session_dsn_ret(s);
			j->env.ret = ret == NULL                ? QUEUE_RET_DEFAULT
			             : strcmp(ret, "FULL") == 0 ? QUEUE_RET_FULL
			                                        : QUEUE_RET_HDRS;
			const char *envid = lmtp_session_dsn_envid(s);
			if (envid != NULL)
				j->env.envid = queue_xtext_decode(envid, strlen(envid));
			struct timeval tv;
			gettimeofday(&tv, NULL);
			j->env.arrival_ms =
			    (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
		}
		j->index[j->env.n_rcpts] = i;
		/* ORCPT "type;xtext" is kept decoded ("rfc822;a@b"); the client encodes it again.
		 */
		char *orcpt = NULL;
		const char *semi = targets[i].orcpt != NULL ? strchr(targets[i].orcpt, ';') : NULL;
		if (semi != NULL) {
			char *dec = queue_xtext_decode(semi + 1, strlen(semi + 1));
			if (dec != NULL)
				orcpt = xasprintf("%.*s;%s", (int)(semi - targets[i].orcpt),
				                  targets[i].orcpt, dec);
			free(dec);
		}
		queue_envelope_add_rcpt(&j->env, targets[i].address, orcpt, targets[i].notify);
		free(orcpt);
	}
	if (j == NULL)
		return;
	if (j->q == NULL) {
		/* No relay (not set up): fail the targets temporarily, never accept them. */
		j->result = -1;
		j->error = xstrdup("the outbound queue is not available");
		on_done(&j->req, 0);
		return;
	}
	int r = uv_queue_work(loop, &j->req, on_work, on_done);
	if (r < 0)
		log_panic("uv_queue_work: %s", uv_strerror(r));
}
