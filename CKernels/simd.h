/* The vector helpers of one instruction level, included by levels.h inside each level's target pragma
 * (so no include guard). VW floats per vector: 4 baseline (SSE2, NEON), 8 AVX2, 16 AVX-512. Kernels
 * written over `vf` and VW, or as plain contiguous loops the compiler vectorises, get each level's width
 * from the same source. Loads and stores are unaligned and may alias float. */
#undef VW
#if NN_LEVEL == 2
#define VW 16
#elif NN_LEVEL == 1
#define VW 8
#else
#define VW 4
#endif

typedef float NN_L(vf_) __attribute__((vector_size(VW * 4)));
typedef float NN_L(vfu_) __attribute__((vector_size(VW * 4), aligned(4), may_alias));
typedef int NN_L(vi_) __attribute__((vector_size(VW * 4)));

#ifndef NN_SIMD_NAMES
#define NN_SIMD_NAMES
/* The level's names behind plain ones: each use expands with the level being compiled. */
#define vf NN_L(vf_)
#define vi NN_L(vi_)
#define vload NN_L(vload_)
#define vstore NN_L(vstore_)
#define vsplat NN_L(vsplat_)
#define viota NN_L(viota_)
#define vselect NN_L(vselect_)
#define vhsum NN_L(vhsum_)
#endif

static inline vf vload(const float *p) { return *(const NN_L(vfu_) *)p; }
static inline void vstore(float *p, vf v) { *(NN_L(vfu_) *)p = v; }
static inline vf vsplat(float s) {
    vf v;
    for (int i = 0; i < VW; i++) v[i] = s;
    return v;
}
/* {0, 1, ..., VW-1}: compare it with a count for a mask of the first or last lanes. */
static inline vi viota(void) {
    vi v;
    for (int i = 0; i < VW; i++) v[i] = i;
    return v;
}
/* mask ? a : b lane by lane; mask lanes are all ones or all zeros (a vector comparison's result). */
static inline vf vselect(vi mask, vf a, vf b) { return (vf)((mask & (vi)a) | (~mask & (vi)b)); }
/* The sum of the lanes as a fixed tree (lane i += lane i + w for w = VW/2, ..., 1), the same at any thread
 * count; shuffles rather than a round trip through memory, which costs more than a short dot product. */
static inline float vhsum(vf v) {
#if VW == 16
    v += __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15);
    v += __builtin_shufflevector(v, v, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7);
    v += __builtin_shufflevector(v, v, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
    v += __builtin_shufflevector(v, v, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1);
#elif VW == 8
    v += __builtin_shufflevector(v, v, 4, 5, 6, 7, 4, 5, 6, 7);
    v += __builtin_shufflevector(v, v, 2, 3, 2, 3, 2, 3, 2, 3);
    v += __builtin_shufflevector(v, v, 1, 1, 1, 1, 1, 1, 1, 1);
#else
    v += __builtin_shufflevector(v, v, 2, 3, 2, 3);
    v += __builtin_shufflevector(v, v, 1, 1, 1, 1);
#endif
    return v[0];
}
