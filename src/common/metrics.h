/* metrics: lock-free counters and histograms (hist.h) as Prometheus text. */
#ifndef STB_METRICS_H
#define STB_METRICS_H

#include <stdint.h>
#include <time.h>

#include "buf.h"
#include "hist.h"

/* Appends "name_bucket{labels,le=..}" lines; labels may be "". */
int hist_write_prom(buf_t *out, const char *name, const char *labels, const hist_t *h);
/* printf-style append to a text buffer. */
int buf_printf(buf_t *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

uint64_t now_ns(void); /* CLOCK_MONOTONIC */

/* process_cpu_seconds_total, process_resident_memory_bytes, ..._open_fds,
 * ..._max_fds, ..._start_time_seconds. */
int metrics_write_process(buf_t *out, time_t started);

#endif
