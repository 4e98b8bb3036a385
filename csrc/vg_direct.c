/* The first layer read through the permutation (vg_direct_impl.h): AVX-512 kernels for double and
 * float, chosen at run time like the other kernels (vg_get_isa() == VG_ISA_AVX512), and portable
 * loops for every other machine or instruction set, which compute the same products. */
#include <stdint.h>
#include <string.h>
#include <math.h>
#include <float.h>
#include "vg_kernels.h"

/* the sparse first layer (vg_direct_impl.h) */
#define WPT 4 /* columns of X (pixels) per tile */
#define FRB 4 /* rows of X per block of the scan */
#define PFB 2 /* the scan prefetches the rows this many blocks on */
/* rows per group of the sparse forward product (0: the chunk in one group), so that a block's
 * part of the group's rows of Z stays in L1; the smallest group the buffers allow: FRB */
int64_t vg_sparse_group_rows = 128;
/* vectors of units per block of the sparse products (the kernels have cases 1 .. 4): 4 x 64
 * bytes of each of 200 rows of Z or D stay in L1 (measured, MNIST [784, 100] float64 at batch
 * 200: blocks of 2, 3 and 4 vectors within noise of each other, 1.23-1.32x the products by
 * 4-row blocks of the union of the rows' columns that they replace) */
#define SBV 4

/* The tiles' lists of the rows idx[0..m) from rows compacted by vg_tile_rows (rp, rt, rv, rmax):
 * the lists sscan makes from the rows themselves (vg_direct_impl.h), the same entries in the
 * same order, and the groups' starts after cnt[0..nt); returns max |x| over the rows or -1. The
 * compacted rows lie at random: the ones PFR rows on are prefetched. */
#define PFR 4
#define VG_TGATHER(T, S)                                                                        \
static double tgather##S(const int64_t *rp, const int32_t *rt, const T *rv, const double *rmax, \
                         const int64_t *idx, int64_t m, int64_t nin, int64_t *cnt,              \
                         int32_t *trow, T *tval, int64_t rg) {                                  \
    const int64_t nt = (nin + WPT - 1) / WPT;                                                   \
    int64_t *split = cnt + nt;                                                                  \
    double mx = 0;                                                                              \
    memset(cnt, 0, (size_t)nt * sizeof(int64_t));                                               \
    for (int64_t i = 0; i < m; i++) {                                                           \
        if (i % rg == 0) memcpy(split + i / rg * nt, cnt, (size_t)nt * sizeof(int64_t));        \
        if (i + PFR < m) {                                                                      \
            const int64_t a = idx[i + PFR];                                                     \
            const char *v0 = (const char *)(rv + WPT * rp[a]);                                  \
            const char *v1 = (const char *)(rv + WPT * rp[a + 1]);                              \
            for (const char *q = v0; q < v1; q += 64) __builtin_prefetch(q, 0, 3);              \
            for (const char *q = (const char *)(rt + rp[a]);                                    \
                 q < (const char *)(rt + rp[a + 1]); q += 64) __builtin_prefetch(q, 0, 3);      \
        }                                                                                       \
        const int64_t r = idx[i];                                                               \
        const double b = rmax[r];                                                               \
        mx = b < 0 || mx < 0 ? -1.0 : (b > mx ? b : mx);                                        \
        for (int64_t e = rp[r]; e < rp[r + 1]; e++) {                                           \
            const int64_t t = rt[e], q = t * m + cnt[t]++;                                      \
            trow[q] = (int32_t)i;                                                               \
            memcpy(tval + WPT * q, rv + WPT * e, WPT * sizeof(T));                              \
        }                                                                                       \
    }                                                                                           \
    memcpy(split + (m + rg - 1) / rg * nt, cnt, (size_t)nt * sizeof(int64_t));                  \
    return mx;                                                                                  \
}
VG_TGATHER(double, _d)
VG_TGATHER(float, _f)
#undef VG_TGATHER

/* Adam's constants for one step as vg_opt_step and vg_add_l2_l1 round them (h, t and l2 as
 * vg_adam_t takes them): the transposing steps' (vg_adam_t, vg_swgrad_adam) on every ISA */
#define VG_ADAM_K(T, S)                                                                         \
typedef struct {                                                                                \
    T l2, f, b1, b2, c1, c2, eps, step, bc2s;                                                   \
    int has_l2, decay, eps_hat;                                                                 \
} adam_k##S;                                                                                    \
static void adam_consts##S(const double *h, int64_t t, double l2, adam_k##S *k) {              \
    const double bc1 = 1.0 - pow(h[1], (double)t), bc2 = 1.0 - pow(h[2], (double)t);           \
    k->l2 = (T)l2;                                                                              \
    k->f = (T)(1.0 - h[0] * h[4]);                                                              \
    k->b1 = (T)h[1];                                                                            \
    k->b2 = (T)h[2];                                                                            \
    k->c1 = (T)1 - k->b1;                                                                       \
    k->c2 = (T)1 - k->b2;                                                                       \
    k->eps = (T)h[3];                                                                           \
    k->eps_hat = h[6] != 0;                                                                     \
    k->step = k->eps_hat ? (T)(h[0] * sqrt(bc2) / bc1) : (T)(h[0] / bc1);                      \
    k->bc2s = (T)sqrt(bc2);                                                                     \
    k->has_l2 = k->l2 != 0;                                                                     \
    k->decay = h[4] != 0;                                                                       \
}
VG_ADAM_K(double, _d)
VG_ADAM_K(float, _f)
#undef VG_ADAM_K

#if defined(__x86_64__) && defined(__GNUC__) && !defined(VG_NO_DISPATCH)
#define VG_DIRECT_AVX512 1
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")
#include <immintrin.h>

