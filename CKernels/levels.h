/* Compiles the per-level part of a kernel family file once per instruction level (CKernels/README.md).
 * The family file, after its common part, says
 *     #define NN_LEVEL_SOURCE "family.c"
 *     #include "levels.h"
 * and this header includes the file again three times with NN_LEVEL set (0 baseline, 1 AVX2+FMA,
 * 2 AVX-512), NN_L(name) naming each function name_baseline, name_avx2, name_avx512, and the vector
 * helpers of simd.h at that level's width. A pragma gives every function of an instance its target and
 * its own section (.text.nn_baseline, .text.nn_avx2, .text.nn_avx512); code outside the last two must be
 * free of AVX, which `make test` checks with objdump. OpenMP's outlined loop bodies get neither attribute
 * (clang does not pass it on), so each `#pragma omp parallel for` body is one call to a per-item function.
 * The AVX2 instance is tuned for Haswell-class scheduling: generic tuning spilled registers of conv2d's
 * 16-register microkernel. clang only: the instances rely on `#pragma clang attribute`. */
#ifndef NN_LEVEL_SOURCE
#error "define NN_LEVEL_SOURCE as the family file's name before including levels.h"
#endif

#define NN_LEVEL 0
#define NN_LEVEL_SUFFIX _baseline
#pragma clang attribute push(__attribute__((section(".text.nn_baseline"))), apply_to = function)
#include "simd.h"
#include NN_LEVEL_SOURCE
#pragma clang attribute pop
#undef NN_LEVEL
#undef NN_LEVEL_SUFFIX

#if defined(__x86_64__)
#define NN_LEVEL 1
#define NN_LEVEL_SUFFIX _avx2
#pragma clang attribute push(__attribute__((target("avx2,fma,tune=haswell"), section(".text.nn_avx2"))), apply_to = function)
#include "simd.h"
#include NN_LEVEL_SOURCE
#pragma clang attribute pop
#undef NN_LEVEL
#undef NN_LEVEL_SUFFIX

#define NN_LEVEL 2
#define NN_LEVEL_SUFFIX _avx512
#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma"), \
                                            section(".text.nn_avx512"))), apply_to = function)
#include "simd.h"
#include NN_LEVEL_SOURCE
#pragma clang attribute pop
#undef NN_LEVEL
#undef NN_LEVEL_SUFFIX
#endif

#undef NN_LEVEL_SOURCE
