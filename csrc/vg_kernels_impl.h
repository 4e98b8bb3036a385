/* Template body for vg_kernels.c: included once with REAL=double, once with REAL=float.
 * Expects VG_API (storage class), REAL, SFX(name), EXP, LOG1P, EXPM1, SQRT, TANH, FABS to be defined. */

static inline REAL SFX(sigmoid)(REAL z) {
    /* stable for any finite z: never computes exp of a positive number */
    if (z >= 0) { return (REAL)1 / ((REAL)1 + EXP(-z)); }
    REAL e = EXP(z);
    return e / ((REAL)1 + e);
}

/* e = exp(-|z|) in (0, 1] for one value, without branches or libm, so loops using it vectorise:
 * e^t = 2^k e^r with t = -|z| clamped at -VG_EXP_LO (below it e^t rounds to 0 in REAL),
 * k = round(t / ln 2), |r| <= ln(2)/2, e^r by its Taylor polynomial (truncation below half an
 * ulp), and 2^k = 2^k1 2^k2 with k1 = floor(k/2) built in the exponent bits: two factors, so
 * the results below the smallest normal number (subnormals) come out right too. k <= 0. */
#define VG_EXP_NEG_ABS(zv, e)                                                                  \
    REAL e;                                                                                    \
    {                                                                                          \
        REAL t_ = -FABS(zv);                                                                   \
        t_ = t_ < -(REAL)VG_EXP_LO ? -(REAL)VG_EXP_LO : t_;                                    \
        REAL kd_ = t_ * log2e + magic; /* round to an integer in the low mantissa bits */      \
        VG_UINT kb_;                                                                           \
        memcpy(&kb_, &kd_, sizeof kb_);                                                        \
        kd_ -= magic;                                                                          \
        REAL r_ = (t_ - kd_ * ln2_hi) - kd_ * ln2_lo;                                          \
        VG_UINT u_ = magic_bits - kb_;            /* -k >= 0 */                                \
        VG_UINT u1_ = u_ >> 1, u2_ = u_ - u1_;                                                 \
        VG_UINT b1_ = ((VG_UINT)VG_EXP_BIAS - u1_) << VG_MANT_BITS;                            \
        VG_UINT b2_ = ((VG_UINT)VG_EXP_BIAS - u2_) << VG_MANT_BITS;                            \
        REAL s1_, s2_;                                                                         \
        memcpy(&s1_, &b1_, sizeof s1_);                                                        \
        memcpy(&s2_, &b2_, sizeof s2_);                                                        \
        e = (VG_EXP_POLY(r_) * s1_) * s2_;                                                     \
    }
#define VG_EXP_CONSTANTS                                                                       \
    const REAL log2e = (REAL)1.4426950408889634, ln2_hi = (REAL)VG_LN2_HI,                     \
               ln2_lo = (REAL)VG_LN2_LO, magic = (REAL)VG_EXP_MAGIC;                           \
    VG_UINT magic_bits;                                                                        \
    memcpy(&magic_bits, &magic, sizeof magic_bits);

/* a = sigma(z) for a whole row, the stable way on both sides with e = exp(-|z|):
 * a = 1 / (1 + e) for z >= 0, e / (1 + e) for z < 0 (a select, no branch), and, when s is not
 * NULL, s = sigma'(z) = e / (1 + e)^2 from the same exponential: no a(1 - a) cancellation, so
 * sigma' keeps full relative precision where a(1 - a) would round to 0 (z >= 37 in double,
 * 17 in float) or lose digits. Nothing overflows for any finite z (e <= 1); errors are a few
 * ulps, also for subnormal results. */
static void SFX(sigmoid_row)(const REAL *z, REAL *a, REAL *s, int64_t n) {
    VG_EXP_CONSTANTS
    if (s) {
        for (int64_t j = 0; j < n; j++) {
            VG_EXP_NEG_ABS(z[j], e)
            REAL inv = (REAL)1 / ((REAL)1 + e);
            a[j] = (z[j] >= 0 ? (REAL)1 : e) * inv;
            s[j] = (e * inv) * inv;
        }
    } else {
        for (int64_t j = 0; j < n; j++) {
            VG_EXP_NEG_ABS(z[j], e)
            REAL inv = (REAL)1 / ((REAL)1 + e); /* as above: the same bits with or without s */
            a[j] = (z[j] >= 0 ? (REAL)1 : e) * inv;
        }
    }
}

/* log1p(e^-|z|) for a block (softplus(z) = max(z, 0) + that: softplus_row), without branches
 * or libm calls, so it vectorises: e = e^-|z| (VG_EXP_NEG_ABS), then
 * log1p(e) = 2 atanh(s) with s = e / (2 + e) in (0, 1/3] (no cancellation), the odd series
 * 2 s (1 + t/3 + t^2/5 + ...), t = s^2 <= 1/9, to 17 terms (double: remainder < 1e-18
 * relative) or 8 (float: < 2e-9). */
static void SFX(log1p_exp_row)(const REAL *z, REAL *out, int64_t n) {
    VG_EXP_CONSTANTS
    for (int64_t j = 0; j < n; j++) {
        VG_EXP_NEG_ABS(z[j], e)
        REAL sv = e / ((REAL)2 + e), tt = sv * sv;
        out[j] = (REAL)2 * sv * VG_ATANH_SERIES(tt);
    }
}

static void SFX(softplus_row)(const REAL *z, REAL *out, int64_t n) {
    SFX(log1p_exp_row)(z, out, n);
    for (int64_t j = 0; j < n; j++) out[j] += z[j] > 0 ? z[j] : (REAL)0;
}

