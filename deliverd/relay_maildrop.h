/*
 * deliverd's side of the maildrop (queue_maildrop.h): making the directory, and moving
 * each complete file into the outbound queue (local recipients then reach their Maildir
 * through our own LMTP socket, remote ones go out as any queued mail).
 *
 * The file's owner decides the sender, as on the submit socket: root, deliverd's own user
 * and trusted_users keep the sender they wrote; anyone else becomes <user>@<first local
 * domain>. Files that are not regular, have other links, are too big or do not parse are
 * removed with a warning, never queued.
 */
#ifndef TERN_DELIVERD_RELAY_MAILDROP_H
#define TERN_DELIVERD_RELAY_MAILDROP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct queue;

struct maildrop_policy {
	const uid_t *trusted;
	size_t n_trusted;
	uid_t self;
	const char *domain;
	uint64_t max_size;
};

/* Creates dir (mode 1733, owned by owner when root). */
int relay_maildrop_prepare(const char *dir, uid_t owner, gid_t group, char **error_r);
/* Queues every complete file; returns how many were queued. */
unsigned relay_maildrop_pickup(const char *dir, struct queue *q, const struct maildrop_policy *p);

#endif
