/* vgfast C99 kernels: elementwise work of the engine. No Python, no BLAS.
 *
 * Every kernel exists twice, suffixed _d (double) and _f (float); the bodies
 * are written once in vg_kernels_impl.h and instantiated by vg_kernels.c.
 * Matrices are row-major, examples are rows.
 */
#ifndef VG_KERNELS_H
#define VG_KERNELS_H
#include <stdint.h>

/* activation codes (hidden and output layers) */
enum {
    VG_SIGMOID = 0, VG_TANH = 1, VG_RELU = 2, VG_LEAKY_RELU = 3, VG_LINEAR = 4,
    VG_SOFTMAX = 5, VG_ABS = 6, VG_ELU = 7, VG_SOFTPLUS = 8
};
/* cost codes */
enum { VG_CROSS_ENTROPY = 0, VG_LOG_LIKELIHOOD = 1, VG_QUADRATIC = 2 };
/* optimiser codes */
enum { VG_OPT_SGD = 0, VG_OPT_ADAGRAD = 1, VG_OPT_RMSPROP = 2, VG_OPT_ADAM = 3 };

/* instruction sets of the dispatched kernels (vg_set_isa) */
enum { VG_ISA_BASELINE = 0, VG_ISA_AVX2 = 1, VG_ISA_AVX512 = 2 };

#define VG_DECLARE(T, S)                                                                  \
void vg_bias_act##S(T *z, T *a, T *s, const T *b, int64_t m, int64_t n, int act, T alpha); \
void vg_mul_deriv##S(T *d, const T *s, int64_t len);                                      \
double vg_maxabs##S(const T *x, int64_t len);                                             \
double vg_output_delta##S(T *d, const T *z, const T *a, const T *s, const T *y,           \
                          const int64_t *lab, int64_t m, int64_t n, int act, int cost,    \
                          int64_t *correct);                                              \
void vg_colsum##S(const T *d, int64_t m, int64_t n, T scale, T *out, int accumulate);     \
double vg_sumsq##S(const T *x, int64_t len);                                              \
void vg_rows_sumsq##S(const T *x, int64_t m, int64_t n, double *out);                      \
void vg_square##S(T *x, int64_t len);                                                      \
double vg_norm2##S(const T *x, int64_t len);                                              \
double vg_gather_rows##S(const T *src, const int64_t *idx, int64_t m, int64_t n, T *dst, double *rowsq); \
void vg_prefetch_rows##S(const T *src, const int64_t *idx, int64_t m, int64_t n);            \
void vg_add_l2_l1##S(T *g, const T *w, int64_t len, T l2, T l1);                          \
void vg_scale##S(T *x, int64_t len, T s);                                                 \
void vg_clip_value##S(T *x, int64_t len, T c);                                            \
int vg_opt_step##S(int kind, T *p, const T *g, T *s1, T *s2, int64_t len, const double *h, \
                   int64_t t, T *old);                                                    \
void vg_dropout##S(T *a, int64_t len, double keep, uint64_t seed, uint64_t counter);      \
void vg_max_norm##S(T *w, int64_t n_out, int64_t n_in, T c);                              \
void vg_momentum_apply##S(T *w, T *v, int64_t len, T lr, T l2, T f);                      \
void vg_sgd_apply##S(T *w, const T *g, T *v, int64_t len, T lr, T l2, T mu, T f, int nesterov, const T *w0, double *sums); \
void vg_act_stats##S(const T *a, int64_t m, int64_t n, int act, double *out);               \
double vg_gsnr_sum##S(const T *g, const T *q, int64_t len, double eps);                     \
double vg_diff_sumsq##S(const T *x, const T *y, int64_t len);                               \
int vg_nonfinite##S(const T *x, int64_t len);                                               \
void vg_bn_forward##S(T *z, T *xhat, const T *b, const T *gamma, const T *beta, int64_t m,   \
                      int64_t n, double eps, T *mu, T *invstd, int mode, T *run_mean,        \
                      T *run_var, double momentum);                                         \
void vg_bn_backward##S(T *d, const T *xhat, const T *gamma, const T *invstd, int64_t m,      \
                       int64_t n, double gscale, T *dgamma, T *dbeta, int accumulate,        \
                       int batch_stats);

VG_DECLARE(double, _d)
VG_DECLARE(float, _f)

void vg_philox4x32(uint64_t seed, uint64_t block, uint32_t out[4]);
uint32_t vg_random_word(uint64_t seed, uint64_t c);
/* the widest instruction set this CPU runs; select one (clamped to that; -1: the widest) */
int vg_isa_supported(void);
int vg_set_isa(int level);
int vg_get_isa(void);

