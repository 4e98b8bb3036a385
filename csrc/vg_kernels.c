/* Instantiates the kernels of vg_kernels_impl.h for double (_d) and float (_f). */
#include <math.h>
#include <string.h>
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

#define REAL double
#define VG_UINT uint64_t
#define VG_LN2_HI 6.93147180369123816490e-01
#define VG_LN2_LO 1.90821492927058770002e-10
#define VG_EXP_MAGIC 0x1.8p52
#define VG_EXP_MAX 708.0
#define VG_EXP_BIAS 1023
#define VG_MANT_BITS 52
#define VG_EXP_POLY VG_POLY13
#define VG_CHECK_IN_LOOP 0
#define VG_FLOAT_SUMSQ 0
#define SFX(name) name##_d
#define EXP exp
#define LOG1P log1p
#define EXPM1 expm1
#define SQRT sqrt
#define TANH tanh
#define FABS fabs
#include "vg_kernels_impl.h"
#undef REAL
#undef SFX
#undef EXP
#undef LOG1P
#undef EXPM1
#undef SQRT
#undef TANH
#undef FABS

#undef VG_CHECK_IN_LOOP
#undef VG_UINT
#undef VG_LN2_HI
#undef VG_LN2_LO
#undef VG_EXP_MAGIC
#undef VG_EXP_MAX
#undef VG_EXP_BIAS
#undef VG_MANT_BITS
#undef VG_EXP_POLY
#define VG_UINT uint32_t
#define VG_LN2_HI 0.693145751953125f
#define VG_LN2_LO 1.428606765330187045e-06f
#define VG_EXP_MAGIC 0x1.8p23f
#define VG_EXP_MAX 87.0f
#define VG_EXP_BIAS 127
#define VG_MANT_BITS 23
#define VG_EXP_POLY VG_POLY7
#define REAL float
#undef VG_FLOAT_SUMSQ
#define VG_FLOAT_SUMSQ 1
#define VG_CHECK_IN_LOOP 1
#define SFX(name) name##_f
#define EXP expf
#define LOG1P log1pf
#define EXPM1 expm1f
#define SQRT sqrtf
#define TANH tanhf
#define FABS fabsf
#include "vg_kernels_impl.h"
