# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""The compiled engine: forward, backward, recording and update for a whole epoch in one call.

This module knows nothing of users: it trusts that network.py / train.py validated every
argument (dtypes, contiguity, shapes, finiteness, ranges). Everything here runs without the GIL.

Data layout (see DESIGN.md): parameters are one flat buffer, layer by layer W (n_out, n_in)
row-major then b (n_out,). Examples are rows. The workspace holds, for a batch of m rows,
A_0 .. A_L (activations, A_0 the gathered input), Z_1 .. Z_L (pre-activations) and
D_1 .. D_L (dC/dZ for the batch) plus the gathered targets.
"""
import os

import numpy as np
cimport numpy as cnp
from cython cimport floating
from libc.stdint cimport int32_t, int64_t, uint64_t, uint32_t
from libc.math cimport sqrt, isfinite, fabs, pow, INFINITY, NAN
from libc.string cimport memcpy
from vgfast._blas cimport gemm_rm

cnp.import_array()

# A large mini-batch runs forward and backward in chunks of about this many rows: each chunk's
# activations and deltas stay in cache through all the layers, and BLAS packs smaller panels
# (measured: one epoch's GEMMs at 1000 rows a call take 25% longer than at 100).
cdef int64_t CHUNK_ROWS = 128

cdef char NO = 78  # 'N': use the matrix as stored
cdef char TR = 84  # 'T': use its transpose

cdef extern from "vg_kernels.h" nogil:
    void vg_bias_act_d(double*, double*, double*, const double*, int64_t, int64_t, int, double)
    void vg_bias_act_f(float*, float*, float*, const float*, int64_t, int64_t, int, float)
    void vg_mul_deriv_d(double*, const double*, int64_t)
    void vg_mul_deriv_f(float*, const float*, int64_t)
    double vg_maxabs_d(const double*, int64_t)
    double vg_maxabs_f(const float*, int64_t)
    double vg_output_delta_d(double*, const double*, const double*, const double*, const double*,
                             const int64_t*, int64_t, int64_t, int, int, int64_t*)
    double vg_output_delta_f(float*, const float*, const float*, const float*, const float*,
                             const int64_t*, int64_t, int64_t, int, int, int64_t*)
    void vg_momentum_apply_d(double*, double*, int64_t, double, double, double)
    void vg_momentum_apply_f(float*, float*, int64_t, float, float, float)
    void vg_sgd_apply_d(double*, const double*, double*, int64_t, double, double, double,
                        double, int, const double*, double*)
    void vg_sgd_apply_f(float*, const float*, float*, int64_t, float, float, float, float, int,
                        const float*, double*)
    int vg_isa_supported()
    int vg_set_isa(int)
    int vg_get_isa()
    void vg_colsum_d(const double*, int64_t, int64_t, double, double*, int)
    void vg_colsum_f(const float*, int64_t, int64_t, float, float*, int)
    double vg_sumsq_d(const double*, int64_t)
    double vg_sumsq_f(const float*, int64_t)
    void vg_rows_sumsq_d(const double*, int64_t, int64_t, double*)
    void vg_rows_sumsq_f(const float*, int64_t, int64_t, double*)
    void vg_square_d(double*, int64_t)
    void vg_square_f(float*, int64_t)
    double vg_gather_rows_d(const double*, const int64_t*, int64_t, int64_t, double*, double*)
    double vg_gather_rows_f(const float*, const int64_t*, int64_t, int64_t, float*, double*)
    void vg_prefetch_rows_d(const double*, const int64_t*, int64_t, int64_t)
    void vg_prefetch_rows_f(const float*, const int64_t*, int64_t, int64_t)
    void vg_add_l2_l1_d(double*, const double*, int64_t, double, double)
    void vg_add_l2_l1_f(float*, const float*, int64_t, float, float)
    void vg_scale_d(double*, int64_t, double)
    void vg_scale_f(float*, int64_t, float)
    void vg_clip_value_d(double*, int64_t, double)
    void vg_clip_value_f(float*, int64_t, float)
    int vg_opt_step_d(int, double*, const double*, double*, double*, int64_t, const double*,
                      int64_t, double*)
    int vg_opt_step_f(int, float*, const float*, float*, float*, int64_t, const double*, int64_t,
                      float*)
    void vg_dropout_d(double*, int64_t, double, uint64_t, uint64_t)
    void vg_dropout_f(float*, int64_t, double, uint64_t, uint64_t)
    void vg_max_norm_d(double*, int64_t, int64_t, double)
    void vg_max_norm_f(float*, int64_t, int64_t, float)
    uint32_t vg_random_word(uint64_t, uint64_t)
    void vg_act_stats_d(const double*, int64_t, int64_t, int, double*)
    void vg_act_stats_f(const float*, int64_t, int64_t, int, double*)
    double vg_diff_sumsq_d(const double*, const double*, int64_t)
    double vg_gsnr_sum_d(const double*, const double*, int64_t, double)
    double vg_gsnr_sum_f(const float*, const float*, int64_t, double)
    double vg_diff_sumsq_f(const float*, const float*, int64_t)
    int vg_nonfinite_d(const double*, int64_t)
    double vg_norm2_d(const double*, int64_t)
    double vg_norm2_f(const float*, int64_t)
    int vg_nonfinite_f(const float*, int64_t)
    void vg_bn_forward_d(double*, double*, const double*, const double*, const double*, int64_t,
                         int64_t, double, double*, double*, int, double*, double*, double)
    void vg_bn_forward_f(float*, float*, const float*, const float*, const float*, int64_t,
                         int64_t, double, float*, float*, int, float*, float*, double)
    void vg_bn_backward_d(double*, const double*, const double*, const double*, int64_t, int64_t,
                          double, double*, double*, int, int)
    void vg_bn_backward_f(float*, const float*, const float*, const float*, int64_t, int64_t,
                          double, float*, float*, int, int)
    int vg_direct_available()
    void vg_pack_t_d(const double*, int64_t, int64_t, double*, int64_t)
    void vg_pack_t_f(const float*, int64_t, int64_t, float*, int64_t)
    double vg_l0_forward_d(const double*, const int64_t*, int64_t, int64_t, const double*, int64_t,
                           double*, int64_t)
    double vg_l0_forward_f(const float*, const int64_t*, int64_t, int64_t, const float*, int64_t,
                           float*, int64_t)
    void vg_l0_wgrad_d(const double*, const int64_t*, int64_t, int64_t, const double*, int64_t,
                       double, double, double*)
    void vg_l0_wgrad_f(const float*, const int64_t*, int64_t, int64_t, const float*, int64_t,
                       float, float, float*)
    void vg_wgrad_sgd_d(const double*, const int64_t*, int64_t, int64_t, const double*, int64_t,
                        double, double*, double*, double, double, double, double, int)
    void vg_wgrad_sgd_f(const float*, const int64_t*, int64_t, int64_t, const float*, int64_t,
                        float, float*, float*, float, float, float, float, int)
    int64_t vg_sparse_group_rows
    void vg_l0_sparse_sizes(int64_t, int64_t, int64_t*)
    double vg_l0_forward_sparse_d(const double*, const int64_t*, int64_t, int64_t, const double*,
                                  int64_t, double*, int64_t, int64_t*, int32_t*, double*)
    double vg_l0_forward_sparse_f(const float*, const int64_t*, int64_t, int64_t, const float*,
                                  int64_t, float*, int64_t, int64_t*, int32_t*, float*)
    int64_t vg_tile_rows_d(const double*, int64_t, int64_t, int64_t*, int32_t*, double*,
                           double*)
    int64_t vg_tile_rows_f(const float*, int64_t, int64_t, int64_t*, int32_t*, float*, double*)
    double vg_l0_forward_tiles_d(const int64_t*, const int32_t*, const double*, const double*,
                                 const int64_t*, int64_t, int64_t, const double*, int64_t,
                                 double*, int64_t, int64_t*, int32_t*, double*)
    double vg_l0_forward_tiles_f(const int64_t*, const int32_t*, const float*, const double*,
                                 const int64_t*, int64_t, int64_t, const float*, int64_t,
                                 float*, int64_t, int64_t*, int32_t*, float*)
    void vg_l0_wgrad_sparse_d(const int64_t*, const int32_t*, const double*, int64_t, int64_t,
                              const double*, int64_t, double, double, double*)
    void vg_l0_wgrad_sparse_f(const int64_t*, const int32_t*, const float*, int64_t, int64_t,
                              const float*, int64_t, float, float, float*)
    int vg_adam_t_d(double*, double*, double*, double*, int64_t, int64_t, const double*, int64_t,
                    double, double*, double*, int64_t)
    int vg_adam_t_f(float*, float*, float*, float*, int64_t, int64_t, const double*, int64_t,
                    double, float*, float*, int64_t)
    int vg_swgrad_adam_d(const int64_t*, const int32_t*, const double*, int64_t, int64_t,
                         const double*, int64_t, double, double*, double*, double*, int64_t,
                         const double*, int64_t, double, double*)
    int vg_swgrad_adam_f(const int64_t*, const int32_t*, const float*, int64_t, int64_t,
                         const float*, int64_t, float, float*, float*, float*, int64_t,
                         const double*, int64_t, double, float*)
    void vg_unpack_t_d(const double*, int64_t, int64_t, int64_t, double*)
    void vg_unpack_t_f(const float*, int64_t, int64_t, int64_t, float*)

# ---------------------------------------------------------------- fused dispatch to the C kernels

cdef inline void bias_act(floating* z, floating* a, floating* s, const floating* b, int64_t m,
                          int64_t n, int act, double alpha) noexcept nogil:
    if floating is double:
        vg_bias_act_d(z, a, s, b, m, n, act, alpha)
    else:
        vg_bias_act_f(z, a, s, b, m, n, act, <float>alpha)

cdef inline void mul_deriv(floating* d, const floating* s, int64_t n) noexcept nogil:
    if floating is double:
        vg_mul_deriv_d(d, s, n)
    else:
        vg_mul_deriv_f(d, s, n)

cdef inline double maxabs(const floating* x, int64_t n) noexcept nogil:
    # max |x|, or -1 when x holds NaN or Inf
    if floating is double:
        return vg_maxabs_d(x, n)
    else:
        return vg_maxabs_f(x, n)

cdef inline double output_delta(floating* d, const floating* z, const floating* a,
                                const floating* s, const floating* y, const int64_t* lab,
                                int64_t m, int64_t n, int act, int cost,
                                int64_t* correct) noexcept nogil:
    if floating is double:
        return vg_output_delta_d(d, z, a, s, y, lab, m, n, act, cost, correct)
    else:
        return vg_output_delta_f(d, z, a, s, y, lab, m, n, act, cost, correct)

cdef inline void momentum_apply(floating* w, floating* v, int64_t n, double lr, double l2,
                                double f) noexcept nogil:
    if floating is double:
        vg_momentum_apply_d(w, v, n, lr, l2, f)
    else:
        vg_momentum_apply_f(w, v, n, <float>lr, <float>l2, <float>f)

cdef inline void sgd_apply(floating* w, const floating* g, floating* v, int64_t n, double lr,
                           double l2, double mu, double f, int nesterov, const floating* w0,
                           double* sums) noexcept nogil:
    if floating is double:
        vg_sgd_apply_d(w, g, v, n, lr, l2, mu, f, nesterov, w0, sums)
    else:
        vg_sgd_apply_f(w, g, v, n, <float>lr, <float>l2, <float>mu, <float>f, nesterov, w0,
                       sums)

cdef inline void colsum(const floating* d, int64_t m, int64_t n, double scale, floating* out,
                        int acc) noexcept nogil:
    if floating is double:
        vg_colsum_d(d, m, n, scale, out, acc)
    else:
        vg_colsum_f(d, m, n, <float>scale, out, acc)

cdef inline double sumsq(const floating* x, int64_t n) noexcept nogil:
    if floating is double:
        return vg_sumsq_d(x, n)
    else:
        return vg_sumsq_f(x, n)

cdef inline double gather_rows(const floating* src, const int64_t* idx, int64_t m, int64_t n,
                               floating* dst, double* rowsq=NULL) noexcept nogil:
    # dst = src[idx]; returns max |dst|, or -1 if it holds NaN or Inf; rowsq: ||dst[i]||^2
    if floating is double:
        return vg_gather_rows_d(src, idx, m, n, dst, rowsq)
    else:
        return vg_gather_rows_f(src, idx, m, n, dst, rowsq)

cdef inline void prefetch_rows(const floating* src, const int64_t* idx, int64_t m,
                               int64_t n) noexcept nogil:
    if floating is double:
        vg_prefetch_rows_d(src, idx, m, n)
    else:
        vg_prefetch_rows_f(src, idx, m, n)

cdef inline void add_l2_l1(floating* g, const floating* w, int64_t n, double l2,
                           double l1) noexcept nogil:
    if floating is double:
        vg_add_l2_l1_d(g, w, n, l2, l1)
    else:
        vg_add_l2_l1_f(g, w, n, <float>l2, <float>l1)

cdef inline void scale(floating* x, int64_t n, double s) noexcept nogil:
    if floating is double:
        vg_scale_d(x, n, s)
    else:
        vg_scale_f(x, n, <float>s)

cdef inline void clip_value(floating* x, int64_t n, double c) noexcept nogil:
    if floating is double:
        vg_clip_value_d(x, n, c)
    else:
        vg_clip_value_f(x, n, <float>c)

cdef inline int opt_step(int kind, floating* p, const floating* g, floating* s1, floating* s2,
                         int64_t n, const double* h, int64_t t, floating* old) noexcept nogil:
    if floating is double:
        return vg_opt_step_d(kind, p, g, s1, s2, n, h, t, old)
    else:
        return vg_opt_step_f(kind, p, g, s1, s2, n, h, t, old)

cdef inline void dropout(floating* x, int64_t n, double keep, uint64_t seed,
                         uint64_t counter) noexcept nogil:
    if floating is double:
        vg_dropout_d(x, n, keep, seed, counter)
    else:
        vg_dropout_f(x, n, keep, seed, counter)

cdef inline void max_norm(floating* w, int64_t n_out, int64_t n_in, double c) noexcept nogil:
    if floating is double:
        vg_max_norm_d(w, n_out, n_in, c)
    else:
        vg_max_norm_f(w, n_out, n_in, <float>c)

cdef inline void bn_forward(floating* z, floating* xhat, const floating* b, const floating* gamma,
                            const floating* beta, int64_t m, int64_t n, double eps, floating* mu,
                            floating* invstd, int mode, floating* rm, floating* rv,
                            double momentum) noexcept nogil:
    if floating is double:
        vg_bn_forward_d(z, xhat, b, gamma, beta, m, n, eps, mu, invstd, mode, rm, rv, momentum)
    else:
        vg_bn_forward_f(z, xhat, b, gamma, beta, m, n, eps, mu, invstd, mode, rm, rv, momentum)

cdef inline void bn_backward(floating* d, const floating* xhat, const floating* gamma,
                             const floating* invstd, int64_t m, int64_t n, double gscale,
                             floating* dgamma, floating* dbeta, int acc,
                             int batch_stats) noexcept nogil:
    if floating is double:
        vg_bn_backward_d(d, xhat, gamma, invstd, m, n, gscale, dgamma, dbeta, acc, batch_stats)
    else:
        vg_bn_backward_f(d, xhat, gamma, invstd, m, n, gscale, dgamma, dbeta, acc, batch_stats)

cdef inline void act_stats(const floating* a, int64_t m, int64_t n, int act,
                           double* out) noexcept nogil:
    if floating is double:
        vg_act_stats_d(a, m, n, act, out)
    else:
        vg_act_stats_f(a, m, n, act, out)

cdef inline double norm2(const floating* x, int64_t n) noexcept nogil:
    # ||x||_2, without overflow for finite x
    if floating is double:
        return vg_norm2_d(x, n)
    else:
        return vg_norm2_f(x, n)

cdef inline int nonfinite(const floating* x, int64_t n) noexcept nogil:
    if floating is double:
        return vg_nonfinite_d(x, n)
    else:
        return vg_nonfinite_f(x, n)

cdef inline double gsnr_sum(const floating* g, const floating* q, int64_t n,
                           double eps) noexcept nogil:
    if floating is double:
        return vg_gsnr_sum_d(g, q, n, eps)
    else:
        return vg_gsnr_sum_f(g, q, n, eps)

cdef inline void rows_sumsq(const floating* x, int64_t m, int64_t n, double* out) noexcept nogil:
    if floating is double:
        vg_rows_sumsq_d(x, m, n, out)
    else:
        vg_rows_sumsq_f(x, m, n, out)

cdef inline void square(floating* x, int64_t n) noexcept nogil:
    if floating is double:
        vg_square_d(x, n)
    else:
        vg_square_f(x, n)

cdef inline double diff_sumsq(const floating* x, const floating* y, int64_t n) noexcept nogil:
    if floating is double:
        return vg_diff_sumsq_d(x, y, n)
    else:
        return vg_diff_sumsq_f(x, y, n)

# ---------------------------------------------------------------- the plan of one network

# The first layer read where its rows lie (csrc/vg_direct.c) when the batch has at least this
# many rows: below it, transposing W^0 every step costs more than the gather it saves.
cdef int64_t DIRECT_MIN_ROWS = 64
# ... and when W^0 has at most this many rows (vectors of 8 doubles / 16 floats): one register
# tile of the forward kernel covers them (wider layers measured no faster than BLAS)
cdef int64_t DIRECT_MAX_VECTORS = 4
cdef bint _direct_on = True
cdef bint _sparse_on = True
# Engine.tile_rows builds TileRows (switched off by tests and benchmarks: _set_tiles)
cdef bint _tiles_on = True
cdef bint _adam_t_on = True
# ... and with the sparse first layer, the same step from the weight gradient's registers on W^0
# and its moments kept transposed (vg_swgrad_adam; switched by tests and benchmarks:
# _set_swgrad_adam)
cdef bint _swgrad_adam_on = True
# SGD steps whose gradient only the step reads take it from the registers (vg_wgrad_sgd; tests
# and benchmarks switch it: _set_wgrad_sgd)
cdef bint _wgrad_sgd_on = True
# Inputs judged sparse (at most this fraction nonzero over the first rows) go through the sparse
# kernels (float64; float32 when the first layer is too wide for the dense kernels)
cdef double SPARSE_MAX_DENSITY = 0.3
cdef int64_t SPARSE_PROBE_ROWS = 256
# ... when a chunk holds at most this many rows (its nonzeros are kept while it computes)
cdef int64_t SPARSE_MAX_ROWS = 1024
# ... which take a batch in chunks of up to this many rows: their operands stay in cache for the
# chunk, and each chunk writes the whole weight gradient (measured: at batch 200, one chunk of
# 200 rows against two of 100, see bench/README.md)
cdef int64_t SPARSE_CHUNK_ROWS = 256


cdef struct Plan:
    int L                   # number of weight layers
    const int64_t* sizes    # L + 1
    const int64_t* w_off    # L: offset of W^l in the flat parameters
    const int64_t* b_off    # L: offset of b^l
    const int* act          # L: activation code of each layer (the last is the output's)
    const double* alpha     # L: slope parameter of each layer's activation
    int cost
    const int64_t* a_off    # L + 1: offsets of A_0 .. A_L in the workspace
    const int64_t* z_off    # L + 1: offsets of Z_l (entry 0 unused)
    const int64_t* d_off    # L + 1: offsets of D_l (entry 0 unused)
    const int64_t* s_off    # L + 1: offsets of S_l = f'(Z_l) (entry 0 unused)
    int64_t y_off           # offset of the gathered targets
    const double* keep      # L: keep probability applied to A_l (l = 0 input, then hidden)
    uint64_t* counters      # L: dropout counter used for A_l in the current step
    uint64_t seed
    int64_t n_params        # length of the flat parameters (W, b of every layer, then BN)
    const int* bn           # L: 1 if layer l's pre-activations are batch-normalised
    const int64_t* g_off    # L: offset of gamma^l in the parameters (beta^l follows it)
    const int64_t* r_off    # L: offset of the running mean in `running` (the variance follows)
    const int64_t* xh_off   # L: offset of xhat^l in the workspace
    const int64_t* st_off   # L: offset of the batch mean, then 1/std, in the workspace
    void* running           # running statistics buffer (the params' dtype)
    int64_t n_running       # its length
    int bn_mode             # 0 running statistics, 1 batch statistics, 2 batch + update running
    double bn_eps, bn_momentum
    # the first layer read through the row indices (epoch() only; NULL everywhere else):
    const void* dx          # X, when the epoch may read it directly
    const int64_t* didx     # this step's row indices when it does (else NULL)
    void* wt                # W^0 transposed, sizes[0] x ldw, zero padded (the params' dtype)
    int64_t ldw
    # W^0's Adam moments in wt's layout, and what wt, mt, vt hold in place of the flat
    # parameters and optimiser state: 0 nothing, 1 W^0 and its moments, 2 the moments alone
    # (epoch(): the sparse weight gradient's Adam step, swgrad_adam, works on these; t0_sync
    # writes them back; between epochs the Engine may hold the moments, see held)
    void* mt
    void* vt
    int t0_live
    int64_t n_fused0        # epoch(): the steps that took it
    int sparse              # mostly-zero rows: compressed to their nonzeros first
    int64_t chunk_rows      # epoch(): a larger batch goes in chunks of at most this many rows
    # the sparse kernels' operands for one chunk (csrc/vg_direct_impl.h; sizes from
    # sparse_buffers): each tile's count of listed rows, the rows and their values
    int64_t* tcnt
    int32_t* trow
    void* tval
    # X's rows compacted once (TileRows, vg_tile_rows): when set, the sparse forward product
    # reads these instead of X (NULL: it scans X's rows)
    const int64_t* xrp
    const int32_t* xrt
    const void* xrv
    const double* xrmax


cdef inline void pack_t(const floating* w, int64_t nout, int64_t nin, floating* wt,
                        int64_t ldw) noexcept nogil:
    if floating is double:
        vg_pack_t_d(w, nout, nin, wt, ldw)
    else:
        vg_pack_t_f(w, nout, nin, wt, ldw)

cdef inline double l0_forward(const floating* X, const int64_t* idx, int64_t m, int64_t nin,
                              const floating* wt, int64_t ldw, floating* z,
                              int64_t nout) noexcept nogil:
    if floating is double:
        return vg_l0_forward_d(X, idx, m, nin, wt, ldw, z, nout)
    else:
        return vg_l0_forward_f(X, idx, m, nin, wt, ldw, z, nout)

cdef inline double l0_forward_rows(Plan* p, const floating* X, int64_t r0, int64_t m,
                                   floating* z) noexcept nogil:
    """Z of the first layer for the batch's rows r0 .. r0 + m, read through p.didx (sparse
    rows: one pass computes it and builds the weight gradient's operands, see
    csrc/vg_direct_impl.h): returns max |x| or -1."""
    cdef double md
    if not p.sparse:
        return l0_forward(X, p.didx + r0, m, p.sizes[0], <const floating*>p.wt, p.ldw, z,
                          p.sizes[1])
    if p.xrp != NULL:
        if floating is double:
            return vg_l0_forward_tiles_d(p.xrp, p.xrt, <const double*>p.xrv, p.xrmax,
                                         p.didx + r0, m, p.sizes[0], <const double*>p.wt,
                                         p.ldw, z, p.sizes[1], p.tcnt, p.trow, <double*>p.tval)
        else:
            return vg_l0_forward_tiles_f(p.xrp, p.xrt, <const float*>p.xrv, p.xrmax,
                                         p.didx + r0, m, p.sizes[0], <const float*>p.wt,
                                         p.ldw, z, p.sizes[1], p.tcnt, p.trow, <float*>p.tval)
    if floating is double:
        md = vg_l0_forward_sparse_d(X, p.didx + r0, m, p.sizes[0], <const double*>p.wt, p.ldw, z,
                                    p.sizes[1], p.tcnt, p.trow, <double*>p.tval)
    else:
        md = vg_l0_forward_sparse_f(X, p.didx + r0, m, p.sizes[0], <const float*>p.wt, p.ldw, z,
                                    p.sizes[1], p.tcnt, p.trow, <float*>p.tval)
    return md

cdef inline void l0_wgrad(Plan* p, int64_t r0, int64_t m, const floating* d, double alpha,
                          double beta, floating* g) noexcept nogil:
    """g = alpha D^T X[rows r0 .. r0 + m] + beta g for the first layer read directly (sparse:
    from the operands that l0_forward_rows built for this chunk)."""
    cdef int64_t nin = p.sizes[0], nout = p.sizes[1]
    if p.sparse:
        if floating is double:
            vg_l0_wgrad_sparse_d(p.tcnt, p.trow, <const double*>p.tval, m, nin, d, nout, alpha,
                                 beta, g)
        else:
            vg_l0_wgrad_sparse_f(p.tcnt, p.trow, <const float*>p.tval, m, nin, d, nout,
                                 <float>alpha, <float>beta, g)
    elif floating is double:
        vg_l0_wgrad_d(<const double*>p.dx, p.didx + r0, m, nin, d, nout, alpha, beta, g)
    else:
        vg_l0_wgrad_f(<const float*>p.dx, p.didx + r0, m, nin, d, nout, <float>alpha,
                      <float>beta, g)


cdef inline int adam_t(Plan* p, floating* w, floating* g, floating* s1, floating* s2,
                       const double* h, int64_t t, double l2, floating* old) noexcept nogil:
    """Adam's step on W^0 (L2 term added to g first) that also leaves W^0's new transpose in
    p.wt for the next step's forward product (vg_adam_t): returns 1 if a value is not finite."""
    if floating is double:
        return vg_adam_t_d(w, g, s1, s2, p.sizes[1], p.sizes[0], h, t, l2, old,
                           <double*>p.wt, p.ldw)
    else:
        return vg_adam_t_f(w, g, s1, s2, p.sizes[1], p.sizes[0], h, t, l2, old,
                           <float*>p.wt, p.ldw)


