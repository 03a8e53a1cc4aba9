#include "nn_internal.h"
#include <stdlib.h>

static int nn_thread_count = 0;

int nn_openmp_enabled(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

static int default_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int nn_threads(void) {
    int n = __atomic_load_n(&nn_thread_count, __ATOMIC_RELAXED);
    if (n <= 0) {
        n = default_threads();
        __atomic_store_n(&nn_thread_count, n, __ATOMIC_RELAXED);
    }
    return n;
}

void nn_set_num_threads(int n) {
    if (n <= 0) n = default_threads();
    __atomic_store_n(&nn_thread_count, n, __ATOMIC_RELAXED);
}

int nn_get_num_threads(void) {
#ifdef _OPENMP
    return nn_threads();
#else
    return 1;
#endif
}

#ifdef _OPENMP
/* A share is [lo, hi) packed in one word: the owner takes lo, a thief takes hi - 1, and one compare-and-swap
 * decides each item, so no item runs twice or never. Each share has its own cache line. */
typedef struct { _Alignas(64) unsigned long long range; } nn_share;
enum { NN_SHARES = 64 };

static int take(nn_share *s, int from_end) {
    unsigned long long r = __atomic_load_n(&s->range, __ATOMIC_RELAXED);
    for (;;) {
        const unsigned lo = (unsigned)r, hi = (unsigned)(r >> 32);
        if (lo >= hi) return -1;
        const unsigned long long next = from_end ? ((unsigned long long)(hi - 1) << 32 | lo)
                                                 : ((unsigned long long)hi << 32 | (lo + 1));
        if (__atomic_compare_exchange_n(&s->range, &r, next, 1, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
            return (int)(from_end ? hi - 1 : lo);
    }
}
#endif

void nn_parallel_items(int n, int parallel, void (*run)(const void *ctx, int i), const void *ctx) {
#ifdef _OPENMP
    int team = parallel ? nn_threads() : 1;
    if (team > n) team = n;
    if (team > NN_SHARES) team = NN_SHARES;
    if (team > 1) {
        nn_share shares[NN_SHARES];
        for (int t = 0; t < team; t++)
            shares[t].range = (unsigned long long)((long)(t + 1) * n / team) << 32 | (unsigned)((long)t * n / team);
#pragma omp parallel num_threads(team)
        {
            /* The runtime may give fewer threads than asked: the missing threads' shares are then all stolen. */
            const int t = omp_get_thread_num();
            for (int i; (i = take(&shares[t], 0)) >= 0;) run(ctx, i);
            for (int more = 1; more;) {
                more = 0;
                for (int v = 1; v < team; v++) {
                    const int i = take(&shares[(t + v) % team], 1);
                    if (i >= 0) {
                        run(ctx, i);
                        more = 1;
                        break;
                    }
                }
            }
        }
        return;
    }
#else
    (void)parallel;
#endif
    for (int i = 0; i < n; i++) run(ctx, i);
}
