/* Instruction levels: which of the per-level kernel builds (baseline, AVX2+FMA, AVX-512) this process
 * runs, chosen once from CPUID and the OS's saved vector state, lowered by NEURON_CPU or by the caller.
 * The kernels read the level at their public entry point (NN_DISPATCH in nn_internal.h); how a kernel
 * is written once and instantiated per level is in CKernels/README.md. */
#include "nn_internal.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

static const char *const level_names[] = {"baseline", "avx2", "avx512"};

const char *nn_cpu_level_name(int level) {
    return level >= 0 && level < NN_CPU_LEVELS ? level_names[level] : "unknown";
}

int nn_cpu_level_from_name(const char *name) {
    for (int level = 0; level < NN_CPU_LEVELS; level++)
        if (name && strcmp(name, level_names[level]) == 0) return level;
    return -1;
}

#if defined(__x86_64__)
/* XCR0: which register state the OS saves on a context switch. A CPU with AVX under an OS (or hypervisor)
 * that does not save the upper halves must not run AVX code. Read only when CPUID reports OSXSAVE. */
static unsigned long long xcr0(void) {
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

static int detect_best(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return NN_CPU_BASELINE;
    const int fma = c >> 12 & 1, osxsave = c >> 27 & 1, avx = c >> 28 & 1;
    if (!(fma && osxsave && avx)) return NN_CPU_BASELINE;
    const unsigned long long xcr = xcr0();
    if ((xcr & 0x6) != 0x6) return NN_CPU_BASELINE; /* SSE and AVX (YMM) state */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return NN_CPU_BASELINE;
    const int avx2 = b >> 5 & 1;
    if (!avx2) return NN_CPU_BASELINE;
    /* The AVX-512 level may use F, DQ, BW and VL (Skylake-X and later, Zen 4). */
    const int avx512 = (b >> 16 & 1) && (b >> 17 & 1) && (b >> 30 & 1) && (b >> 31 & 1);
    if (avx512 && (xcr & 0xE6) == 0xE6) return NN_CPU_AVX512; /* plus opmask, ZMM_Hi256, Hi16_ZMM state */
    return NN_CPU_AVX2;
}
#else
static int detect_best(void) { return NN_CPU_BASELINE; } /* AArch64 and others build the portable code only */
#endif

/* -1 until resolved; then the process-wide level. A thread may override it (tests compare levels). */
static int best_level = -1, process_level = -1;
static _Thread_local int thread_level = -1;
static char note[160];

int nn_cpu_best_level(void) {
    int best = __atomic_load_n(&best_level, __ATOMIC_ACQUIRE);
    if (best < 0) {
        best = detect_best();
        __atomic_store_n(&best_level, best, __ATOMIC_RELEASE);
    }
    return best;
}

/* The best level, lowered by NEURON_CPU. A request the CPU cannot run, or a name we do not know, is
 * refused with a line on standard error rather than ending in SIGILL; the process keeps the best level. */
static int resolve(void) {
    const int best = nn_cpu_best_level();
    const char *want = getenv("NEURON_CPU");
    note[0] = '\0';
    if (!want || !*want) return best;
    const int level = nn_cpu_level_from_name(want);
    if (level < 0)
        snprintf(note, sizeof note, "NEURON_CPU=%s is not a level (baseline, avx2, avx512); using %s", want,
                 level_names[best]);
    else if (level > best)
        snprintf(note, sizeof note, "NEURON_CPU=%s refused: this CPU (or OS) supports up to %s; using %s", want,
                 level_names[best], level_names[best]);
    else
        return level;
    return best;
}

static int resolved_level(void) {
    int level = __atomic_load_n(&process_level, __ATOMIC_ACQUIRE);
    if (level >= 0) return level;
    level = resolve();
    int expected = -1;
    /* The first thread to resolve publishes the level and reports a refused request, once. */
    if (__atomic_compare_exchange_n(&process_level, &expected, level, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        if (note[0]) fprintf(stderr, "neuron: %s\n", note);
        return level;
    }
    return expected;
}

/* Resolved when the library loads, so a refused NEURON_CPU is reported at start-up. */
__attribute__((constructor)) static void resolve_at_load(void) { (void)resolved_level(); }

int nn_level(void) {
    const int t = thread_level;
    return t >= 0 ? t : resolved_level();
}

int nn_cpu_level(void) { return nn_level(); }

const char *nn_cpu_level_note(void) {
    (void)resolved_level();
    return note[0] ? note : NULL;
}

int nn_set_cpu_level(int level) {
    (void)resolved_level();
    if (level < 0) level = resolve();
    if (level >= NN_CPU_LEVELS || level > nn_cpu_best_level()) return -1;
    __atomic_store_n(&process_level, level, __ATOMIC_RELEASE);
    return 0;
}

int nn_set_thread_cpu_level(int level) {
    if (level >= NN_CPU_LEVELS || level > nn_cpu_best_level()) return -1;
    thread_level = level < 0 ? -1 : level;
    return 0;
}
