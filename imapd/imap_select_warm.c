/* Opening a folder on the thread pool before SELECT uses it (see imap_select_warm.h). */
#include "imap_select_warm.h"

#include <stdlib.h>
#include <uv.h>

#include "base/xalloc.h"
#include "imap_server.h"
#include "store/mailbox.h"

struct warm_job {
	uv_work_t work;
	struct imap_session *s; /* NULL once the session closed */
	char *path;
	struct store_mailbox *box; /* opened by the work, or NULL */
	void (*done)(struct imap_session *s, struct store_mailbox *box, void *arg);
	void (*drop)(struct store_mailbox *box, void *arg);
	void *arg;
};

/* Thread pool: opens the folder, which builds or updates its index on disk. Errors are
 * left for the SELECT's own open to report. */
static void warm_work(uv_work_t *w)
{
	struct warm_job *job = w->data;
	const char *error;
	if (store_mailbox_open(job->path, &job->box, &error) != STORE_OK)
		job->box = NULL;
}

static void warm_after(uv_work_t *w, int status)
{
	(void)status;
	struct warm_job *job = w->data;
	struct imap_session *s = job->s;
	if (s != NULL) {
		s->drain_cb = NULL;
		s->drain_ctx = NULL;
		job->done(s, job->box, job->arg);
	} else {
		job->drop(job->box, job->arg);
	}
	free(job->path);
	free(job);
}

/* The session's output drained (nothing to do), or it closes (ctx NULL). */
static void warm_on_drain(struct imap_session *s, void *ctx)
{
	if (ctx != NULL)
		return;
	struct warm_job *job = s->drain_ctx;
	job->s = NULL;
	s->drain_cb = NULL;
	s->drain_ctx = NULL;
}

bool imap_select_warm(struct imap_session *s, const char *path,
                      void (*done)(struct imap_session *s, struct store_mailbox *box, void *arg),
                      void (*drop)(struct store_mailbox *box, void *arg), void *arg)
{
	if (imap_server.pool == NULL || store_pool_loaded(imap_server.pool, path))
		return false;
	struct warm_job *job = xcalloc(1, sizeof(*job));
	job->work.data = job;
	job->s = s;
	job->path = xstrdup(path);
	job->done = done;
	job->drop = drop;
	job->arg = arg;
	if (uv_queue_work(imap_server.loop, &job->work, warm_work, warm_after) != 0) {
		free(job->path);
		free(job);
		return false;
	}
	s->drain_cb = warm_on_drain;
	s->drain_ctx = job;
	return true;
}
