/*
 * log.h - the gateway's log: one line per event, "2026-12-04T18:48:05Z LEVEL message",
 * written whole under a lock to stderr or a file, text from outside escaped (control
 * characters, bytes that are not UTF-8: src/util/escape.h). One s2f_gw_log per service.
 */
#ifndef S2F_GATEWAY_LOG_H
#define S2F_GATEWAY_LOG_H

#include <pthread.h>
#include <stdio.h>

typedef enum s2f_log_level { S2F_LOG_ERROR, S2F_LOG_WARN, S2F_LOG_INFO, S2F_LOG_DEBUG } s2f_log_level;

typedef struct s2f_gw_log {
    FILE *f;                 /* stderr or the log file */
    s2f_log_level level;     /* lines above this level are dropped */
    pthread_mutex_t lock;
} s2f_gw_log;

void s2f_gw_log_init(s2f_gw_log *log, FILE *f, s2f_log_level level);
void s2f_gw_log_destroy(s2f_gw_log *log);

/* The formatted message is escaped as a whole before it is written. */
void s2f_gw_logf(s2f_gw_log *log, s2f_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