/* Softmax of one row. Infinite logits have a limit: the +inf entries share the mass equally;
 * a row of -inf only is uniform. NaN propagates. sr (not NULL) gets the row's exp(z - max z),
 * which vg_output_delta's log-likelihood then reads instead of taking them again. */
static void SFX(softmax_row)(const REAL *zr, REAL *ar, REAL *sr, int64_t n) {
    REAL mx = zr[0];
    for (int64_t j = 1; j < n; j++) if (zr[j] > mx) mx = zr[j];
    if (!(mx - mx == 0) && mx == mx) { /* mx is +inf or -inf */
        REAL cnt = 0;
        for (int64_t j = 0; j < n; j++) cnt += zr[j] == mx;
        for (int64_t j = 0; j < n; j++) ar[j] = zr[j] == mx ? (REAL)1 / cnt : (REAL)0;
        for (int64_t j = 0; j < n; j++) if (zr[j] != zr[j]) ar[j] = zr[j]; /* NaN stays */
        if (sr) for (int64_t j = 0; j < n; j++) sr[j] = EXP(zr[j] - mx);
        return;
    }
    REAL sum = 0;
    for (int64_t j = 0; j < n; j++) { ar[j] = EXP(zr[j] - mx); sum += ar[j]; }
    if (sr) for (int64_t j = 0; j < n; j++) sr[j] = ar[j];
    REAL inv = (REAL)1 / sum;
    for (int64_t j = 0; j < n; j++) ar[j] *= inv;
}

/* z <- z + b (row broadcast; b may be NULL); a <- f(z); s <- f'(z) when s is not NULL (softmax:
 * not formed, its Jacobian is not diagonal; s gets each row's exp(z - max z) instead). z, a and
 * s are (m, n), not aliased.
 * f' is taken where it is exact: sigma' from the exponential (see sigmoid_row), tanh' = 1 - a^2,
 * elu' = a + alpha for z <= 0, softplus' = sigma(z), and from z for the piecewise-linear ones. */
VG_API void SFX(vg_bias_act)(REAL *z, REAL *a, REAL *s, const REAL *b, int64_t m, int64_t n,
                             int act, REAL alpha) {
    if (b)
        for (int64_t i = 0; i < m; i++) {
            REAL *zr = z + i * n;
            for (int64_t j = 0; j < n; j++) zr[j] += b[j];
        }
    /* elementwise activations run over the whole (m, n) block at once: one long loop
     * vectorises better than m rows of n (n is often 10 or 30) */
    const int64_t len = m * n;
    switch (act) {
    case VG_SIGMOID: SFX(sigmoid_row)(z, a, s, len); break;
    case VG_TANH:
        for (int64_t j = 0; j < len; j++) a[j] = TANH(z[j]);
        if (s) for (int64_t j = 0; j < len; j++) s[j] = (REAL)1 - a[j] * a[j];
        break;
    case VG_RELU:
        for (int64_t j = 0; j < len; j++) a[j] = z[j] > 0 ? z[j] : (REAL)0;
        if (s) for (int64_t j = 0; j < len; j++) s[j] = z[j] > 0 ? (REAL)1 : (REAL)0;
        break;
    case VG_LEAKY_RELU:
        for (int64_t j = 0; j < len; j++) a[j] = z[j] > 0 ? z[j] : alpha * z[j];
        if (s) for (int64_t j = 0; j < len; j++) s[j] = z[j] > 0 ? (REAL)1 : alpha;
        break;
    case VG_LINEAR:
        for (int64_t j = 0; j < len; j++) a[j] = z[j];
        if (s) for (int64_t j = 0; j < len; j++) s[j] = 1;
        break;
    case VG_ABS:
        for (int64_t j = 0; j < len; j++) a[j] = FABS(z[j]);
        if (s)
            for (int64_t j = 0; j < len; j++)
                s[j] = z[j] > 0 ? (REAL)1 : (z[j] < 0 ? (REAL)-1 : (REAL)0);
        break;
    case VG_ELU:
        for (int64_t j = 0; j < len; j++) a[j] = z[j] > 0 ? z[j] : alpha * EXPM1(z[j]);
        if (s) for (int64_t j = 0; j < len; j++) s[j] = z[j] > 0 ? (REAL)1 : a[j] + alpha;
        break;
    case VG_SOFTPLUS:
        SFX(softplus_row)(z, a, len);
        if (s) for (int64_t j = 0; j < len; j++) s[j] = SFX(sigmoid)(z[j]);
        break;
    case VG_SOFTMAX:
        for (int64_t i = 0; i < m; i++)
            SFX(softmax_row)(z + i * n, a + i * n, s ? s + i * n : 0, n);
        break;
    default: break;
    }
}

/* d <- d * s elementwise: s holds f'(z) from the forward pass (vg_bias_act). */
VG_API void SFX(vg_mul_deriv)(REAL *d, const REAL *s, int64_t len) {
    for (int64_t i = 0; i < len; i++) d[i] *= s[i];
}

/* max |x_i|, or -1 if any x_i is NaN or +-Inf. One pass over the bit patterns: with the sign
 * bit cleared, the bits of non-negative floats order as signed integers, and NaN/Inf are
 * exactly those at or above the all-ones exponent; an integer max vectorises where a
 * floating-point `a > b ? a : b` does not (GCC keeps its NaN semantics scalar). */
#define VG_ABS_BITS(b) ((b) & (VG_SINT)(((VG_UINT)1 << (sizeof(REAL) * 8 - 1)) - 1))
#define VG_INF_BITS ((VG_SINT)((((VG_UINT)1 << (sizeof(REAL) * 8 - 1 - VG_MANT_BITS)) - 1) \
                               << VG_MANT_BITS))