cdef inline int swgrad_adam(Plan* p, floating* ws, int64_t m, const double* h, int64_t t,
                            double l2, floating* g) noexcept nogil:
    """adam_t's step on W^0 with dC/dW^0 = D_1^T X[rows] / m summed by the sparse kernels from
    this step's tile lists, on wt, mt, vt (W^0 and its moments transposed; g: scratch for the
    portable loops): returns 1 if a value is not finite."""
    if floating is double:
        return vg_swgrad_adam_d(p.tcnt, p.trow, <const double*>p.tval, m, p.sizes[0],
                                ws + p.d_off[1], p.sizes[1], 1.0 / m, <double*>p.wt,
                                <double*>p.mt, <double*>p.vt, p.ldw, h, t, l2, g)
    else:
        return vg_swgrad_adam_f(p.tcnt, p.trow, <const float*>p.tval, m, p.sizes[0],
                                ws + p.d_off[1], p.sizes[1], <float>(1.0 / m), <float*>p.wt,
                                <float*>p.mt, <float*>p.vt, p.ldw, h, t, l2, g)


cdef inline void t0_sync(Plan* p, floating* params, floating* s1, floating* s2,
                         bint moments=True) noexcept nogil:
    """What wt, mt, vt hold in place of the flat arrays (p.t0_live 1: W^0 and its Adam
    moments, 2: the moments alone) written back into the flat parameters and optimiser state:
    all of it (t0_live becomes 0), or W^0 alone when not moments (t0_live becomes 2)."""
    cdef int64_t nout = p.sizes[1], nin = p.sizes[0], w0 = p.w_off[0]
    if p.t0_live == 1:
        if floating is double:
            vg_unpack_t_d(<double*>p.wt, p.ldw, nout, nin, params + w0)
        else:
            vg_unpack_t_f(<float*>p.wt, p.ldw, nout, nin, params + w0)
        p.t0_live = 2
    if p.t0_live == 2 and moments:
        if floating is double:
            vg_unpack_t_d(<double*>p.mt, p.ldw, nout, nin, s1 + w0)
            vg_unpack_t_d(<double*>p.vt, p.ldw, nout, nin, s2 + w0)
        else:
            vg_unpack_t_f(<float*>p.mt, p.ldw, nout, nin, s1 + w0)
            vg_unpack_t_f(<float*>p.vt, p.ldw, nout, nin, s2 + w0)
        p.t0_live = 0


def sparse_buffers(int64_t m, int64_t nin, dtype):
    """The sparse first-layer kernels' scratch for chunks of up to m rows (tcnt, trow, tval;
    csrc/vg_direct.c's vg_l0_sparse_sizes)."""
    cdef int64_t n[3]
    vg_l0_sparse_sizes(m, nin, n)
    return np.zeros(n[0], np.int64), np.zeros(n[1], np.int32), np.zeros(n[2], dtype)


cdef void point_tiles(Plan* p, TileRows t):
    """p's compacted-row pointers into t (the sparse forward product then reads these)."""
    p.xrp = <int64_t*>ptr(t.rp)
    p.xrt = <int32_t*>ptr(t.rt)
    p.xrv = ptr(t.rv)
    p.xrmax = <double*>ptr(t.rmax)


cdef void point_sparse(Plan* p, tuple bufs):
    """p's sparse operand pointers into the arrays of sparse_buffers()."""
    p.tcnt = <int64_t*>ptr(bufs[0])
    p.trow = <int32_t*>ptr(bufs[1])
    p.tval = ptr(bufs[2])

cdef inline void assign_counters(Plan* p, int64_t m, uint64_t* counter) noexcept nogil:
    """Dropout: the counter where each layer's mask starts for a batch of m rows (the mask of
    A_l's element k is the Philox word of counters[l] + k), then advance the global counter."""
    cdef int l
    for l in range(p.L):
        if p.keep[l] < 1.0:
            p.counters[l] = counter[0]
            counter[0] += <uint64_t>(m * p.sizes[l])


cdef void forward(Plan* p, const floating* params, floating* ws, int64_t m, bint dropping,
                  double* stats=NULL, bint deriv=False, int64_t r0=0) noexcept nogil:
    """Rows r0 .. r0 + m of the batch: A_0 is in place; compute Z_l, A_l for l = 1..L, with
    dropout on A_0..A_{L-1} when dropping (masks from p.counters, see assign_counters).

    deriv: also S_l = f'(Z_l), for a backward pass (taken before dropout: the true derivative).
    stats, when given, accumulates vg_act_stats of each A_{l+1} (4 numbers per layer), taken
    before dropout.
    """
    cdef int l
    cdef int64_t nin, nout
    cdef floating* A
    cdef floating* Z
    cdef floating* S
    for l in range(p.L):
        nin = p.sizes[l]
        nout = p.sizes[l + 1]
        A = ws + p.a_off[l] + r0 * nin
        if dropping and p.keep[l] < 1.0:
            dropout(A, m * nin, p.keep[l], p.seed, p.counters[l] + <uint64_t>(r0 * nin))
        Z = ws + p.z_off[l + 1] + r0 * nout
        S = ws + p.s_off[l + 1] + r0 * nout if deriv else NULL
        # Z = A @ W.T  (for l = 0 read directly, Z is already there: see epoch())
        if l > 0 or p.didx == NULL:
            gemm_rm(NO, TR, <int>m, <int>nout, <int>nin, <floating>1, A, <int>nin,
                    params + p.w_off[l], <int>nin, <floating>0, Z, <int>nout)
        if p.bn[l]:
            # Z <- gamma * (Z + b - mean) / std + beta; A_{l+1} = f(Z)  (never chunked: r0 = 0)
            bn_forward(Z, ws + p.xh_off[l], params + p.b_off[l], params + p.g_off[l],
                       params + p.g_off[l] + nout, m, nout, p.bn_eps, ws + p.st_off[l],
                       ws + p.st_off[l] + nout, p.bn_mode, <floating*>p.running + p.r_off[l],
                       <floating*>p.running + p.r_off[l] + nout, p.bn_momentum)
            bias_act(Z, ws + p.a_off[l + 1] + r0 * nout, S, <floating*>NULL, m, nout, p.act[l],
                     p.alpha[l])
        else:
            # Z += b; A_{l+1} = f(Z); S = f'(Z)
            bias_act(Z, ws + p.a_off[l + 1] + r0 * nout, S, params + p.b_off[l], m, nout,
                     p.act[l], p.alpha[l])
        if stats != NULL:
            act_stats(ws + p.a_off[l + 1] + r0 * nout, m, nout, p.act[l], stats + 4 * l)


