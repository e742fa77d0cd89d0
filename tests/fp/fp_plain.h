/* fp_plain.c: a caller built without frame pointers (see there). */
#ifndef UVT_TESTS_FP_PLAIN_H
#define UVT_TESTS_FP_PLAIN_H

void fp_plain_call(void (*fn)(void));

#endif
