/* Instantiates vg_kernels_impl.h for double (_d) and float (_f) under the ISA suffix
 * VG_ISA (e.g. _base, _avx2, _avx512): included by vg_kernels.c once per instruction set. */
#define VG_CAT3_(a, b, c) a##b##c
#define VG_CAT3(a, b, c) VG_CAT3_(a, b, c)

#define REAL double
#define VG_UINT uint64_t
#define VG_SINT int64_t
#define VG_LN2_HI 6.93147180369123816490e-01
#define VG_LN2_LO 1.90821492927058770002e-10
#define VG_EXP_MAGIC 0x1.8p52
#define VG_EXP_LO 745.0
#define VG_EXP_BIAS 1023
#define VG_MANT_BITS 52
#define VG_EXP_POLY VG_POLY13
#define VG_ATANH_SERIES VG_ATANH17
#define VG_CHECK_IN_LOOP 0
#define VG_FLOAT_SUMSQ 0
#define SFX(name) VG_CAT3(name, _d, VG_ISA)
#define EXP exp
#define LOG1P log1p
#define EXPM1 expm1
#define SQRT sqrt
#define TANH tanh
#define FABS fabs
#include "vg_kernels_impl.h"
#include "vg_kernels_undef.h"

#define REAL float
#define VG_UINT uint32_t
#define VG_SINT int32_t
#define VG_LN2_HI 0.693145751953125f
#define VG_LN2_LO 1.428606765330187045e-06f
#define VG_EXP_MAGIC 0x1.8p23f
#define VG_EXP_LO 103.0f
#define VG_EXP_BIAS 127
#define VG_MANT_BITS 23
#define VG_EXP_POLY VG_POLY7
#define VG_ATANH_SERIES VG_ATANH8
#define VG_CHECK_IN_LOOP 1
#define VG_FLOAT_SUMSQ 1
#define SFX(name) VG_CAT3(name, _f, VG_ISA)
#define EXP expf
#define LOG1P log1pf
#define EXPM1 expm1f
#define SQRT sqrtf
#define TANH tanhf
#define FABS fabsf
#include "vg_kernels_impl.h"
#include "vg_kernels_undef.h"