cdef double deltas(Plan* p, const floating* params, floating* ws, floating* grad, int64_t m,
                   const floating* y, const int64_t* lab, double gscale, int acc,
                   bint dropping, int64_t* correct, int64_t r0=0) noexcept nogil:
    """After forward(deriv=True), for rows r0 .. r0 + m of the batch (y, lab: those rows'
    targets): every D_l = dC/dZ_l, from the output down, with W unchanged.

    D_L from the cost; D_l = (D_{l+1} @ W^{l+1}) * f'(Z_l), the dropout mask applied again.
    Batch-normalised layers turn D_{l+1} into dC/d(z + b) and write gscale * dgamma, dbeta into
    grad (added when acc). Returns the sum over the rows of the cost; correct (if not NULL) is
    increased by the rows classified right.
    """
    cdef int l, L = p.L
    cdef int64_t nin, nout
    cdef floating* D
    cdef floating* Dprev
    cdef int64_t o = r0 * p.sizes[L]
    cdef double c = output_delta(ws + p.d_off[L] + o, ws + p.z_off[L] + o, ws + p.a_off[L] + o,
                                 ws + p.s_off[L] + o, y, lab, m, p.sizes[L], p.act[L - 1],
                                 p.cost, correct)
    for l in range(L - 1, -1, -1):
        nin = p.sizes[l]
        nout = p.sizes[l + 1]
        D = ws + p.d_off[l + 1] + r0 * nout
        if p.bn[l]:  # (never chunked: r0 = 0)
            # through the normalisation: D becomes dC/d(z + b); dgamma, dbeta recorded
            bn_backward(D, ws + p.xh_off[l], params + p.g_off[l], ws + p.st_off[l] + nout, m,
                        nout, gscale, grad + p.g_off[l], grad + p.g_off[l] + nout, acc,
                        p.bn_mode != 0)
        if l > 0:
            Dprev = ws + p.d_off[l] + r0 * nin
            # D_l = (D_{l+1} @ W^{l+1}) * f'(Z_l)
            gemm_rm(NO, NO, <int>m, <int>nin, <int>nout, <floating>1, D, <int>nout,
                    params + p.w_off[l], <int>nin, <floating>0, Dprev, <int>nin)
            mul_deriv(Dprev, ws + p.s_off[l] + r0 * nin, m * nin)
            if dropping and p.keep[l] < 1.0:
                # the same mask as in forward, regenerated from its counter
                dropout(Dprev, m * nin, p.keep[l], p.seed, p.counters[l] + <uint64_t>(r0 * nin))
    return c


cdef inline void weight_product(Plan* p, floating* ws, int l, int64_t r0, int64_t m,
                                double alpha, double beta, floating* out) noexcept nogil:
    """out = alpha D_{l+1}^T A_l + beta out over the batch's rows r0 .. r0 + m: BLAS on the
    gathered A_l, or, for l = 0 read in place (p.didx), the first-layer kernels."""
    cdef int64_t nin = p.sizes[l], nout = p.sizes[l + 1]
    cdef floating* D = ws + p.d_off[l + 1] + r0 * nout
    if l == 0 and p.didx != NULL:
        l0_wgrad(p, r0, m, D, alpha, beta, out)
    else:
        gemm_rm(TR, NO, <int>nout, <int>nin, <int>m, <floating>alpha, D, <int>nout,
                ws + p.a_off[l] + r0 * nin, <int>nin, <floating>beta, out, <int>nin)


cdef inline void wgrad_sgd(Plan* p, floating* ws, int l, int64_t m, double lr, double l2,
                           double mu, double f, bint nesterov, floating* w,
                           floating* v) noexcept nogil:
    """sgd_apply's step on W^l (and its velocity v) with dC/dW^l = D_{l+1}^T A_l / m summed as
    the direct kernels sum it, straight from their registers: never stored (vg_wgrad_sgd). A_l
    as weight_product reads it: X's rows in place for l = 0 read directly (not sparse), else the
    gathered rows or the activations."""
    cdef int64_t nin = p.sizes[l], nout = p.sizes[l + 1]
    cdef const floating* D = ws + p.d_off[l + 1]
    cdef const floating* A = ws + p.a_off[l]
    cdef const int64_t* idx = NULL
    if l == 0 and p.didx != NULL:
        A = <const floating*>p.dx
        idx = p.didx
    if floating is double:
        vg_wgrad_sgd_d(A, idx, m, nin, D, nout, 1.0 / m, w, v, lr, l2, mu, f, nesterov)
    else:
        vg_wgrad_sgd_f(A, idx, m, nin, D, nout, <float>(1.0 / m), w, v, <float>lr, <float>l2,
                       <float>mu, <float>f, nesterov)


cdef void weight_grads(Plan* p, floating* ws, floating* grad, int64_t m, double gscale,
                       int acc, int64_t r0=0, uint64_t only_b=0) noexcept nogil:
    """After deltas(), rows r0 .. r0 + m: grad gets gscale * sum over those rows of dC/dW^l and
    dC/db^l (added when acc); only dC/db^l for the layers l of the bits of only_b."""
    cdef int l
    cdef int64_t nin, nout
    cdef floating* D
    for l in range(p.L):
        nin = p.sizes[l]
        nout = p.sizes[l + 1]
        D = ws + p.d_off[l + 1] + r0 * nout
        # dC/dW^l = gscale * D.T @ A
        if not (only_b >> l) & 1:
            weight_product(p, ws, l, r0, m, gscale, 1.0 if acc else 0.0, grad + p.w_off[l])
        # dC/db^l = gscale * D.sum(axis=0)
        colsum(D, m, nout, gscale, grad + p.b_off[l], acc)


cdef double backward(Plan* p, const floating* params, floating* ws, floating* grad, int64_t m,
                     const floating* y, const int64_t* lab, double gscale, int acc,
                     bint dropping) noexcept nogil:
    """deltas() then weight_grads(): the whole gradient. Returns the summed cost."""
    cdef double c = deltas(p, params, ws, grad, m, y, lab, gscale, acc, dropping, NULL)
    weight_grads(p, ws, grad, m, gscale, acc)
    return c


cdef struct Opt:
    int kind
    double h[8]             # hyper-parameters, see vg_opt_step
    double wd               # decoupled weight decay (weights only)
    const double* lr        # per step learning rate of this epoch
    const double* mom       # per step momentum / beta1, or NULL
    double l2, l1           # coefficients of the penalty gradient: l2 * w + l1 * sign(w)
    int clip                # 0 none, 1 global norm, 2 per-layer norm, 3 value
    double clip_c
    double max_norm         # <= 0: off
    int64_t t               # steps taken before this epoch
    bint fused              # 1: SGD steps may take the fused path (see epoch)


cdef struct Rec:
    int64_t every           # steps per record
    double* gb              # (records, L) ||dC/db^l||
    double* gw              # (records, L) ||dC/dW^l||_F
    double* cost            # (records,) mean mini-batch cost
    double* prenorm         # (records,) gradient norm before clipping
    double* amean           # (records, L) mean activation of each layer
    double* astd            # (records, L) its standard deviation (over examples and units)
    double* sat             # (records, L) saturated fraction (see vg_act_stats)
    double* dead            # (records, L) fraction of units dead for a whole mini-batch
    double* upd             # (records, L) ||W_new - W_old||_F / ||W_old||_F
    double* gs[10]          # (records,) trace_cov, noise_scale, norm_test; (records, L) the
                            # same per layer (see grad_stats); (records,) inner_test,
                            # ortho_test, gsnr; (records, L) layer_gsnr (see grad_tests)
    double* exbuf           # 2 x batch: per-example ||g_i||^2 and g_i . gbar
    double* rowbuf          # 2 x batch: row norms of D and A (grad_stats)
    double* usz             # (records,) ||theta_new - theta_old||
    double* dist            # (records,) ||theta - theta_0||
    double* gns             # (records,) two-batch gradient noise scale (EMA), see grad_stats
    double* gns_ema         # its state across steps: EMA of tr(Sigma), EMA of |G|^2, beta
    double* gacc            # running sums of those: 3 + 3L + 2
    const void* theta0      # the parameters at the start of training (for dist)
    int64_t n               # records written
    int bad_layer           # layer where a non-finite value appeared, or -1
    int bad_kind            # 0 ok, 1 non-finite gradient, 2 non-finite cost, 3 non-finite update,
                            # 4 non-finite batch-norm running statistics, 5 NaN/Inf in the
                            # rows of X just gathered (nothing of that step was done)
    double* acc             # running sums of the current record (see epoch)
    double ecost            # sum over the epoch's rows of the cost (before each step's update)
    int64_t ecorrect        # rows of the epoch classified right (before each step's update)
    int64_t erows           # rows seen in the epoch's finished steps
    int64_t fused_steps     # steps that took the fused SGD path


cdef bint nonfinite_layer(Plan* p, floating* grad, Rec* r) noexcept nogil:
    """The first layer with a non-finite gradient, if any, reported in r (bad_kind 1;
    batch-norm parameters: layer -1). One vectorised pass decides."""
    cdef int l, L = p.L
    if not nonfinite(grad, p.n_params):
        return False
    for l in range(L):
        if nonfinite(grad + p.w_off[l], p.sizes[l] * p.sizes[l + 1]) or \
                nonfinite(grad + p.b_off[l], p.sizes[l + 1]):
            r.bad_layer = l
            r.bad_kind = 1
            return True
    r.bad_layer = -1  # the batch-norm gamma, beta
    r.bad_kind = 1
    return True


cdef void record_norms(Plan* p, floating* grad, Rec* r) noexcept nogil:
    """Add the per-layer gradient norms asked for to the record sums (||dC/db|| alone reads a
    few hundred numbers)."""
    cdef int l, L = p.L
    for l in range(L):
        if r.gb != NULL:
            r.acc[l] += norm2(grad + p.b_off[l], p.sizes[l + 1])
        if r.gw != NULL:
            r.acc[L + l] += norm2(grad + p.w_off[l], p.sizes[l] * p.sizes[l + 1])


cdef void grad_stats(Plan* p, floating* ws, const floating* grad, int64_t m,
                     double* out, const double* xsq, double* sqi, double* ema,
                     const double* gsq, double* rowbuf) noexcept nogil:
    """Cockpit's gradient-noise quantities of the step's mini-batch, added to out.

    g_i: the gradient of example i's own cost (no penalty), gbar = grad (their mean, before the
    penalties). For a dense layer ||g_i^l||^2 = ||delta_i||^2 (||a_i||^2 + 1) (no per-example
    gradient is formed), so with S_l = sum_i ||g_i^l||^2 and gg_l = ||gbar^l||^2:
        trace_cov = max(S - m gg, 0) / (m - 1)          (= sum_i ||g_i - gbar||^2 / (m - 1))
        noise_scale = trace_cov / gg                    (McCandlish et al. 2018, B_simple)
        norm_test = sqrt(trace_cov / (m gg))            (Byrd et al. 2012, as Cockpit)
    over the whole network (S, gg summed over layers) into out[0..2] and per layer into
    out[3 + l], out[3 + L + l], out[3 + 2L + l]. m = 1: NaN (no variance); gg = 0: NaN ratios.
    Matches vgfast.analysis.gradient_statistics at the parameters before the step's update.
    xsq holds ||x_i||^2 of the batch's input rows, measured by the gather; sqi, when not
    NULL, receives each ||g_i||^2 (grad_tests reads them). gsq, when not NULL, holds each
    layer's gg_l already (summed by the fused update's pass). rowbuf: room for 2m doubles.

    ema, when not NULL, is the two-batch noise-scale estimator's state (McCandlish et al. 2018,
    app. A.1) with the small batch B = 1 (each example; its |G_1|^2 is S / m) and the big one
    B = m (|G_m|^2 = gg): unbiased estimates of |G|^2 and of tr(Sigma),
        |G|^2 ~ (m gg - S / m) / (m - 1),    tr(Sigma) ~ (S - m gg) / (m - 1),
    enter exponential moving averages ema[0] (tr Sigma), ema[1] (|G|^2) with weight ema[2]
    (beta) on the past; B_simple = ema[0] / ema[1] (m = 1: no update).
    """
    cdef int l, L = p.L
    cdef int64_t i, nin, nout
    cdef double S = 0, G = 0, Sl, gl, tc, an, v
    cdef const floating* D
    cdef const floating* A
    if sqi != NULL:
        for i in range(m):
            sqi[i] = 0
    for l in range(L + 1):
        if l < L:
            nin = p.sizes[l]
            nout = p.sizes[l + 1]
            D = ws + p.d_off[l + 1]
            A = ws + p.a_off[l]
            Sl = 0
            rows_sumsq(D, m, nout, rowbuf)
            if l > 0:
                rows_sumsq(A, m, nin, rowbuf + m)
            for i in range(m):
                an = xsq[i] if l == 0 else rowbuf[m + i]
                v = rowbuf[i] * (an + 1.0)
                Sl += v
                if sqi != NULL:
                    sqi[i] += v
            gl = gsq[l] if gsq != NULL else (sumsq(grad + p.w_off[l], nin * nout) +
                                             sumsq(grad + p.b_off[l], nout))
            S += Sl
            G += gl
        else:
            Sl, gl = S, G
        tc = max(Sl - m * gl, 0.0) / (m - 1) if m > 1 else NAN
        if l < L:
            out[3 + l] += tc
            out[3 + L + l] += tc / gl if gl > 0 else NAN
            out[3 + 2 * L + l] += sqrt(tc / (m * gl)) if gl > 0 else NAN
        else:
            out[0] += tc
            out[1] += tc / gl if gl > 0 else NAN
            out[2] += sqrt(tc / (m * gl)) if gl > 0 else NAN
    if ema != NULL and m > 1:
        ema[0] = ema[2] * ema[0] + (1.0 - ema[2]) * (S - m * G) / (m - 1)
        ema[1] = ema[2] * ema[1] + (1.0 - ema[2]) * (m * G - S / m) / (m - 1)


cdef void grad_tests(Plan* p, floating* ws, const floating* grad, int64_t m, double* out,
                     const double* sqi, double* dti, floating* tmp, bint io,
                     bint want_gsnr, const double* gsq) noexcept nogil:
    """The second-order-in-the-batch gradient tests of the step's mini-batch, added to out.

    With g_i, gbar, gg = ||gbar||^2 as in grad_stats, dot_i = g_i . gbar (per layer: a row sum
    of D o (A Gbar^T + 1 gbar_b^T), one GEMM into the free S buffer) and sq_i = ||g_i||^2
    (from grad_stats, in sqi):
        inner_test = sqrt(sum_i (dot_i - gg)^2 / (m - 1) / m) / gg   (Bollapragada et al. 2018)
        ortho_test = sqrt(max(sum_i sq_i - sum_i dot_i^2 / gg, 0) / (m - 1) / (m gg))
    into out[0], out[1] (io); and Cockpit's MeanGSNR, the mean over parameters j of
    gbar_j^2 / (max(sum_i g_ij^2 / m - gbar_j^2, 0) + 1e-5), with sum_i g_ij^2 = (D o D)^T (A o A)
    (one GEMM into tmp, the free part of the scratch buffer; D and A are squared in place, so
    this runs last), into out[2] and per layer out[3 + l]. m = 1: NaN; gg = 0: NaN tests.
    """
    cdef int l, L = p.L
    cdef int64_t i, k, nin, nout, npar = 0
    cdef double gg = 0, gl, dsum, gs, gsum = 0, sq_sum = 0, d2_sum = 0, dd = 0
    cdef floating* D
    cdef floating* A
    cdef floating* AG
    cdef const floating* G
    cdef const floating* gb
    for i in range(m):
        dti[i] = 0
    for l in range(L):
        nin = p.sizes[l]
        nout = p.sizes[l + 1]
        D = ws + p.d_off[l + 1]
        A = ws + p.a_off[l]
        G = grad + p.w_off[l]
        gb = grad + p.b_off[l]
        gl = gsq[l] if gsq != NULL else sumsq(G, nin * nout) + sumsq(gb, nout)
        gg += gl
        npar += nout * (nin + 1)
        if io:
            AG = ws + p.s_off[l + 1]  # f'(Z) is no longer needed this step
            # AG = A @ Gbar.T
            gemm_rm(NO, TR, <int>m, <int>nout, <int>nin, <floating>1, A, <int>nin, G, <int>nin,
                    <floating>0, AG, <int>nout)
            for i in range(m):
                dsum = 0
                for k in range(nout):
                    dsum += <double>D[i * nout + k] * (<double>AG[i * nout + k] + <double>gb[k])
                dti[i] += dsum
        if want_gsnr:
            square(D, m * nout)
            square(A, m * nin)
            # tmp_W = (D o D).T @ (A o A) / m;  tmp_b = (D o D).sum(axis=0) / m
            gemm_rm(TR, NO, <int>nout, <int>nin, <int>m, <floating>(1.0 / m), D, <int>nout, A,
                    <int>nin, <floating>0, tmp + p.w_off[l], <int>nin)
            colsum(D, m, nout, 1.0 / m, tmp + p.b_off[l], 0)
            gs = (gsnr_sum(G, tmp + p.w_off[l], nin * nout, 1e-5) +
                  gsnr_sum(gb, tmp + p.b_off[l], nout, 1e-5))
            gsum += gs
            out[3 + l] += gs / (nout * (nin + 1)) if m > 1 else NAN
    if want_gsnr:
        out[2] += gsum / npar if m > 1 else NAN
    if io:
        for i in range(m):
            dd += (dti[i] - gg) * (dti[i] - gg)
            sq_sum += sqi[i]
            d2_sum += dti[i] * dti[i]
        if m > 1 and gg > 0:
            out[0] += sqrt(dd / (m - 1) / m) / gg
            out[1] += sqrt(max(sq_sum - d2_sum / gg, 0.0) / (m - 1) / (m * gg))
        else:
            out[0] += NAN
            out[1] += NAN


