/*
 * Transcript harness for pop3d unit tests: a session whose connection records the bytes
 * it sends, with an authd stand-in that knows a fixed user table and answers later (as
 * the real auth_client does, never inside begin), and a temporary Maildir per user.
 *
 * h_send() feeds client bytes and runs pending authd answers, home lookups and the
 * failure-delay timer until the session is idle, then returns everything the server
 * wrote since the last call.
 */
#ifndef TERN_TESTS_POP3D_HARNESS_H
#define TERN_TESTS_POP3D_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "session.h"

struct harness {
	struct pop3_session *s;
	struct pop3_settings set;
	struct pop3_conn_info info;
	struct buf in;   /* client -> server */
	struct buf out;  /* everything the server wrote */
	size_t out_read; /* how much of out the "client" has seen */
	char *text;      /* last h_send() result */
	bool closed;
	bool starttls_called;
	uint64_t timer_ms;  /* last delay asked for */
	unsigned timers;    /* delays asked for */
	size_t pressure_at; /* write returns 1 when unread output passes this (0 = never) */
	size_t max_pending; /* largest unread output seen */
	bool authd_down;
	bool hold_blocking; /* leave thread-pool work pending (h_run_job runs it) */
	char *root;         /* temporary directory holding one Maildir per user */
	bool owns_root;
};

/* tls/loopback describe the connection; tls_available offers STLS. */
void h_init(struct harness *h, bool tls, bool loopback, bool tls_available);
/* A second session on the same root (IN-USE tests). */
void h_init_shared(struct harness *h, const struct harness *other);
void h_free(struct harness *h);
/* Drops the connection (no QUIT). */
void h_drop(struct harness *h);

const char *h_send(struct harness *h, const char *client);
const char *h_send_len(struct harness *h, const char *client, size_t len);
/* The pending thread-pool job (opening a maildrop): run it and its completion. */
void h_run_job(void);
bool h_job_pending(void);
/* The client reads all pending output (drain). */
void h_read_all(struct harness *h);

/* Writes a message file into user's Maildir (dir "new" or "cur"); returns its path. */
char *h_add_message(struct harness *h, const char *user, const char *dir, const char *name,
                    const char *content);
bool h_file_exists(struct harness *h, const char *user, const char *dir, const char *name);
unsigned h_count_files(struct harness *h, const char *user, const char *dir);

#endif
