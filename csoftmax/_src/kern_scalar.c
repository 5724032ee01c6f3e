/*
 * kern_scalar.c -- the portable target: kernels.inc over one lane of
 * double (vec_scalar.h). Built everywhere; the baseline of every dispatch.
 */
#include "kernels.h"
#include "vec_scalar.h"
#include "kernels.inc"
#include "weighted.inc"
