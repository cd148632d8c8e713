/* Shared folder watches for IDLE (see imap_watch.h). */
#include "imap_watch.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/log.h"
#include "base/xalloc.h"
#include "imap_mailbox.h"
#include "imap_server.h"
#include "imap_session.h"

#define WATCH_DEBOUNCE_MS 20
/* Without inotify (the per-user instance limit reached, a file system without it) the
 * folder is polled instead, as Dovecot's mailbox_idle_check_interval does. */
#define WATCH_POLL_MS 2000

struct imap_watch {
	struct imap_watch *next;
	char *path;
	uv_fs_event_t ev_new;
	uv_fs_event_t ev_cur;
	uv_timer_t debounce;
	uv_timer_t poll; /* runs only when a directory watch could not be set up */
	struct imap_session *sessions;
	unsigned open_handles;
};

static struct imap_watch *watches;

static void watch_on_closed(uv_handle_t *h)
{
	struct imap_watch *w = h->data;
	if (--w->open_handles == 0) {
		free(w->path);
		free(w);
	}
}

static void watch_destroy(struct imap_watch *w)
{
	for (struct imap_watch **p = &watches; *p != NULL; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			break;
		}
	}
	uv_close((uv_handle_t *)&w->ev_new, watch_on_closed);
	uv_close((uv_handle_t *)&w->ev_cur, watch_on_closed);
	uv_close((uv_handle_t *)&w->debounce, watch_on_closed);
	uv_close((uv_handle_t *)&w->poll, watch_on_closed);
}

static void watch_on_debounce(uv_timer_t *t)
{
	struct imap_watch *w = t->data;
	for (struct imap_session *s = w->sessions; s != NULL; s = s->watch_next) {
		if (s->idling)
			imap_mailbox_report_changes(s, true);
	}
}

static void watch_on_event(uv_fs_event_t *ev, const char *filename, int events, int status)
{
	(void)filename;
	(void)events;
	struct imap_watch *w = ev->data;
	if (status < 0)
		log_warn("imapd: watching %s: %s", w->path, uv_strerror(status));
	/* Many events arrive for one delivery (tmp link, rename): report once. */
	if (!uv_is_active((uv_handle_t *)&w->debounce))
		uv_timer_start(&w->debounce, watch_on_debounce, WATCH_DEBOUNCE_MS, 0);
}

static void watch_on_poll(uv_timer_t *t)
{
	watch_on_debounce(t);
}

static int watch_start(struct imap_watch *w, uv_fs_event_t *ev, const char *sub)
{
	char *dir = xasprintf("%s/%s", w->path, sub);
	uv_fs_event_init(imap_server.loop, ev);
	ev->data = w;
	w->open_handles++;
	int ret = uv_fs_event_start(ev, watch_on_event, dir, 0);
	if (ret < 0)
		log_warn("imapd: cannot watch %s: %s", dir, uv_strerror(ret));
	free(dir);
	return ret;
}

static struct imap_watch *watch_get(const char *path)
{
	for (struct imap_watch *w = watches; w != NULL; w = w->next) {
		if (strcmp(w->path, path) == 0)
			return w;
	}
	struct imap_watch *w = xcalloc(1, sizeof(*w));
	w->path = xstrdup(path);
	int failed =
	    (watch_start(w, &w->ev_new, "new") < 0) + (watch_start(w, &w->ev_cur, "cur") < 0);
	uv_timer_init(imap_server.loop, &w->debounce);
	w->debounce.data = w;
	w->open_handles++;
	uv_timer_init(imap_server.loop, &w->poll);
	w->poll.data = w;
	w->open_handles++;
	if (failed > 0) {
		log_warn("imapd: polling %s every %d ms instead", w->path, WATCH_POLL_MS);
		uv_timer_start(&w->poll, watch_on_poll, WATCH_POLL_MS, WATCH_POLL_MS);
	}
	w->next = watches;
	watches = w;
	return w;
}

void imap_watch_subscribe(struct imap_session *s, const char *folder_path)
{
	imap_watch_unsubscribe(s);
	struct imap_watch *w = watch_get(folder_path);
	s->watch = w;
	s->watch_next = w->sessions;
	w->sessions = s;
}

void imap_watch_unsubscribe(struct imap_session *s)
{
	struct imap_watch *w = s->watch;
	if (w == NULL)
		return;
	for (struct imap_session **p = &w->sessions; *p != NULL; p = &(*p)->watch_next) {
		if (*p == s) {
			*p = s->watch_next;
			break;
		}
	}
	s->watch = NULL;
	s->watch_next = NULL;
	if (w->sessions == NULL)
		watch_destroy(w);
}
