/*
 * fhirjson.h - reading FHIR JSON with json-c, for the delivery stage: the server's answers
 * (client.c) and the Bundles cut into parts (split.c). Lookups are NULL-safe: a missing or
 * mistyped member reads as NULL, so hostile answers need no special paths.
 */
#ifndef S2F_FHIRJSON_H
#define S2F_FHIRJSON_H

#include <json-c/json.h>
#include <stddef.h>

/* Nesting accepted in answers and Bundles (resources nest deeply). */
#define S2F_FHIRJSON_DEPTH 256

/* The JSON value of text[0..len), NULL when it is not JSON (the caller puts it). */
json_object *s2f_fhirjson_parse(const char *text, size_t len);
/* The memory (bytes) json-c would take for the values of text[0..len), an upper estimate
 * from counting objects, arrays, keys and values outside strings, computed up to just past
 * stop: checked before an answer is parsed (issue 9 defect 6: a 12 MB answer of `{}`s
 * is 4 M objects, 3.1 GB parsed). The text of strings is not counted (at most len). */
size_t s2f_fhirjson_cost(const char *text, size_t len, size_t stop);
/* o's member key, NULL when o is not an object or has none. */
json_object *s2f_fhirjson_member(json_object *o, const char *key);
/* o's member key when it is a string, else NULL. */
const char *s2f_fhirjson_string(json_object *o, const char *key);
/* 1 when o is a resource of that type. */
int s2f_fhirjson_is(json_object *o, const char *type);
/* "Type/id" of a resource (malloc'd), NULL when it lacks either or memory ran out. */
char *s2f_fhirjson_literal(json_object *resource);

#endif