/* the first layer read through the row indices (vg_direct.c): 1 when the AVX-512 kernels run */
int vg_direct_available(void);
void vg_pack_t_d(const double *W, int64_t nout, int64_t nin, double *Wt, int64_t ldw);
void vg_pack_t_f(const float *W, int64_t nout, int64_t nin, float *Wt, int64_t ldw);
void vg_unpack_t_d(const double *Wt, int64_t ldw, int64_t nout, int64_t nin, double *W);
void vg_unpack_t_f(const float *Wt, int64_t ldw, int64_t nout, int64_t nin, float *W);
double vg_l0_forward_d(const double *X, const int64_t *idx, int64_t m, int64_t nin,
                       const double *Wt, int64_t ldw, double *Z, int64_t nout);
double vg_l0_forward_f(const float *X, const int64_t *idx, int64_t m, int64_t nin,
                       const float *Wt, int64_t ldw, float *Z, int64_t nout);
void vg_l0_wgrad_d(const double *X, const int64_t *idx, int64_t m, int64_t nin, const double *D,
                   int64_t nout, double alpha, double beta, double *G);
void vg_l0_wgrad_f(const float *X, const int64_t *idx, int64_t m, int64_t nin, const float *D,
                   int64_t nout, float alpha, float beta, float *G);
void vg_wgrad_sgd_d(const double *X, const int64_t *idx, int64_t m, int64_t nin, const double *D,
                    int64_t nout, double alpha, double *W, double *V, double lr, double l2,
                    double mu, double f, int nesterov);
void vg_wgrad_sgd_f(const float *X, const int64_t *idx, int64_t m, int64_t nin, const float *D,
                    int64_t nout, float alpha, float *W, float *V, float lr, float l2, float mu,
                    float f, int nesterov);
extern int64_t vg_sparse_group_rows;
void vg_l0_sparse_sizes(int64_t m, int64_t nin, int64_t *sizes);
double vg_l0_forward_sparse_d(const double *X, const int64_t *idx, int64_t m, int64_t nin,
                              const double *Wt, int64_t ldw, double *Z, int64_t nout,
                              int64_t *cnt, int32_t *trow, double *tval);
double vg_l0_forward_sparse_f(const float *X, const int64_t *idx, int64_t m, int64_t nin,
                              const float *Wt, int64_t ldw, float *Z, int64_t nout,
                              int64_t *cnt, int32_t *trow, float *tval);
int64_t vg_tile_rows_d(const double *X, int64_t n, int64_t nin, int64_t *rp, int32_t *rt,
                       double *rv, double *rmax);
int64_t vg_tile_rows_f(const float *X, int64_t n, int64_t nin, int64_t *rp, int32_t *rt,
                       float *rv, double *rmax);
double vg_l0_forward_tiles_d(const int64_t *rp, const int32_t *rt, const double *rv,
                             const double *rmax, const int64_t *idx, int64_t m, int64_t nin,
                             const double *Wt, int64_t ldw, double *Z, int64_t nout,
                             int64_t *cnt, int32_t *trow, double *tval);
double vg_l0_forward_tiles_f(const int64_t *rp, const int32_t *rt, const float *rv,
                             const double *rmax, const int64_t *idx, int64_t m, int64_t nin,
                             const float *Wt, int64_t ldw, float *Z, int64_t nout,
                             int64_t *cnt, int32_t *trow, float *tval);
void vg_l0_wgrad_sparse_d(const int64_t *cnt, const int32_t *trow, const double *tval, int64_t m,
                          int64_t nin, const double *D, int64_t nout, double alpha, double beta,
                          double *G);
void vg_l0_wgrad_sparse_f(const int64_t *cnt, const int32_t *trow, const float *tval, int64_t m,
                          int64_t nin, const float *D, int64_t nout, float alpha, float beta,
                          float *G);
int vg_adam_t_d(double *W, double *G, double *S1, double *S2, int64_t nout, int64_t nin,
                const double *h, int64_t t, double l2, double *old, double *Wt, int64_t ldw);
int vg_adam_t_f(float *W, float *G, float *S1, float *S2, int64_t nout, int64_t nin,
                const double *h, int64_t t, double l2, float *old, float *Wt, int64_t ldw);
int vg_swgrad_adam_d(const int64_t *cnt, const int32_t *trow, const double *tval, int64_t m,
                     int64_t nin, const double *D, int64_t nout, double alpha, double *Wt,
                     double *Mt, double *Vt, int64_t ldw, const double *h, int64_t t, double l2,
                     double *G);
int vg_swgrad_adam_f(const int64_t *cnt, const int32_t *trow, const float *tval, int64_t m,
                     int64_t nin, const float *D, int64_t nout, float alpha, float *Wt,
                     float *Mt, float *Vt, int64_t ldw, const double *h, int64_t t, double l2,
                     float *G);
#endif
