/*
 * The LMTP side's door into the outbound queue: the remote targets of a transaction
 * (lmtp_target.remote) are written to ONE queue file (the message is stored once for all
 * of them) on the libuv thread pool, fsynced and committed before each of them is
 * answered through lmtp_session_delivery_done() (status LMTP_DELIVERED, folder_used = the
 * queue id), so the 250 promise holds (DESIGN "life of a message", step 3).
 */
#ifndef TERN_DELIVERD_RELAY_INTAKE_H
#define TERN_DELIVERD_RELAY_INTAKE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "lmtp_session.h"

/* Does nothing when no target is remote. spool_fd must stay open until the results. */
void relay_queue_targets(uv_loop_t *loop, int spool_fd, uint64_t spool_len, struct lmtp_session *s,
                         struct lmtp_target *targets, size_t n);

#endif
