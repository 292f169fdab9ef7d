/*
 * id.h - what a FHIR `id` may be ([A-Za-z0-9\-\.]{1,64}, FHIR R5 datatypes): checked where
 * the converter writes a DICOM UID into an id-typed element (fhir/selections.c) and where
 * delivery accepts an id from a server's answer (deliver/client.c, issue 9 #6).
 */
#ifndef S2F_FHIR_ID_H
#define S2F_FHIR_ID_H

#include <stddef.h>

#define S2F_FHIR_ID_MAX 64

/* 1 when the n bytes at s are a valid FHIR id. */
static inline int s2f_fhir_id_valid(const char *s, size_t n)
{
    if (!s || n == 0 || n > S2F_FHIR_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

#endif