#define REAL double
#define VG_REAL_MAX DBL_MAX
#define VEC __m512d
#define VMASK __mmask8
#define LANES 8
#define FR 6
#define DSFX(name) name##_d
#define V_ZERO() _mm512_setzero_pd()
#define V_LOAD(p) _mm512_loadu_pd(p)
#define V_LOADU(p) _mm512_loadu_pd(p)
#define V_MASKZ_LOADU(k, p) _mm512_maskz_loadu_pd(k, p)
#define V_SET1(x) _mm512_set1_pd(x)
#define V_FMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#define V_MUL(a, b) _mm512_mul_pd(a, b)
#define V_ADD(a, b) _mm512_add_pd(a, b)
#define V_SUB(a, b) _mm512_sub_pd(a, b)
#define V_DIV(a, b) _mm512_div_pd(a, b)
#define V_SQRT(a) _mm512_sqrt_pd(a)
#define V_MASK_ADD(s, k, a, b) _mm512_mask_add_pd(s, k, a, b)
#define V_ALL_ZERO(v) (_mm512_cmp_pd_mask(v, _mm512_setzero_pd(), _CMP_EQ_OQ) == 0xFF)
#define V_STOREU(p, v) _mm512_storeu_pd(p, v)
#define V_MASK_STOREU(p, k, v) _mm512_mask_storeu_pd(p, k, v)
#define VINT __m512i
#define UINT uint64_t
#define MAX_BITS 0x7FEFFFFFFFFFFFFFull
#define V_ABSBITS_MAX(m, x) _mm512_max_epu64(m, _mm512_and_si512(_mm512_castpd_si512(x), \
    _mm512_set1_epi64(0x7FFFFFFFFFFFFFFFll)))
#define V_NONZERO(v) _mm512_cmp_pd_mask(v, _mm512_setzero_pd(), _CMP_NEQ_UQ)
/* G[j, k0 + c] = alpha buf[c * ldb + j] + beta G[j, k0 + c] for the WPT (= 4) columns c < nc of
 * one tile of the sparse weight gradient and every j < nout: 4 x 8 blocks of buf transposed in
 * registers into 8 stores of 4 contiguous values (beta = 0: G is only written) */
/* the 8 x 8 block r[0..8) (row i: r[i]) transposed into Wt[c * ldw + 0..8), c < nc, in registers */
static inline void store_t8_d(const __m512d r[8], double *Wt, int64_t ldw, int nc) {
    __m512d t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm512_unpacklo_pd(r[i], r[i + 1]);      /* lane l: (a[2l], b[2l]) */
        t[i + 1] = _mm512_unpackhi_pd(r[i], r[i + 1]);  /* lane l: (a[2l+1], b[2l+1]) */
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm512_shuffle_f64x2(t[i], t[i + 2], 0x88);          /* columns 0, 4 */
        u[i + 1] = _mm512_shuffle_f64x2(t[i + 1], t[i + 3], 0x88);  /* 1, 5 */
        u[i + 2] = _mm512_shuffle_f64x2(t[i], t[i + 2], 0xDD);      /* 2, 6 */
        u[i + 3] = _mm512_shuffle_f64x2(t[i + 1], t[i + 3], 0xDD);  /* 3, 7 */
    }
    for (int c = 0; c < 4; c++) {
        if (c < nc) _mm512_storeu_pd(Wt + c * ldw, _mm512_shuffle_f64x2(u[c], u[c + 4], 0x88));
        if (c + 4 < nc)
            _mm512_storeu_pd(Wt + (c + 4) * ldw, _mm512_shuffle_f64x2(u[c], u[c + 4], 0xDD));
    }
}

/* Wt[k, j] = W[j, k] (nout x nin W), 8 x 8 blocks transposed in registers, the edges and the
 * zero columns nout .. ldw element by element (pack_t); and back, W[j, k] = Wt[k, j], by the
 * same blocks, 8 rows of W at a time (W lies out of cache after an epoch on Wt: 8 streams of
 * stores rather than one line in each of W's rows), then the edges (unpack_t); both by
 * t8_block. R: a row of 8, LOAD its load, S store_t8's suffix. */
#define VG_PACK_T(T, R, LOAD, S)                                                                \
/* the 8 x 8 block at src (rows lds apart) transposed to dst (rows ldd apart) */              \
static inline void t8_block##S(const T *src, int64_t lds, T *dst, int64_t ldd) {               \
    R r[8];                                                                                     \
    for (int i = 0; i < 8; i++) r[i] = LOAD(src + i * lds);                                     \
    store_t8##S(r, dst, ldd, 8);                                                                \
}                                                                                               \
static void pack_t_avx512##S(const T *W, int64_t nout, int64_t nin, T *Wt, int64_t ldw) {      \
    const int64_t j8 = nout / 8 * 8, k8 = nin / 8 * 8;                                          \
    for (int64_t j0 = 0; j0 < j8; j0 += 8)                                                      \
        for (int64_t k0 = 0; k0 < k8; k0 += 8)                                                  \
            t8_block##S(W + j0 * nin + k0, nin, Wt + k0 * ldw + j0, ldw);                       \
    for (int64_t k = 0; k < nin; k++) {                                                         \
        for (int64_t j = k < k8 ? j8 : 0; j < nout; j++) Wt[k * ldw + j] = W[j * nin + k];      \
        for (int64_t j = nout; j < ldw; j++) Wt[k * ldw + j] = 0;                              \
    }                                                                                           \
}                                                                                               \
static void unpack_t_avx512##S(const T *Wt, int64_t ldw, int64_t nout, int64_t nin, T *W) {    \
    const int64_t j8 = nout / 8 * 8, k8 = nin / 8 * 8;                                          \
    for (int64_t j0 = 0; j0 < j8; j0 += 8)                                                      \
        for (int64_t k0 = 0; k0 < k8; k0 += 8)                                                  \
            t8_block##S(Wt + k0 * ldw + j0, ldw, W + j0 * nin + k0, nin);                       \
    for (int64_t j = 0; j < nout; j++)                                                          \
        for (int64_t k = j < j8 ? k8 : 0; k < nin; k++) W[j * nin + k] = Wt[k * ldw + j];       \
}
VG_PACK_T(double, __m512d, _mm512_loadu_pd, _d)

