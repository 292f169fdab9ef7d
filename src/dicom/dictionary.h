/*
 * dictionary.h - the DICOM data dictionary (PS3.6) and UID names the readers need.
 *
 * s2f_dict_vr gives the VR to use when a data set does not say it (Implicit VR Little
 * Endian, M1); s2f_dict_keyword names tags in messages; s2f_uid_name names transfer
 * syntaxes and SOP classes in dumps. The tables are static const data generated from
 * pydicom's dictionary by tools/gen_dictionary.py (dictionary_table.h); lookups are
 * binary searches, thread-safe and allocation-free.
 */
#ifndef S2F_DICTIONARY_H
#define S2F_DICTIONARY_H

#include <stdint.h>

/* VR of a standard tag as an S2F_VR code, 0 when unknown. Multi-VR entries ("US or SS",
 * "OB or OW") give the first; group lengths (gggg,0000) are UL; private creators
 * (odd gggg, 0010-00FF) are LO; item and delimiter tags (FFFE,xxxx) are 0. */
uint16_t s2f_dict_vr(uint32_t tag);

/* Keyword of a standard tag ("ContentSequence"), NULL when unknown. */
const char *s2f_dict_keyword(uint32_t tag);

/* Name of a transfer syntax or SOP class UID ("Explicit VR Little Endian", "Enhanced SR",
 * "CT Image"), NULL when unknown. SOP class names drop the word "Storage". */
const char *s2f_uid_name(const char *uid);

#endif
