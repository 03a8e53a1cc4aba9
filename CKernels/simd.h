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
#define vn NN_L(vn_)
#define vni NN_L(vni_)
#define vnload NN_L(vnload_)
#define vnstore NN_L(vnstore_)
#define vnsplat NN_L(vnsplat_)
#define vniota NN_L(vniota_)
#define vnselect NN_L(vnselect_)
#define vnhsum NN_L(vnhsum_)
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

/* The narrow vector: VN = min(VW, 8) floats, with the same helpers (vnload, vnstore, vnsplat, vniota,
 * vnselect, vnhsum). For loops that stream unaligned rows and do little arithmetic per load, such as conv2d's
 * weight-gradient dot products: on Zen 4, whose 512-bit operations run as two 256-bit halves, 16-lane
 * loads measured 5% slower there than 8-lane ones (every unaligned 64-byte load splits a cache line),
 * while its 16-lane microkernels are faster. Below AVX-512 it is the full vector. */
#undef VN
#if VW > 8
#define VN 8
typedef float NN_L(vn_) __attribute__((vector_size(32)));
typedef float NN_L(vnu_) __attribute__((vector_size(32), aligned(4), may_alias));
typedef int NN_L(vni_) __attribute__((vector_size(32)));
static inline vn vnload(const float *p) { return *(const NN_L(vnu_) *)p; }
static inline void vnstore(float *p, vn v) { *(NN_L(vnu_) *)p = v; }
static inline vn vnsplat(float s) { return (vn){s, s, s, s, s, s, s, s}; }
static inline vni vniota(void) { return (vni){0, 1, 2, 3, 4, 5, 6, 7}; }
static inline vn vnselect(vni mask, vn a, vn b) { return (vn)((mask & (vni)a) | (~mask & (vni)b)); }
static inline float vnhsum(vn v) {
    v += __builtin_shufflevector(v, v, 4, 5, 6, 7, 4, 5, 6, 7);
    v += __builtin_shufflevector(v, v, 2, 3, 2, 3, 2, 3, 2, 3);
    v += __builtin_shufflevector(v, v, 1, 1, 1, 1, 1, 1, 1, 1);
    return v[0];
}
#else
#define VN VW
typedef vf NN_L(vn_);
typedef vi NN_L(vni_);
static inline vn vnload(const float *p) { return vload(p); }
static inline void vnstore(float *p, vn v) { vstore(p, v); }
static inline vn vnsplat(float s) { return vsplat(s); }
static inline vni vniota(void) { return viota(); }
static inline vn vnselect(vni mask, vn a, vn b) { return vselect(mask, a, b); }
static inline float vnhsum(vn v) { return vhsum(v); }
#endif
