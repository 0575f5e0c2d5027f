/*
 * test_util.h — the tiny check library shared by cairn's C test programs.
 *
 *   #include "test_util.h"
 *
 *   int main(void) {
 *     CHECK(n == 3);                           any condition
 *     CHECK_RC(cairn_open(p, 0, &db), CAIRN_OK) a status code, exactly
 *     CHECK_OK(cairn_commit(txn));             same as CHECK_RC(.., CAIRN_OK)
 *     return test_summary();                   prints "N passed, N failed"
 *   }
 *
 * Each macro evaluates its arguments once and yields 1 if the check passed,
 * 0 if not, so a test can stop early: if (!CHECK_OK(open(...))) return;
 * A failed check prints file:line and the expression (for status checks also
 * both code names and cairn_errmsg()) and the test carries on, so one run
 * shows every failure. test_summary() returns the process exit code: 0 when
 * nothing failed. Counters are static: one test program, one .c file.
 */
#ifndef CAIRN_TEST_UTIL_H
#define CAIRN_TEST_UTIL_H

#include <stdio.h>

#include "cairn.h"

static int test_passed_count;
static int test_failed_count;

static inline int test_check(int ok, const char *expr, const char *file,
                             int line) {
  if (ok) {
    test_passed_count++;
    return 1;
  }
  test_failed_count++;
  printf("%s:%d: FAILED: %s\n", file, line, expr);
  fflush(stdout);
  return 0;
}

static inline int test_check_rc(int got, int want, const char *expr,
                                const char *file, int line) {
  if (got == want) {
    test_passed_count++;
    return 1;
  }
  test_failed_count++;
  printf("%s:%d: FAILED: %s returned %d (%s), expected %d (%s); errmsg: %s\n",
         file, line, expr, got, cairn_strerror(got), want, cairn_strerror(want),
         cairn_errmsg());
  fflush(stdout);
  return 0;
}

#define CHECK(cond) test_check(!!(cond), #cond, __FILE__, __LINE__)
#define CHECK_RC(expr, want)                                                   \
  test_check_rc((expr), (want), #expr, __FILE__, __LINE__)
#define CHECK_OK(expr) CHECK_RC(expr, CAIRN_OK)

/* Print the closing line ctest and CI read, and return the exit code. */
static inline int test_summary(void) {
  printf("%d passed, %d failed\n", test_passed_count, test_failed_count);
  fflush(stdout);
  return test_failed_count ? 1 : 0;
}

#endif /* CAIRN_TEST_UTIL_H */