/* the value of the largest of eight lanes of |x| bits, or -1 if one is NaN/Inf */
static double SFX(bits_max)(const VG_SINT mx[8]) {
    VG_SINT r = 0;
    for (int k = 0; k < 8; k++) r = mx[k] > r ? mx[k] : r;
    if (r >= VG_INF_BITS) return -1.0;
    REAL v;
    memcpy(&v, &r, sizeof v);
    return (double)v;
}

VG_API double SFX(vg_maxabs)(const REAL *x, int64_t len) {
    VG_SINT mx[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= len; i += 8)
        for (int k = 0; k < 8; k++) {
            VG_SINT b;
            memcpy(&b, x + i + k, sizeof b);
            b = VG_ABS_BITS(b);
            mx[k] = b > mx[k] ? b : mx[k];
        }
    for (; i < len; i++) {
        VG_SINT b;
        memcpy(&b, x + i, sizeof b);
        b = VG_ABS_BITS(b);
        mx[0] = b > mx[0] ? b : mx[0];
    }
    return SFX(bits_max)(mx);
}

/* Output layer: d = dC/dz for each row (d may be NULL: cost only). Returns the sum over the
 * m rows of the per-example cost, computed from z where that is the stable way:
 *   sigmoid + cross_entropy:  C = sum_j softplus(z_j) - y_j z_j,   d = a - y
 *   softmax + log_likelihood: C = sum_j y_j (lse(z) - z_j),       d = (sum_j y_j) a - y
 *   quadratic:                C = 0.5 ||a - y||^2,                d = J_f(z)^T (a - y)
 * y is (m, n) targets, or NULL with lab (m,) integer labels meaning one-hot rows. s (may be NULL)
 * is what vg_bias_act wrote there for these z: f'(z), read by the quadratic cost with an
 * elementwise output; for softmax the rows' exp(z - max z), which lse(z) then sums (NULL: it
 * takes them again, the same numbers).
 * correct, when not NULL, is increased by the number of rows whose first argmax of a equals the
 * label (the first argmax of the target row when y is given), as np.argmax counts them. */
/* Sum over the m rows of the cross-entropy of sigmoid outputs,
 *   C = sum_j (max(z_j, 0) - y_j z_j) + log1p(e^-|z_j|):
 * the first part exact in double, the second added apart, so a confident right answer
 * (z >> 0, y = 1) keeps its small cost e^-z instead of rounding to 0. log1p(e^-|z|) is formed
 * for blocks of up to 512 values at once (rows are often 10 wide: one long vector loop). */
static double SFX(ce_cost)(const REAL *z, const REAL *y, const int64_t *lab, int64_t m, int64_t n) {
    REAL lp[512];
    double total = 0;
    const int64_t rb = n >= 512 ? 1 : 512 / n;
    for (int64_t i0 = 0; i0 < m; i0 += rb) {
        const int64_t i1 = m - i0 < rb ? m : i0 + rb;
        if (rb > 1) SFX(log1p_exp_row)(z + i0 * n, lp, (i1 - i0) * n);
        for (int64_t i = i0; i < i1; i++) {
            const REAL *zr = z + i * n, *yr = y ? y + i * n : 0;
            const int64_t li = y ? -1 : lab[i];
            for (int64_t j0 = 0; j0 < n; j0 += 512) {
                const int64_t nb = n - j0 < 512 ? n - j0 : 512;
                const REAL *l = lp + (i - i0) * n;
                if (rb == 1) { SFX(log1p_exp_row)(zr + j0, lp, nb); l = lp - j0; }
                for (int64_t j = j0; j < j0 + nb; j++) {
                    const double yj = yr ? (double)yr[j] : (double)(j == li);
                    total += ((zr[j] > 0 ? (double)zr[j] : 0.0) - yj * (double)zr[j])
                             + (double)l[j];
                }
            }
        }
    }
    return total;
}

VG_API double SFX(vg_output_delta)(REAL *d, const REAL *z, const REAL *a, const REAL *s,
                                   const REAL *y, const int64_t *lab, int64_t m, int64_t n,
                                   int act, int cost, int64_t *correct) {
    double total = cost == VG_CROSS_ENTROPY ? SFX(ce_cost)(z, y, lab, m, n) : 0;
    int64_t right = 0;
    for (int64_t i = 0; i < m; i++) {
        const REAL *zr = z + i * n, *ar = a + i * n;
        const REAL *yr = y ? y + i * n : 0;
        int64_t li = y ? -1 : lab[i];
        REAL *dr = d ? d + i * n : 0;
#define YV(j) (yr ? yr[j] : (REAL)((j) == li))
        if (cost == VG_CROSS_ENTROPY) {
            /* (the cost: SFX(ce_cost) below, over the whole block) */
            if (dr) for (int64_t j = 0; j < n; j++) dr[j] = ar[j] - YV(j);
        } else if (cost == VG_LOG_LIKELIHOOD) {
            REAL mx = zr[0];
            for (int64_t j = 1; j < n; j++) if (zr[j] > mx) mx = zr[j];
            double se = 0;
            if (act == VG_SOFTMAX && s) /* the forward pass's exp(z - max z) (softmax_row) */
                for (int64_t j = 0; j < n; j++) se += (double)s[i * n + j];
            else
                for (int64_t j = 0; j < n; j++) se += (double)EXP(zr[j] - mx);
            double lse = (double)mx + log(se);
            REAL ysum = 0;
            for (int64_t j = 0; j < n; j++) {
                REAL yj = YV(j);
                ysum += yj;
                if (yj != 0) total += (double)yj * (lse - (double)zr[j]);
            }
            if (dr) for (int64_t j = 0; j < n; j++) dr[j] = ysum * ar[j] - YV(j);
        } else { /* quadratic */
            {
                double c = 0;
                for (int64_t j = 0; j < n; j++) {
                    double e = (double)ar[j] - (double)YV(j);
                    c += e * e;
                }
                total += 0.5 * c;
            }
            if (dr) {
                if (act == VG_SOFTMAX) {
                    REAL ae = 0;
                    for (int64_t j = 0; j < n; j++) ae += ar[j] * (ar[j] - YV(j));
                    for (int64_t j = 0; j < n; j++) dr[j] = ar[j] * ((ar[j] - YV(j)) - ae);
                } else {
                    const REAL *sr = s + i * n;
                    for (int64_t j = 0; j < n; j++) dr[j] = (ar[j] - YV(j)) * sr[j];
                }
            }
        }
        if (correct) {
            int64_t ka = 0, ky = li;
            for (int64_t j = 1; j < n; j++) if (ar[j] > ar[ka]) ka = j;
            if (yr) {
                ky = 0;
                for (int64_t j = 1; j < n; j++) if (yr[j] > yr[ky]) ky = j;
            }
            right += ka == ky;
        }
#undef YV
    }
    if (correct) *correct += right;
    return total;
}

