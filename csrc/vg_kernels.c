/* Instantiates the kernels of vg_kernels_impl.h for double (_d) and float (_f). */
#include <math.h>
#include <string.h>
#include "vg_kernels.h"

/* Counter-based generator: Philox-2x32 with 10 rounds, keyed by the seed. A pure function of
 * (seed, counter), so any element's random number can be regenerated without state. */
uint64_t vg_philox_u64(uint64_t seed, uint64_t counter) {
    uint32_t x0 = (uint32_t)counter, x1 = (uint32_t)(counter >> 32);
    uint32_t k = (uint32_t)seed ^ (uint32_t)(seed >> 32) * 0x9E3779B9u;
    for (int r = 0; r < 10; r++) {
        uint64_t prod = (uint64_t)0xD256D193u * x0;
        uint32_t hi = (uint32_t)(prod >> 32), lo = (uint32_t)prod;
        x0 = hi ^ k ^ x1;
        x1 = lo;
        k += 0x9E3779B9u;
    }
    return ((uint64_t)x1 << 32) | x0;
}

#define REAL double
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

#define REAL float
#define SFX(name) name##_f
#define EXP expf
#define LOG1P log1pf
#define EXPM1 expm1f
#define SQRT sqrtf
#define TANH tanhf
#define FABS fabsf
#include "vg_kernels_impl.h"