cdef inline int64_t fail(Plan* p, floating* rb, int64_t s) noexcept nogil:
    """A step failed: put back the running statistics its forward pass updated."""
    if p.n_running:
        memcpy(p.running, rb, p.n_running * sizeof(floating))
    return s


cdef inline double act_bound(Plan* p, floating* ws, int l, int64_t m,
                             double xmax) noexcept nogil:
    """A bound on |A_l| as the step's GEMMs read it (after dropout), or -1 if A_l is not
    finite: the gathered rows' max |x| for l = 0, 1 for sigmoid/tanh units, else a scan."""
    cdef double keep = p.keep[l]
    if l == 0:
        return xmax / keep
    if p.act[l - 1] == 0 or p.act[l - 1] == 1:  # VG_SIGMOID, VG_TANH: |f| <= 1
        return 1.0 / keep
    return maxabs(ws + p.a_off[l], m * p.sizes[l])


cdef inline double seg_max(const floating* x, int64_t n) noexcept nogil:
    cdef double v = maxabs(x, n)
    return v if v >= 0 else INFINITY


cdef inline bint w0_bounds(const double* h, int64_t t, double l2, double gdata, double w,
                          double m, double v, double lim, double eps, double* out) noexcept nogil:
    """Whether Adam's step t (vg_opt_step's, hyper-parameters h) on weights with |W| <= w,
    |m| <= m, v <= v, gradient |g| <= gdata + l2 w, cannot write a value of magnitude lim or
    more (nor NaN): then |g| < sqrt(lim), and with exact bounds at each operation (a factor
    1.001 for their rounding)
        |m'| <= max(m, |g|) = mb,  v' <= max(v, g^2) = vb,
        |step m' / (sqrt(v') [/ bc2s] + eps)| <= step mb / eps,
        |W'| <= |W| max(|1 - lr wd|, 1) + step mb / eps
    (the denominator is at least eps > 0, eps as the kernel rounds it). out gets the bounds
    after the step (W, m, v)."""
    cdef double bc1 = 1.0 - pow(h[1], <double>t), bc2 = 1.0 - pow(h[2], <double>t)
    cdef double step = h[0] * sqrt(bc2) / bc1 if h[6] != 0 else h[0] / bc1
    cdef double g = (gdata + l2 * w) * 1.001
    cdef double mb = max(m, g) * 1.001
    cdef double vb = max(v, g * g) * 1.001
    cdef double wn
    if not (eps > 0 and g < sqrt(lim) and vb < lim and step * mb < lim):
        return False
    wn = (w * max(fabs(1.0 - h[0] * h[4]), 1.0) + step * mb / eps) * 1.001
    out[0] = wn
    out[1] = mb
    out[2] = vb
    return wn < lim