/* out[j] = scale * sum_i d[i, j]  (added to out when accumulate, else written) */
VG_API void SFX(vg_colsum)(const REAL *d, int64_t m, int64_t n, REAL scale, REAL *out, int accumulate) {
    if (n == 1) { /* a row of one: a strided sum, kept apart so the loop below stays simple */
        REAL s = 0;
        for (int64_t i = 0; i < m; i++) s += d[i];
        out[0] = accumulate ? out[0] + scale * s : scale * s;
        return;
    }
    REAL tmp[256];
    for (int64_t j0 = 0; j0 < n; j0 += 256) {
        int64_t nb = n - j0 < 256 ? n - j0 : 256;
        for (int64_t j = 0; j < nb; j++) tmp[j] = 0;
        for (int64_t i = 0; i < m; i++) {
            const REAL *dr = d + i * n + j0;
            for (int64_t j = 0; j < nb; j++) tmp[j] += dr[j];
        }
        REAL *o = out + j0;
        if (accumulate) for (int64_t j = 0; j < nb; j++) o[j] += scale * tmp[j];
        else for (int64_t j = 0; j < nb; j++) o[j] = scale * tmp[j];
    }
}

VG_API double SFX(vg_sumsq)(const REAL *x, int64_t len) {
#if VG_FLOAT_SUMSQ
    /* float: sixteen float lanes (twice the width of the double loop below, no conversions);
     * relative error ~ sqrt(len/16) ulp of float. If they overflow (or meet NaN/Inf) the double
     * loop below gives the exact answer. */
    float f[16] = {0};
    int64_t j = 0;
    for (; j + 16 <= len; j += 16)
        for (int k = 0; k < 16; k++) f[k] += x[j + k] * x[j + k];
    for (; j < len; j++) f[0] += x[j] * x[j];
    float r = 0;
    for (int k = 0; k < 16; k++) r += f[k];
    if (r - r == 0 && r >= 0x1p-60f) return (double)r; /* else overflow, NaN/Inf or underflow */
#endif
    /* eight independent double sums: one running sum is bound by the add latency; eight let
     * the loop vectorise without reassociation (deterministic), and double accumulation cannot
     * overflow for any finite float input */
    double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    if (len >= 64) {
        /* four times eight sums for long vectors (rows of 784 pixels): four independent chains
         * per lane hide the add latency; folded into the eight in a fixed order */
        double q[32] = {0};
        for (; i + 32 <= len; i += 32)
            for (int k = 0; k < 32; k++) {
                double v = (double)x[i + k];
                q[k] += v * v;
            }
        for (int k = 0; k < 8; k++) a[k] = (q[k] + q[k + 8]) + (q[k + 16] + q[k + 24]);
    }
    for (; i + 8 <= len; i += 8)
        for (int k = 0; k < 8; k++) {
            double v = (double)x[i + k];
            a[k] += v * v;
        }
    for (; i < len; i++) a[0] += (double)x[i] * (double)x[i];
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* out[i] = ||row i||^2 of the m rows of n values (vg_sumsq each), in one call */
VG_API void SFX(vg_rows_sumsq)(const REAL *x, int64_t m, int64_t n, double *out) {
    for (int64_t i = 0; i < m; i++) out[i] = SFX(vg_sumsq)(x + i * n, n);
}

/* x <- x * x, elementwise */
VG_API void SFX(vg_square)(REAL *x, int64_t len) {
    for (int64_t i = 0; i < len; i++) x[i] = x[i] * x[i];
}

/* ||x||_2 without overflow: sqrt(sumsq) when that is finite, else (for finite x whose squares
 * overflow) max|x| * ||x / max|x|||; NaN or Inf in x give a non-finite result */
VG_API double SFX(vg_norm2)(const REAL *x, int64_t len) {
    double s = SFX(vg_sumsq)(x, len);
    if (s - s == 0) return sqrt(s);
    double mx = 0;
    for (int64_t i = 0; i < len; i++) {
        double v = FABS(x[i]);
        if (!(v <= mx)) mx = v; /* NaN propagates */
    }
    if (!(mx - mx == 0)) return mx - mx + mx; /* NaN, or Inf */
    double t = 0, inv = 1.0 / mx;
    for (int64_t i = 0; i < len; i++) { double v = (double)x[i] * inv; t += v * v; }
    return mx * sqrt(t);
}

/* dst[i] = src[idx[i]] for the m rows of n values; returns max |value| over the copied rows, or
 * -1 if one is NaN or Inf; rowsq, when not NULL, gets ||dst[i]||^2 (read while in L1). The check rides on the copy (the bits are compared as integers, as in
 * vg_maxabs, in the same vectorised loop), so checking the data costs no extra pass over it. */
/* Ask for the m rows src[idx[i]] to be brought towards L2 while other work goes on (the next
 * mini-batch's rows, requested before this step's GEMMs). */
VG_API void SFX(vg_prefetch_rows)(const REAL *src, const int64_t *idx, int64_t m, int64_t n) {
    for (int64_t i = 0; i < m; i++) {
        const char *pf = (const char *)(src + idx[i] * n);
        for (int64_t o = 0; o < n * (int64_t)sizeof(REAL); o += 64) __builtin_prefetch(pf + o, 0, 2);
    }
}

#ifndef VG_PREFETCH_ROWS
#define VG_PREFETCH_ROWS 2
#endif
VG_API double SFX(vg_gather_rows)(const REAL *src, const int64_t *idx, int64_t m, int64_t n,
                                  REAL *dst, double *rowsq) {
    VG_SINT mx[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t i = 0; i < m; i++) {
        const REAL *sr = src + idx[i] * n;
        REAL *dr = dst + i * n;
#if VG_PREFETCH_ROWS
        if (i + VG_PREFETCH_ROWS < m) { /* a later row: random in memory, so not predicted */
            const char *pf = (const char *)(src + idx[i + VG_PREFETCH_ROWS] * n);
            for (int64_t o = 0; o < n * (int64_t)sizeof(REAL); o += 64) __builtin_prefetch(pf + o);
        }
#endif
        int64_t j = 0;
        for (; j + 8 <= n; j += 8)
            for (int k = 0; k < 8; k++) {
                VG_SINT b;
                memcpy(&b, sr + j + k, sizeof b);
                memcpy(dr + j + k, &b, sizeof b);
                b = VG_ABS_BITS(b);
                mx[k] = b > mx[k] ? b : mx[k];
            }
        for (; j < n; j++) {
            VG_SINT b;
            memcpy(&b, sr + j, sizeof b);
            memcpy(dr + j, &b, sizeof b);
            b = VG_ABS_BITS(b);
            mx[0] = b > mx[0] ? b : mx[0];
        }
        if (rowsq) rowsq[i] = SFX(vg_sumsq)(dr, n); /* the row just written, still in L1 */
    }
    return SFX(bits_max)(mx);
}

/* g += l2 * w + l1 * sign(w): the gradient of (l2/2)||w||^2 + l1 |w|_1 */
VG_API void SFX(vg_add_l2_l1)(REAL *g, const REAL *w, int64_t len, REAL l2, REAL l1) {
    if (l2 != 0) for (int64_t i = 0; i < len; i++) g[i] += l2 * w[i];
    if (l1 != 0)
        for (int64_t i = 0; i < len; i++) g[i] += w[i] > 0 ? l1 : (w[i] < 0 ? -l1 : (REAL)0);
}

VG_API void SFX(vg_scale)(REAL *x, int64_t len, REAL s) {
    for (int64_t i = 0; i < len; i++) x[i] *= s;
}

VG_API void SFX(vg_clip_value)(REAL *x, int64_t len, REAL c) {
    for (int64_t i = 0; i < len; i++) x[i] = x[i] > c ? c : (x[i] < -c ? -c : x[i]);
}

/* 1 if any x[i] is NaN or +-Inf. x - x is exactly 0 for finite x and NaN otherwise; summing it
 * in four lanes keeps the test in the floating-point domain, so the loop vectorises (isfinite()
 * on a double is a 64-bit integer test, which baseline x86-64 (SSE2) cannot vectorise). */
static inline int SFX(nonfinite)(const REAL *x, int64_t len) {
    REAL a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= len; i += 8)
        for (int k = 0; k < 8; k++) a[k] += x[i + k] - x[i + k];
    for (; i < len; i++) a[0] += x[i] - x[i];
    return !(((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7])) == 0);
}

