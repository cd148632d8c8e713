/* The LMTP transaction with deliverd that both submit and -bs modes use. */
#ifndef TERN_SENDMAIL_SUBMIT_H
#define TERN_SENDMAIL_SUBMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "lmtp_client.h"

struct config;

struct submit_tx {
	struct lmtp_client client;
	bool connected;
	char **rcpts;
	size_t n_rcpts;
	int *rcpt_code; /* RCPT reply per recipient */
	size_t n_accepted;
	unsigned n_ok, n_temp, n_perm; /* after the data */
	char *error;                   /* last I/O error */
};

/* Connects to the submit socket and sends LHLO. */
int submit_connect(const struct config *cfg, struct submit_tx *tx, const char *helo);
/* MAIL FROM and one RCPT per recipient (replies printed to err when refused). Returns
 * the RCPT reply codes' summary: number accepted, or -1 on I/O error / MAIL refused
 * (then *mail_reply holds the reply). */
int submit_envelope(struct submit_tx *tx, const char *sender, char **rcpts, size_t n, FILE *err,
                    char **mail_reply);
/* Sends DATA and waits for 354. */
int submit_data(struct submit_tx *tx);
/* Body bytes (already dot-stuffed, CRLF line ends). */
int submit_write(struct submit_tx *tx, const void *data, size_t len);
/* Ends the data and reads one reply per accepted recipient (refusals printed to err). */
int submit_finish(struct submit_tx *tx, FILE *err);
void submit_close(struct submit_tx *tx);
/* sysexits code for the outcome. */
int submit_exit_code(const struct submit_tx *tx);

#endif