/* the 8 x 8 block of floats r[0..8) transposed into Wt[c * ldw + 0..8), c < nc */
static inline void store_t8_f(const __m256 r[8], float *Wt, int64_t ldw, int nc) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int c = 0; c < 4; c++) {
        if (c < nc) _mm256_storeu_ps(Wt + c * ldw, _mm256_permute2f128_ps(u[c], u[c + 4], 0x20));
        if (c + 4 < nc)
            _mm256_storeu_ps(Wt + (c + 4) * ldw, _mm256_permute2f128_ps(u[c], u[c + 4], 0x31));
    }
}

VG_PACK_T(float, __m256, _mm256_loadu_ps, _f)  /* (8 x 8 blocks of 256-bit rows) */
#undef VG_PACK_T

/* the WPT (= 4) lanes 4 h .. 4 h + 3 of v to p */
static inline void put_tile_d(double *p, __m512d v, int h) {
    _mm256_storeu_pd(p, h == 0 ? _mm512_castpd512_pd256(v) : _mm512_extractf64x4_pd(v, 1));
}
static inline void store_tile_d(const double *buf, int64_t ldb, int64_t nout, double alpha,
                                double beta, double *G, int64_t nin, int64_t k0, int64_t nc) {
    const __m512d va = _mm512_set1_pd(alpha);
    const __m256d vb = _mm256_set1_pd(beta);
    const __m512i lo = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
    const __m512i hi = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
    const __mmask8 kc = (__mmask8)((1u << nc) - 1);
    for (int64_t j0 = 0; j0 < nout; j0 += 8) {
        __m512d a0 = _mm512_mul_pd(va, _mm512_loadu_pd(buf + j0));
        __m512d a1 = _mm512_mul_pd(va, _mm512_loadu_pd(buf + ldb + j0));
        __m512d a2 = _mm512_mul_pd(va, _mm512_loadu_pd(buf + 2 * ldb + j0));
        __m512d a3 = _mm512_mul_pd(va, _mm512_loadu_pd(buf + 3 * ldb + j0));
        __m512d t0 = _mm512_unpacklo_pd(a0, a1), t1 = _mm512_unpackhi_pd(a0, a1);
        __m512d t2 = _mm512_unpacklo_pd(a2, a3), t3 = _mm512_unpackhi_pd(a2, a3);
        __m512d u02 = _mm512_permutex2var_pd(t0, lo, t2), u13 = _mm512_permutex2var_pd(t1, lo, t3);
        __m512d u46 = _mm512_permutex2var_pd(t0, hi, t2), u57 = _mm512_permutex2var_pd(t1, hi, t3);
        __m256d r[8] = {_mm512_castpd512_pd256(u02), _mm512_castpd512_pd256(u13),
                        _mm512_extractf64x4_pd(u02, 1), _mm512_extractf64x4_pd(u13, 1),
                        _mm512_castpd512_pd256(u46), _mm512_castpd512_pd256(u57),
                        _mm512_extractf64x4_pd(u46, 1), _mm512_extractf64x4_pd(u57, 1)};
        int64_t nr = nout - j0 < 8 ? nout - j0 : 8;
        for (int64_t q = 0; q < nr; q++) {
            double *g = G + (j0 + q) * nin + k0;
            __m256d v = r[q];
            if (beta != 0) v = _mm256_fmadd_pd(vb, _mm256_maskz_loadu_pd(kc, g), v);
            _mm256_mask_storeu_pd(g, kc, v);
        }
    }
}
/* vectors of 8 elements (a row of an 8 x 8 block): Adam's transposing step (vg_direct_impl.h) */
#define R8 __m512d
#define R8_LOADZ(k, p) _mm512_maskz_loadu_pd(k, p)
#define R8_STOREM(p, k, v) _mm512_mask_storeu_pd(p, k, v)
#define R8_STOREU(p, v) _mm512_storeu_pd(p, v)
#define R8_SET1(x) _mm512_set1_pd(x)
#define R8_ZERO() _mm512_setzero_pd()
#define R8_ADD(a, b) _mm512_add_pd(a, b)
#define R8_SUB(a, b) _mm512_sub_pd(a, b)
#define R8_MUL(a, b) _mm512_mul_pd(a, b)
#define R8_DIV(a, b) _mm512_div_pd(a, b)
#define R8_SQRT(a) _mm512_sqrt_pd(a)
#define R8_ALL_ZERO(v) (_mm512_cmp_pd_mask(v, _mm512_setzero_pd(), _CMP_EQ_OQ) == 0xFF)
#define STORE_T8 store_t8_d
#include "vg_direct_impl.h"
#include "vg_direct_undef.h"
#undef REAL
#undef VG_REAL_MAX
#undef VEC
#undef VMASK
#undef LANES
#undef FR
#undef DSFX
#undef V_ZERO
#undef V_LOAD
#undef V_LOADU
#undef V_MASKZ_LOADU
#undef V_SET1
#undef V_FMA
#undef V_MUL
#undef V_ADD
#undef V_SUB
#undef V_DIV
#undef V_SQRT
#undef V_MASK_ADD
#undef V_ALL_ZERO
#undef V_STOREU
#undef V_MASK_STOREU
#undef V_ABSBITS_MAX
#undef V_NONZERO
#undef UINT
#undef MAX_BITS