VG_API int SFX(vg_nonfinite)(const REAL *x, int64_t len) { return SFX(nonfinite)(x, len); }

/* VG_CHECK_IN_LOOP (set per type in vg_kernels.c): 1 tests isfinite() element by element inside
 * the update loops (vectorises for float: a 32-bit integer test), 0 tests each block afterwards
 * with nonfinite() (for double, whose 64-bit integer test does not vectorise on SSE2). */
#if VG_CHECK_IN_LOOP
#define VG_CHECK(i) bad |= !isfinite(p[i])
#else
#define VG_CHECK(i) ((void)0)
#endif

#define VG_OPT_BLOCK 1024 /* a block of p is saved, updated and checked while it is in L1 */

/* One optimiser step over a segment, torch.optim's equations. h holds the hyper-parameters:
 *   h[0] lr; h[1] momentum | rho | beta1; h[2] nesterov flag | beta2; h[3] eps;
 *   h[4] decoupled weight decay (p <- p (1 - lr wd) first); h[5] AdaGrad lr_decay;
 *   h[6] Adam's eps-hat flag: p <- p - lr sqrt(1-b2^t)/(1-b1^t) m / (sqrt(v) + eps), eps added
 *   before the bias correction (Kingma & Ba's section 2 form; scikit-learn's and Keras's).
 * t is the 1-based step count. s1, s2 are state buffers of the same length (may be unused).
 * old, when not NULL, receives the parameters before the step (block by block, while they are
 * in L1, so the caller can undo a step that overflowed).
 * Returns 1 if any updated parameter or state value is not finite, else 0.
 * Loops carry no branch and no integer test, so they vectorise. */
