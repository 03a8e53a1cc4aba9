/* Private helpers shared by the kernel files (not part of the public header). */
#ifndef NEURON_NN_INTERNAL_H
#define NEURON_NN_INTERNAL_H

#include <assert.h>
#include "ckernels.h"

/* The OpenMP runtime functions we call, declared here: the Swift toolchain's clang ships no omp.h
 * and Debian's lives in an LLVM-14 directory (../shared/TOOLCHAIN.md). */
#ifdef _OPENMP
int omp_get_max_threads(void);
int omp_get_thread_num(void);
#endif

/* Below this many elements a loop runs on the calling thread: forking a team costs more than it saves. */
#define NN_PARALLEL_MIN 32768

/* The thread count our parallel loops use (nn_set_num_threads), resolved once. */
int nn_threads(void);

#define NN_STR(x) #x
/* One parallel loop over the outer index, static schedule, each thread owning whole outputs. */
#define NN_PARALLEL_FOR_IF(cond) _Pragma(NN_STR(omp parallel for schedule(static) num_threads(nn_threads()) if(cond)))

/* run(ctx, i) for every i in [0, n), each i on one thread, on the team when parallel is nonzero: thread t
 * starts with the static share schedule(static) would give it, in order, then takes not-yet-started items
 * from the end of the others' shares. For loops that a time step repeats, where any stall of one thread
 * keeps the other waiting at the step's end (CKernels/README.md). Each item is still computed whole by
 * one thread, so results do not depend on who ran it. */
void nn_parallel_items(int n, int parallel, void (*run)(const void *ctx, int i), const void *ctx);

/* ---- instruction levels (CKernels/README.md) --------------------------------------------------------
 * A family file's per-level part is compiled once per level by levels.h, each function named with the
 * level's suffix through NN_L(name); the public entry point calls NN_DISPATCH(name)(...), the instance of
 * the calling thread's level (nn_level(): an index read once per call). */
int nn_level(void);
#define NN_CAT_(a, b) a##b
#define NN_CAT(a, b) NN_CAT_(a, b)
#define NN_L(name) NN_CAT(name, NN_LEVEL_SUFFIX)
#if defined(__x86_64__)
#define NN_LEVEL_INSTANCES(fn) fn##_baseline, fn##_avx2, fn##_avx512
#else
#define NN_LEVEL_INSTANCES(fn) fn##_baseline
#endif
#define NN_DISPATCH(fn) ((__typeof__(&fn##_baseline) const[]){NN_LEVEL_INSTANCES(fn)})[nn_level()]

#endif
