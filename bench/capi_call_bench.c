/* The cost of one C API call on a one-rank communicator, where no byte leaves the process: what
 * a caller pays per call besides moving data. bench/python/overhead.py runs the same loops
 * through the Python package, so the difference is the Python layer's overhead.
 *   capi_call_bench [iterations]   prints "<op> <ns per call>" per operation */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "groups/capi/eccl.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

#define CHECK(call)                                                                        \
  do {                                                                                     \
    if ((call) != ecclSuccess) {                                                           \
      fprintf(stderr, "%s failed: %s\n", #call, ecclGetLastError());                       \
      return 1;                                                                            \
    }                                                                                      \
  } while (0)

int main(int argc, char** argv) {
  const long n = argc > 1 ? atol(argv[1]) : 20000;
  ecclRootInfo root;
  ecclComm_t comm;
  CHECK(ecclGetRootInfo(&root));
  CHECK(ecclCommInitRootInfo(1, &root, 0, &comm));
  float x[2] = {1, 2};
  for (int pass = 0; pass < 2; ++pass) { /* the first pass warms up */
    double t0 = now();
    for (long i = 0; i < n; ++i) CHECK(ecclAllReduce(x, x, 2, ecclFloat32, ecclSum, comm));
    double t1 = now();
    for (long i = 0; i < n; ++i) {
      ecclWork_t s, r;
      float in = 1, out = 0;
      CHECK(ecclIsend(&in, 1, ecclFloat32, 0, 5, comm, &s));
      CHECK(ecclIrecv(&out, 1, ecclFloat32, 0, 5, comm, &r));
      CHECK(ecclWorkWait(s, -1));
      CHECK(ecclWorkWait(r, -1));
      CHECK(ecclWorkFree(s));
      CHECK(ecclWorkFree(r));
    }
    double t2 = now();
    if (pass == 1) {
      printf("all_reduce %.0f\n", (t1 - t0) / n);
      printf("isend_irecv_self %.0f\n", (t2 - t1) / n);
    }
  }
  CHECK(ecclCommDestroy(comm));
  return 0;
}