VG_API int SFX(vg_opt_step)(int kind, REAL *p, const REAL *g, REAL *s1, REAL *s2, int64_t len,
                     const double *h, int64_t t, REAL *old) {
    const REAL lr = (REAL)h[0];
    const double wd = h[4];
    const REAL f = (REAL)(1.0 - h[0] * wd);
    const REAL mu = (REAL)h[1], rho = (REAL)h[1], b1 = (REAL)h[1], b2 = (REAL)h[2];
    const int nesterov = h[2] != 0;
    const REAL clr = (REAL)(h[0] / (1.0 + (double)(t - 1) * h[5]));
    const REAL eps = (REAL)h[3];
    double bc1 = 1, bc2 = 1;
    if (kind == VG_OPT_ADAM) { bc1 = 1.0 - pow(h[1], (double)t); bc2 = 1.0 - pow(h[2], (double)t); }
    const REAL step = (REAL)(h[0] / bc1);
    const REAL bc2s = (REAL)sqrt(bc2);
    const int eps_hat = kind == VG_OPT_ADAM && h[6] != 0;
    const REAL hat_step = (REAL)(h[0] * sqrt(bc2) / bc1);
    int bad = 0;
    for (int64_t i0 = 0; i0 < len; i0 += VG_OPT_BLOCK) {
        const int64_t i1 = len - i0 < VG_OPT_BLOCK ? len : i0 + VG_OPT_BLOCK;
        if (old) memcpy(old + i0, p + i0, (size_t)(i1 - i0) * sizeof(REAL));
        if (wd != 0) for (int64_t i = i0; i < i1; i++) p[i] *= f;
        switch (kind) {
        case VG_OPT_SGD:
            if (mu == 0) {
                for (int64_t i = i0; i < i1; i++) { p[i] -= lr * g[i]; VG_CHECK(i); }
            } else if (nesterov) {
                for (int64_t i = i0; i < i1; i++) {
                    REAL b = mu * s1[i] + g[i];
                    s1[i] = b;
                    p[i] -= lr * (g[i] + mu * b);
                    VG_CHECK(i);
                }
            } else {
                for (int64_t i = i0; i < i1; i++) {
                    REAL b = mu * s1[i] + g[i];
                    s1[i] = b;
                    p[i] -= lr * b;
                    VG_CHECK(i);
                }
            }
            break;
        case VG_OPT_ADAGRAD:
            for (int64_t i = i0; i < i1; i++) {
                s1[i] += g[i] * g[i];
                p[i] -= clr * g[i] / (SQRT(s1[i]) + eps);
                VG_CHECK(i);
            }
            break;
        case VG_OPT_RMSPROP:
            for (int64_t i = i0; i < i1; i++) {
                s1[i] = rho * s1[i] + ((REAL)1 - rho) * g[i] * g[i];
                p[i] -= lr * g[i] / (SQRT(s1[i]) + eps);
                VG_CHECK(i);
            }
            break;
        case VG_OPT_ADAM:
            if (eps_hat) {  /* one square root and one division per element */
                for (int64_t i = i0; i < i1; i++) {
                    s1[i] = b1 * s1[i] + ((REAL)1 - b1) * g[i];
                    s2[i] = b2 * s2[i] + ((REAL)1 - b2) * g[i] * g[i];
                    p[i] -= hat_step * s1[i] / (SQRT(s2[i]) + eps);
                    VG_CHECK(i);
                }
                break;
            }
            for (int64_t i = i0; i < i1; i++) {
                s1[i] = b1 * s1[i] + ((REAL)1 - b1) * g[i];
                s2[i] = b2 * s2[i] + ((REAL)1 - b2) * g[i] * g[i];
                p[i] -= step * s1[i] / (SQRT(s2[i]) / bc2s + eps);
                VG_CHECK(i);
            }
            break;
        default: break;
        }
#if !VG_CHECK_IN_LOOP
        bad |= SFX(nonfinite)(p + i0, i1 - i0);
#endif
        /* a moment buffer that overflowed would freeze or poison later steps: also divergence */
        if (kind != VG_OPT_SGD || mu != 0) bad |= SFX(nonfinite)(s1 + i0, i1 - i0);
        if (kind == VG_OPT_ADAM) bad |= SFX(nonfinite)(s2 + i0, i1 - i0);
    }
    return bad;
}
#undef VG_OPT_BLOCK
#undef VG_CHECK

/* Inverted dropout: x[i] <- x[i] / keep with probability keep, else 0. Element i is kept when
 * u < keep for u = w / 2^32, w the random word of element counter + i (see vg_random_word): a
 * pure function of (seed, counter + i), so the backward pass regenerates the mask exactly. */
VG_API void SFX(vg_dropout)(REAL *x, int64_t len, double keep, uint64_t seed, uint64_t counter) {
    const REAL inv = (REAL)(1.0 / keep);
    uint32_t w[4];
    int64_t i = 0;
    while (i < len) {
        uint64_t c = counter + (uint64_t)i;
        vg_philox4x32(seed, c >> 2, w);
        for (unsigned k = (unsigned)(c & 3); k < 4 && i < len; k++, i++) {
            double u = (double)w[k] * 0x1.0p-32;
            x[i] = u < keep ? x[i] * inv : (REAL)0;
        }
    }
}

/* each row (one unit's incoming weights) rescaled to norm <= c; the norm is taken without
 * overflow (vg_norm2), so a row of huge finite weights is scaled down, not zeroed */