#define REAL float
#define VG_REAL_MAX FLT_MAX
#define VEC __m512
#define VMASK __mmask16
#define LANES 16
#define FR 12
#define DSFX(name) name##_f
#define V_ZERO() _mm512_setzero_ps()
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_LOADU(p) _mm512_loadu_ps(p)
#define V_MASKZ_LOADU(k, p) _mm512_maskz_loadu_ps(k, p)
#define V_SET1(x) _mm512_set1_ps(x)
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_MUL(a, b) _mm512_mul_ps(a, b)
#define V_ADD(a, b) _mm512_add_ps(a, b)
#define V_SUB(a, b) _mm512_sub_ps(a, b)
#define V_DIV(a, b) _mm512_div_ps(a, b)
#define V_SQRT(a) _mm512_sqrt_ps(a)
#define V_MASK_ADD(s, k, a, b) _mm512_mask_add_ps(s, k, a, b)
#define V_ALL_ZERO(v) (_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_EQ_OQ) == 0xFFFF)
#define V_STOREU(p, v) _mm512_storeu_ps(p, v)
#define V_MASK_STOREU(p, k, v) _mm512_mask_storeu_ps(p, k, v)
#define UINT uint32_t
#define MAX_BITS 0x7F7FFFFFu
#define V_ABSBITS_MAX(m, x) _mm512_max_epu32(m, _mm512_and_si512(_mm512_castps_si512(x), \
    _mm512_set1_epi32(0x7FFFFFFF)))
#define V_NONZERO(v) _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ)
static inline void put_tile_f(float *p, __m512 v, int h) {
    switch (h) {
    case 0: _mm_storeu_ps(p, _mm512_castps512_ps128(v)); break;
    case 1: _mm_storeu_ps(p, _mm512_extractf32x4_ps(v, 1)); break;
    case 2: _mm_storeu_ps(p, _mm512_extractf32x4_ps(v, 2)); break;
    default: _mm_storeu_ps(p, _mm512_extractf32x4_ps(v, 3)); break;
    }
}
/* store_tile_d for float: 4 x 16 blocks of buf transposed into 16 stores of 4 values */
static inline void store_tile_f(const float *buf, int64_t ldb, int64_t nout, float alpha,
                                float beta, float *G, int64_t nin, int64_t k0, int64_t nc) {
    const __m512 va = _mm512_set1_ps(alpha);
    const __m128 vb = _mm_set1_ps(beta);
    const __mmask8 kc = (__mmask8)((1u << nc) - 1);
    for (int64_t j0 = 0; j0 < nout; j0 += 16) {
        __m512 a0 = _mm512_mul_ps(va, _mm512_loadu_ps(buf + j0));
        __m512 a1 = _mm512_mul_ps(va, _mm512_loadu_ps(buf + ldb + j0));
        __m512 a2 = _mm512_mul_ps(va, _mm512_loadu_ps(buf + 2 * ldb + j0));
        __m512 a3 = _mm512_mul_ps(va, _mm512_loadu_ps(buf + 3 * ldb + j0));
        __m512 t0 = _mm512_unpacklo_ps(a0, a1), t1 = _mm512_unpackhi_ps(a0, a1);
        __m512 t2 = _mm512_unpacklo_ps(a2, a3), t3 = _mm512_unpackhi_ps(a2, a3);
        /* u[K], 128-bit lane l: the four columns of unit j0 + 4 l + K */
        __m512 u[4] = {_mm512_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)),
                       _mm512_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2)),
                       _mm512_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)),
                       _mm512_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2))};
        __m128 r[16];
        for (int K = 0; K < 4; K++) {
            r[K] = _mm512_castps512_ps128(u[K]);
            r[4 + K] = _mm512_extractf32x4_ps(u[K], 1);
            r[8 + K] = _mm512_extractf32x4_ps(u[K], 2);
            r[12 + K] = _mm512_extractf32x4_ps(u[K], 3);
        }
        int64_t nr = nout - j0 < 16 ? nout - j0 : 16;
        for (int64_t q = 0; q < nr; q++) {
            float *g = G + (j0 + q) * nin + k0;
            __m128 v = r[q];
            if (beta != 0) v = _mm_fmadd_ps(vb, _mm_maskz_loadu_ps(kc, g), v);
            _mm_mask_storeu_ps(g, kc, v);
        }
    }
}
#define R8 __m256
#define R8_LOADZ(k, p) _mm256_maskz_loadu_ps(k, p)
#define R8_STOREM(p, k, v) _mm256_mask_storeu_ps(p, k, v)
#define R8_STOREU(p, v) _mm256_storeu_ps(p, v)
#define R8_SET1(x) _mm256_set1_ps(x)
#define R8_ZERO() _mm256_setzero_ps()
#define R8_ADD(a, b) _mm256_add_ps(a, b)
#define R8_SUB(a, b) _mm256_sub_ps(a, b)
#define R8_MUL(a, b) _mm256_mul_ps(a, b)
#define R8_DIV(a, b) _mm256_div_ps(a, b)
#define R8_SQRT(a) _mm256_sqrt_ps(a)
#define R8_ALL_ZERO(v) (_mm256_cmp_ps_mask(v, _mm256_setzero_ps(), _CMP_EQ_OQ) == 0xFF)
#define STORE_T8 store_t8_f
#include "vg_direct_impl.h"
#include "vg_direct_undef.h"
#pragma GCC pop_options
#else
#define VG_DIRECT_AVX512 0
#endif

int vg_direct_available(void) {
#if VG_DIRECT_AVX512
    return vg_get_isa() == VG_ISA_AVX512;
#else
    return 0;
#endif
}

