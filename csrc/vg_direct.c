/* The first layer read through the permutation (vg_direct_impl.h): AVX-512 kernels for double and
 * float, chosen at run time like the other kernels (vg_get_isa() == VG_ISA_AVX512), and portable
 * loops for every other machine or instruction set, which compute the same products. */
#include <stdint.h>
#include <string.h>
#include <math.h>
#include <float.h>
#include "vg_kernels.h"

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
#define V_STOREU(p, v) _mm512_storeu_pd(p, v)
#define V_MASK_STOREU(p, k, v) _mm512_mask_storeu_pd(p, k, v)
#define VINT __m512i
#define UINT uint64_t
#define MAX_BITS 0x7FEFFFFFFFFFFFFFull
#define V_ABSBITS_MAX(m, x) _mm512_max_epu64(m, _mm512_and_si512(_mm512_castpd_si512(x), \
    _mm512_set1_epi64(0x7FFFFFFFFFFFFFFFll)))
#define V_NONZERO(v) _mm512_cmp_pd_mask(v, _mm512_setzero_pd(), _CMP_NEQ_UQ)
#define V_COMPRESS(k, v) _mm512_maskz_compress_pd(k, v)
#define V_IDX(k) _mm256_add_epi32(_mm256_set1_epi32((int)(k)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define V_COMPRESS_IDX(k, v) _mm256_maskz_compress_epi32(k, v)
#define V_STORE_IDX(p, v) _mm256_storeu_si256((__m256i *)(p), v)
#include "vg_direct_impl.h"
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
#undef V_STOREU
#undef V_MASK_STOREU
#undef V_ABSBITS_MAX
#undef V_NONZERO
#undef V_COMPRESS
#undef V_IDX
#undef V_COMPRESS_IDX
#undef V_STORE_IDX
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
#define V_STOREU(p, v) _mm512_storeu_ps(p, v)
#define V_MASK_STOREU(p, k, v) _mm512_mask_storeu_ps(p, k, v)
#define UINT uint32_t
#define MAX_BITS 0x7F7FFFFFu
#define V_ABSBITS_MAX(m, x) _mm512_max_epu32(m, _mm512_and_si512(_mm512_castps_si512(x), \
    _mm512_set1_epi32(0x7FFFFFFF)))
#define V_NONZERO(v) _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_NEQ_UQ)
#define V_COMPRESS(k, v) _mm512_maskz_compress_ps(k, v)
#define V_IDX(k) _mm512_add_epi32(_mm512_set1_epi32((int)(k)), _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15))
#define V_COMPRESS_IDX(k, v) _mm512_maskz_compress_epi32(k, v)
#define V_STORE_IDX(p, v) _mm512_storeu_si512((void *)(p), v)
#include "vg_direct_impl.h"
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
void vg_pack_t##S(const T *W, int64_t nout, int64_t nin, T *Wt, int64_t ldw) {                 \
    for (int64_t k = 0; k < nin; k++) {                                                         \
        for (int64_t j = 0; j < nout; j++) Wt[k * ldw + j] = W[j * nin + k];                    \
        for (int64_t j = nout; j < ldw; j++) Wt[k * ldw + j] = 0;                              \
    }                                                                                           \
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