VG_API void SFX(vg_max_norm)(REAL *w, int64_t n_out, int64_t n_in, REAL c) {
    for (int64_t i = 0; i < n_out; i++) {
        double nrm = SFX(vg_norm2)(w + i * n_in, n_in);
        if (nrm > (double)c) SFX(vg_scale)(w + i * n_in, n_in, (REAL)((double)c / nrm));
    }
}

/* The second half of a fused SGD-momentum step, after the GEMM v <- mu v + (1/m) D^T A:
 *   v <- v + l2 w (the coupled L2 term of torch's g = grad + l2 w), w <- f w - lr v
 * with f = 1 - lr wd (decoupled decay). One pass over w and v. */
VG_API void SFX(vg_momentum_apply)(REAL *w, REAL *v, int64_t len, REAL lr, REAL l2, REAL f) {
    if (l2 != 0) for (int64_t i = 0; i < len; i++) v[i] += l2 * w[i];
    if (f != 1) for (int64_t i = 0; i < len; i++) w[i] = f * w[i] - lr * v[i];
    else for (int64_t i = 0; i < len; i++) w[i] -= lr * v[i];
}

/* An SGD step on a segment whose gradient g (mean, no penalty) is formed, in one pass, with
 * torch's equations: g' = g + l2 w; plain: w <- f w - lr g'; heavy ball: v <- mu v + g',
 * w <- f w - lr v; Nesterov: v <- mu v + g', w <- f w - lr (g' + mu v); f = 1 - lr wd.
 * Returns sum (w_new - w_old)^2 (in double) when want_step, else 0. No check: the caller's
 * bound proves the step finite (see the engine's fused path). */
/* One element of the SGD step (see vg_sgd_apply); lane k of the sums gets its squares. */
#define VG_SGD_ELEMENT(i, k)                                                                   \
    do {                                                                                       \
        REAL wi = w[i], g0 = g[i], gi = g0 + l2 * wi, wn;                                      \
        if (mu == 0) {                                                                         \
            wn = f * wi - lr * gi;                                                             \
        } else {                                                                               \
            REAL vi = mu * v[i] + gi;                                                          \
            v[i] = vi;                                                                         \
            wn = f * wi - lr * (nesterov ? gi + mu * vi : vi);                                 \
        }                                                                                      \
        w[i] = wn;                                                                             \
        if (sums) {                                                                            \
            double d = (double)wn - (double)wi, e = w0 ? (double)wn - (double)w0[i] : 0.0;    \
            s0[k] += (double)g0 * (double)g0;                                                  \
            s1[k] += d * d;                                                                    \
            s2[k] += e * e;                                                                    \
        }                                                                                      \
    } while (0)

/* The SGD step of one segment from the formed gradient g (before the L2 term):
 *   plain:     w <- f w - lr (g + l2 w)
 *   momentum:  v <- mu v + (g + l2 w);  w <- f w - lr v        (Nesterov: - lr (g + l2 w + mu v))
 * and, when sums is not NULL, in the same pass sums[0] += sum g^2 (the gradient's squared norm,
 * no penalty), sums[1] += sum (w_new - w_old)^2 (the step), sums[2] += sum (w_new - w0)^2 when w0
 * is not NULL (the distance from the start). Eight independent partial sums in a fixed order: the
 * loop vectorises and every ISA variant gives the same bits. */
VG_API void SFX(vg_sgd_apply)(REAL *w, const REAL *g, REAL *v, int64_t len, REAL lr, REAL l2,
                              REAL mu, REAL f, int nesterov, const REAL *w0, double *sums) {
    double s0[8] = {0}, s1[8] = {0}, s2[8] = {0};
    int64_t j = 0;
    for (; j + 8 <= len; j += 8)
        for (int k = 0; k < 8; k++) VG_SGD_ELEMENT(j + k, k);
    for (; j < len; j++) VG_SGD_ELEMENT(j, 0);
    if (sums) {
        for (int k = 0; k < 8; k++) {
            sums[0] += s0[k];
            sums[1] += s1[k];
            sums[2] += s2[k];
        }
    }
}
#undef VG_SGD_ELEMENT

/* Batch normalisation of the pre-activations z + b of one layer (Ioffe & Szegedy 2015), in place:
 *   xhat = (z + b - mean) / sqrt(var + eps),  z <- gamma * xhat + beta.
 * mode 0: mean/var are the running statistics (evaluation);
 * mode 1: batch statistics (biased variance), stored in mu/invstd for the backward pass;
 * mode 2: as 1 and the running statistics are updated as torch does:
 *         run <- (1 - momentum) run + momentum * batch, with the unbiased variance. */
VG_API void SFX(vg_bn_forward)(REAL *z, REAL *xhat, const REAL *b, const REAL *gamma, const REAL *beta,
                        int64_t m, int64_t n, double eps, REAL *mu, REAL *invstd, int mode,
                        REAL *run_mean, REAL *run_var, double momentum) {
    if (b) for (int64_t i = 0; i < m; i++) for (int64_t j = 0; j < n; j++) z[i * n + j] += b[j];
    if (mode == 0) {
        for (int64_t j = 0; j < n; j++) {
            mu[j] = run_mean[j];
            invstd[j] = (REAL)(1.0 / sqrt((double)run_var[j] + eps));
        }
    } else {
        for (int64_t j = 0; j < n; j++) mu[j] = 0;
        for (int64_t i = 0; i < m; i++) for (int64_t j = 0; j < n; j++) mu[j] += z[i * n + j];
        for (int64_t j = 0; j < n; j++) { mu[j] /= (REAL)m; invstd[j] = 0; }
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) { REAL c = z[i * n + j] - mu[j]; invstd[j] += c * c; }
        for (int64_t j = 0; j < n; j++) {
            double var = (double)invstd[j] / (double)m;
            if (mode == 2) {
                run_mean[j] = (REAL)((1 - momentum) * run_mean[j] + momentum * mu[j]);
                if (m > 1)
                    run_var[j] = (REAL)((1 - momentum) * run_var[j] +
                                        momentum * var * (double)m / (double)(m - 1));
            }
            invstd[j] = (REAL)(1.0 / sqrt(var + eps));
        }
    }
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            REAL xh = (z[i * n + j] - mu[j]) * invstd[j];
            xhat[i * n + j] = xh;
            z[i * n + j] = gamma[j] * xh + beta[j];
        }
}

