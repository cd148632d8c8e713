/* Result codes of the store API; the caller maps them to IMAP/POP3 replies. */
#ifndef TERN_STORE_STORE_ERROR_H
#define TERN_STORE_STORE_ERROR_H

enum store_error {
	STORE_OK = 0,
	STORE_ETEMP = -1,   /* I/O or resource trouble: NO [UNAVAILABLE] / try again */
	STORE_EINVAL = -2,  /* bad name or argument: NO / BAD */
	STORE_EEXIST = -3,  /* NO [ALREADYEXISTS] */
	STORE_ENOENT = -4,  /* NO [NONEXISTENT] */
	STORE_ELIMIT = -5,  /* a cap was reached (keywords, size): NO [LIMIT] */
	STORE_ECORRUPT = -6 /* damaged data that could not be repaired */
};

#endif