/* Wt[k, j] = W[j, k] for the nout x nin matrix W; columns nout .. ldw of Wt are zero */
#define VG_DIRECT_PORTABLE(T, S, TMAX)                                                          \
static void pack_t_portable##S(const T *W, int64_t nout, int64_t nin, T *Wt, int64_t ldw) {    \
    for (int64_t k = 0; k < nin; k++) {                                                         \
        for (int64_t j = 0; j < nout; j++) Wt[k * ldw + j] = W[j * nin + k];                    \
        for (int64_t j = nout; j < ldw; j++) Wt[k * ldw + j] = 0;                              \
    }                                                                                           \
}                                                                                               \
static void unpack_t_portable##S(const T *Wt, int64_t ldw, int64_t nout, int64_t nin, T *W) { \
    for (int64_t j = 0; j < nout; j++)                                                          \
        for (int64_t k = 0; k < nin; k++) W[j * nin + k] = Wt[k * ldw + j];                     \
}                                                                                               \
static double fwd_portable##S(const T *X, const int64_t *idx, int64_t m, int64_t nin,          \
                              const T *Wt, int64_t ldw, T *Z, int64_t nout) {                   \
    double mx = 0;                                                                              \
    for (int64_t i = 0; i < m; i++) {                                                           \
        const T *x = X + idx[i] * nin;                                                          \
        T *z = Z + i * nout;                                                                    \
        for (int64_t j = 0; j < nout; j++) z[j] = 0;                                            \
        for (int64_t k = 0; k < nin; k++) {                                                     \
            double a = fabs((double)x[k]);                                                      \
            if (!(a <= (double)TMAX)) mx = -1;                                                  \
            else if (mx >= 0 && a > mx) mx = a;                                                 \
            for (int64_t j = 0; j < nout; j++) z[j] += x[k] * Wt[k * ldw + j];                  \
        }                                                                                       \
    }                                                                                           \
    return mx;                                                                                  \
}                                                                                               \
static void wgrad_portable##S(const T *X, const int64_t *idx, int64_t m, int64_t nin,          \
                              const T *D, int64_t nout, T alpha, T beta, T *G) {                \
    for (int64_t j = 0; j < nout; j++) {                                                        \
        T *g = G + j * nin;                                                                     \
        for (int64_t k = 0; k < nin; k++) g[k] = beta != 0 ? beta * g[k] : 0;                   \
    }                                                                                           \
    for (int64_t i = 0; i < m; i++) {                                                           \
        const T *x = X + idx[i] * nin;                                                          \
        for (int64_t j = 0; j < nout; j++) {                                                    \
            T d = alpha * D[i * nout + j];                                                      \
            T *g = G + j * nin;                                                                 \
            for (int64_t k = 0; k < nin; k++) g[k] += d * x[k];                                 \
        }                                                                                       \
    }                                                                                           \
}                                                                                            \
static void wgrad_sgd_portable##S(const T *X, const int64_t *idx, int64_t m, int64_t nin,      \
                                  const T *D, int64_t nout, T alpha, T *W, T *V, T lr, T l2,   \
                                  T mu, T f, int nesterov) {                                   \
    for (int64_t j = 0; j < nout; j++)                                                          \
        for (int64_t k = 0; k < nin; k++) {                                                     \
            T acc = 0; /* wgrad_portable's sum */                                               \
            for (int64_t i = 0; i < m; i++)                                                     \
                acc += alpha * D[i * nout + j] * X[(idx ? idx[i] : i) * nin + k];               \
            const T w = W[j * nin + k], g = acc + l2 * w;                                       \
            T step = g;                                                                         \
            if (mu != 0) {                                                                      \
                const T v = mu * V[j * nin + k] + g;                                            \
                V[j * nin + k] = v;                                                             \
                step = nesterov ? g + mu * v : v;                                               \
            }                                                                                   \
            W[j * nin + k] = f * w - lr * step;                                                 \
        }                                                                                       \
}

VG_DIRECT_PORTABLE(double, _d, DBL_MAX)
VG_DIRECT_PORTABLE(float, _f, FLT_MAX)

/* call f's AVX-512 variant when selected, else the portable one (VG_PICKV: f returns void) */
#if VG_DIRECT_AVX512
#define VG_PICK(f, S, args) if (vg_direct_available()) return f##_avx512##S args; return f##_portable##S args
#define VG_PICKV(f, S, args) if (vg_direct_available()) f##_avx512##S args; else f##_portable##S args
#else
#define VG_PICK(f, S, args) return f##_portable##S args
#define VG_PICKV(f, S, args) f##_portable##S args
#endif

/* Wt[k, j] = W[j, k] for the nout x nin matrix W; columns nout .. ldw of Wt are zero */
void vg_pack_t_d(const double *W, int64_t nout, int64_t nin, double *Wt, int64_t ldw)
    { VG_PICKV(pack_t, _d, (W, nout, nin, Wt, ldw)); }
void vg_pack_t_f(const float *W, int64_t nout, int64_t nin, float *Wt, int64_t ldw)
    { VG_PICKV(pack_t, _f, (W, nout, nin, Wt, ldw)); }
/* W[j, k] = Wt[k, j]: the nout x nin matrix back from vg_pack_t's layout */
void vg_unpack_t_d(const double *Wt, int64_t ldw, int64_t nout, int64_t nin, double *W)
    { VG_PICKV(unpack_t, _d, (Wt, ldw, nout, nin, W)); }
void vg_unpack_t_f(const float *Wt, int64_t ldw, int64_t nout, int64_t nin, float *W)
    { VG_PICKV(unpack_t, _f, (Wt, ldw, nout, nin, W)); }

/* Z = X[idx] W^T for the m rows (Wt from vg_pack_t, ldw >= nout): returns max |x| over the
 * rows read, or -1 if one is NaN or Inf */
double vg_l0_forward_d(const double *X, const int64_t *idx, int64_t m, int64_t nin,
                       const double *Wt, int64_t ldw, double *Z, int64_t nout)
    { VG_PICK(fwd, _d, (X, idx, m, nin, Wt, ldw, Z, nout)); }