/* Backward through batch normalisation with batch statistics. On entry d = dS/dy for the sum S
 * of the per-example costs (y = gamma xhat + beta); on exit d = dS/d(z + b):
 *   d_ij <- gamma_j invstd_j (d_ij - dbeta_j / m - xhat_ij dgamma_j / m),
 * with dbeta_j = sum_i d_ij and dgamma_j = sum_i d_ij xhat_ij; gscale times these are written
 * (or added when accumulate) to dbeta, dgamma. With batch_stats = 0 (running statistics, which
 * do not depend on the batch) the batch terms vanish: d_ij <- gamma_j invstd_j d_ij. */
VG_API void SFX(vg_bn_backward)(REAL *d, const REAL *xhat, const REAL *gamma, const REAL *invstd,
                         int64_t m, int64_t n, double gscale, REAL *dgamma, REAL *dbeta,
                         int accumulate, int batch_stats) {
    REAL sb[256], sg[256];
    for (int64_t j0 = 0; j0 < n; j0 += 256) {
        int64_t nb = n - j0 < 256 ? n - j0 : 256;
        for (int64_t j = 0; j < nb; j++) { sb[j] = 0; sg[j] = 0; }
        for (int64_t i = 0; i < m; i++) {
            const REAL *dr = d + i * n + j0, *xr = xhat + i * n + j0;
            for (int64_t j = 0; j < nb; j++) { sb[j] += dr[j]; sg[j] += dr[j] * xr[j]; }
        }
        for (int64_t j = 0; j < nb; j++) {
            REAL gb = (REAL)gscale * sb[j], gg = (REAL)gscale * sg[j];
            dbeta[j0 + j] = accumulate ? dbeta[j0 + j] + gb : gb;
            dgamma[j0 + j] = accumulate ? dgamma[j0 + j] + gg : gg;
        }
        const REAL inv_m = batch_stats ? (REAL)1 / (REAL)m : (REAL)0;
        for (int64_t i = 0; i < m; i++) {
            REAL *dr = d + i * n + j0;
            const REAL *xr = xhat + i * n + j0;
            for (int64_t j = 0; j < nb; j++) {
                int64_t jj = j0 + j;
                dr[j] = gamma[jj] * invstd[jj] * (dr[j] - sb[j] * inv_m - xr[j] * sg[j] * inv_m);
            }
        }
    }
}

/* Statistics of one layer's activations a (m, n), added to out[0..3]:
 * out[0] += sum a, out[1] += sum a^2, out[2] += number of saturated entries (sigmoid: a < 0.05
 * or a > 0.95; tanh: |a| > 0.9: both where f' < 0.19 max f'; other activations: none), out[3] +=
 * number of dead units (relu: a == 0 for every row of the batch). */
VG_API void SFX(vg_act_stats)(const REAL *a, int64_t m, int64_t n, int act, double *out) {
    double s = 0, s2 = 0, sat = 0;
    for (int64_t i = 0; i < m * n; i++) {
        double v = (double)a[i];
        s += v;
        s2 += v * v;
    }
    if (act == VG_SIGMOID) {
        for (int64_t i = 0; i < m * n; i++) sat += (a[i] < (REAL)0.05) | (a[i] > (REAL)0.95);
    } else if (act == VG_TANH) {
        for (int64_t i = 0; i < m * n; i++) sat += FABS(a[i]) > (REAL)0.9;
    }
    out[0] += s;
    out[1] += s2;
    out[2] += sat;
    if (act == VG_RELU) {
        int64_t dead = 0;
        for (int64_t j = 0; j < n; j++) {
            int alive = 0;
            for (int64_t i = 0; i < m && !alive; i++) alive = a[i * n + j] > 0;
            dead += !alive;
        }
        out[3] += (double)dead;
    }
}

/* sum (x - y)^2 */
/* sum_j g_j^2 / (max(q_j - g_j^2, 0) + eps): the sum behind Cockpit's MeanGSNR, with g the mean
 * gradient and q the mean squared per-example gradient of each parameter; eight independent
 * sums (see vg_sumsq): the divisions vectorise, deterministic */
VG_API double SFX(vg_gsnr_sum)(const REAL *g, const REAL *q, int64_t len, double eps) {
    double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= len; i += 8)
        for (int k = 0; k < 8; k++) {
            double u = (double)g[i + k] * (double)g[i + k], v = (double)q[i + k] - u;
            a[k] += u / ((v > 0 ? v : 0.0) + eps);
        }
    for (; i < len; i++) {
        double u = (double)g[i] * (double)g[i], v = (double)q[i] - u;
        a[0] += u / ((v > 0 ? v : 0.0) + eps);
    }
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

VG_API double SFX(vg_diff_sumsq)(const REAL *x, const REAL *y, int64_t len) {
    /* eight independent sums (see vg_sumsq): vectorises, deterministic */
    double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= len; i += 8)
        for (int k = 0; k < 8; k++) {
            double d = (double)x[i + k] - (double)y[i + k];
            a[k] += d * d;
        }
    for (; i < len; i++) { double d = (double)x[i] - (double)y[i]; a[0] += d * d; }
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}
