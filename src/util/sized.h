/*
 * sized.h - the public structs that can grow (issue 16, sr2fhir.h "Growing without
 * breaking"): a caller's struct begins with size_t struct_size, the size it was compiled
 * with (0: the 0.1.0 layout). The library reads an option struct into a zeroed full-size
 * local copy and writes a result struct back only as far as the caller's struct reaches,
 * so members the caller does not know are neither read nor written.
 */
#ifndef S2F_SIZED_H
#define S2F_SIZED_H

#include <stddef.h>
#include <string.h>

/* How many bytes of a caller's struct the library may touch: its struct_size (v01 when 0,
 * a struct zeroed by hand as in 0.1.0), at most the library's own size. */
static inline size_t s2f_sized_len(size_t struct_size, size_t v01, size_t full)
{
    size_t n = struct_size ? struct_size : v01;
    return n < full ? n : full;
}

/* *dst (full bytes) = the caller's src (NULL: all defaults), the members it lacks zero;
 * dst's struct_size is full. */
static inline void s2f_sized_read(void *dst, size_t full, const void *src, size_t v01)
{
    memset(dst, 0, full);
    if (src) {
        size_t given;
        memcpy(&given, src, sizeof given);
        memcpy(dst, src, s2f_sized_len(given, v01, full));
    }
    memcpy(dst, &full, sizeof full);
}

/* Copies the library's full result src into the caller's dst as far as dst reaches,
 * keeping dst's struct_size. */
static inline void s2f_sized_write(void *dst, const void *src, size_t full, size_t v01)
{
    size_t given;
    memcpy(&given, dst, sizeof given);
    size_t n = s2f_sized_len(given, v01, full);
    if (n > sizeof given)
        memcpy((char *)dst + sizeof given, (const char *)src + sizeof given, n - sizeof given);
}

/* The 0.1.0 sizes (struct_size == 0): the offset of the first member appended after
 * 0.1.0, or sizeof while there is none. */
#define S2F_V01_OPTIONS_SIZE sizeof(s2f_options)
#define S2F_V01_CONVERT_OPTIONS_SIZE offsetof(s2f_convert_options, diagnostic_report)
#define S2F_V01_CONVERT_RESULT_SIZE offsetof(s2f_convert_result, diagnostic_reports)
#define S2F_V01_CLIENT_OPTIONS_SIZE offsetof(s2f_client_options, diagnostic_report)
#define S2F_V01_SEND_RESULT_SIZE sizeof(s2f_send_result)

#endif
