/* fp_lib.c: a shared library with frame pointers (see there). */
#ifndef UVT_TESTS_FP_LIB_H
#define UVT_TESTS_FP_LIB_H

__attribute__((visibility("default"))) void fp_lib_call(void (*fn)(void));

#endif
