/* Instantiates the kernels of vg_kernels_impl.h for double (_d) and float (_f), once per
 * instruction set, and dispatches each public kernel to one of them at run time.
 *
 * x86-64: the baseline (SSE2, what any x86-64 runs), AVX2 and AVX-512 variants are compiled from
 * the same source with `#pragma GCC target`; vg_isa selects one (vg_set_isa). Floating-point
 * contraction is off (-ffp-contract=off, also implied by -std=c99) and no loop reassociates, so
 * every variant computes bitwise the same numbers: only the vector width differs.
 * Other machines: the baseline only. */
#include <math.h>
#include <string.h>
#include <stdlib.h>
#include "vg_kernels.h"

/* Counter-based generator: Philox-4x32 with 10 rounds (Salmon et al. 2011), keyed by the seed.
 * Block b (a 64-bit counter) gives four 32-bit words; the random word of element c is word c % 4
 * of block c / 4. A pure function of (seed, c), so any element's number can be regenerated
 * without state, and four elements cost one block. */
void vg_philox4x32(uint64_t seed, uint64_t block, uint32_t out[4]) {
    uint32_t x0 = (uint32_t)block, x1 = (uint32_t)(block >> 32), x2 = 0, x3 = 0;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * x0, p1 = (uint64_t)0xCD9E8D57u * x2;
        uint32_t y0 = (uint32_t)(p1 >> 32) ^ x1 ^ k0, y1 = (uint32_t)p1;
        uint32_t y2 = (uint32_t)(p0 >> 32) ^ x3 ^ k1, y3 = (uint32_t)p0;
        x0 = y0; x1 = y1; x2 = y2; x3 = y3;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = x0; out[1] = x1; out[2] = x2; out[3] = x3;
}

/* the 32-bit random word of element c */
uint32_t vg_random_word(uint64_t seed, uint64_t c) {
    uint32_t w[4];
    vg_philox4x32(seed, c >> 2, w);
    return w[c & 3];
}

/* e^r on |r| <= ln(2)/2 by Taylor polynomials in Horner form: degree 13 (double, remainder
 * < 5e-18) and 7 (float, < 6e-9) */
#define VG_POLY13(r) (1 + r * (1 + r * (1. / 2 + r * (1. / 6 + r * (1. / 24 + r * (1. / 120 + \
    r * (1. / 720 + r * (1. / 5040 + r * (1. / 40320 + r * (1. / 362880 + r * (1. / 3628800 + \
    r * (1. / 39916800 + r * (1. / 479001600 + r * (1. / 6227020800.))))))))))))))
#define VG_POLY7(r) (1.f + r * (1.f + r * (1.f / 2 + r * (1.f / 6 + r * (1.f / 24 + \
    r * (1.f / 120 + r * (1.f / 720 + r * (1.f / 5040))))))))

/* atanh(s) / s = sum_k t^k / (2k + 1), t = s^2, in Horner form: 17 terms (double, t <= 1/9:
 * remainder (1/9)^17 / 35 < 1e-18) and 8 terms (float: (1/9)^8 / 17 < 2e-9) */
#define VG_ATANH17(t) (1 + t * (1. / 3 + t * (1. / 5 + t * (1. / 7 + t * (1. / 9 + t * (1. / 11 + \
    t * (1. / 13 + t * (1. / 15 + t * (1. / 17 + t * (1. / 19 + t * (1. / 21 + t * (1. / 23 + \
    t * (1. / 25 + t * (1. / 27 + t * (1. / 29 + t * (1. / 31 + t * (1. / 33)))))))))))))))))
#define VG_ATANH8(t) (1.f + t * (1.f / 3 + t * (1.f / 5 + t * (1.f / 7 + t * (1.f / 9 + \
    t * (1.f / 11 + t * (1.f / 13 + t * (1.f / 15))))))))

#define VG_API static

#define VG_ISA _base
#include "vg_kernels_types.h"
#undef VG_ISA

#if defined(__x86_64__) && defined(__GNUC__) && !defined(VG_NO_DISPATCH)
#define VG_HAVE_DISPATCH 1
#pragma GCC push_options
#pragma GCC target("avx2")
#define VG_ISA _avx2
#include "vg_kernels_types.h"
#undef VG_ISA
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,avx512bw,avx2,prefer-vector-width=512")
#define VG_ISA _avx512
#include "vg_kernels_types.h"
#undef VG_ISA
#pragma GCC pop_options
#else
#define VG_HAVE_DISPATCH 0
#endif

/* ------------------------------------------------------------------ run-time selection */

static int vg_isa = -1; /* VG_ISA_BASELINE, VG_ISA_AVX2 or VG_ISA_AVX512; -1: not chosen yet */

int vg_isa_supported(void) {
#if VG_HAVE_DISPATCH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw"))
        return VG_ISA_AVX512;
    if (__builtin_cpu_supports("avx2")) return VG_ISA_AVX2;
#endif
    return VG_ISA_BASELINE;
}

int vg_set_isa(int level) {
    int best = vg_isa_supported();
    vg_isa = level < 0 || level > best ? best : level;
    return vg_isa;
}

int vg_get_isa(void) {
    if (vg_isa < 0) vg_set_isa(-1);
    return vg_isa;
}

#if VG_HAVE_DISPATCH
#define VG_CALL(f, args) do { switch (vg_get_isa()) { \
    case VG_ISA_AVX512: f##_avx512 args; return; \
    case VG_ISA_AVX2: f##_avx2 args; return; \
    default: f##_base args; return; } } while (0)
#define VG_CALLR(f, args) do { switch (vg_get_isa()) { \
    case VG_ISA_AVX512: return f##_avx512 args; \
    case VG_ISA_AVX2: return f##_avx2 args; \
    default: return f##_base args; } } while (0)