double vg_l0_forward_f(const float *X, const int64_t *idx, int64_t m, int64_t nin,
                       const float *Wt, int64_t ldw, float *Z, int64_t nout)
    { VG_PICK(fwd, _f, (X, idx, m, nin, Wt, ldw, Z, nout)); }

/* G = alpha D^T X[idx] + beta G (G: nout x nin; beta = 0: G is only written) */
void vg_l0_wgrad_d(const double *X, const int64_t *idx, int64_t m, int64_t nin, const double *D,
                   int64_t nout, double alpha, double beta, double *G)
    { VG_PICKV(wgrad, _d, (X, idx, m, nin, D, nout, alpha, beta, G)); }
void vg_l0_wgrad_f(const float *X, const int64_t *idx, int64_t m, int64_t nin, const float *D,
                   int64_t nout, float alpha, float beta, float *G)
    { VG_PICKV(wgrad, _f, (X, idx, m, nin, D, nout, alpha, beta, G)); }

/* vg_sgd_apply's step on W (nout x nin) and its velocity V with the gradient G = alpha D^T X[idx]
 * (idx NULL: X's first m rows, contiguous) summed as vg_l0_wgrad sums it: each block of G
 * goes from the registers into the step, so G is never stored nor read back */
void vg_wgrad_sgd_d(const double *X, const int64_t *idx, int64_t m, int64_t nin, const double *D,
                    int64_t nout, double alpha, double *W, double *V, double lr, double l2,
                    double mu, double f, int nesterov)
    { VG_PICKV(wgrad_sgd, _d, (X, idx, m, nin, D, nout, alpha, W, V, lr, l2, mu, f, nesterov)); }
void vg_wgrad_sgd_f(const float *X, const int64_t *idx, int64_t m, int64_t nin, const float *D,
                    int64_t nout, float alpha, float *W, float *V, float lr, float l2, float mu,
                    float f, int nesterov)
    { VG_PICKV(wgrad_sgd, _f, (X, idx, m, nin, D, nout, alpha, W, V, lr, l2, mu, f, nesterov)); }

/* the AVX-512 kernels' operands and order of sums, in plain loops */
#define VG_SPARSE_PORTABLE(T, S, TMAX)                                                          \
static void sfwd_lists_portable##S(int64_t m, int64_t nin, const T *Wt, int64_t ldw, T *Z,     \
                                   int64_t nout, const int64_t *cnt, const int32_t *trow,       \
                                   const T *tval) {                                             \
    const int64_t nt = (nin + WPT - 1) / WPT;                                                   \
    for (int64_t j = 0; j < m * nout; j++) Z[j] = 0;                                            \
    for (int64_t t = 0; t < nt; t++) {                                                          \
        int64_t k0 = WPT * t, nc = nin - k0 < WPT ? nin - k0 : WPT;                             \
        for (int64_t q = t * m; q < t * m + cnt[t]; q++) {                                      \
            T *z = Z + trow[q] * nout;                                                          \
            for (int64_t c = 0; c < nc; c++)                                                    \
                for (int64_t j = 0; j < nout; j++)                                              \
                    z[j] += tval[WPT * q + c] * Wt[(k0 + c) * ldw + j];                         \
        }                                                                                       \
    }                                                                                           \
}                                                                                               \
/* row x's nonzero tiles (tile_row_avx512) */                                                   \
static int64_t tile_row_portable##S(const T *x, int64_t nin, int32_t *rt, T *rv, double *mx) { \
    const int64_t nt = (nin + WPT - 1) / WPT;                                                   \
    int64_t n = 0;                                                                              \
    *mx = 0;                                                                                    \
    for (int64_t k = 0; k < nin; k++) {                                                         \
        double a = fabs((double)x[k]);                                                          \
        if (!(a <= (double)TMAX)) *mx = -1;                                                     \
        else if (*mx >= 0 && a > *mx) *mx = a;                                                  \
    }                                                                                           \
    for (int64_t t = 0; t < nt; t++) {                                                          \
        int64_t nc = nin - WPT * t < WPT ? nin - WPT * t : WPT, any = 0;                        \
        for (int64_t c = 0; c < nc; c++) any |= x[WPT * t + c] != 0;                            \
        if (!any) continue;                                                                     \
        if (rt) {                                                                               \
            rt[n] = (int32_t)t;                                                                 \
            for (int64_t c = 0; c < WPT; c++) rv[WPT * n + c] = c < nc ? x[WPT * t + c] : 0;    \
        }                                                                                       \
        n++;                                                                                    \
    }                                                                                           \
    return n;                                                                                   \
}                                                                                               \
static double sfwd_portable##S(const T *X, const int64_t *idx, int64_t m, int64_t nin,         \
                               const T *Wt, int64_t ldw, T *Z, int64_t nout, int64_t *cnt,      \
                               int32_t *trow, T *tval) {                                        \
    const int64_t nt = (nin + WPT - 1) / WPT;                                                   \
    double mx = 0;                                                                              \
    memset(cnt, 0, (size_t)nt * sizeof(int64_t));                                               \
    for (int64_t i = 0; i < m; i++) {                                                           \
        double b;                                                                               \
        const T *x = X + idx[i] * nin;                                                          \
        tile_row_portable##S(x, nin, NULL, NULL, &b);                                           \
        mx = b < 0 || mx < 0 ? -1.0 : (b > mx ? b : mx);                                        \
        for (int64_t t = 0; t < nt; t++) {                                                      \
            int64_t nc = nin - WPT * t < WPT ? nin - WPT * t : WPT, any = 0;                    \
            for (int64_t c = 0; c < nc; c++) any |= x[WPT * t + c] != 0;                        \
            if (!any) continue;                                                                 \
            int64_t q = t * m + cnt[t]++;                                                       \
            trow[q] = (int32_t)i;                                                               \
            for (int64_t c = 0; c < WPT; c++) tval[WPT * q + c] = c < nc ? x[WPT * t + c] : 0;  \
        }                                                                                       \
    }                                                                                           \
    if (mx >= 0) sfwd_lists_portable##S(m, nin, Wt, ldw, Z, nout, cnt, trow, tval);             \
    return mx;                                                                                  \
}                                                                                               \
static double tfwd_portable##S(const int64_t *rp, const int32_t *rt, const T *rv,              \
                               const double *rmax, const int64_t *idx, int64_t m, int64_t nin, \
                               const T *Wt, int64_t ldw, T *Z, int64_t nout, int64_t *cnt,      \
                               int32_t *trow, T *tval) {                                        \
    const double mx = tgather##S(rp, rt, rv, rmax, idx, m, nin, cnt, trow, tval, m);            \
    if (mx >= 0) sfwd_lists_portable##S(m, nin, Wt, ldw, Z, nout, cnt, trow, tval);             \
    return mx;                                                                                  \
}                                                                                               \
static void swgrad_portable##S(const int64_t *cnt, const int32_t *trow, const T *tval,         \
                               int64_t m, int64_t nin, const T *D, int64_t nout, T alpha,       \
                               T beta, T *G) {                                                  \
    const int64_t nt = (nin + WPT - 1) / WPT;                                                   \
    for (int64_t t = 0; t < nt; t++) {                                                          \
        int64_t k0 = WPT * t, nc = nin - k0 < WPT ? nin - k0 : WPT;                             \
        for (int64_t j = 0; j < nout; j++)                                                      \
            for (int64_t c = 0; c < nc; c++) {                                                  \
                T sum = 0;                                                                      \
                for (int64_t q = t * m; q < t * m + cnt[t]; q++)                                \
                    sum += tval[WPT * q + c] * D[trow[q] * nout + j];                           \
                T v = alpha * sum;                                                              \
                G[j * nin + k0 + c] = beta != 0 ? v + beta * G[j * nin + k0 + c] : v;           \
            }                                                                                   \
    }                                                                                           \
}

