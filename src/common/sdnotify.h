/* sdnotify: the systemd notify protocol (READY=1, STOPPING=1, WATCHDOG=1),
 * spoken directly on $NOTIFY_SOCKET; a no-op outside systemd. */
#ifndef STB_SDNOTIFY_H
#define STB_SDNOTIFY_H

#include <stdint.h>

int sdnotify_send(const char *state);
/* Watchdog interval from $WATCHDOG_USEC (0 when not asked for). */
uint64_t sdnotify_watchdog_usec(void);

#endif
