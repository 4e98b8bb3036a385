/* The per-type macros of Adam's transposing step (R8_*: vectors of 8 elements), undefined after
 * each inclusion of vg_direct_impl.h in vg_direct.c. */
#undef R8
#undef R8_LOADZ
#undef R8_STOREM
#undef R8_STOREU
#undef R8_SET1
#undef R8_ZERO
#undef R8_ADD
#undef R8_SUB
#undef R8_MUL
#undef R8_DIV
#undef R8_SQRT
#undef R8_ALL_ZERO
#undef STORE_T8