VG_SPARSE_PORTABLE(double, _d, DBL_MAX)
VG_SPARSE_PORTABLE(float, _f, FLT_MAX)

/* Scratch the sparse kernels need for a chunk of m rows of nin columns, as counts of elements:
 * sizes[0] cnt (int64: the counts, then where each group of rows of the forward product starts
 * in every tile's list), [1] trow (int32), [2] tval (values) */
void vg_l0_sparse_sizes(int64_t m, int64_t nin, int64_t *sizes) {
    const int64_t nt = (nin + WPT - 1) / WPT;
    sizes[0] = nt * (2 + (m + FRB - 1) / FRB);  /* the counts, then the groups' starts */
    sizes[1] = nt * m;
    sizes[2] = WPT * nt * m;
}

/* Z = X[idx] W^T for the m rows of mostly-zero X (Wt from vg_pack_t, ldw >= nout), and the weight
 * gradient's operands (vg_direct_impl.h): returns max |x| over the rows, -1 if one is NaN or Inf
 * (Z is then not computed) */
double vg_l0_forward_sparse_d(const double *X, const int64_t *idx, int64_t m, int64_t nin,
                              const double *Wt, int64_t ldw, double *Z, int64_t nout,
                              int64_t *cnt, int32_t *trow, double *tval)
    { VG_PICK(sfwd, _d, (X, idx, m, nin, Wt, ldw, Z, nout, cnt, trow, tval)); }
double vg_l0_forward_sparse_f(const float *X, const int64_t *idx, int64_t m, int64_t nin,
                              const float *Wt, int64_t ldw, float *Z, int64_t nout,
                              int64_t *cnt, int32_t *trow, float *tval)
    { VG_PICK(sfwd, _f, (X, idx, m, nin, Wt, ldw, Z, nout, cnt, trow, tval)); }
/* G = alpha D^T X[idx] + beta G from the tile lists */
void vg_l0_wgrad_sparse_d(const int64_t *cnt, const int32_t *trow, const double *tval, int64_t m,
                          int64_t nin, const double *D, int64_t nout, double alpha, double beta,
                          double *G)
    { VG_PICKV(swgrad, _d, (cnt, trow, tval, m, nin, D, nout, alpha, beta, G)); }
void vg_l0_wgrad_sparse_f(const int64_t *cnt, const int32_t *trow, const float *tval, int64_t m,
                          int64_t nin, const float *D, int64_t nout, float alpha, float beta,
                          float *G)
    { VG_PICKV(swgrad, _f, (cnt, trow, tval, m, nin, D, nout, alpha, beta, G)); }

/* Mostly-zero rows compacted once, for epochs that read them again ("tile rows"): row r's tiles
 * (WPT adjacent columns) with a nonzero are entries rp[r] .. rp[r + 1]: rt[e] the tile, rv[WPT e
 * ..] its WPT values (zero past nin); rmax[r] = max |x| of the row, -1 if it holds NaN or Inf.
 * With rt NULL only rp is filled (rp[n]: the entries in all). The sparse forward product reads
 * these instead of X (vg_l0_forward_tiles): no scan of the zeros at every step. */
#define VG_TILE_ROWS(T, S)                                                                      \
static int64_t tile_row##S(const T *x, int64_t nin, int32_t *rt, T *rv, double *mx)            \
    { VG_PICK(tile_row, S, (x, nin, rt, rv, mx)); }                                             \
int64_t vg_tile_rows##S(const T *X, int64_t n, int64_t nin, int64_t *rp, int32_t *rt, T *rv,   \
                        double *rmax) {                                                         \
    double mx;                                                                                  \
    if (!rt) rp[0] = 0;                                                                         \
    for (int64_t r = 0; r < n; r++) {                                                           \
        const int64_t c = tile_row##S(X + r * nin, nin, rt ? rt + rp[r] : NULL,                 \
                                      rt ? rv + WPT * rp[r] : NULL, &mx);                       \
        if (!rt) rp[r + 1] = rp[r] + c;                                                         \
        else rmax[r] = mx;                                                                      \
    }                                                                                           \
    return rp[n];                                                                               \
}
VG_TILE_ROWS(double, _d)
VG_TILE_ROWS(float, _f)
#undef VG_TILE_ROWS

