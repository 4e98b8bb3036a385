/* Ends one instantiation of vg_kernels_impl.h (see vg_kernels_types.h). */
#undef REAL
#undef VG_UINT
#undef VG_SINT
#undef VG_LN2_HI
#undef VG_LN2_LO
#undef VG_EXP_MAGIC
#undef VG_EXP_LO
#undef VG_EXP_BIAS
#undef VG_MANT_BITS
#undef VG_EXP_POLY
#undef VG_ATANH_SERIES
#undef VG_CHECK_IN_LOOP
#undef VG_FLOAT_SUMSQ
#undef SFX
#undef EXP
#undef LOG1P
#undef EXPM1
#undef SQRT
#undef TANH
#undef FABS

