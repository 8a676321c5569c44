/*
 * mbox: hands a function call to an event loop from any thread.  Used to
 * give accepted sockets to worker loops and store completions back to the
 * loop that owns the connection.  Needs evthread_use_pthreads().
 */
#ifndef STB_MBOX_H
#define STB_MBOX_H

#include <event2/event.h>

typedef struct mbox mbox_t;
typedef void (*mbox_fn)(void *arg);

mbox_t *mbox_new(struct event_base *base);
/* 0, or -1 when out of memory (fn is then not called). */
int mbox_post(mbox_t *mb, mbox_fn fn, void *arg);
/* Runs what is queued, then frees. */
void mbox_free(mbox_t *mb);

#endif
