/*
 * log.c - the gateway's log lines (log.h).
 */
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "gateway/log.h"
#include "util/escape.h"

void s2f_gw_log_init(s2f_gw_log *log, FILE *f, s2f_log_level level)
{
    log->f = f;
    log->level = level;
    pthread_mutex_init(&log->lock, NULL);
}

void s2f_gw_log_destroy(s2f_gw_log *log)
{
    pthread_mutex_destroy(&log->lock);
}

void s2f_gw_logf(s2f_gw_log *log, s2f_log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    if (!log || !log->f || level > log->level)
        return;
    char msg[2048], line[4096 + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    size_t n = strftime(line, 64, "%Y-%m-%dT%H:%M:%SZ ", &tm);
    n += (size_t)snprintf(line + n, 16, "%s ", names[level]);
    s2f_escape_to_buf(msg, strlen(msg), S2F_ESC_BACKSLASH, line + n, sizeof line - n - 1);
    n += strlen(line + n);
    line[n++] = '\n';
    pthread_mutex_lock(&log->lock);
    fwrite(line, 1, n, log->f);
    fflush(log->f);
    pthread_mutex_unlock(&log->lock);
}
