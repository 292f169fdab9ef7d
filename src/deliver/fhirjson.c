/*
 * fhirjson.c - reading FHIR JSON with json-c (see fhirjson.h).
 */
#include "deliver/fhirjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_object *s2f_fhirjson_parse(const char *text, size_t len)
{
    if (len > 0x7fffffff)
        return NULL;
    json_tokener *tok = json_tokener_new_ex(S2F_FHIRJSON_DEPTH);
    if (!tok)
        return NULL;
    json_object *o = json_tokener_parse_ex(tok, text, (int)len);
    if (json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

json_object *s2f_fhirjson_member(json_object *o, const char *key)
{
    json_object *v;
    return o && json_object_object_get_ex(o, key, &v) ? v : NULL;
}

const char *s2f_fhirjson_string(json_object *o, const char *key)
{
    json_object *v = s2f_fhirjson_member(o, key);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

int s2f_fhirjson_is(json_object *o, const char *type)
{
    const char *t = s2f_fhirjson_string(o, "resourceType");
    return t && !strcmp(t, type);
}

/* Upper bounds of what json-c takes per value, with malloc's overhead: an object with its
 * hash table, an array with its slots, any other value (a key with its value counts one).
 * Measured on Debian 12's json-c 0.16, x86-64, as the RSS growth of json_tokener_parse over
 * an array of 10^6 items: {} 792 bytes, [] 152, 1 72, "abc" 88, {"a":1} 888. */
#define COST_OBJECT 800u
#define COST_ARRAY 400u
#define COST_VALUE 100u

size_t s2f_fhirjson_cost(const char *text, size_t len, size_t stop)
{
    size_t cost = COST_VALUE;   /* the value after the last comma */
    int in_string = 0;
    for (size_t i = 0; i < len && cost <= stop; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '{') {
            cost += COST_OBJECT;
        } else if (c == '[') {
            cost += COST_ARRAY;
        } else if (c == ',' || c == ':') {
            cost += COST_VALUE; /* another value, or a key */
        }
    }
    return cost;
}

char *s2f_fhirjson_literal(json_object *resource)
{
    const char *type = s2f_fhirjson_string(resource, "resourceType");
    const char *id = s2f_fhirjson_string(resource, "id");
    if (!type || !id)
        return NULL;
    size_t n = strlen(type) + strlen(id) + 2;
    char *ref = malloc(n);
    if (ref)
        snprintf(ref, n, "%s/%s", type, id);
    return ref;
}