#define VG_SPARSE_PORTABLE(T, S, TMAX)                                                          \
static double compress_portable##S(const T *X, const int64_t *idx, int64_t m, int64_t nin,     \
                                   T *vals, int32_t *cols, int64_t *ptr) {                     \
    double mx = 0;                                                                              \
    int64_t pos = ptr[0];                                                                       \
    for (int64_t i = 0; i < m; i++) {                                                           \
        const T *x = X + idx[i] * nin;                                                          \
        for (int64_t k = 0; k < nin; k++) {                                                     \
            double a = fabs((double)x[k]);                                                      \
            if (!(a <= (double)TMAX)) mx = -1;                                                  \
            else if (mx >= 0 && a > mx) mx = a;                                                 \
            if (x[k] != 0) { vals[pos] = x[k]; cols[pos] = (int32_t)k; pos++; }                \
        }                                                                                       \
        ptr[i + 1] = pos;                                                                       \
    }                                                                                           \
    return mx;                                                                                  \
}                                                                                               \
static void sfwd_portable##S(const T *vals, const int32_t *cols, const int64_t *ptr, int64_t m, \
                             const T *Wt, int64_t ldw, T *Z, int64_t nout) {                    \
    for (int64_t i = 0; i < m; i++) {                                                           \
        T *z = Z + i * nout;                                                                    \
        for (int64_t j = 0; j < nout; j++) z[j] = 0;                                            \
        for (int64_t p = ptr[i]; p < ptr[i + 1]; p++)                                           \
            for (int64_t j = 0; j < nout; j++) z[j] += vals[p] * Wt[cols[p] * ldw + j];         \
    }                                                                                           \
}                                                                                               \
static void swgrad_portable##S(const T *vals, const int32_t *cols, const int64_t *ptr,          \
                               int64_t m, int64_t nin, const T *D, int64_t nout, T alpha,       \
                               T beta, T *G, T *Gt, int64_t ldw, int64_t *iwork, int32_t *crow,  \
                               T *cval) {                                                       \
    (void)iwork; (void)crow; (void)cval;                                                        \
    memset(Gt, 0, (size_t)(nin * ldw) * sizeof(T));                                            \
    for (int64_t i = 0; i < m; i++)                                                             \
        for (int64_t p = ptr[i]; p < ptr[i + 1]; p++)                                           \
            for (int64_t j = 0; j < nout; j++) Gt[cols[p] * ldw + j] += vals[p] * D[i * nout + j]; \
    for (int64_t j = 0; j < nout; j++)                                                          \
        for (int64_t k = 0; k < nin; k++) {                                                     \
            T v = alpha * Gt[k * ldw + j];                                                      \
            G[j * nin + k] = beta != 0 ? v + beta * G[j * nin + k] : v;                          \
        }                                                                                       \
}

VG_SPARSE_PORTABLE(double, _d, DBL_MAX)
VG_SPARSE_PORTABLE(float, _f, FLT_MAX)

/* The batch's rows X[idx[0..m)) as nonzero values and columns (vals, cols from position ptr[0];
 * ptr[1..m] the ends of the rows; LANES entries of slack needed past the end): returns max |x|
 * over the rows, -1 if one is NaN or Inf */
double vg_l0_compress_d(const double *X, const int64_t *idx, int64_t m, int64_t nin, double *vals,
                        int32_t *cols, int64_t *ptr) { VG_PICK(compress, _d, (X, idx, m, nin, vals, cols, ptr)); }
double vg_l0_compress_f(const float *X, const int64_t *idx, int64_t m, int64_t nin, float *vals,
                        int32_t *cols, int64_t *ptr) { VG_PICK(compress, _f, (X, idx, m, nin, vals, cols, ptr)); }
/* Z = (compressed rows) W^T */
void vg_l0_forward_sparse_d(const double *vals, const int32_t *cols, const int64_t *ptr, int64_t m,
                            const double *Wt, int64_t ldw, double *Z, int64_t nout)
    { VG_PICKV(sfwd, _d, (vals, cols, ptr, m, Wt, ldw, Z, nout)); }
void vg_l0_forward_sparse_f(const float *vals, const int32_t *cols, const int64_t *ptr, int64_t m,
                            const float *Wt, int64_t ldw, float *Z, int64_t nout)
    { VG_PICKV(sfwd, _f, (vals, cols, ptr, m, Wt, ldw, Z, nout)); }
/* G = alpha D^T (compressed rows) + beta G. Scratch: Gt (nin x ldw), iwork (2 nin + 2),
 * crow and cval (as many as the nonzeros) */
void vg_l0_wgrad_sparse_d(const double *vals, const int32_t *cols, const int64_t *ptr, int64_t m,
                          int64_t nin, const double *D, int64_t nout, double alpha, double beta,
                          double *G, double *Gt, int64_t ldw, int64_t *iwork, int32_t *crow,
                          double *cval)
    { VG_PICKV(swgrad, _d, (vals, cols, ptr, m, nin, D, nout, alpha, beta, G, Gt, ldw, iwork, crow, cval)); }
void vg_l0_wgrad_sparse_f(const float *vals, const int32_t *cols, const int64_t *ptr, int64_t m,
                          int64_t nin, const float *D, int64_t nout, float alpha, float beta,
                          float *G, float *Gt, int64_t ldw, int64_t *iwork, int32_t *crow,
                          float *cval)
    { VG_PICKV(swgrad, _f, (vals, cols, ptr, m, nin, D, nout, alpha, beta, G, Gt, ldw, iwork, crow, cval)); }
