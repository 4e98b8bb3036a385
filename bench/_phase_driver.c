/* Drives the engine's C kernels (csrc/vg_kernels.c) over a whole epoch's steps, one phase at a
 * time, for bench/phases.py. Built with the kernels by bench/_ckernels.py; not part of vgfast.
 * Each vgb_* runs `steps` times what the engine does per step in that phase, on the epoch's
 * shapes (sizes[0..L], batch m). Pointer arrays hold one buffer per layer. */
#include <stdint.h>
#include "vg_kernels.h"

/* vg_opt_step gained a last argument `old` (the parameters before the step, for undoing an
 * overflowing update); _ckernels.py defines VGB_OPT_OLD when the header has it. */
#ifdef VGB_OPT_OLD
#define VGB_OLD(x) , (x)
#else
#define VGB_OLD(x)
#endif

#define VGB_DRIVER(T, S)                                                                        \
void vgb_gather##S(const T *X, const int64_t *perm, int64_t steps, int64_t m, int64_t n,       \
                   T *dst) {                                                                    \
    for (int64_t s = 0; s < steps; s++) vg_gather_rows##S(X, perm + s * m, m, n, dst);         \
}                                                                                               \
/* forward activations: Z_l += b_l, A_l = sigmoid(Z_l) for every layer */                       \
void vgb_sigmoid##S(T **Z, T **A, T **b, const int64_t *sizes, int L, int64_t m,               \
                    int64_t steps) {                                                            \
    for (int64_t s = 0; s < steps; s++)                                                        \
        for (int l = 0; l < L; l++) vg_bias_act##S(Z[l], A[l], b[l], m, sizes[l + 1], 0, 0);  \
}                                                                                               \
/* output layer: sigmoid + cross-entropy delta and cost */                                     \
double vgb_out_delta##S(T *D, const T *Z, const T *A, const int64_t *lab, int64_t m,           \
                        int64_t n, int64_t steps) {                                             \
    double c = 0;                                                                               \
    for (int64_t s = 0; s < steps; s++) c += vg_output_delta##S(D, Z, A, 0, lab, m, n, 0, 0);  \
    return c;                                                                                   \
}                                                                                               \
/* backward elementwise: D_l *= sigma'(A_l) for hidden layers, column sums for every layer.   \
 * Call with A_l = 1.618034 (the golden ratio): s (1 - s) = -1 keeps D from underflowing. */    \
void vgb_bwd_elem##S(T **D, T **Z, T **A, T **gb, const int64_t *sizes, int L, int64_t m,      \
                     int64_t steps) {                                                           \
    for (int64_t s = 0; s < steps; s++) {                                                      \
        for (int l = L - 1; l >= 0; l--) {                                                     \
            vg_colsum##S(D[l], m, sizes[l + 1], (T)1 / (T)m, gb[l], 0);                        \
            if (l > 0) vg_mul_act_deriv##S(D[l - 1], Z[l - 1], A[l - 1], m * sizes[l], 0, 0, 1); \
        }                                                                                       \
    }                                                                                           \
}                                                                                               \
/* the per-step norms: sumsq of dC/dW and dC/db of every layer (flat layout) */                \
double vgb_sumsq##S(const T *grad, const int64_t *w_off, const int64_t *b_off,                 \
                    const int64_t *sizes, int L, int64_t steps) {                               \
    double t = 0;                                                                               \
    for (int64_t s = 0; s < steps; s++)                                                        \
        for (int l = 0; l < L; l++)                                                            \
            t += vg_sumsq##S(grad + w_off[l], sizes[l] * sizes[l + 1]) +                       \
                 vg_sumsq##S(grad + b_off[l], sizes[l + 1]);                                    \
    return t;                                                                                   \
}                                                                                               \
/* the update: vg_opt_step for W and b of every layer (old: as the engine passes it) */        \
int vgb_update##S(int kind, T *p, const T *g, T *s1, T *s2, const int64_t *w_off,              \
                  const int64_t *b_off, const int64_t *sizes, int L, const double *h,           \
                  int64_t steps, T *old) {                                                      \
    int bad = 0;                                                                                \
    for (int64_t s = 0; s < steps; s++)                                                        \
        for (int l = 0; l < L; l++) {                                                          \
            int64_t w = w_off[l], b = b_off[l];                                                 \
            bad |= vg_opt_step##S(kind, p + w, g + w, s1 + w, s2 + w, sizes[l] * sizes[l + 1], \
                                  h, s + 1 VGB_OLD(old ? old + w : 0));                         \
            bad |= vg_opt_step##S(kind, p + b, g + b, s1 + b, s2 + b, sizes[l + 1], h, s + 1    \
                                  VGB_OLD(old ? old + b : 0));                                  \
        }                                                                                       \
    return bad;                                                                                 \
}

VGB_DRIVER(double, _d)
VGB_DRIVER(float, _f)
