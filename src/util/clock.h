/*
 * clock.h - the two clock readings several stages print or measure with: the current UTC
 * time as an ISO 8601 timestamp with milliseconds (audit lines of delivery and receiving),
 * and a monotonic time in nanoseconds (latencies).
 */
#ifndef S2F_CLOCK_H
#define S2F_CLOCK_H

#include <stddef.h>

/* "2026-12-01T21:34:02.258Z" into buf (cap >= 25 bytes). */
void s2f_utc_now(char *buf, size_t cap);

/* CLOCK_MONOTONIC in nanoseconds. */
long long s2f_mono_ns(void);

#endif
