/*
 * vec_lanes.h -- element-by-element moves between memory (float or double,
 * any stride) and an array of doubles: the fallback of the SIMD vocabularies
 * for tails and strided data, written once.
 */
#ifndef CSM_VEC_LANES_H
#define CSM_VEC_LANES_H

#include <stddef.h>

/* t[l] = p[l * s] (widened from float if f32) for l < n */
static inline void cv_gather_n(double *t, const void *p, ptrdiff_t s, size_t n, int f32)
{
    for (size_t l = 0; l < n; l++)
        t[l] = f32 ? (double)((const float *)p)[(ptrdiff_t)l * s]
                   : ((const double *)p)[(ptrdiff_t)l * s];
}

/* p[l * s] = t[l] (rounded to float if f32) for l < n */
static inline void cv_scatter_n(void *p, ptrdiff_t s, const double *t, size_t n, int f32)
{
    for (size_t l = 0; l < n; l++) {
        if (f32)
            ((float *)p)[(ptrdiff_t)l * s] = (float)t[l];
        else
            ((double *)p)[(ptrdiff_t)l * s] = t[l];
    }
}

#endif
