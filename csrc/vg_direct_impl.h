/* The first layer's two products, reading the input rows where they lie: X[idx[i]] for the
 * mini-batch's row indices idx, so that the rows are never gathered into a contiguous copy (and
 * never packed by BLAS either). Instantiated by vg_direct.c for double (_d, 8 lanes) and float
 * (_f, 16 lanes) with AVX-512 intrinsics; portable loops stand in on other machines.
 *
 *   forward:  Z[r, j] = sum_k X[idx[r], k] Wt[k, j]       (Wt = W^T, packed nin x ldw, zero padded)
 *   weights:  G[j, k] = alpha sum_i D[i, j] X[idx[i], k] + beta G[j, k]
 *
 * The forward kernel keeps a tile of FR rows x up to 4 vectors of Z in registers and runs down k
 * (broadcast x, load a vector of Wt, FMA): no packing of X and no transposition of the result.
 * The weight kernel keeps a tile of 6 rows of G x 4 vectors along k (contiguous in X's row and in
 * G's row) and runs down the batch. Both read each row through idx, the permutation.
 * The forward pass also takes max |x| over the rows it reads (the bits of |x| compared as
 * integers, as vg_gather_rows does: NaN > Inf > every finite value), -1 if one is NaN or Inf:
 * the check and the bound the gather gave. */

#define DTILE 6 /* rows of G per weight tile */

