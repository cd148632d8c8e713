/* AUTH for smtpd sessions through authd: struct smtp_auth_ops over auth_client.h (the
 * context pointer is the daemon's struct auth_client). */
#ifndef TERN_SMTPD_AUTH_GLUE_H
#define TERN_SMTPD_AUTH_GLUE_H

#include "auth/auth_client.h"
#include "session.h"

extern const struct smtp_auth_ops auth_glue_ops;

#endif
