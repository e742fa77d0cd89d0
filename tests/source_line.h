/*
 * The line of a source file that holds a marker, for tests that check a
 * diagnostic points at the right line of a program they ran.
 * Header-only; the function is static.
 */
#ifndef UVT_TESTS_SOURCE_LINE_H
#define UVT_TESTS_SOURCE_LINE_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

/* The 1-based line of `path` holding `needle`; fails the test if none. */
__attribute__((unused)) static int source_line(const char *path, const char *needle) {
  char buf[512];
  FILE *f = fopen(path, "r");
  int n = 0;
  cr_assert_not_null(f, "%s", path);
  while (fgets(buf, sizeof(buf), f) != NULL) {
    n++;
    if (strstr(buf, needle) != NULL) {
      fclose(f);
      return n;
    }
  }
  fclose(f);
  cr_assert_fail("'%s' not found in %s", needle, path);
  return -1;
}

#endif
