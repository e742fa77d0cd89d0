/* fp_broken.c: a caller built without frame pointers (see there). */
#ifndef UVT_TESTS_FP_BROKEN_H
#define UVT_TESTS_FP_BROKEN_H

/* Call fn with the frame-pointer register holding junk: an address above
 * every stack (high) or one below the caller's frame (low). */
void fp_broken_call(void (*fn)(void), int high);

#endif
