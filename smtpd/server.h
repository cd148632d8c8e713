/*
 * tern-smtpd's daemon hooks: reads the [smtpd] config, binds the smtp / submission /
 * submissions listeners, and connects each accepted connection to a session, the LMTP
 * client (deliverd) and the auth client (authd).
 */
#ifndef TERN_SMTPD_SERVER_H
#define TERN_SMTPD_SERVER_H

#include "net/daemon.h"

extern const struct daemon_hooks smtpd_hooks;

#endif