#else
#define VG_CALL(f, args) f##_base args
#define VG_CALLR(f, args) return f##_base args
#endif

#define VG_DISPATCH(T, S)                                                                       \
void vg_bias_act##S(T *z, T *a, T *s, const T *b, int64_t m, int64_t n, int act, T alpha)     \
    { VG_CALL(vg_bias_act##S, (z, a, s, b, m, n, act, alpha)); }                               \
void vg_mul_deriv##S(T *d, const T *s, int64_t len) { VG_CALL(vg_mul_deriv##S, (d, s, len)); } \
double vg_maxabs##S(const T *x, int64_t len) { VG_CALLR(vg_maxabs##S, (x, len)); }             \
double vg_output_delta##S(T *d, const T *z, const T *a, const T *s, const T *y,               \
                          const int64_t *lab, int64_t m, int64_t n, int act, int cost,        \
                          int64_t *correct)                                                    \
    { VG_CALLR(vg_output_delta##S, (d, z, a, s, y, lab, m, n, act, cost, correct)); }          \
void vg_colsum##S(const T *d, int64_t m, int64_t n, T scale, T *out, int accumulate)          \
    { VG_CALL(vg_colsum##S, (d, m, n, scale, out, accumulate)); }                             \
double vg_sumsq##S(const T *x, int64_t len) { VG_CALLR(vg_sumsq##S, (x, len)); }               \
void vg_rows_sumsq##S(const T *x, int64_t m, int64_t n, double *out)                           \
    { VG_CALL(vg_rows_sumsq##S, (x, m, n, out)); }                                             \
void vg_square##S(T *x, int64_t len) { VG_CALL(vg_square##S, (x, len)); }                      \
double vg_norm2##S(const T *x, int64_t len) { VG_CALLR(vg_norm2##S, (x, len)); }               \
double vg_gather_rows##S(const T *src, const int64_t *idx, int64_t m, int64_t n, T *dst,       \
                         double *rowsq)                                                        \
    { VG_CALLR(vg_gather_rows##S, (src, idx, m, n, dst, rowsq)); }                             \
void vg_prefetch_rows##S(const T *src, const int64_t *idx, int64_t m, int64_t n)               \
    { VG_CALL(vg_prefetch_rows##S, (src, idx, m, n)); }                                        \
void vg_add_l2_l1##S(T *g, const T *w, int64_t len, T l2, T l1)                                \
    { VG_CALL(vg_add_l2_l1##S, (g, w, len, l2, l1)); }                                         \
void vg_scale##S(T *x, int64_t len, T s) { VG_CALL(vg_scale##S, (x, len, s)); }                \
void vg_clip_value##S(T *x, int64_t len, T c) { VG_CALL(vg_clip_value##S, (x, len, c)); }      \
int vg_opt_step##S(int kind, T *p, const T *g, T *s1, T *s2, int64_t len, const double *h,     \
                   int64_t t, T *old)                                                          \
    { VG_CALLR(vg_opt_step##S, (kind, p, g, s1, s2, len, h, t, old)); }                        \
void vg_dropout##S(T *a, int64_t len, double keep, uint64_t seed, uint64_t counter)            \
    { VG_CALL(vg_dropout##S, (a, len, keep, seed, counter)); }                                 \
void vg_max_norm##S(T *w, int64_t n_out, int64_t n_in, T c)                                    \
    { VG_CALL(vg_max_norm##S, (w, n_out, n_in, c)); }                                          \
void vg_momentum_apply##S(T *w, T *v, int64_t len, T lr, T l2, T f)                            \
    { VG_CALL(vg_momentum_apply##S, (w, v, len, lr, l2, f)); }                                 \
void vg_sgd_apply##S(T *w, const T *g, T *v, int64_t len, T lr, T l2, T mu, T f, int nesterov,  \
                     const T *w0, double *sums)                                                \
    { VG_CALL(vg_sgd_apply##S, (w, g, v, len, lr, l2, mu, f, nesterov, w0, sums)); }            \
void vg_act_stats##S(const T *a, int64_t m, int64_t n, int act, double *out)                   \
    { VG_CALL(vg_act_stats##S, (a, m, n, act, out)); }                                         \
double vg_gsnr_sum##S(const T *g, const T *q, int64_t len, double eps)                         \
    { VG_CALLR(vg_gsnr_sum##S, (g, q, len, eps)); }                                            \
double vg_diff_sumsq##S(const T *x, const T *y, int64_t len)                                   \
    { VG_CALLR(vg_diff_sumsq##S, (x, y, len)); }                                               \
int vg_nonfinite##S(const T *x, int64_t len) { VG_CALLR(vg_nonfinite##S, (x, len)); }          \
void vg_bn_forward##S(T *z, T *xhat, const T *b, const T *gamma, const T *beta, int64_t m,     \
                      int64_t n, double eps, T *mu, T *invstd, int mode, T *run_mean,         \
                      T *run_var, double momentum)                                            \
    { VG_CALL(vg_bn_forward##S, (z, xhat, b, gamma, beta, m, n, eps, mu, invstd, mode,         \
                                 run_mean, run_var, momentum)); }                             \
void vg_bn_backward##S(T *d, const T *xhat, const T *gamma, const T *invstd, int64_t m,        \
                       int64_t n, double gscale, T *dgamma, T *dbeta, int accumulate,         \
                       int batch_stats)                                                       \
    { VG_CALL(vg_bn_backward##S, (d, xhat, gamma, invstd, m, n, gscale, dgamma, dbeta,         \
                                  accumulate, batch_stats)); }

VG_DISPATCH(double, _d)
VG_DISPATCH(float, _f)
