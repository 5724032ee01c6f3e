/*
 * exp_coeffs.h -- constants of the exp used by every instruction set.
 *
 * exp(d) for d in [-746, 0]: d = k*ln2 + r with |r| <= ln2/2 (Cody-Waite,
 * LN2_HI has 11 trailing zero bits so k*LN2_HI is exact for |k| <= 1100),
 * exp(r) = 1 + r + r^2 * Q(r) with Q of degree 10. The coefficients are a
 * Chebyshev fit of (exp(r) - 1 - r) / r^2 on [-1.01 ln2/2, 1.01 ln2/2]
 * (mpmath.chebyfit, 50 digits), rounded to double: relative error of the
 * polynomial with these double coefficients <= 2^-61.2 (re-derived and
 * checked by tests/test_exp_coeffs.py).
 */
#ifndef CSM_EXP_COEFFS_H
#define CSM_EXP_COEFFS_H

#define CSM_LOG2E 1.4426950408889634         /* 1/ln2 */
#define CSM_LN2_HI 0.693147180559890330187045037746429443359375 /* 0x1.62e42fefa3800p-1 */
#define CSM_LN2_LO 5.4979230187083711747124716125134360e-14 /* ln2 - LN2_HI */
#define CSM_EXP_MIN (-746.0) /* exp(d) < 2^-1075 below: rounds to +0 */
/* 1.5 * 2^52: adding it rounds a double in [-2^51, 2^51] to an integer held
 * in the low mantissa bits. */
#define CSM_SHIFTER 6755399441055744.0

#define CSM_Q10 2.0915442297780116e-09
#define CSM_Q9 2.5106274733573296e-08
#define CSM_Q8 2.75572718102198e-07
#define CSM_Q7 2.755725283351691e-06
#define CSM_Q6 2.4801587327007187e-05
#define CSM_Q5 0.00019841269876864356
#define CSM_Q4 0.0013888888888883327
#define CSM_Q3 0.008333333333325544
#define CSM_Q2 0.04166666666666667
#define CSM_Q1 0.1666666666666667
#define CSM_Q0 0.5

/* float32 data (computed in double, rounded to 24 bits): exp(t) = P(t) of
 * degree 7 on the same interval, Chebyshev fit, relative error <= 2^-33.9
 * (2^-10 of a float32 ULP); no residual terms are carried. */
#define CSM_P7 0.0001990890397190586
#define CSM_P6 0.0013949780330796578
#define CSM_P5 0.008333281514799859
#define CSM_P4 0.04166620009206286
#define CSM_P3 0.16666666793674462
#define CSM_P2 0.5000000114362718
#define CSM_P1 0.9999999999951367
#define CSM_P0 0.9999999999562088
#define CSM_EXP32_MIN (-700.0) /* float32 data: exp below is 0 after rounding */

#endif