/* rows[0..R) x vectors [0, JV) of Z; mx, when MX, takes max |x| of the rows */
static inline __attribute__((always_inline)) void DSFX(fwd_tile)(
        const REAL *const *rows, const int R, const REAL *Wt, int64_t ldw, int64_t nin, REAL *Z,
        int64_t ldz, const int JV, VMASK last, const int MX, VINT *mx, VMASK klast) {
    VEC acc[FR][4];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < JV; v++) acc[r][v] = V_ZERO();
    int64_t k = 0;
    for (; k + LANES <= nin; k += LANES) {
        if (MX)
            for (int r = 0; r < R; r++) *mx = V_ABSBITS_MAX(*mx, V_LOADU(rows[r] + k));
        for (int kk = 0; kk < LANES; kk++) {
            VEC w[4];
            for (int v = 0; v < JV; v++) w[v] = V_LOAD(Wt + (k + kk) * ldw + LANES * v);
            for (int r = 0; r < R; r++) {
                VEC x = V_SET1(rows[r][k + kk]);
                for (int v = 0; v < JV; v++) acc[r][v] = V_FMA(x, w[v], acc[r][v]);
            }
        }
    }
    if (k < nin) {
        if (MX)
            for (int r = 0; r < R; r++) *mx = V_ABSBITS_MAX(*mx, V_MASKZ_LOADU(klast, rows[r] + k));
        for (; k < nin; k++) {
            VEC w[4];
            for (int v = 0; v < JV; v++) w[v] = V_LOAD(Wt + k * ldw + LANES * v);
            for (int r = 0; r < R; r++) {
                VEC x = V_SET1(rows[r][k]);
                for (int v = 0; v < JV; v++) acc[r][v] = V_FMA(x, w[v], acc[r][v]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < JV; v++) {
            if (v < JV - 1) V_STOREU(Z + r * ldz + LANES * v, acc[r][v]);
            else V_MASK_STOREU(Z + r * ldz + LANES * v, last, acc[r][v]);
        }
}

static double DSFX(fwd_avx512)(const REAL *X, const int64_t *idx, int64_t m, int64_t nin,
                               const REAL *Wt, int64_t ldw, REAL *Z, int64_t nout) {
    int64_t nv = (nout + LANES - 1) / LANES;
    VINT mx = _mm512_setzero_si512();
    VMASK klast = (VMASK)((1u << (nin % LANES)) - 1);
    for (int64_t jv0 = 0; jv0 < nv; jv0 += 4) {
        int JV = nv - jv0 < 4 ? (int)(nv - jv0) : 4;
        int64_t rem = nout - LANES * (jv0 + JV - 1);
        VMASK last = (VMASK)(rem >= LANES ? ~0u : (1u << rem) - 1);
        int MX = jv0 == 0;
        for (int64_t i = 0; i < m; i += FR) {
            const REAL *rows[FR];
            int R = m - i < FR ? (int)(m - i) : FR;
            for (int r = 0; r < R; r++) rows[r] = X + idx[i + r] * nin;
            const REAL *W0 = Wt + LANES * jv0;
            REAL *Z0 = Z + i * nout + LANES * jv0;
#define FWD(R_, J_) DSFX(fwd_tile)(rows, R_, W0, ldw, nin, Z0, nout, J_, last, 1, &mx, klast)
#define FWD0(R_, J_) DSFX(fwd_tile)(rows, R_, W0, ldw, nin, Z0, nout, J_, last, 0, &mx, klast)
            if (R == FR) {
                if (MX) switch (JV) { case 4: FWD(FR, 4); break; case 3: FWD(FR, 3); break;
                                      case 2: FWD(FR, 2); break; default: FWD(FR, 1); }
                else switch (JV) { case 4: FWD0(FR, 4); break; case 3: FWD0(FR, 3); break;
                                   case 2: FWD0(FR, 2); break; default: FWD0(FR, 1); }
            } else {
                /* the last rows of the batch, one at a time */
                for (int r = 0; r < R; r++) {
                    const REAL *one[1] = {rows[r]};
                    REAL *Zr = Z0 + r * nout;
#define FWD1(J_, M_) DSFX(fwd_tile)(one, 1, W0, ldw, nin, Zr, nout, J_, last, M_, &mx, klast)
                    if (MX) switch (JV) { case 4: FWD1(4, 1); break; case 3: FWD1(3, 1); break;
                                          case 2: FWD1(2, 1); break; default: FWD1(1, 1); }
                    else switch (JV) { case 4: FWD1(4, 0); break; case 3: FWD1(3, 0); break;
                                       case 2: FWD1(2, 0); break; default: FWD1(1, 0); }
#undef FWD1
                }
            }
#undef FWD
#undef FWD0
        }
    }
    UINT bits[LANES], top = 0;
    _mm512_storeu_si512((void *)bits, mx);
    for (int l = 0; l < LANES; l++) top = bits[l] > top ? bits[l] : top;
    if (top > MAX_BITS) return -1.0; /* NaN or Inf */
    REAL best;
    memcpy(&best, &top, sizeof best);
    return (double)best;
}

/* The SGD step that vg_wgrad_sgd takes on W with the gradient as it leaves the registers: the
 * constants of vg_sgd_apply (g' = g + l2 w; v <- mu v + g'; w <- f w - lr v, or - lr (g' + mu v)
 * for Nesterov, or - lr g' when mu = 0), its operations in its order */
typedef struct {
    REAL *W, *V;
    VEC lr, l2, mu, f;
    int mom, nesterov;
} DSFX(sgd_c);

/* rows [j0, j0 + JR) of G x vectors [0, KV) from column k0; u not NULL: instead of G, the SGD
 * step u on the same rows and columns of W (and V) */
static inline __attribute__((always_inline)) void DSFX(wgrad_tile)(
        const REAL *X, const int64_t *idx, int64_t m, int64_t nin, int64_t k0, const REAL *D,
        int64_t ldd, int64_t j0, const int JR, const int KV, VMASK last, REAL alpha, REAL beta,
        REAL *G, const DSFX(sgd_c) *u) {
    VEC acc[DTILE][4];
#pragma GCC unroll 8
    for (int j = 0; j < JR; j++)
#pragma GCC unroll 4
        for (int v = 0; v < KV; v++) acc[j][v] = V_ZERO();
    for (int64_t i = 0; i < m; i++) {
        const REAL *xr = X + (idx ? idx[i] : i) * nin + k0;
        VEC x[4];
#pragma GCC unroll 4
        for (int v = 0; v < KV; v++)
            x[v] = v < KV - 1 ? V_LOADU(xr + LANES * v) : V_MASKZ_LOADU(last, xr + LANES * v);
        const REAL *dr = D + i * ldd + j0;
#pragma GCC unroll 8
        for (int j = 0; j < JR; j++) {
            VEC d = V_SET1(dr[j]);
#pragma GCC unroll 4
            for (int v = 0; v < KV; v++) acc[j][v] = V_FMA(d, x[v], acc[j][v]);
        }
    }
    const VEC a = V_SET1(alpha);
    if (u) {  /* the step, its operands held in locals (W and V may not alias u) */
        REAL *const W = u->W, *const V = u->V;
        const VEC lr = u->lr, l2 = u->l2, mu = u->mu, f = u->f;
        const int mom = u->mom, nesterov = u->nesterov;
#pragma GCC unroll 8
        for (int j = 0; j < JR; j++)
#pragma GCC unroll 4
            for (int v = 0; v < KV; v++) {
                const int64_t o = (j0 + j) * nin + k0 + LANES * v;
                const VMASK mk = v < KV - 1 ? (VMASK)~0u : last;
                const VEC w = V_MASKZ_LOADU(mk, W + o);
                const VEC g = V_ADD(V_MUL(a, acc[j][v]), V_MUL(l2, w));
                VEC step = g;
                if (mom) {
                    const VEC vel = V_ADD(V_MUL(mu, V_MASKZ_LOADU(mk, V + o)), g);
                    V_MASK_STOREU(V + o, mk, vel);
                    step = nesterov ? V_ADD(g, V_MUL(mu, vel)) : vel;
                }
                V_MASK_STOREU(W + o, mk, V_SUB(V_MUL(f, w), V_MUL(lr, step)));
            }
        return;
    }
    const VEC b = V_SET1(beta);
#pragma GCC unroll 8
    for (int j = 0; j < JR; j++)
#pragma GCC unroll 4
        for (int v = 0; v < KV; v++) {
            REAL *g = G + (j0 + j) * nin + k0 + LANES * v;
            VMASK mk = v < KV - 1 ? (VMASK)~0u : last;
            VEC r = V_MUL(a, acc[j][v]);
            if (beta != 0) r = V_FMA(b, V_MASKZ_LOADU(mk, g), r); /* beta = 0: G is not read */
            V_MASK_STOREU(g, mk, r);
        }
}

/* the tile of rows [j0, j0 + DTILE) and columns [k0, k0 + 4 LANES) of G (or of u's step), cut
 * to nout x nin */
static void DSFX(wgrad_at)(const REAL *X, const int64_t *idx, int64_t m, int64_t nin,
                           const REAL *D, int64_t nout, REAL alpha, REAL beta, REAL *G,
                           const DSFX(sgd_c) *u, int64_t k0, int64_t j0) {
    const int64_t kw = nin - k0 < 4 * LANES ? nin - k0 : 4 * LANES;
    const int KV = (int)((kw + LANES - 1) / LANES);
    const int64_t rem = kw - LANES * (KV - 1);
    const VMASK last = (VMASK)(rem >= LANES ? ~0u : (1u << rem) - 1);
    const int JR = nout - j0 < DTILE ? (int)(nout - j0) : DTILE;
    switch (JR * 8 + KV) {
#define C(R_, K_) case R_ * 8 + K_: \
    DSFX(wgrad_tile)(X, idx, m, nin, k0, D, nout, j0, R_, K_, last, alpha, beta, G, u); break;
        C(6, 4) C(6, 3) C(6, 2) C(6, 1) C(5, 4) C(5, 3) C(5, 2) C(5, 1)
        C(4, 4) C(4, 3) C(4, 2) C(4, 1) C(3, 4) C(3, 3) C(3, 2) C(3, 1)
        C(2, 4) C(2, 3) C(2, 2) C(2, 1) C(1, 4) C(1, 3) C(1, 2) C(1, 1)
#undef C
    }
}

/* G = alpha D^T X[idx] + beta G (idx NULL: X's first m rows): the tiles down G's columns, so
 * that the block of X's rows they read stays in L1; or with u the SGD step u on W, the tiles
 * along W's rows, which W and V then stream through once */
static void DSFX(wgrad_blocks)(const REAL *X, const int64_t *idx, int64_t m, int64_t nin,
                               const REAL *D, int64_t nout, REAL alpha, REAL beta, REAL *G,
                               const DSFX(sgd_c) *u) {
    if (u) {
        for (int64_t j0 = 0; j0 < nout; j0 += DTILE)
            for (int64_t k0 = 0; k0 < nin; k0 += 4 * LANES)
                DSFX(wgrad_at)(X, idx, m, nin, D, nout, alpha, beta, G, u, k0, j0);
    } else {
        for (int64_t k0 = 0; k0 < nin; k0 += 4 * LANES)
            for (int64_t j0 = 0; j0 < nout; j0 += DTILE)
                DSFX(wgrad_at)(X, idx, m, nin, D, nout, alpha, beta, G, u, k0, j0);
    }
}

static void DSFX(wgrad_avx512)(const REAL *X, const int64_t *idx, int64_t m, int64_t nin,
                               const REAL *D, int64_t nout, REAL alpha, REAL beta, REAL *G) {
    DSFX(wgrad_blocks)(X, idx, m, nin, D, nout, alpha, beta, G, NULL);
}

static void DSFX(wgrad_sgd_avx512)(const REAL *X, const int64_t *idx, int64_t m, int64_t nin,
                                   const REAL *D, int64_t nout, REAL alpha, REAL *W, REAL *V,
                                   REAL lr, REAL l2, REAL mu, REAL f, int nesterov) {
    const DSFX(sgd_c) u = {W, V, V_SET1(lr), V_SET1(l2), V_SET1(mu), V_SET1(f), mu != 0,
                           nesterov};
    DSFX(wgrad_blocks)(X, idx, m, nin, D, nout, alpha, 0, NULL, &u);
}

/* The sparse first layer (inputs mostly zero), by tiles of WPT adjacent columns (pixels).
 *
 *   scan: one pass over the rows X[idx[0..m)), FRB rows at a time (the rows FRB x PFB on are
 *     prefetched: they lie at random in X), lists for each tile t the rows with a nonzero in it
 *     (ascending) in trow[t m + e], e < cnt[t], and their WPT values in tval[WPT (t m + e) ..],
 *     and takes max |x| over the rows (the bits of |x| compared as integers: -1 for NaN/Inf);
 *   forward: Z = X[idx] W^T from the lists: for a block of at most SBV vectors of units, a tile's
 *     WPT rows of W^T stay in registers while each listed row of Z gets their WPT terms;
 *   weight gradient: G = alpha D^T X[idx] + beta G from the same lists: a tile's WPT columns of
 *     G (the block's units) are summed in registers over its listed rows of D, then written,
 *     transposed in registers, along G's rows.
 *
 * Both products go through the units in blocks of at most SBV vectors, so that the block's part
 * of Z or D (m rows) stays in L1 while every tile reads it; both sum each output in column
 * (forward) or row (gradient) order, as a dense loop would. Neighbouring pixels are nonzero
 * together (MNIST, 200 rows: 30,000 nonzeros in 11,000 tile entries), so each row of Z or D
 * loaded serves WPT columns. */

/* the forward product's rows go in balanced groups of at most vg_sparse_group_rows (rounded up
 * to a multiple of FRB; 0: one group) rows each: this many; the scan records where each group's
 * entries start in every tile's list (split) */
static inline int64_t DSFX(group_rows)(int64_t m) {
    const int64_t cap = vg_sparse_group_rows > 0 ? vg_sparse_group_rows : m;
    const int64_t ng = (m + cap - 1) / cap, r = (m + ng - 1) / ng;
    return (r + FRB - 1) / FRB * FRB;
}

/* the tiles' lists of rows X[idx[0..m)) (above), and after cnt[0..nt) the entries where each
 * group of rg rows starts in every tile's list, (groups + 1) x nt; returns max |x| or -1 */
static double DSFX(sscan)(const REAL *X, const int64_t *idx, int64_t m, int64_t nin, int64_t *cnt,
                          int32_t *trow, REAL *tval, int64_t rg) {
    const int64_t nt = (nin + WPT - 1) / WPT;
    VINT mx = _mm512_setzero_si512();
    const VMASK klast = (VMASK)((1u << (nin % LANES)) - 1);
    int64_t *split = cnt + nt;
    memset(cnt, 0, (size_t)nt * sizeof(int64_t));
    for (int64_t i0 = 0; i0 < m; i0 += FRB) {
        const int R = m - i0 < FRB ? (int)(m - i0) : FRB;
        const REAL *rows[FRB], *ahead[FRB];
        if (i0 % rg == 0) memcpy(split + i0 / rg * nt, cnt, (size_t)nt * sizeof(int64_t));
        for (int r = 0; r < R; r++) rows[r] = X + idx[i0 + r] * nin;
        const int64_t left = m - i0 - PFB * FRB;
        const int RA = left <= 0 ? 0 : (left < FRB ? (int)left : FRB);
        for (int r = 0; r < RA; r++) ahead[r] = X + idx[i0 + PFB * FRB + r] * nin;
        for (int64_t k = 0; k < nin; k += LANES) {
            const VMASK km = nin - k >= LANES ? (VMASK)~0u : klast;
            VEC v[FRB];
            VMASK nz[FRB], any = 0;
            for (int r = 0; r < RA; r++) __builtin_prefetch(ahead[r] + k, 0, 2);
            for (int r = 0; r < R; r++) {
                v[r] = V_MASKZ_LOADU(km, rows[r] + k);
                mx = V_ABSBITS_MAX(mx, v[r]);
                nz[r] = V_NONZERO(v[r]) & km;
                any |= nz[r];
            }
            if (!any) continue;
            /* each tile with a nonzero in the block: every row's entry written, counted if not
             * all zero (a slot written and not counted is overwritten by the tile's next entry) */
            for (int h = 0; h < LANES / WPT; h++) {
                const int64_t t = k / WPT + h;
                if (t >= nt) break;
                if (!((any >> (WPT * h)) & ((1u << WPT) - 1))) continue;
                int64_t c = cnt[t];
                for (int r = 0; r < R; r++) {
                    const int64_t q = t * m + c;
                    trow[q] = (int32_t)(i0 + r);
                    DSFX(put_tile)(tval + WPT * q, v[r], h);
                    c += ((nz[r] >> (WPT * h)) & ((1u << WPT) - 1)) != 0;
                }
                cnt[t] = c;
            }
        }
    }
    memcpy(split + (m + rg - 1) / rg * nt, cnt, (size_t)nt * sizeof(int64_t));
    UINT bits[LANES], top = 0;
    _mm512_storeu_si512((void *)bits, mx);
    for (int l = 0; l < LANES; l++) top = bits[l] > top ? bits[l] : top;
    if (top > MAX_BITS) return -1.0;
    REAL best;
    memcpy(&best, &top, sizeof best);
    return (double)best;
}

/* Z[:, block] += the tiles' terms of their entries [e0[t], e1[t]) (one group of rows), for a
 * block of JV vectors of units (Wt, Z at its first unit; the last vector masked by last) */
static inline __attribute__((always_inline)) void DSFX(sfwd_block)(
        const int64_t *e0, const int64_t *e1, const int32_t *trow, const REAL *tval, int64_t m,
        int64_t nin, const REAL *Wt, int64_t ldw, REAL *Z, int64_t nout, const int JV,
        VMASK last) {
    const int64_t nt = (nin + WPT - 1) / WPT;
    for (int64_t t = 0; t < nt; t++) {
        const int64_t k0 = WPT * t, nc = nin - k0 < WPT ? nin - k0 : WPT, ne = e1[t];
        if (ne == e0[t]) continue;
        VEC w[WPT][SBV];
        for (int c = 0; c < WPT; c++)
            for (int v = 0; v < JV; v++)
                w[c][v] = c < nc ? V_LOADU(Wt + (k0 + c) * ldw + LANES * v) : V_ZERO();
        const int32_t *tr = trow + t * m;
        const REAL *tv = tval + WPT * t * m;
        for (int64_t e = e0[t]; e < ne; e++) {
            REAL *z = Z + (int64_t)tr[e] * nout;
            VEC x[WPT];
            for (int c = 0; c < WPT; c++) x[c] = V_SET1(tv[WPT * e + c]);
            for (int v = 0; v < JV; v++) {
                VEC a = v < JV - 1 ? V_LOADU(z + LANES * v) : V_MASKZ_LOADU(last, z + LANES * v);
                for (int c = 0; c < WPT; c++) a = V_FMA(x[c], w[c][v], a);
                V_MASK_STOREU(z + LANES * v, v < JV - 1 ? (VMASK)~0u : last, a);
            }
        }
    }
}

/* acc[c][v] = the sums of tile t's WPT columns c for a block of JV vectors of units (D at its
 * first unit), over the tile's ne listed rows (tr, tv) */
static inline __attribute__((always_inline)) void DSFX(stile_sums)(
        const int32_t *tr, const REAL *tv, int64_t ne, const REAL *D, int64_t nout, const int JV,
        VMASK last, VEC acc[WPT][SBV]) {
    for (int c = 0; c < WPT; c++)
        for (int v = 0; v < JV; v++) acc[c][v] = V_ZERO();
    for (int64_t e = 0; e < ne; e++) {
        const REAL *d = D + (int64_t)tr[e] * nout;
        VEC x[WPT];
        for (int c = 0; c < WPT; c++) x[c] = V_SET1(tv[WPT * e + c]);
        for (int v = 0; v < JV; v++) {
            VEC a = v < JV - 1 ? V_LOADU(d + LANES * v) : V_MASKZ_LOADU(last, d + LANES * v);
            for (int c = 0; c < WPT; c++) acc[c][v] = V_FMA(x[c], a, acc[c][v]);
        }
    }
}

/* G[block, tile] = alpha (the tile's sums) + beta G, for a block of JV vectors of units (D, G at
 * its first unit, nj units) */
static inline __attribute__((always_inline)) void DSFX(swgrad_block)(
        const int64_t *cnt, const int32_t *trow, const REAL *tval, int64_t m, int64_t nin,
        const REAL *D, int64_t nout, REAL alpha, REAL beta, REAL *G, int64_t nj, const int JV,
        VMASK last) {
    const int64_t nt = (nin + WPT - 1) / WPT;
    REAL buf[WPT * SBV * LANES] __attribute__((aligned(64)));
    for (int64_t t = 0; t < nt; t++) {
        const int64_t k0 = WPT * t, nc = nin - k0 < WPT ? nin - k0 : WPT;
        VEC acc[WPT][SBV];
        DSFX(stile_sums)(trow + t * m, tval + WPT * t * m, cnt[t], D, nout, JV, last, acc);
        for (int c = 0; c < WPT; c++)
            for (int v = 0; v < JV; v++) V_STOREU(buf + c * SBV * LANES + LANES * v, acc[c][v]);
        DSFX(store_tile)(buf, SBV * LANES, nj, alpha, beta, G, nin, k0, nc);
    }
}

/* the units in nb balanced blocks of at most SBV vectors: block b is vectors [v0, v1) */
#define SPARSE_BLOCKS(nout, BODY)                                                               \
    do {                                                                                        \
        const int64_t nv_ = ((nout) + LANES - 1) / LANES, nb_ = (nv_ + SBV - 1) / SBV;          \
        for (int64_t b_ = 0; b_ < nb_; b_++) {                                                  \
            const int64_t v0 = nv_ * b_ / nb_, v1 = nv_ * (b_ + 1) / nb_;                       \
            const int64_t rem = (nout) - LANES * (v1 - 1);                                      \
            const VMASK last = (VMASK)(rem >= LANES ? ~0u : (1u << rem) - 1);                   \
            const int64_t nj = (v1 * LANES < (nout) ? v1 * LANES : (nout)) - LANES * v0;        \
            (void)nj;                                                                           \
            switch (v1 - v0) { BODY }                                                           \
        }                                                                                       \
    } while (0)

/* Z = the forward product from the tiles' lists (sscan or tgather) of m rows in groups of rg */
static void DSFX(sfwd_lists)(int64_t m, int64_t nin, const REAL *Wt, int64_t ldw, REAL *Z,
                             int64_t nout, const int64_t *cnt, const int32_t *trow,
                             const REAL *tval, int64_t rg) {
    memset(Z, 0, (size_t)(m * nout) * sizeof(REAL));
    /* the groups of rows innermost: the block's part of a group's rows of Z stays in L1 */
    const int64_t nt = (nin + WPT - 1) / WPT, ng = (m + rg - 1) / rg;
    const int64_t *split = cnt + nt;
#define C(J_) case J_:                                                                          \
        for (int64_t g = 0; g < ng; g++)                                                        \
            DSFX(sfwd_block)(split + g * nt, split + (g + 1) * nt, trow, tval, m, nin,          \
                             Wt + LANES * v0, ldw, Z + LANES * v0, nout, J_, last);             \
        break;
    SPARSE_BLOCKS(nout, C(1) C(2) C(3) C(4));
#undef C
}

static double DSFX(sfwd_avx512)(const REAL *X, const int64_t *idx, int64_t m, int64_t nin,
                                const REAL *Wt, int64_t ldw, REAL *Z, int64_t nout, int64_t *cnt,
                                int32_t *trow, REAL *tval) {
    const int64_t rg = DSFX(group_rows)(m);
    const double mx = DSFX(sscan)(X, idx, m, nin, cnt, trow, tval, rg);
    if (mx >= 0) DSFX(sfwd_lists)(m, nin, Wt, ldw, Z, nout, cnt, trow, tval, rg);
    return mx;
}

/* the same from rows compacted by vg_tile_rows (tgather in vg_direct.c makes the lists) */
static double DSFX(tfwd_avx512)(const int64_t *rp, const int32_t *rt, const REAL *rv,
                                const double *rmax, const int64_t *idx, int64_t m, int64_t nin,
                                const REAL *Wt, int64_t ldw, REAL *Z, int64_t nout, int64_t *cnt,
                                int32_t *trow, REAL *tval) {
    const int64_t rg = DSFX(group_rows)(m);
    const double mx = DSFX(tgather)(rp, rt, rv, rmax, idx, m, nin, cnt, trow, tval, rg);
    if (mx >= 0) DSFX(sfwd_lists)(m, nin, Wt, ldw, Z, nout, cnt, trow, tval, rg);
    return mx;
}

/* row x's tiles with a nonzero, as sscan lists them: their indices to rt and WPT values each to
 * rv (rt NULL: only counted, without branches, *mx not set); returns the count, and max |x| (-1
 * for NaN/Inf) in *mx */
static int64_t DSFX(tile_row_avx512)(const REAL *x, int64_t nin, int32_t *rt, REAL *rv,
                                     double *mx) {
    const int64_t nt = (nin + WPT - 1) / WPT;
    const VMASK klast = (VMASK)((1u << (nin % LANES)) - 1);
    if (!rt) {
        int64_t n = 0;
        for (int64_t k = 0; k < nin; k += LANES) {
            const VMASK km = nin - k >= LANES ? (VMASK)~0u : klast;
            const VMASK nz = V_NONZERO(V_MASKZ_LOADU(km, x + k)) & km;
            for (int h = 0; h < LANES / WPT; h++) n += ((nz >> (WPT * h)) & ((1u << WPT) - 1)) != 0;
        }
        return n;
    }
    VINT top = _mm512_setzero_si512();
    int64_t c = 0;
    for (int64_t k = 0; k < nin; k += LANES) {
        const VMASK km = nin - k >= LANES ? (VMASK)~0u : klast;
        const VEC v = V_MASKZ_LOADU(km, x + k);
        top = V_ABSBITS_MAX(top, v);
        const VMASK nz = V_NONZERO(v) & km;
        if (!nz) continue;
        for (int h = 0; h < LANES / WPT; h++) {
            const int64_t t = k / WPT + h;
            if (t >= nt) break;
            if (!((nz >> (WPT * h)) & ((1u << WPT) - 1))) continue;
            rt[c] = (int32_t)t;
            DSFX(put_tile)(rv + WPT * c, v, h);
            c++;
        }
    }
    UINT bits[LANES], b = 0;
    _mm512_storeu_si512((void *)bits, top);
    for (int l = 0; l < LANES; l++) b = bits[l] > b ? bits[l] : b;
    REAL best;
    memcpy(&best, &b, sizeof best);
    *mx = b > MAX_BITS ? -1.0 : (double)best;
    return c;
}

static void DSFX(swgrad_avx512)(const int64_t *cnt, const int32_t *trow, const REAL *tval,
                                int64_t m, int64_t nin, const REAL *D, int64_t nout, REAL alpha,
                                REAL beta, REAL *G) {
#define C(J_) case J_: DSFX(swgrad_block)(cnt, trow, tval, m, nin, D + LANES * v0, nout, alpha,  \
                                          beta, G + LANES * v0 * nin, nj, J_, last); break;
    SPARSE_BLOCKS(nout, C(1) C(2) C(3) C(4));
#undef C
}


/* Adam's step on the first layer's weights with the L2 term and the transposed copy (vg_adam_t in
 * vg_direct.c): vg_add_l2_l1 and vg_opt_step's operations, in their order, on rows of 8 elements
 * of the 8 x 8 blocks of W; each block's new values are transposed in registers into Wt while
 * the divisions and square roots run. */
typedef struct {
    R8 l2, f, b1, b2, c1, c2, eps, step, bc2s;
    int has_l2, decay, eps_hat;
} DSFX(adam_c);

static inline __attribute__((always_inline)) R8 DSFX(adam8)(
        REAL *W, const REAL *G, REAL *S1, REAL *S2, REAL *old, int64_t o, __mmask8 km,
        const DSFX(adam_c) *c, R8 *chk) {
    R8 w = R8_LOADZ(km, W + o), g = R8_LOADZ(km, G + o);
    if (old) R8_STOREM(old + o, km, w);
    if (c->has_l2) g = R8_ADD(g, R8_MUL(c->l2, w));          /* vg_add_l2_l1 */
    if (c->decay) w = R8_MUL(w, c->f);                         /* p *= f */
    const R8 m = R8_ADD(R8_MUL(c->b1, R8_LOADZ(km, S1 + o)), R8_MUL(c->c1, g));
    const R8 v = R8_ADD(R8_MUL(c->b2, R8_LOADZ(km, S2 + o)), R8_MUL(R8_MUL(c->c2, g), g));
    R8 r = R8_SQRT(v);
    if (!c->eps_hat) r = R8_DIV(r, c->bc2s);
    w = R8_SUB(w, R8_DIV(R8_MUL(c->step, m), R8_ADD(r, c->eps)));
    R8_STOREM(S1 + o, km, m);
    R8_STOREM(S2 + o, km, v);
    R8_STOREM(W + o, km, w);
    *chk = R8_ADD(*chk, R8_ADD(R8_SUB(w, w), R8_ADD(R8_SUB(m, m), R8_SUB(v, v))));
    return w;
}

static int DSFX(adam_t_avx512)(REAL *W, REAL *G, REAL *S1, REAL *S2, int64_t nout, int64_t nin,
                               const double *h, int64_t t, double l2, REAL *old, REAL *Wt,
                               int64_t ldw) {
    DSFX(adam_k) k;
    DSFX(adam_consts)(h, t, l2, &k);
    const DSFX(adam_c) c = {R8_SET1(k.l2), R8_SET1(k.f), R8_SET1(k.b1), R8_SET1(k.b2),
                            R8_SET1(k.c1), R8_SET1(k.c2), R8_SET1(k.eps), R8_SET1(k.step),
                            R8_SET1(k.bc2s), k.has_l2, k.decay, k.eps_hat};
    R8 chk = R8_ZERO();
    const int64_t j8 = nout / 8 * 8;
    for (int64_t j0 = 0; j0 < nout; j0 += 8)
        for (int64_t k0 = 0; k0 < nin; k0 += 8) {
            const int nc = nin - k0 < 8 ? (int)(nin - k0) : 8;
            const __mmask8 km = (__mmask8)((1u << nc) - 1);
            if (j0 < j8) {
                R8 r[8];
                for (int i = 0; i < 8; i++)
                    r[i] = DSFX(adam8)(W, G, S1, S2, old, (j0 + i) * nin + k0, km, &c, &chk);
                STORE_T8(r, Wt + k0 * ldw + j0, ldw, nc);
            } else {  /* the last nout % 8 units: their columns of Wt element by element */
                for (int64_t j = j0; j < nout; j++) {
                    REAL tmp[8];
                    R8_STOREU(tmp, DSFX(adam8)(W, G, S1, S2, old, j * nin + k0, km, &c, &chk));
                    for (int q = 0; q < nc; q++) Wt[(k0 + q) * ldw + j] = tmp[q];
                }
            }
        }
    return !R8_ALL_ZERO(chk);
}

/* Adam's step on the first layer from the sparse weight gradient's registers (vg_swgrad_adam in
 * vg_direct.c): W^0 and its moments kept transposed (Wt, Mt, Vt: nin x ldw, the forward product's
 * layout), so that a tile's WPT x (block) sums meet their weights and moments along rows of Wt:
 * g = alpha (the sums), then adam8's operations in their order. G is never written. */
typedef struct {
    VEC alpha, l2, f, b1, b2, c1, c2, eps, step, bc2s;
    int has_l2, decay, eps_hat;
} DSFX(sadam_c);

static inline __attribute__((always_inline)) void DSFX(sadam)(
        VEC s, REAL *W, REAL *M, REAL *S, VMASK km, const DSFX(sadam_c) *c, VEC *chk) {
    VEC w = V_MASKZ_LOADU(km, W), g = V_MUL(c->alpha, s);
    if (c->has_l2) g = V_ADD(g, V_MUL(c->l2, w));             /* vg_add_l2_l1 */
    if (c->decay) w = V_MUL(w, c->f);                           /* p *= f */
    const VEC m = V_ADD(V_MUL(c->b1, V_MASKZ_LOADU(km, M)), V_MUL(c->c1, g));
    const VEC v = V_ADD(V_MUL(c->b2, V_MASKZ_LOADU(km, S)), V_MUL(V_MUL(c->c2, g), g));
    VEC r = V_SQRT(v);
    if (!c->eps_hat) r = V_DIV(r, c->bc2s);
    w = V_SUB(w, V_DIV(V_MUL(c->step, m), V_ADD(r, c->eps)));
    V_MASK_STOREU(M, km, m);
    V_MASK_STOREU(S, km, v);
    V_MASK_STOREU(W, km, w);
    *chk = V_MASK_ADD(*chk, km, *chk, V_ADD(V_SUB(w, w), V_ADD(V_SUB(m, m), V_SUB(v, v))));
}

/* the step for a block of JV vectors of units (D, Wt, Mt, Vt at its first unit) */
static inline __attribute__((always_inline)) void DSFX(swadam_block)(
        const int64_t *cnt, const int32_t *trow, const REAL *tval, int64_t m, int64_t nin,
        const REAL *D, int64_t nout, REAL *Wt, REAL *Mt, REAL *Vt, int64_t ldw,
        const DSFX(sadam_c) *ac, const int JV, VMASK last, VEC *chk) {
    const int64_t nt = (nin + WPT - 1) / WPT;
    for (int64_t t = 0; t < nt; t++) {
        const int64_t k0 = WPT * t, nc = nin - k0 < WPT ? nin - k0 : WPT;
        VEC acc[WPT][SBV];
        DSFX(stile_sums)(trow + t * m, tval + WPT * t * m, cnt[t], D, nout, JV, last, acc);
#pragma GCC unroll 4
        for (int c = 0; c < WPT; c++) {
            if (c >= nc) break;
            const int64_t o = (k0 + c) * ldw;
#pragma GCC unroll 4
            for (int v = 0; v < JV; v++)
                DSFX(sadam)(acc[c][v], Wt + o + LANES * v, Mt + o + LANES * v, Vt + o + LANES * v,
                            v < JV - 1 ? (VMASK)~0u : last, ac, chk);
        }
    }
}

static int DSFX(swadam_avx512)(const int64_t *cnt, const int32_t *trow, const REAL *tval,
                               int64_t m, int64_t nin, const REAL *D, int64_t nout, REAL alpha,
                               REAL *Wt, REAL *Mt, REAL *Vt, int64_t ldw, const double *h,
                               int64_t t, double l2, REAL *G) {
    (void)G;
    DSFX(adam_k) k;
    DSFX(adam_consts)(h, t, l2, &k);
    const DSFX(sadam_c) c = {V_SET1(alpha), V_SET1(k.l2), V_SET1(k.f), V_SET1(k.b1),
                             V_SET1(k.b2), V_SET1(k.c1), V_SET1(k.c2), V_SET1(k.eps),
                             V_SET1(k.step), V_SET1(k.bc2s), k.has_l2, k.decay, k.eps_hat};
    VEC chk = V_ZERO();
#define C(J_) case J_: DSFX(swadam_block)(cnt, trow, tval, m, nin, D + LANES * v0, nout,         \
                                          Wt + LANES * v0, Mt + LANES * v0, Vt + LANES * v0,    \
                                          ldw, &c, J_, last, &chk); break;
    SPARSE_BLOCKS(nout, C(1) C(2) C(3) C(4));
#undef C
    return !V_ALL_ZERO(chk);
}
#undef SPARSE_BLOCKS