cdef int64_t epoch(Plan* p, floating* params, floating* grad, floating* ws, const floating* X,
                   const floating* Y, const int64_t* labels, int64_t* labbuf,
                   const int64_t* perm, int64_t n, int64_t bs, Opt* o, floating* s1,
                   floating* s2, Rec* r, uint64_t* counter, double* acc,
                   floating* scratch, floating* rb, double* bound,
                   double* xsq, int64_t* carry, bint epoch_end) noexcept nogil:
    """One epoch of mini-batch training. Returns the number of steps completed.

    Each step: gather the rows, forward, every delta (deltas()), then the update, by one of
    two paths.

    The fused path (SGD, plain, heavy-ball or Nesterov, without L1, clipping or the
    update-ratio recording): each weight-gradient GEMM writes the update straight into W,
        W <- (1 - lr (wd + l2)) W - (lr / m) D^T A          (plain)
        V <- mu V + (1 / m) D^T A;  V += l2 W;  W <- (1 - lr wd) W - lr V   (momentum),
    the gradient is never scanned and nothing is copied. For Nesterov, and when a recording
    reads dC/dW (its norm, the gradient-noise quantities, the step's size), the GEMMs form the
    gradient and one pass per segment (vg_sgd_apply) applies the step. Its divergence check costs a scan
    of the small matrices only: the deltas are checked finite and bounded (max |D|), the
    activations bounded (max |X| of the data, 1 for sigmoid/tanh units, else a scan), and a
    running bound of max |W| and max |V| per layer (bound[0:L], bound[L:2L]) is carried
    forward with |dW| <= lr max|D| max|A|. While the bounds stay below DBL_MAX / 64 (float:
    FLT_MAX / 64) the update cannot overflow, so the step is applied; otherwise the bounds are
    refreshed by a scan and, if still too large, the step takes the general path.

    The general path forms the gradient in `grad`, adds penalties, clips, and runs the
    optimiser kernel per layer, which saves what it overwrites into `scratch` so that an
    overflowing update is undone.

    Either way a non-finite gradient, cost or update stops the epoch at that step with the
    parameters of the last finite step.

    acc holds 7L + 3 running sums for the current record: gb (L), gw (L), cost, prenorm,
    activation statistics (4L), update ratios (L), rows.

    A call may run part of an epoch (train() runs the steps between probes as segments): carry[0]
    is the number of steps already summed into the open record (acc, r.gacc hold their sums),
    updated on return; the last step closes the open record only when epoch_end is set.
    """
    cdef int L = p.L
    cdef int64_t steps = (n + bs - 1) // bs
    cdef int64_t s, i, m, start, lw, nin, nout, cnt = carry[0]
    cdef int l, bad
    cdef double c, sb, sw, tot, lr, mu, beta, fdec, g, md, ma, wnew, vnew, xmax
    cdef double lim = 1.7976931348623157e308 / 64 if floating is double else 3.4028234663852886e38 / 64
    cdef double h[8]
    cdef double mdl[64]
    cdef double mal[64]
    cdef double wbn[64]
    cdef double glv[64]     # each layer's ||dC/d(W, b)||^2, summed by the fused update's pass
    cdef double lsum[3]
    cdef bint fuse_dist, sums_on
    cdef double e2
    cdef double vbn[64]
    cdef bint dropping = False, general, risky, stale = True
    cdef floating* yb = NULL
    cdef floating* D
    cdef const int64_t* idx
    cdef int64_t bn0 = p.b_off[L - 1] + p.sizes[L]
    cdef bint want_act = r.amean != NULL or r.astd != NULL or r.sat != NULL or r.dead != NULL
    cdef double* AS = acc + 2 * L + 2
    cdef double* AU = acc + 6 * L + 2
    cdef double* wb = bound
    cdef double* vb = bound + L
    cdef double nu, mean
    cdef bint can_fuse = o.fused and L <= 64
    cdef bint want_gs = (r.gs[0] != NULL or r.gs[1] != NULL or r.gs[2] != NULL or
                         r.gs[3] != NULL or r.gs[4] != NULL or r.gs[5] != NULL or
                         r.gns != NULL)
    cdef bint want_io = r.gs[6] != NULL or r.gs[7] != NULL
    cdef bint want_gsnr = r.gs[8] != NULL or r.gs[9] != NULL
    cdef bint nesterov = o.h[2] != 0
    # recordings that read the formed gradient or the step: the fused path forms dC/dW then
    cdef bint records_grad = (want_gs or want_io or want_gsnr or r.gw != NULL or
                              r.usz != NULL or r.dist != NULL)
    # (Nesterov's step reads the gradient itself: it always takes that form)
    cdef bint with_grad = records_grad or nesterov
    # ... Nesterov's alone: its step is then the only reader of dC/dW (see wgrad_sgd)
    cdef bint step_only = (_wgrad_sgd_on and vg_direct_available() and nesterov and
                           not records_grad)
    cdef uint64_t in_regs = 0
    cdef double d2
    cdef bint can_chunk = r.dead == NULL
    # Adam on W^0 by vg_adam_t (the L2 term, the step and the next step's W^0 transposed, in one
    # pass) when W^0 is read in place and nothing comes between the penalty and the step (L1,
    # clipping) or after it (max-norm); wt_fresh: p.wt holds the current W^0's transpose
    cdef bint adam0 = (_adam_t_on and p.dx != NULL and o.kind == 3 and o.l1 == 0 and
                       o.clip == 0 and o.max_norm <= 0)
    cdef bint wt_fresh = False, fresh
    # ... and W^0's step taken last, without saving W^0 into scratch, when bounds prove that it
    # cannot overflow: a0w >= max |W^0|, a0m >= max |m|, a0v >= max v of its Adam state (scanned
    # when a0_stale, then carried forward by the step's own bounds; see w0_bounds)
    cdef bint a0_ok = adam0 and p.n_params == bn0 and r.upd == NULL and r.usz == NULL
    cdef bint a0_stale = True, w0_safe
    cdef double a0w = 0, a0m = 0, a0v = 0
    cdef double a0n[3]
    cdef int64_t n0 = p.sizes[0] * p.sizes[1], keep0
    # ... and, with the sparse first layer, that step taken from the weight gradient's registers
    # on W^0 and its moments kept transposed (swgrad_adam): when only the step reads dC/dW^0.
    # From its first such step the epoch's W^0 and moments live in wt, mt, vt (p.t0_live) until
    # a step that reads the flat ones (t0_sync), or the caller, writes them back.
    cdef bint fuse0_ok = _swgrad_adam_on and a0_ok and p.sparse and not records_grad
    cdef bint fuse0 = False
    cdef floating* w0p
    cdef floating* m0p
    cdef floating* v0p
    cdef int64_t n0p
    cdef int64_t nch, k, r0, mc
    for l in range(L):
        if p.bn[l]:
            can_chunk = False
    r.acc = acc
    for l in range(L):
        if p.keep[l] < 1.0:
            dropping = True
    for i in range(8):
        h[i] = o.h[i]
    for s in range(steps):
        if p.n_running:  # batch-norm running statistics, restored if this step fails
            memcpy(rb, p.running, p.n_running * sizeof(floating))
        start = s * bs
        m = bs if start + bs <= n else n - start
        idx = perm + start
        if dropping:
            assign_counters(p, m, counter)
        # A large batch goes in chunks of rows that stay in cache from the gather through the
        # forward pass, the deltas and their weight-gradient GEMMs (accumulated in grad, the
        # general path); batch norm and dead-unit counts need the whole batch at once.
        nch = (1 if (m <= p.chunk_rows or not can_chunk) else
               (m + p.chunk_rows - 1) // p.chunk_rows)
        c = 0
        xmax = 0
        # the first layer reads the rows where they lie (no gather, no packing by BLAS): its
        # forward product returns max |x| of the rows it read, the gather's check
        p.didx = idx if (p.dx != NULL and m >= DIRECT_MIN_ROWS) else NULL
        if p.t0_live and p.didx == NULL:  # this step's first layer reads the flat W^0 (BLAS)
            t0_sync(p, params, s1, s2)
        fresh = wt_fresh
        wt_fresh = False  # until this step's update (below) writes it again
        if p.didx != NULL and not fresh:
            pack_t(params + p.w_off[0], p.sizes[1], p.sizes[0], <floating*>p.wt, p.ldw)
        for k in range(nch):
            r0 = k * m // nch
            mc = (k + 1) * m // nch - r0
            if p.didx != NULL:
                md = l0_forward_rows(p, X, r0, mc, ws + p.z_off[1] + r0 * p.sizes[1])
            else:
                # gather the rows, checking them on the way (max |x|, or -1 for NaN/Inf)
                md = gather_rows(X, idx + r0, mc, p.sizes[0], ws + p.a_off[0] + r0 * p.sizes[0],
                                 xsq + r0 if (want_gs or want_io) else NULL)
            if md < 0:  # nothing of this step is applied yet
                r.bad_layer = -1
                r.bad_kind = 5
                return fail(p, rb, s)
            xmax = max(xmax, md)
            # the rows wanted next (this batch's next chunk, or the next batch's first rows)
            # start on their way to cache while this chunk computes (not X's rows when the
            # first layer reads them compacted: vg_l0_forward_tiles prefetches those)
            if p.xrp == NULL:
                if k + 1 < nch:
                    prefetch_rows(X, idx + (k + 1) * m // nch,
                                  min(mc + 1, m - (k + 1) * m // nch), p.sizes[0])
                elif start + m < n:
                    prefetch_rows(X, idx + m, min(min(bs, p.chunk_rows), n - start - m),
                                  p.sizes[0])
            if Y != NULL:
                yb = ws + p.y_off
                gather_rows(Y, idx + r0, mc, p.sizes[L], yb + r0 * p.sizes[L])
            else:
                for i in range(r0, r0 + mc):
                    labbuf[i] = labels[idx[i]]
            forward(p, params, ws, mc, dropping, AS if want_act else NULL, True, r0)
            c += deltas(p, params, ws, grad, mc, yb + r0 * p.sizes[L] if yb != NULL else NULL,
                        labbuf + r0, 1.0 / m, 0, dropping, &r.ecorrect, r0)
            if nch > 1:
                weight_grads(p, ws, grad, mc, 1.0 / m, k > 0, r0)
        if p.n_running and nonfinite(<floating*>p.running, p.n_running):
            r.bad_layer = -1
            r.bad_kind = 4  # the batch statistics overflowed the running averages
            return fail(p, rb, s)
        # every delta (and activation the GEMMs read) finite and bounded: then the gradient
        # D^T A / m is finite too (its sums stay below m max|D| max|A|), no scan of it needed
        risky = False
        for l in range(L):
            md = maxabs(ws + p.d_off[l + 1], m * p.sizes[l + 1])
            ma = act_bound(p, ws, l, m, xmax)
            if md < 0 or ma < 0:
                r.bad_layer = l
                r.bad_kind = 1
                return fail(p, rb, s)
            mdl[l] = md
            mal[l] = ma
            if m * md * ma >= lim:
                risky = True  # could overflow: form the gradient and scan it
        if p.n_params > bn0 and nonfinite(grad + bn0, p.n_params - bn0):
            r.bad_layer = -1
            r.bad_kind = 1
            return fail(p, rb, s)
        if not isfinite(c):
            r.bad_layer = L - 1
            r.bad_kind = 2
            return fail(p, rb, s)
        acc[7 * L + 2] += m
        acc[2 * L] += c / m
        h[0] = o.lr[s]
        if o.mom != NULL:
            h[1] = o.mom[s]
        lr = h[0]
        mu = h[1]
        general = risky or not can_fuse or nch > 1
        if not general:
            # ---- the fused SGD path: bounds first, nothing is written unless all are safe
            fdec = 1.0 - lr * o.wd
            beta = 1.0 - lr * (o.wd + o.l2)
            if stale:
                for l in range(L):
                    wb[l] = max(seg_max(params + p.w_off[l], p.sizes[l] * p.sizes[l + 1]),
                                seg_max(params + p.b_off[l], p.sizes[l + 1]))
                    vb[l] = max(seg_max(s1 + p.w_off[l], p.sizes[l] * p.sizes[l + 1]),
                                seg_max(s1 + p.b_off[l], p.sizes[l + 1]))
                stale = False
            for l in range(L):
                g = mdl[l] * mal[l]
                for i in range(2):
                    if mu == 0:
                        vnew = vb[l]
                        wnew = max(fabs(beta) * wb[l] + lr * g, wb[l] + lr * mdl[l])
                    elif not nesterov:
                        vnew = mu * vb[l] + max(g + o.l2 * wb[l], mdl[l])
                        wnew = max(fabs(fdec), 1.0) * wb[l] + lr * vnew
                    else:
                        vnew = mu * vb[l] + max(g + o.l2 * wb[l], mdl[l])
                        wnew = max(fabs(fdec), 1.0) * wb[l] + lr * (max(g + o.l2 * wb[l], mdl[l])
                                                                    + mu * vnew)
                    if wnew < lim and vnew < lim:
                        break
                    if i == 0:  # the bound may be loose: measure and try once more
                        wb[l] = max(seg_max(params + p.w_off[l], p.sizes[l] * p.sizes[l + 1]),
                                    seg_max(params + p.b_off[l], p.sizes[l + 1]))
                        vb[l] = max(seg_max(s1 + p.w_off[l], p.sizes[l] * p.sizes[l + 1]),
                                    seg_max(s1 + p.b_off[l], p.sizes[l + 1]))
                    else:
                        general = True
                wbn[l] = wnew
                vbn[l] = vnew
            if not general and p.n_params > bn0:
                # gamma, beta of the normalised layers: the general kernel, saved and checked,
                # before any W changes
                if opt_step(o.kind, params + bn0, grad + bn0, s1 + bn0, s2 + bn0,
                            p.n_params - bn0, h, o.t + 1, scratch + bn0):
                    memcpy(params + bn0, scratch + bn0, (p.n_params - bn0) * sizeof(floating))
                    r.bad_layer = -1
                    r.bad_kind = 3
                    return fail(p, rb, s)
        if not general and with_grad:
            # ---- fused, with the gradient formed: one pass per segment applies the SGD step
            # and sums, on the way, each layer's ||dC/d(W, b)||^2, the step's ||dtheta||^2 and
            # ||theta - theta_0||^2; the recordings then read the gradient (unchanged), the
            # deltas and the activations
            o.t += 1
            r.fused_steps += 1
            # the layers whose weight gradient only their step reads: small batches, or the
            # first layer read in place (dense), where the direct kernels sum it
            in_regs = 0
            if step_only:
                for l in range(L):
                    if m < DIRECT_MIN_ROWS or (l == 0 and p.didx != NULL and not p.sparse):
                        in_regs |= (<uint64_t>1) << l
            weight_grads(p, ws, grad, m, 1.0 / m, 0, 0, in_regs)
            record_norms(p, grad, r)
            # (max-norm rescales W after the pass: then the distance takes a pass of its own)
            fuse_dist = r.dist != NULL and o.max_norm == 0
            sums_on = want_gs or want_io or want_gsnr or r.usz != NULL or fuse_dist
            d2 = diff_sumsq(params + bn0, scratch + bn0, p.n_params - bn0) if (
                r.usz != NULL and p.n_params > bn0) else 0.0
            e2 = diff_sumsq(params + bn0, <const floating*>r.theta0 + bn0,
                            p.n_params - bn0) if (fuse_dist and p.n_params > bn0) else 0.0
            for l in range(L):
                nin = p.sizes[l]
                nout = p.sizes[l + 1]
                lsum[0] = lsum[1] = lsum[2] = 0
                if (in_regs >> l) & 1:
                    wgrad_sgd(p, ws, l, m, lr, o.l2, mu, fdec, nesterov, params + p.w_off[l],
                              s1 + p.w_off[l])
                else:
                    sgd_apply(params + p.w_off[l], grad + p.w_off[l], s1 + p.w_off[l],
                              nin * nout, lr, o.l2, mu, fdec, nesterov,
                              <const floating*>r.theta0 + p.w_off[l] if fuse_dist else NULL,
                              lsum if sums_on else NULL)
                sgd_apply(params + p.b_off[l], grad + p.b_off[l], s1 + p.b_off[l], nout,
                          lr, 0.0, mu, 1.0, nesterov,
                          <const floating*>r.theta0 + p.b_off[l] if fuse_dist else NULL,
                          lsum if sums_on else NULL)
                glv[l] = lsum[0]
                d2 += lsum[1]
                e2 += lsum[2]
                wb[l] = wbn[l]
                vb[l] = vbn[l]
                if o.max_norm > 0:
                    max_norm(params + p.w_off[l], nout, nin, o.max_norm)
            if r.usz != NULL:
                r.gacc[3 + 3 * L] += sqrt(d2)
            if r.dist != NULL:
                r.gacc[4 + 3 * L] += sqrt(e2 if fuse_dist else diff_sumsq(
                    params, <const floating*>r.theta0, p.n_params))
            if want_gs or want_io:
                grad_stats(p, ws, grad, m, r.gacc, xsq, r.exbuf if want_io else NULL, r.gns_ema,
                           glv, r.rowbuf)
            if want_io or want_gsnr:  # last: squares D and A in place
                grad_tests(p, ws, grad, m, r.gacc + 5 + 3 * L, r.exbuf, r.exbuf + bs, scratch,
                           want_io, want_gsnr, glv)
        elif not general:
            o.t += 1
            r.fused_steps += 1
            for l in range(L):
                nin = p.sizes[l]
                nout = p.sizes[l + 1]
                D = ws + p.d_off[l + 1]
                # the bias gradient, D.sum(axis=0) / m, kept in grad (recorded norms read it)
                colsum(D, m, nout, 1.0 / m, grad + p.b_off[l], 0)
                if r.gb != NULL:
                    acc[l] += norm2(grad + p.b_off[l], nout)
                if mu == 0:
                    # W = (1 - lr (wd + l2)) W - (lr / m) D.T @ A
                    weight_product(p, ws, l, 0, m, -lr / m, beta, params + p.w_off[l])
                    h[4] = 0
                    opt_step(o.kind, params + p.b_off[l], grad + p.b_off[l], s1 + p.b_off[l],
                             s2 + p.b_off[l], nout, h, o.t, <floating*>NULL)
                else:
                    # V = mu V + D.T @ A / m; V += l2 W; W = (1 - lr wd) W - lr V
                    weight_product(p, ws, l, 0, m, 1.0 / m, mu, s1 + p.w_off[l])
                    momentum_apply(params + p.w_off[l], s1 + p.w_off[l], nin * nout, lr, o.l2,
                                   fdec)
                    h[4] = 0
                    opt_step(o.kind, params + p.b_off[l], grad + p.b_off[l], s1 + p.b_off[l],
                             s2 + p.b_off[l], nout, h, o.t, <floating*>NULL)
                wb[l] = wbn[l]
                vb[l] = vbn[l]
                if o.max_norm > 0:
                    max_norm(params + p.w_off[l], nout, nin, o.max_norm)
        else:
            # ---- the general path
            stale = True
            # W^0's Adam step: its bounds (see a0_ok), from wherever W^0 and its moments live
            w0_safe = False
            if a0_ok:
                h[4] = o.wd
                if p.t0_live:
                    w0p, m0p, v0p = <floating*>p.wt, <floating*>p.mt, <floating*>p.vt
                    n0p = p.sizes[0] * p.ldw  # (the columns past W^0's units hold zeros)
                else:
                    w0p, m0p, v0p = params + p.w_off[0], s1 + p.w_off[0], s2 + p.w_off[0]
                    n0p = n0
                for i in range(2):
                    if a0_stale:
                        a0w = seg_max(w0p, n0p)
                        a0m = seg_max(m0p, n0p)
                        a0v = seg_max(v0p, n0p)
                        a0_stale = False
                    w0_safe = w0_bounds(h, o.t + 1, o.l2, mdl[0] * mal[0], a0w, a0m, a0v, lim,
                                        <floating>h[3], a0n)
                    if w0_safe or i == 1:
                        break
                    a0_stale = True  # the carried bounds may be loose: measure and try again
            fuse0 = fuse0_ok and w0_safe and nch == 1 and p.didx != NULL and not risky
            if p.t0_live and not fuse0:
                t0_sync(p, params, s1, s2)
            if nch == 1:
                weight_grads(p, ws, grad, m, 1.0 / m, 0, 0, 1 if fuse0 else 0)
            if want_gs or want_io:  # on the mean gradient before the penalties
                grad_stats(p, ws, grad, m, r.gacc, xsq, r.exbuf if want_io else NULL, r.gns_ema,
                           NULL, r.rowbuf)
            if want_io or want_gsnr:  # last: squares D and A in place
                grad_tests(p, ws, grad, m, r.gacc + 5 + 3 * L, r.exbuf, r.exbuf + bs, scratch,
                           want_io, want_gsnr, NULL)
            tot = 0
            if risky and nonfinite_layer(p, grad, r):
                return fail(p, rb, s)
            record_norms(p, grad, r)
            # penalties (weights only)
            if o.l2 != 0 or o.l1 != 0:
                for l in range(1 if adam0 else 0, L):
                    add_l2_l1(grad + p.w_off[l], params + p.w_off[l],
                              p.sizes[l] * p.sizes[l + 1], o.l2, o.l1)
            # clipping
            if o.clip == 1:
                tot = norm2(grad, p.n_params)
                acc[2 * L + 1] += tot
                if tot > o.clip_c:
                    scale(grad, p.n_params, o.clip_c / tot)
            elif o.clip == 2:
                for l in range(L):
                    lw = p.sizes[l] * p.sizes[l + 1] + p.sizes[l + 1]
                    sw = norm2(grad + p.w_off[l], lw)
                    tot += sw * sw
                    if sw > o.clip_c:
                        scale(grad + p.w_off[l], lw, o.clip_c / sw)
                acc[2 * L + 1] += sqrt(tot)
            elif o.clip == 3:
                tot = norm2(grad, p.n_params)
                acc[2 * L + 1] += tot
                clip_value(grad, p.n_params, o.clip_c)
            # the update, W with decoupled decay, b without
            o.t += 1
            bad = 0
            # each update kernel saves the parameters it overwrites into scratch, so a step
            # whose update overflows is undone: the network always holds the last finite step
            # (W^0 under w0_safe: updated last, and proved unable to overflow)
            keep0 = p.b_off[0] if w0_safe else 0
            for l in range(L):
                lw = p.sizes[l] * p.sizes[l + 1]
                h[4] = o.wd
                if l == 0 and adam0:
                    if not w0_safe:
                        bad |= adam_t(p, params + p.w_off[0], grad + p.w_off[0],
                                      s1 + p.w_off[0], s2 + p.w_off[0], h, o.t, o.l2,
                                      scratch + p.w_off[0])
                        wt_fresh = True
                else:
                    bad |= opt_step(o.kind, params + p.w_off[l], grad + p.w_off[l],
                                    s1 + p.w_off[l], s2 + p.w_off[l], lw, h, o.t,
                                    scratch + p.w_off[l])
                h[4] = 0
                bad |= opt_step(o.kind, params + p.b_off[l], grad + p.b_off[l],
                                s1 + p.b_off[l], s2 + p.b_off[l], p.sizes[l + 1], h, o.t,
                                scratch + p.b_off[l])
                if bad:
                    memcpy(params + keep0, scratch + keep0,
                           (p.b_off[l] + p.sizes[l + 1] - keep0) * sizeof(floating))
                    o.t -= 1
                    r.bad_layer = l
                    r.bad_kind = 3
                    return fail(p, rb, s)
                if o.max_norm > 0:
                    max_norm(params + p.w_off[l], p.sizes[l + 1], p.sizes[l], o.max_norm)
                if r.upd != NULL:
                    sw = sumsq(scratch + p.w_off[l], lw)
                    AU[l] += sqrt(diff_sumsq(params + p.w_off[l], scratch + p.w_off[l], lw) /
                                  sw) if sw > 0 else 0.0
            if w0_safe:
                h[4] = o.wd
                if fuse0:
                    if not p.t0_live:
                        pack_t(s1 + p.w_off[0], p.sizes[1], p.sizes[0], <floating*>p.mt, p.ldw)
                        pack_t(s2 + p.w_off[0], p.sizes[1], p.sizes[0], <floating*>p.vt, p.ldw)
                    p.t0_live = 1  # (wt holds W^0: this step's forward product read it)
                    bad = swgrad_adam(p, ws, m, h, o.t, o.l2, grad + p.w_off[0])
                    p.n_fused0 += 1
                else:
                    bad = adam_t(p, params + p.w_off[0], grad + p.w_off[0], s1 + p.w_off[0],
                                 s2 + p.w_off[0], h, o.t, o.l2, <floating*>NULL)
                if bad:
                    # (unreachable: the bounds exclude it) report the step, as on any overflow
                    memcpy(params + keep0, scratch + keep0, (bn0 - keep0) * sizeof(floating))
                    o.t -= 1
                    r.bad_layer = 0
                    r.bad_kind = 3
                    return fail(p, rb, s)
                wt_fresh = True
                a0w, a0m, a0v = a0n[0], a0n[1], a0n[2]
            elif adam0:
                a0_stale = True
            if p.n_params > bn0:
                # gamma, beta of every normalised layer: no weight decay
                if opt_step(o.kind, params + bn0, grad + bn0, s1 + bn0, s2 + bn0,
                            p.n_params - bn0, h, o.t, scratch + bn0):
                    memcpy(params, scratch, p.n_params * sizeof(floating))
                    o.t -= 1
                    r.bad_layer = -1
                    r.bad_kind = 3
                    return fail(p, rb, s)
            if r.usz != NULL:  # scratch holds every parameter before this step
                r.gacc[3 + 3 * L] += sqrt(diff_sumsq(params, scratch, p.n_params))
            if r.dist != NULL:
                r.gacc[4 + 3 * L] += sqrt(diff_sumsq(params, <const floating*>r.theta0,
                                                     p.n_params))
        r.ecost += c
        r.erows += m
        # close a record every `every` steps and at the end of the epoch
        cnt += 1
        if cnt == r.every or (s == steps - 1 and epoch_end):
            for l in range(L):
                if r.gb != NULL:
                    r.gb[r.n * L + l] = acc[l] / cnt
                if r.gw != NULL:
                    r.gw[r.n * L + l] = acc[L + l] / cnt
            if r.cost != NULL:
                r.cost[r.n] = acc[2 * L] / cnt
            if r.prenorm != NULL:
                r.prenorm[r.n] = acc[2 * L + 1] / cnt
            for l in range(L):
                nu = acc[7 * L + 2] * p.sizes[l + 1]   # activations seen: rows x units
                mean = AS[4 * l] / nu
                if r.amean != NULL:
                    r.amean[r.n * L + l] = mean
                if r.astd != NULL:
                    r.astd[r.n * L + l] = sqrt(max(AS[4 * l + 1] / nu - mean * mean, 0.0))
                if r.sat != NULL:
                    r.sat[r.n * L + l] = AS[4 * l + 2] / nu
                if r.dead != NULL:
                    r.dead[r.n * L + l] = AS[4 * l + 3] / (cnt * p.sizes[l + 1])
                if r.upd != NULL:
                    r.upd[r.n * L + l] = AU[l] / cnt
            for i in range(3):
                if r.gs[i] != NULL:
                    r.gs[i][r.n] = r.gacc[i] / cnt
                if r.gs[3 + i] != NULL:
                    for l in range(L):
                        r.gs[3 + i][r.n * L + l] = r.gacc[3 + i * L + l] / cnt
            if r.usz != NULL:
                r.usz[r.n] = r.gacc[3 + 3 * L] / cnt
            if r.dist != NULL:
                r.dist[r.n] = r.gacc[4 + 3 * L] / cnt
            if r.gns != NULL:  # the smoothed estimate after the record's last step
                r.gns[r.n] = r.gns_ema[0] / r.gns_ema[1] if r.gns_ema[1] != 0 else NAN
            for i in range(3):
                if r.gs[6 + i] != NULL:
                    r.gs[6 + i][r.n] = r.gacc[5 + 3 * L + i] / cnt
            if r.gs[9] != NULL:
                for l in range(L):
                    r.gs[9][r.n * L + l] = r.gacc[8 + 3 * L + l] / cnt
            for i in range(8 + 4 * L):
                r.gacc[i] = 0
            r.n += 1
            cnt = 0
            for i in range(7 * L + 3):
                acc[i] = 0
    carry[0] = cnt
    return steps


# ---------------------------------------------------------------- the Python face of the engine

# recorded quantities read by grad_stats (whole network, then per layer)
GRAD_STATS = ("trace_cov", "noise_scale", "norm_test", "layer_trace_cov", "layer_noise_scale",
              "layer_norm_test", "inner_test", "ortho_test", "gsnr", "layer_gsnr")
# recordings that need the old parameters saved: the steps take the general path
NEEDS_OLD_PARAMETERS = ("update_ratio",)

cdef inline void* ptr(cnp.ndarray a):
    return cnp.PyArray_DATA(a) if a is not None else NULL


cdef class TileRows:
    """The rows of a mostly-zero X compacted once for the sparse first layer (csrc/vg_direct.c's
    vg_tile_rows): each row's tiles of 4 adjacent columns that hold a nonzero, with their values,
    and each row's max |x| (-1 for NaN/Inf). An epoch given them (Engine.train_epoch's `tiles`)
    lists a mini-batch's tiles from these instead of scanning every column of its rows: the same
    lists, so the same results bit for bit. It serves the array it was built from (`source`,
    compared by identity) and only while that array's contents stay as they were: train() and the
    vgfast.sklearn estimators build one per call, over which X does not change."""
    cdef readonly object source
    cdef readonly cnp.ndarray rp, rt, rv, rmax

    def __init__(self, cnp.ndarray X not None):
        if X.ndim != 2 or not X.flags.c_contiguous or X.dtype not in (np.float64, np.float32):
            raise ValueError("TileRows: X must be a C-contiguous 2-D float64 or float32 array")
        cdef int64_t n = X.shape[0], nin = X.shape[1], total
        if nin >= 2 ** 31:
            raise ValueError("TileRows: X has too many columns (at most 2**31 - 1)")
        self.rp = np.empty(n + 1, np.int64)
        cdef void* x = ptr(X)
        cdef int64_t* rp = <int64_t*>ptr(self.rp)
        cdef bint dbl = X.dtype == np.float64
        with nogil:
            if dbl:
                total = vg_tile_rows_d(<double*>x, n, nin, rp, NULL, NULL, NULL)
            else:
                total = vg_tile_rows_f(<float*>x, n, nin, rp, NULL, NULL, NULL)
        self.rt = np.empty(max(total, 1), np.int32)
        self.rv = np.empty(4 * max(total, 1), X.dtype)
        self.rmax = np.empty(max(n, 1), np.float64)
        cdef int32_t* rt = <int32_t*>ptr(self.rt)
        cdef void* rv = ptr(self.rv)
        cdef double* rmax = <double*>ptr(self.rmax)
        with nogil:
            if dbl:
                vg_tile_rows_d(<double*>x, n, nin, rp, rt, <double*>rv, rmax)
            else:
                vg_tile_rows_f(<float*>x, n, nin, rp, rt, <float*>rv, rmax)
        self.source = X

    @property
    def nbytes(self):
        """Bytes held (beside the source array)."""
        return self.rp.nbytes + self.rt.nbytes + self.rv.nbytes + self.rmax.nbytes


cdef class Engine:
    """The compiled engine for one architecture and dtype; owns the workspace.

    Not thread-safe on its own: network.py holds a lock around every call.
    """
    cdef readonly int L
    cdef readonly object dtype
    cdef readonly int64_t n_params, rows
    cdef cnp.ndarray sizes, w_off, b_off, act, alpha, a_off, z_off, d_off, s_off, keep, counters
    cdef cnp.ndarray ws, labbuf, bn, g_off, r_off, xh_off, st_off
    cdef readonly cnp.ndarray running
    cdef cnp.ndarray scratch, rbk, wtbuf, mtbuf, vtbuf
    cdef tuple sparse_bufs           # sparse_buffers() for sparse_rows rows
    cdef int64_t sparse_rows
    # the last sparsity verdict and the array it was taken on (data address, shape, strides,
    # dtype): train() hands the same X every epoch, whose first rows are not probed again
    cdef tuple sparse_key
    cdef bint sparse_verdict
    # how the last train_epoch ran the first layer: "blas" (gathered rows, BLAS), "direct"
    # (rows read in place by the AVX-512 kernels) or "sparse" (their nonzeros only)
    cdef readonly str first_layer
    # whether that first layer read X's rows compacted once (TileRows) rather than X itself
    cdef readonly bint first_layer_tiles
    # how many of the last train_epoch's steps took W^0's Adam step from the sparse weight
    # gradient's registers (swgrad_adam)
    cdef readonly int64_t w0_steps_in_registers
    # (s1, s2) whose W^0 moments mtbuf, vtbuf hold in their place between two train_epoch calls
    # (its `hold`), or None; release_moments() writes them back
    cdef tuple held
    cdef int cost
    cdef Plan plan

    def __init__(self, sizes, act, alpha, int cost, dtype, bn=None, double bn_eps=1e-5,
                 double bn_momentum=0.1):
        self.sizes = np.ascontiguousarray(sizes, dtype=np.int64)
        self.L = len(sizes) - 1
        self.act = np.ascontiguousarray(act, dtype=np.intc)
        self.alpha = np.ascontiguousarray(alpha, dtype=np.float64)
        self.cost = cost
        self.dtype = np.dtype(dtype)
        w_off = np.zeros(self.L, np.int64)
        b_off = np.zeros(self.L, np.int64)
        o = 0
        for l in range(self.L):
            w_off[l] = o
            o += sizes[l] * sizes[l + 1]
            b_off[l] = o
            o += sizes[l + 1]
        self.bn = np.zeros(self.L, np.intc)
        if bn is not None:
            self.bn[:] = bn
        g_off = np.zeros(self.L, np.int64)
        r_off = np.zeros(self.L, np.int64)
        r = 0
        for l in range(self.L):
            if self.bn[l]:
                g_off[l] = o
                o += 2 * sizes[l + 1]
                r_off[l] = r
                r += 2 * sizes[l + 1]
        self.w_off, self.b_off, self.g_off, self.r_off, self.n_params = w_off, b_off, g_off, r_off, o
        # running mean 0 and variance 1, as torch starts them
        self.running = np.zeros(r, self.dtype)
        for l in range(self.L):
            if self.bn[l]:
                self.running[r_off[l] + sizes[l + 1]:r_off[l] + 2 * sizes[l + 1]] = 1
        self.plan.bn_eps = bn_eps
        self.plan.bn_momentum = bn_momentum
        self.keep = np.ones(self.L, np.float64)
        self.counters = np.zeros(self.L, np.uint64)
        self.rows = 0
        self._reserve(1)

    def _reserve(self, int64_t m):
        """Make the workspace hold a batch of m rows (it only grows)."""
        if m <= self.rows:
            return
        L = self.L
        a_off = np.zeros(L + 1, np.int64)
        z_off = np.zeros(L + 1, np.int64)
        d_off = np.zeros(L + 1, np.int64)
        s_off = np.zeros(L + 1, np.int64)
        o = 0
        for l in range(L + 1):
            a_off[l] = o
            o += m * self.sizes[l]
        for l in range(1, L + 1):
            z_off[l] = o
            o += m * self.sizes[l]
            d_off[l] = o
            o += m * self.sizes[l]
            s_off[l] = o
            o += m * self.sizes[l]
        y_off = o
        o += m * self.sizes[L]
        xh_off = np.zeros(L, np.int64)
        st_off = np.zeros(L, np.int64)
        for l in range(L):
            if self.bn[l]:
                xh_off[l] = o
                o += m * self.sizes[l + 1]
                st_off[l] = o
                o += 2 * self.sizes[l + 1]
        self.xh_off, self.st_off = xh_off, st_off
        self.ws = np.zeros(o, self.dtype)
        self.labbuf = np.zeros(m, np.int64)
        self.a_off, self.z_off, self.d_off, self.s_off = a_off, z_off, d_off, s_off
        self.rows = m
        p = &self.plan
        p.L = L
        p.sizes = <int64_t*>ptr(self.sizes)
        p.w_off = <int64_t*>ptr(self.w_off)
        p.b_off = <int64_t*>ptr(self.b_off)
        p.act = <int*>ptr(self.act)
        p.alpha = <double*>ptr(self.alpha)
        p.cost = self.cost
        p.a_off = <int64_t*>ptr(self.a_off)
        p.z_off = <int64_t*>ptr(self.z_off)
        p.d_off = <int64_t*>ptr(self.d_off)
        p.s_off = <int64_t*>ptr(self.s_off)
        p.y_off = y_off
        p.keep = <double*>ptr(self.keep)
        p.counters = <uint64_t*>ptr(self.counters)
        p.seed = 0
        p.n_params = self.n_params
        p.bn = <int*>ptr(self.bn)
        p.g_off = <int64_t*>ptr(self.g_off)
        p.r_off = <int64_t*>ptr(self.r_off)
        p.xh_off = <int64_t*>ptr(self.xh_off)
        p.st_off = <int64_t*>ptr(self.st_off)
        p.running = ptr(self.running)
        p.n_running = self.running.shape[0]
        p.bn_mode = 0

    @property
    def workspace_bytes(self):
        return self.ws.nbytes

    def _views(self, int64_t m):
        """Views (zs, activations, deltas) of the workspace's first m rows."""
        s = self.sizes
        acts = [self.ws[self.a_off[l]:self.a_off[l] + m * s[l]].reshape(m, s[l])
                for l in range(self.L + 1)]
        zs = [self.ws[self.z_off[l]:self.z_off[l] + m * s[l]].reshape(m, s[l])
              for l in range(1, self.L + 1)]
        ds = [self.ws[self.d_off[l]:self.d_off[l] + m * s[l]].reshape(m, s[l])
              for l in range(1, self.L + 1)]
        return zs, acts, ds

    cdef bint _sparse_input(self, cnp.ndarray X):
        """Whether the sparse first-layer kernels take the rows of X: switched on, the first
        layer wide enough for them (float32: wider than the dense kernels take), and X mostly
        zeros (MNIST's pixels: 19% nonzero), judged on its first rows once per array (its
        address, shape, strides, dtype): a verdict only picks the faster kernels, both exact,
        so one taken on an array whose contents changed since is still a correct choice."""
        lanes = 8 if self.dtype == np.float64 else 16
        if not (_sparse_on and _direct_on and vg_direct_available() and
                (self.dtype == np.float64 or self.sizes[1] > DIRECT_MAX_VECTORS * lanes) and
                self.sizes[0] < 2 ** 31):
            return False
        xo = <object>X
        key = (xo.__array_interface__["data"][0], xo.shape, xo.strides, xo.dtype.str)
        if key != self.sparse_key:
            head = X[:min(X.shape[0], SPARSE_PROBE_ROWS)]
            self.sparse_verdict = np.count_nonzero(head) <= SPARSE_MAX_DENSITY * head.size
            self.sparse_key = key
        return self.sparse_verdict

    cdef bint _direct_rows(self, int64_t batch_size, double keep_input, dict more):
        """Whether train_epoch may read the first layer's rows in place (no gather): AVX-512 and
        the direct kernels on, batches of DIRECT_MIN_ROWS or more, no input dropout, no
        gradient-noise recording (more: the recordings asked for, by name)."""
        return (_direct_on and vg_direct_available() and keep_input == 1.0
                and batch_size >= DIRECT_MIN_ROWS
                and all(more.get(k) is None for k in GRAD_STATS + ("gns",)))

    cdef bint _chunkable(self, dict more):
        """Whether a large batch may go in chunks of rows (not with batch norm or dead-unit
        counts, which need the whole batch)."""
        return not self.bn.any() and more.get("dead_fraction") is None

    cdef bint _sparse_rows(self, cnp.ndarray X, int64_t batch_size, bint chunkable):
        """Whether the sparse kernels take rows read in place (_direct_rows) from X: mostly
        zeros (_sparse_input), chunks of at most SPARSE_MAX_ROWS rows."""
        return ((min(batch_size, SPARSE_CHUNK_ROWS) if chunkable else batch_size)
                <= SPARSE_MAX_ROWS and self._sparse_input(X))

    def tile_rows(self, cnp.ndarray X not None, int64_t batch_size, double keep_input=1.0,
                  records=()):
        """TileRows(X) for epochs over X in mini-batches of batch_size rows (input keep
        probability keep_input, the named recordings) when train_epoch's sparse first layer
        would read them, else None: built by callers that run several epochs over one
        unchanging X (train(), the vgfast.sklearn estimators)."""
        more = {name: True for name in records}
        if (_tiles_on and X.ndim == 2 and X.flags.c_contiguous and X.dtype == self.dtype and
                X.shape[1] == self.sizes[0] and self._direct_rows(batch_size, keep_input, more)
                and self._sparse_rows(X, batch_size, self._chunkable(more))):
            return TileRows(X)
        return None

    cdef void _point_wt(self, Plan* p):
        """p.wt, p.ldw: the buffer of W^0 transposed (vg_pack_t's layout)."""
        lanes = 8 if self.dtype == np.float64 else 16
        p.ldw = (self.sizes[1] + lanes - 1) // lanes * lanes
        if self.wtbuf is None or self.wtbuf.shape[0] != self.sizes[0] * p.ldw:
            self.release_moments()
            self.wtbuf = np.zeros(self.sizes[0] * p.ldw, self.dtype)
            self.mtbuf = np.zeros_like(self.wtbuf)
            self.vtbuf = np.zeros_like(self.wtbuf)
            self.sparse_bufs = None
        p.wt = ptr(self.wtbuf)
        p.mt = ptr(self.mtbuf)
        p.vt = ptr(self.vtbuf)

    def release_moments(self):
        """The W^0 Adam moments held since the last train_epoch (its `hold`) written back into
        the optimiser state they belong to; nothing when none are held."""
        if self.held is None:
            return
        cdef Plan* p = &self.plan
        s1, s2 = self.held  # (held: p.t0_live is 2)
        self.held = None
        if self.dtype == np.float64:
            t0_sync(p, <double*>NULL, <double*>ptr(s1), <double*>ptr(s2))
        else:
            t0_sync(p, <float*>NULL, <float*>ptr(s1), <float*>ptr(s2))

    cdef void _point_sparse(self, Plan* p, int64_t chunk):
        """p's sparse operands, for chunks of up to `chunk` rows."""
        if self.sparse_bufs is None or self.sparse_rows < chunk:
            self.sparse_bufs = sparse_buffers(chunk, self.sizes[0], self.dtype)
            self.sparse_rows = chunk
        point_sparse(p, self.sparse_bufs)

    def forward(self, cnp.ndarray params, cnp.ndarray X, cnp.ndarray out, int64_t chunk=1024):
        """out[i] = network output for row X[i]; X processed in chunks of `chunk` rows.

        Batch-normalised layers use the running statistics.
        """
        self.gradient(params, X, None, None, None, chunk, mode=0, out=out)

    def gradient(self, cnp.ndarray params, cnp.ndarray X, cnp.ndarray Y, cnp.ndarray labels,
                 cnp.ndarray grad, int64_t chunk=1024, bint cost_only=False,
                 bint batch_stats=False, int mode=-1, cnp.ndarray out=None):
        """grad = mean over the rows of dC/dparams (unregularised); returns the mean cost.

        cost_only: the mean cost alone (grad unused); out, when given, receives the outputs
        (n, n_out) from the same pass; mode 0 (internal): the outputs alone.
        Batch-normalised layers use the running statistics, or with batch_stats the statistics
        of all the rows as one batch (then the rows are not chunked).
        """
        cdef int64_t n = X.shape[0]
        cdef Plan* p = &self.plan
        cdef int64_t rows_before = self.rows
        if mode < 0:
            mode = 1 if cost_only else 2
        if batch_stats:
            chunk = n
        self._reserve(min(n, chunk))
        p.bn_mode = 1 if batch_stats else 0
        cdef int64_t rows = self.rows
        cdef void* P = ptr(params)
        cdef void* xs = ptr(X)
        cdef void* ys = ptr(Y)
        cdef const int64_t* lab = <int64_t*>ptr(labels)
        cdef void* g = ptr(grad)
        cdef void* w = ptr(self.ws)
        cdef void* o = ptr(out)
        cdef double total
        cdef bint dbl = self.dtype == np.float64
        # outputs alone of mostly-zero rows: the first layer by the sparse kernels, reading the
        # rows in place (a chunk with a NaN/Inf row goes through BLAS, which propagates it)
        cdef bint direct = (mode == 0 and not batch_stats and n >= DIRECT_MIN_ROWS and
                            X.flags.c_contiguous and self._sparse_input(X))
        if direct:
            rows = min(rows, SPARSE_CHUNK_ROWS)
            ident = np.arange(n, dtype=np.int64)
            self._point_wt(p)
            self._point_sparse(p, rows)
            p.didx = <int64_t*>ptr(ident)
            p.sparse = 1
            if dbl:
                pack_t(<double*>P + p.w_off[0], p.sizes[1], p.sizes[0], <double*>p.wt, p.ldw)
            else:
                pack_t(<float*>P + p.w_off[0], p.sizes[1], p.sizes[0], <float*>p.wt, p.ldw)
        try:
            with nogil:
                if dbl:
                    total = _chunks(p, <double*>P, <double*>xs, <double*>ys, lab, <double*>g,
                                    <double*>w, <double*>o, n, rows, mode)
                else:
                    total = _chunks(p, <float*>P, <float*>xs, <float*>ys, lab, <float*>g,
                                    <float*>w, <float*>o, n, rows, mode)
        finally:
            p.didx = NULL
            p.sparse = 0
        if batch_stats and n > rows_before:  # do not keep a whole-data-set workspace
            self.rows = 0
            self._reserve(rows_before)
        return total / n

    def trace(self, cnp.ndarray params, cnp.ndarray X, cnp.ndarray Y=None,
              cnp.ndarray labels=None, bint batch_stats=False):
        """Forward (and backward when targets are given) over all rows at once.

        Returns (zs, activations, deltas) as copies: zs[l], deltas[l] are (n, sizes[l+1]) for
        l = 0..L-1, activations[l] is (n, sizes[l]) for l = 0..L; deltas[l][i] is the
        per-example dC/dz (equal to the per-example dC/db) of layer l+1; deltas is None
        without targets.
        """
        cdef int64_t n = X.shape[0], rows_before = self.rows
        self._reserve(n)
        zs, acts, ds = self._views(n)
        grad = np.zeros(self.n_params, self.dtype)
        cdef Plan* p = &self.plan
        p.bn_mode = 1 if batch_stats else 0
        cdef void* P = ptr(params)
        cdef void* xs = ptr(X)
        cdef void* w = ptr(self.ws)
        cdef void* ys = ptr(Y)
        cdef const int64_t* lab = <int64_t*>ptr(labels)
        cdef void* g = ptr(grad)
        cdef bint dbl = self.dtype == np.float64
        cdef bint back = Y is not None or labels is not None
        cdef int mode = 2 if back else 0
        with nogil:  # all the rows as one chunk, so the workspace holds every z, a and delta
            if dbl:
                _chunks(p, <double*>P, <double*>xs, <double*>ys, lab, <double*>g, <double*>w,
                        <double*>NULL, n, n, mode)
            else:
                _chunks(p, <float*>P, <float*>xs, <float*>ys, lab, <float*>g, <float*>w,
                        <float*>NULL, n, n, mode)
        out = ([z.copy() for z in zs], [a.copy() for a in acts],
               [d.copy() for d in ds] if back else None)
        if n > rows_before:  # a trace of many rows does not keep its workspace
            self.rows = 0
            self._reserve(rows_before)
        return out

    def record_carry(self):
        """Fresh sums for train_epoch calls over segments of one epoch: (acc (7L + 3,) and
        gacc (8 + 4L,) of the open record, then the epoch's cost sum, float64; steps summed
        in the open record, rows right and rows seen in the epoch, int64)."""
        return (np.zeros(7 * self.L + 3, np.float64), np.zeros(9 + 4 * self.L, np.float64),
                np.zeros(3, np.int64))

    def train_epoch(self, cnp.ndarray params, cnp.ndarray grad, cnp.ndarray X, cnp.ndarray Y,
                    cnp.ndarray labels, cnp.ndarray perm, int64_t batch_size, int opt_kind,
                    hyper, double wd, cnp.ndarray lr, cnp.ndarray mom, cnp.ndarray s1,
                    cnp.ndarray s2, int64_t t, double l2, double l1, int clip, double clip_c,
                    double max_norm_c, keep, uint64_t seed, uint64_t counter,
                    int64_t rec_every, cnp.ndarray rec_gb, cnp.ndarray rec_gw,
                    cnp.ndarray rec_cost, cnp.ndarray rec_prenorm, dict rec_more=None,
                    bint fused=True, tuple carry=None, bint epoch_end=True,
                    TileRows tiles=None, bint hold=False):
        """One epoch over X[perm] in mini-batches; see train.py for the meaning of each argument.

        The rows of X are checked for NaN/Inf as they are gathered, or, when the first layer
        reads them in place (self.first_layer "direct"/"sparse", see get_direct()), as its
        forward kernel reads them (bad_kind 5 stops the epoch before that step's update). fused=False forces the general path (tests compare
        the two).

        Returns (steps_done, t, counter, records_written, bad_kind, bad_layer, cost_sum,
        correct, rows, fused_steps): cost_sum and correct are the summed cost and the count of
        rows classified right over the epoch's finished steps (with carry: those of earlier
        segments included), each measured on its mini-batch before that step's update.

        A call may run part of an epoch: carry, from record_carry(), holds the open record's
        sums between calls over consecutive segments of one epoch (the record arrays given are
        then the ones still to be written); epoch_end says whether this call ends the epoch
        (and so closes the open record). Segments give bitwise the results of one call.

        tiles: X's rows compacted (TileRows(X), or tile_rows()), read by the sparse first layer
        instead of X when it runs (ignored otherwise, or if built from another array). The same
        results bit for bit.
        """
        cdef int64_t n = perm.shape[0], steps
        cdef int L = self.L
        self._reserve(batch_size)
        self.keep[:] = keep
        cdef Plan* p = &self.plan
        p.seed = seed
        p.bn_mode = 2
        cdef Opt o
        o.kind = opt_kind
        for i in range(8):
            o.h[i] = hyper[i] if i < len(hyper) else 0.0
        o.wd = wd
        o.lr = <double*>ptr(lr)
        o.mom = <double*>ptr(mom)
        o.l2, o.l1, o.clip, o.clip_c, o.max_norm, o.t = l2, l1, clip, clip_c, max_norm_c, t
        o.fused = (fused and opt_kind == 0 and l1 == 0 and clip == 0
                   and not any(k in (rec_more or {}) for k in NEEDS_OLD_PARAMETERS)
                   and not (max_norm_c > 0 and "update_size" in (rec_more or {})))
        cdef Rec r
        r.every = rec_every
        r.gb = <double*>ptr(rec_gb)
        r.gw = <double*>ptr(rec_gw)
        r.cost = <double*>ptr(rec_cost)
        r.prenorm = <double*>ptr(rec_prenorm)
        more = rec_more or {}
        r.amean = <double*>ptr(more.get("activation_mean"))
        r.astd = <double*>ptr(more.get("activation_std"))
        r.sat = <double*>ptr(more.get("saturation"))
        r.dead = <double*>ptr(more.get("dead_fraction"))
        r.upd = <double*>ptr(more.get("update_ratio"))
        for i, name in enumerate(GRAD_STATS):
            r.gs[i] = <double*>ptr(more.get(name))
        r.usz = <double*>ptr(more.get("update_size"))
        r.dist = <double*>ptr(more.get("distance"))
        r.gns = <double*>ptr(more.get("gns"))
        gns_ema = more.get("gns_ema")
        if r.gns != NULL and (gns_ema is None or gns_ema.dtype != np.float64 or
                              gns_ema.shape != (3,)):
            raise ValueError("train_epoch: recording 'gns' needs rec_more['gns_ema'], float64 (3,)")
        r.gns_ema = <double*>ptr(gns_ema) if r.gns != NULL else NULL
        if carry is None:
            carry = self.record_carry()
        acc, gacc, cnt = carry
        if acc.shape != (7 * L + 3,) or gacc.shape != (9 + 4 * L,) or cnt.shape != (3,):
            raise ValueError("train_epoch: carry must come from record_carry()")
        exbuf = np.zeros(2 * batch_size, np.float64)
        r.exbuf = <double*>ptr(exbuf)
        rowbuf = np.zeros(2 * batch_size, np.float64)
        r.rowbuf = <double*>ptr(rowbuf)
        r.gacc = <double*>ptr(gacc)
        theta0 = more.get("theta0")
        if r.dist != NULL and (theta0 is None or theta0.dtype != self.dtype or
                               theta0.shape != (self.n_params,)):
            raise ValueError("train_epoch: recording 'distance' needs rec_more['theta0'], the "
                             "starting parameters")
        r.theta0 = ptr(theta0)
        rowsq = np.zeros(batch_size, np.float64)  # ||x_i||^2 of the batch (gradient noise)
        cdef double* RQ = <double*>ptr(rowsq)
        if self.scratch is None:  # kept: a fresh page-faulted buffer per epoch costs measurably
            self.scratch = np.zeros(self.n_params, self.dtype)
            self.rbk = np.zeros(max(self.running.shape[0], 1), self.dtype)
        cdef void* SC = ptr(self.scratch)
        cdef void* RB = ptr(self.rbk)
        r.n = 0
        r.bad_layer = -1
        r.bad_kind = 0
        r.ecost = gacc[8 + 4 * L]
        r.ecorrect = cnt[1]
        r.erows = cnt[2]
        r.fused_steps = 0
        bnd = np.zeros(2 * L, np.float64)
        cdef double* BD = <double*>ptr(bnd)
        cdef double* a = <double*>ptr(acc)
        cdef int64_t* cn = <int64_t*>ptr(cnt)
        cdef void* P = ptr(params)
        cdef void* g = ptr(grad)
        cdef void* w = ptr(self.ws)
        cdef void* xs = ptr(X)
        cdef void* ys = ptr(Y)
        cdef const int64_t* lab = <int64_t*>ptr(labels)
        cdef int64_t* lb = <int64_t*>ptr(self.labbuf)
        cdef const int64_t* pm = <int64_t*>ptr(perm)
        cdef void* S1 = ptr(s1)
        cdef void* S2 = ptr(s2)
        cdef uint64_t ctr = counter
        lanes = 8 if self.dtype == np.float64 else 16
        p.dx = NULL
        p.didx = NULL
        p.xrp = NULL
        # (the gradient-noise recordings read the gathered rows: they keep the gather)
        p.sparse = 0
        p.chunk_rows = CHUNK_ROWS
        if self._direct_rows(batch_size, self.keep[0], more):
            # rows compressed at a time: one chunk (epoch() runs a chunk's weight gradient
            # before it reads the next chunk), the whole batch when it cannot be chunked
            chunkable = self._chunkable(more)
            chunk = min(batch_size, CHUNK_ROWS) if chunkable else batch_size
            # (measured on MNIST, one epoch, bench/direct_first_layer.py and the A/B runs in
            # bench/README.md: the sparse kernels beat BLAS at [784, 100] by 1.4x in float64 and
            # 1.13x in float32, and the dense kernels at [784, 30] by 1.10x in float64; in float32
            # the dense kernels win where they apply, 1.13x)
            p.sparse = self._sparse_rows(X, batch_size, chunkable)
            if p.sparse or self.sizes[1] <= DIRECT_MAX_VECTORS * lanes:
                self._point_wt(p)
                p.dx = xs
            if p.sparse:
                chunk = min(batch_size, SPARSE_CHUNK_ROWS) if chunkable else batch_size
                p.chunk_rows = chunk
                self._point_sparse(p, chunk)
                if tiles is not None and tiles.source is X:
                    point_tiles(p, tiles)
        self.first_layer = "blas" if p.dx == NULL else ("sparse" if p.sparse else "direct")
        self.first_layer_tiles = p.xrp != NULL
        # W^0's moments held since the last call stay in mtbuf, vtbuf for this one when they
        # are s1's and s2's and the sparse first layer reads X (else they go back first)
        if self.held is not None and (self.held[0] is not s1 or self.held[1] is not s2 or
                                      not p.sparse):
            self.release_moments()
        p.t0_live = 2 if self.held is not None else 0
        self.held = None
        p.n_fused0 = 0
        if self.dtype == np.float64:
            with nogil:
                steps = epoch(p, <double*>P, <double*>g, <double*>w, <double*>xs, <double*>ys,
                              lab, lb, pm, n, batch_size, &o, <double*>S1, <double*>S2, &r,
                              &ctr, a, <double*>SC, <double*>RB, BD, RQ, cn, epoch_end)
                t0_sync(p, <double*>P, <double*>S1, <double*>S2, not hold or r.bad_kind != 0)
        else:
            with nogil:
                steps = epoch(p, <float*>P, <float*>g, <float*>w, <float*>xs, <float*>ys,
                              lab, lb, pm, n, batch_size, &o, <float*>S1, <float*>S2, &r,
                              &ctr, a, <float*>SC, <float*>RB, BD, RQ, cn, epoch_end)
                t0_sync(p, <float*>P, <float*>S1, <float*>S2, not hold or r.bad_kind != 0)
        if p.t0_live == 2:  # held: the next call (or release_moments) takes them
            self.held = (s1, s2)
        p.dx = NULL  # every other entry point runs the first layer through BLAS
        p.didx = NULL
        p.xrp = NULL
        self.w0_steps_in_registers = p.n_fused0
        gacc[8 + 4 * L] = r.ecost
        cnt[1] = r.ecorrect
        cnt[2] = r.erows
        return (steps, o.t, ctr, r.n, r.bad_kind, r.bad_layer, r.ecost, r.ecorrect, r.erows,
                r.fused_steps)


cdef double _chunks(Plan* p, const floating* params, const floating* X, const floating* Y,
                    const int64_t* lab, floating* grad, floating* ws, floating* out, int64_t n,
                    int64_t rows, int mode) noexcept nogil:
    """The rows of X in chunks of `rows`: forward, outputs copied to out (when given), then
    mode 0 nothing more, 1 the cost, 2 the cost and the mean gradient (accumulated across
    chunks). Returns the summed cost."""
    cdef int64_t i = 0, m, n0 = p.sizes[0], nL = p.sizes[p.L]
    cdef double total = 0
    cdef const int64_t* didx = p.didx
    while i < n:
        m = rows if i + rows <= n else n - i
        # (p.didx, mode 0: the first layer's Z by the sparse kernels from X in place, unless a
        # row is NaN/Inf: then BLAS on the copied rows, which carries it to the output)
        p.didx = didx
        if didx == NULL or l0_forward_rows(p, X, i, m, ws + p.z_off[1]) < 0:
            p.didx = NULL
            _copy_rows(X + i * n0, m * n0, ws + p.a_off[0])
        forward(p, params, ws, m, False, NULL, mode == 2)
        if out != NULL:
            _copy_rows(ws + p.a_off[p.L], m * nL, out + i * nL)
        if mode == 1:
            total += output_delta(<floating*>NULL, ws + p.z_off[p.L], ws + p.a_off[p.L],
                                  <floating*>NULL, Y + i * nL if Y != NULL else NULL,
                                  lab + i if lab != NULL else NULL, m, nL, p.act[p.L - 1],
                                  p.cost, <int64_t*>NULL)
        elif mode == 2:
            total += backward(p, params, ws, grad, m, Y + i * nL if Y != NULL else NULL,
                              lab + i if lab != NULL else NULL, 1.0 / n, i > 0, False)
        i += m
    p.didx = didx
    return total


cdef inline void _copy_rows(const floating* src, int64_t n, floating* dst) noexcept nogil:
    cdef int64_t i
    for i in range(n):
        dst[i] = src[i]


def philox_uniform(uint64_t seed, uint64_t counter, Py_ssize_t n):
    """The dropout generator's uniforms u_i = w_i / 2^32 in [0, 1) for elements counter ..
    counter + n - 1 (Philox-4x32-10 words); dropout keeps element i when u_i < keep."""
    out = np.empty(n, np.float64)
    cdef double[::1] o = out
    cdef Py_ssize_t i
    for i in range(n):
        o[i] = vg_random_word(seed, counter + i) * (1.0 / 4294967296.0)
    return out


def optimizer_step(int kind, cnp.ndarray p not None, cnp.ndarray g not None,
                   cnp.ndarray s1 not None, cnp.ndarray s2 not None, hyper, int64_t t):
    """One optimiser step over whole flat buffers (the kernel train() uses per layer).

    kind: 0 SGD, 1 AdaGrad, 2 RMSProp, 3 Adam; hyper as in vg_opt_step (see optim.py);
    t: 1-based step count. Arrays must be C-contiguous, one dtype (float64 or float32), one
    length; checked here because this entry is public (benchmarks, tests).
    """
    if p.ndim != 1:
        raise ValueError("p must be a writable C-contiguous 1-D array")
    if not 0 <= kind <= 3:
        raise ValueError(f"kind must be 0 (SGD), 1 (AdaGrad), 2 (RMSProp) or 3 (Adam); got {kind}")
    cdef int64_t n = p.shape[0]
    for name, a in (("p", p), ("g", g), ("s1", s1), ("s2", s2)):
        if a.ndim != 1 or a.shape[0] != n or a.dtype != p.dtype or not a.flags.c_contiguous \
                or (name != "g" and not a.flags.writeable):
            raise ValueError(f"{name} must be a writable C-contiguous 1-D array like p")
    if p.dtype != np.float64 and p.dtype != np.float32:
        raise TypeError("p must be float64 or float32")
    h = np.zeros(8, np.float64)
    h[:len(hyper)] = hyper
    cdef double* hp = <double*>ptr(h)
    cdef int bad
    cdef void* P = ptr(p)
    cdef void* G = ptr(g)
    cdef void* A = ptr(s1)
    cdef void* B = ptr(s2)
    if p.dtype == np.float64:
        with nogil:
            bad = vg_opt_step_d(kind, <double*>P, <double*>G, <double*>A, <double*>B, n, hp, t,
                                NULL)
    else:
        with nogil:
            bad = vg_opt_step_f(kind, <float*>P, <float*>G, <float*>A, <float*>B, n, hp, t,
                                NULL)
    return bool(bad)


# ---------------------------------------------------------------- instruction sets, data bound

ISA_NAMES = ("baseline", "avx2", "avx512")


def isa_supported():
    """The widest instruction set of the elementwise kernels this CPU runs: 'baseline' (any
    x86-64, SSE2), 'avx2' or 'avx512'."""
    return ISA_NAMES[vg_isa_supported()]


def get_isa():
    """The instruction set the elementwise kernels use now."""
    return ISA_NAMES[vg_get_isa()]


def set_isa(name):
    """Select the kernels' instruction set: 'baseline', 'avx2', 'avx512' or 'auto' (the widest
    this CPU runs). A set the CPU lacks is refused. Every set's elementwise kernels compute
    bitwise the same numbers (no FMA contraction, no reassociation): only the speed differs. With
    'avx512' the first layer may also run on its own FMA kernels (get_direct()), which round
    differently from BLAS. Returns the set in use.
    Not for use while another thread trains: call it at start-up."""
    if name == "auto":
        vg_set_isa(-1)
        return get_isa()
    if name not in ISA_NAMES:
        raise ValueError(f"instruction set must be one of {ISA_NAMES + ('auto',)}; got {name!r}")
    level = ISA_NAMES.index(name)
    if level > vg_isa_supported():
        raise ValueError(f"this CPU does not run the {name!r} kernels (the widest it runs is "
                         f"{isa_supported()!r})")
    vg_set_isa(level)
    return get_isa()


def direct_available():
    """True when the first layer can read its rows in place: the AVX-512 kernels are selected
    (set_isa) on a CPU that has them."""
    return bool(vg_direct_available())


def get_direct():
    """Whether train() lets the first layer read its mini-batch rows where they lie (no gather
    into a copy, no packing by BLAS: csrc/vg_direct.c) when it can: AVX-512 selected, a batch of
    at least 64 rows, at most 32 (float64) / 64 (float32) first-layer units, no input dropout and
    no gradient-noise recording. It changes rounding only (its own FMA order, not BLAS's)."""
    return bool(_direct_on)


def set_direct(bint on):
    """Switch the direct first layer on (the default) or off (every product through BLAS, as on
    a CPU without AVX-512; tests compare the two). Environment: VGFAST_DIRECT=0 starts with it
    off. Not for use while another thread trains. Returns the previous setting."""
    global _direct_on
    before = bool(_direct_on)
    _direct_on = on
    return before


def _set_sparse(bint on):
    """(For tests and benchmarks) let mostly-zero inputs take the sparse first-layer kernels
    (the default) or not (then the dense in-place kernels). Returns the previous setting."""
    global _sparse_on
    before = bool(_sparse_on)
    _sparse_on = on
    return before


def _set_adam_t(bint on):
    """(For tests and benchmarks) let Adam's step on a first layer read in place go through
    vg_adam_t (penalty, step and the next transpose in one pass; the default) or not (the
    penalty pass, vg_opt_step, and the packing at the next step). Returns the previous
    setting."""
    global _adam_t_on
    before = bool(_adam_t_on)
    _adam_t_on = on
    return before


def _set_swgrad_adam(bint on):
    """(For tests and benchmarks) let Adam's step on a sparse first layer take the weight
    gradient from the sparse kernels' registers, on W^0 and its moments kept transposed
    (vg_swgrad_adam, the default), or form the gradient first (then vg_adam_t). Returns the
    previous setting."""
    global _swgrad_adam_on
    before = bool(_swgrad_adam_on)
    _swgrad_adam_on = on
    return before


def _set_wgrad_sgd(bint on):
    """(For tests and benchmarks) let SGD steps whose weight gradient only the step reads take
    it from the direct kernels' registers (vg_wgrad_sgd, the default), or form it first (a
    GEMM or the direct kernel, then vg_sgd_apply). Returns the previous setting."""
    global _wgrad_sgd_on
    before = bool(_wgrad_sgd_on)
    _wgrad_sgd_on = on
    return before


def _set_tiles(bint on):
    """(For tests and benchmarks) let Engine.tile_rows compact the rows of X (on, the default),
    or not (off: the sparse first layer scans X's rows at every step). Returns the previous
    setting."""
    global _tiles_on
    before = bool(_tiles_on)
    _tiles_on = on
    return before


def _sparse_group_rows(rows=None):
    """(For benchmarks) the rows per group of the sparse forward product (0: one group);
    sets it when rows is given. Returns the previous value."""
    global vg_sparse_group_rows
    before = int(vg_sparse_group_rows)
    if rows is not None:
        if not 0 <= rows <= 2 ** 31:
            raise ValueError("rows must be in [0, 2**31]")
        vg_sparse_group_rows = rows
    return before


def _isa_from_environment():
    import os
    import warnings
    want = os.environ.get("VGFAST_ISA", "auto").strip().lower() or "auto"
    try:
        set_isa(want)
    except ValueError as e:
        warnings.warn(f"VGFAST_ISA: {e}; using {set_isa('auto')!r}", RuntimeWarning, stacklevel=2)


_isa_from_environment()
if os.environ.get("VGFAST_DIRECT", "1").strip() == "0":
    set_direct(False)


cdef double _first_layer(Plan* q, const floating* X, const floating* W, const floating* D,
                         floating* Z, floating* G, int64_t m, double alpha,
                         double beta) noexcept nogil:
    pack_t(W, q.sizes[1], q.sizes[0], <floating*>q.wt, q.ldw)
    cdef double mx = l0_forward_rows(q, X, 0, m, Z)
    l0_wgrad(q, 0, m, D, alpha, beta, G)
    return mx


def _check_first_layer(str name, cnp.ndarray X, cnp.ndarray idx, cnp.ndarray W,
                       cnp.ndarray D, cnp.ndarray G, str gname="G"):
    """The test hooks' arguments: X (n, k), W and G (j, k), D (m, j) C-contiguous of one float
    dtype, G (named gname) writeable; idx int64 in [0, n), m >= 1 of them. Returns m."""
    dt = X.dtype
    if dt not in (np.float64, np.float32):
        raise TypeError(f"{name}: X must be float64 or float32")
    for what, a in (("X", X), ("W", W), ("D", D), (gname, G)):
        if a.dtype != dt or a.ndim != 2 or not a.flags.c_contiguous:
            raise ValueError(f"{name}: {what} must be a C-contiguous 2-D array of X's dtype")
    if not G.flags.writeable:
        raise ValueError(f"{name}: {gname} must be writeable")
    cdef int64_t n = X.shape[0], nin = X.shape[1], nout = W.shape[0], m = idx.shape[0]
    if (idx.dtype != np.int64 or idx.ndim != 1 or not idx.flags.c_contiguous or
            (m and (idx.min() < 0 or idx.max() >= n))):
        raise ValueError(f"{name}: idx must be int64 row indices of X")
    if W.shape[1] != nin or D.shape[0] != m or D.shape[1] != nout or G.shape[0] != nout \
            or G.shape[1] != nin:
        raise ValueError(f"{name}: shapes do not match")
    if m == 0:
        raise ValueError(f"{name}: idx must select at least one row")
    return m


cdef tuple _layer_plan(Plan* q, cnp.ndarray X, cnp.ndarray idx, int64_t nout, bint sparse):
    """The test hooks' plan of one first layer (nout units) reading the rows X[idx] through the
    engine's own dispatch: W^0 transposed and its moments (q.wt, q.mt, q.vt), the sparse kernels'
    operands, offsets 0. Returns the arrays q points into (keep them while q is used) and Z."""
    cdef int64_t nin = X.shape[1], m = idx.shape[0]
    dt = X.dtype
    lanes = 8 if dt == np.float64 else 16
    q.ldw = (nout + lanes - 1) // lanes * lanes
    Wt, Mt, Vt = (np.zeros(nin * q.ldw, dt) for _ in range(3))
    Z = np.zeros((m, nout), dt)
    bufs = sparse_buffers(m, nin, dt)
    sizes = np.array([nin, nout], np.int64)
    offs = np.zeros(2, np.int64)  # W^0 and D_1 at offset 0: the arrays themselves
    q.sizes = <int64_t*>ptr(sizes)
    q.w_off = <int64_t*>ptr(offs)
    q.d_off = <int64_t*>ptr(offs)
    q.dx = ptr(X)
    q.didx = <int64_t*>ptr(idx)
    q.wt, q.mt, q.vt = ptr(Wt), ptr(Mt), ptr(Vt)
    q.sparse = sparse
    q.xrp = NULL
    point_sparse(q, bufs)
    return (Wt, Mt, Vt, bufs, sizes, offs), Z


def first_layer_products(cnp.ndarray X not None, cnp.ndarray idx not None,
                         cnp.ndarray W not None, cnp.ndarray D not None, cnp.ndarray G not None,
                         double alpha, double beta, bint sparse=False, bint tiles=False):
    """The first-layer kernels of csrc/vg_direct.c on their own (for tests): with the rows
    X[idx], returns (Z = X[idx] W^T, max |x| of those rows or -1 for NaN/Inf) and sets
    G <- alpha D^T X[idx] + beta G in place, by the dense kernels or, with sparse, the
    compressed-row ones (with tiles, from TileRows(X) rather than from X's rows). The AVX-512
    variants when selected (set_isa), else portable loops.
    X (n, k), W and G (j, k), D (m, j): C-contiguous, one float dtype; idx int64 in [0, n)."""
    dt = X.dtype
    cdef int64_t m = _check_first_layer("first_layer_products", X, idx, W, D, G)
    # the engine's own dispatch (l0_forward_rows, l0_wgrad) on a plan of this one layer
    cdef Plan q
    keep, Z = _layer_plan(&q, X, idx, W.shape[0], sparse)
    tr = TileRows(X) if sparse and tiles else None
    if tr is not None:
        point_tiles(&q, tr)
    cdef double mx
    if dt == np.float64:
        mx = _first_layer(&q, <double*>ptr(X), <double*>ptr(W), <double*>ptr(D), <double*>ptr(Z),
                          <double*>ptr(G), m, alpha, beta)
    else:
        mx = _first_layer(&q, <float*>ptr(X), <float*>ptr(W), <float*>ptr(D), <float*>ptr(Z),
                          <float*>ptr(G), m, alpha, beta)
    return Z, mx


def wgrad_sgd_step(cnp.ndarray X not None, idx, cnp.ndarray D not None,
                   cnp.ndarray W not None, cnp.ndarray V not None, double alpha, double lr,
                   double l2, double mu, double f, bint nesterov):
    """vg_wgrad_sgd on its own (for tests): the SGD step of vg_sgd_apply on W (j, k) and its
    velocity V in place, with the gradient alpha D^T X[idx] (idx None: X's first m rows, m =
    len(D)) summed as the first-layer kernels sum it and never stored. The AVX-512 kernel when
    selected (set_isa), else the portable loops."""
    if idx is None and D.shape[0] > X.shape[0]:
        raise ValueError("wgrad_sgd_step: X has fewer rows than D")
    cdef cnp.ndarray ix = (np.arange(D.shape[0], dtype=np.int64) if idx is None
                           else np.asarray(idx))
    cdef int64_t m = _check_first_layer("wgrad_sgd_step", X, ix, W, D, V, "V")
    if not W.flags.writeable:
        raise ValueError("wgrad_sgd_step: W must be writeable")
    cdef const int64_t* pi = NULL if idx is None else <int64_t*>ptr(ix)
    cdef int64_t nin = X.shape[1], nout = W.shape[0]
    if X.dtype == np.float64:
        vg_wgrad_sgd_d(<double*>ptr(X), pi, m, nin, <double*>ptr(D), nout, alpha,
                       <double*>ptr(W), <double*>ptr(V), lr, l2, mu, f, nesterov)
    else:
        vg_wgrad_sgd_f(<float*>ptr(X), pi, m, nin, <float*>ptr(D), nout, <float>alpha,
                       <float*>ptr(W), <float*>ptr(V), <float>lr, <float>l2, <float>mu,
                       <float>f, nesterov)


cdef int _swadam_hook(Plan* q, const floating* X, floating* W, floating* M, floating* V,
                      const floating* D, floating* Z, floating* G, int64_t m, const double* h,
                      int64_t t, double l2) noexcept nogil:
    cdef int64_t nout = q.sizes[1], nin = q.sizes[0]
    pack_t(W, nout, nin, <floating*>q.wt, q.ldw)
    pack_t(M, nout, nin, <floating*>q.mt, q.ldw)
    pack_t(V, nout, nin, <floating*>q.vt, q.ldw)
    l0_forward_rows(q, X, 0, m, Z)  # the tile lists of the rows X[idx]
    q.t0_live = 1
    cdef int bad = swgrad_adam(q, <floating*>D - q.d_off[1], m, h, t, l2, G)
    t0_sync(q, W, M, V)  # (W^0's offset 0: the flat arrays are W, M, V themselves)
    return bad


def swgrad_adam_step(cnp.ndarray X not None, cnp.ndarray idx not None, cnp.ndarray D not None,
                     cnp.ndarray W not None, cnp.ndarray M not None, cnp.ndarray V not None,
                     h, int64_t t, double l2):
    """vg_swgrad_adam on its own (for tests): Adam's step (vg_adam_t's: the L2 term l2 W, then
    vg_opt_step's with the hyper-parameters h = [lr, beta1, beta2, eps, weight decay, 0,
    eps_hat] at step t) on W (j, k) and its moments M, V in place, with the gradient D^T X[idx]
    / m summed by the sparse kernels from the tile lists of the rows X[idx]; returns 1 if a
    value written is not finite. The AVX-512 kernel when selected (set_isa), else the portable
    loops."""
    cdef int64_t m = _check_first_layer("swgrad_adam_step", X, idx, W, D, M, "M")
    _check_first_layer("swgrad_adam_step", X, idx, W, D, V, "V")
    if not W.flags.writeable:
        raise ValueError("swgrad_adam_step: W must be writeable")
    hv = np.zeros(8)
    hh = np.asarray(h, np.float64).ravel()
    if hh.shape[0] != 7 or not np.isfinite(hh).all():
        raise ValueError("swgrad_adam_step: h must be 7 finite numbers")
    hv[:7] = hh
    if t < 1:
        raise ValueError("swgrad_adam_step: t must be >= 1")
    dt = X.dtype
    G = np.zeros_like(W)  # (the portable loops' scratch)
    cdef Plan q
    keep, Z = _layer_plan(&q, X, idx, W.shape[0], True)
    if dt == np.float64:
        return _swadam_hook(&q, <double*>ptr(X), <double*>ptr(W), <double*>ptr(M),
                            <double*>ptr(V), <double*>ptr(D), <double*>ptr(Z), <double*>ptr(G),
                            m, <double*>ptr(hv), t, l2)
    return _swadam_hook(&q, <float*>ptr(X), <float*>ptr(W), <float*>ptr(M), <float*>ptr(V),
                        <float*>ptr(D), <float*>ptr(Z), <float*>ptr(G), m, <double*>ptr(hv), t,
                        l2)


def data_bound(cnp.ndarray X not None):
    """max |x| over a C-contiguous float64/float32 array, or -1.0 if it holds NaN or Inf
    (one vectorised pass, without the GIL)."""
    if not X.flags.c_contiguous or X.dtype not in (np.float64, np.float32):
        raise ValueError("data_bound: X must be a C-contiguous float64 or float32 array")
    cdef int64_t n = X.size
    cdef void* P = ptr(X)
    cdef double r
    if X.dtype == np.float64:
        with nogil:
            r = vg_maxabs_d(<double*>P, n)
    else:
        with nogil:
            r = vg_maxabs_f(<float*>P, n)
    return r