/* vg_l0_forward_sparse from rows compacted by vg_tile_rows (X itself is not read) */
double vg_l0_forward_tiles_d(const int64_t *rp, const int32_t *rt, const double *rv,
                             const double *rmax, const int64_t *idx, int64_t m, int64_t nin,
                             const double *Wt, int64_t ldw, double *Z, int64_t nout,
                             int64_t *cnt, int32_t *trow, double *tval)
    { VG_PICK(tfwd, _d, (rp, rt, rv, rmax, idx, m, nin, Wt, ldw, Z, nout, cnt, trow, tval)); }
double vg_l0_forward_tiles_f(const int64_t *rp, const int32_t *rt, const float *rv,
                             const double *rmax, const int64_t *idx, int64_t m, int64_t nin,
                             const float *Wt, int64_t ldw, float *Z, int64_t nout,
                             int64_t *cnt, int32_t *trow, float *tval)
    { VG_PICK(tfwd, _f, (rp, rt, rv, rmax, idx, m, nin, Wt, ldw, Z, nout, cnt, trow, tval)); }

/* Adam's step (vg_opt_step's kind VG_OPT_ADAM with h, step t) on the first layer's nout x nin
 * weights W, the L2 term l2 W added to the gradient G first (vg_add_l2_l1): vg_add_l2_l1,
 * vg_opt_step and vg_pack_t in one, W's new values also written transposed into Wt (ldw), so the
 * next step's forward product needs no packing. The same values bit for bit (G is left
 * unspecified). old (NULL: not kept) gets W before the step. Returns 1 if a value written is not
 * finite. */
#define VG_ADAM_T(T, S)                                                                         \
static int adam_t_portable##S(T *W, T *G, T *S1, T *S2, int64_t nout, int64_t nin,             \
                              const double *h, int64_t t, double l2, T *old, T *Wt,             \
                              int64_t ldw) {                                                    \
    if (l2 != 0) vg_add_l2_l1##S(G, W, nout * nin, (T)l2, 0);                                   \
    int bad = vg_opt_step##S(VG_OPT_ADAM, W, G, S1, S2, nout * nin, h, t, old);                 \
    vg_pack_t##S(W, nout, nin, Wt, ldw);                                                        \
    return bad;                                                                                 \
}                                                                                               \
int vg_adam_t##S(T *W, T *G, T *S1, T *S2, int64_t nout, int64_t nin, const double *h,         \
                 int64_t t, double l2, T *old, T *Wt, int64_t ldw)                              \
    { VG_PICK(adam_t, S, (W, G, S1, S2, nout, nin, h, t, l2, old, Wt, ldw)); }
VG_ADAM_T(double, _d)
VG_ADAM_T(float, _f)

/* Adam's step on the first layer (vg_adam_t's, without the transposed copy) with the weight
 * gradient G = alpha D^T X[idx] summed from the sparse kernels' tile lists as
 * vg_l0_wgrad_sparse sums it, on W^0 and its two moments kept transposed: Wt, Mt, Vt (nin x ldw,
 * the forward product's layout; columns nout .. ldw are not touched). The AVX-512 kernel takes
 * each tile's sums from its registers into the step (G is not written); the portable loops form
 * G in G (nout x nin scratch) first. Returns 1 if a value written is not finite. */
#define VG_SWADAM(T, S, SQRT)                                                                   \
static int swadam_portable##S(const int64_t *cnt, const int32_t *trow, const T *tval,          \
                              int64_t m, int64_t nin, const T *D, int64_t nout, T alpha,        \
                              T *Wt, T *Mt, T *Vt, int64_t ldw, const double *h, int64_t t,     \
                              double l2, T *G) {                                                \
    adam_k##S k;                                                                                \
    adam_consts##S(h, t, l2, &k);                                                               \
    swgrad_portable##S(cnt, trow, tval, m, nin, D, nout, alpha, 0, G);                          \
    int bad = 0;                                                                                \
    for (int64_t q = 0; q < nin; q++)                                                           \
        for (int64_t j = 0; j < nout; j++) {                                                    \
            const int64_t o = q * ldw + j;                                                      \
            T w = Wt[o], g = G[j * nin + q];                                                    \
            if (k.has_l2) g += k.l2 * w;                                                        \
            if (k.decay) w *= k.f;                                                              \
            const T mo = k.b1 * Mt[o] + k.c1 * g, v = k.b2 * Vt[o] + k.c2 * g * g;              \
            T r = SQRT(v);                                                                      \
            if (!k.eps_hat) r = r / k.bc2s;                                                     \
            w -= k.step * mo / (r + k.eps);                                                     \
            Mt[o] = mo;                                                                         \
            Vt[o] = v;                                                                          \
            Wt[o] = w;                                                                          \
            bad |= !isfinite(w) || !isfinite(mo) || !isfinite(v);                               \
        }                                                                                       \
    return bad;                                                                                 \
}                                                                                               \
int vg_swgrad_adam##S(const int64_t *cnt, const int32_t *trow, const T *tval, int64_t m,       \
                      int64_t nin, const T *D, int64_t nout, T alpha, T *Wt, T *Mt, T *Vt,      \
                      int64_t ldw, const double *h, int64_t t, double l2, T *G)                 \
    { VG_PICK(swadam, S, (cnt, trow, tval, m, nin, D, nout, alpha, Wt, Mt, Vt, ldw, h, t, l2, G)); }
VG_SWADAM(double, _d, sqrt)
VG_SWADAM(float, _f, sqrtf)
#undef VG_SWADAM
