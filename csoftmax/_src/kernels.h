/*
 * kernels.h -- private: the per-instruction-set kernels (kern_<isa>.c) that
 * dispatch.c puts behind the public csm_<op>_<dtype> entry points.
 */
#ifndef CSM_KERNELS_H
#define CSM_KERNELS_H

#include "csoftmax/csoftmax.h"

#if defined(__GNUC__) && !defined(_WIN32)
#define CSM_HIDDEN __attribute__((visibility("hidden")))
#else
#define CSM_HIDDEN
#endif

/* (x, y, L, opt, threads): opt NULL or checked by the entry point */
#define CSM_DECLARE_ISA(isa)                                                                  \
    CSM_HIDDEN int csm_softmax_f32_##isa(const float *, float *, const csm_layout *,             \
                                         const csm_options *, int);                            \
    CSM_HIDDEN int csm_softmax_f64_##isa(const double *, double *, const csm_layout *,           \
                                         const csm_options *, int);                            \
    CSM_HIDDEN int csm_log_softmax_f32_##isa(const float *, float *, const csm_layout *,         \
                                             const csm_options *, int);                        \
    CSM_HIDDEN int csm_log_softmax_f64_##isa(const double *, double *, const csm_layout *,       \
                                             const csm_options *, int);                        \
    CSM_HIDDEN int csm_logsumexp_f32_##isa(const float *, float *, const csm_layout *,           \
                                           const csm_options *, int);                          \
    CSM_HIDDEN int csm_logsumexp_f64_##isa(const double *, double *, const csm_layout *,         \
                                           const csm_options *, int);                          \
    CSM_HIDDEN void csm_exp_nonpos_f64_##isa(const double *, double *, size_t);

CSM_DECLARE_ISA(scalar)
CSM_DECLARE_ISA(avx2)
CSM_DECLARE_ISA(avx512)
CSM_DECLARE_ISA(neon)

/* the training kernels of train.inc (issue 8): (x, dy, dx, L, threads) */
#define CSM_DECLARE_TRAIN_ISA(isa)                                                            \
    CSM_HIDDEN int csm_softmax_backward_f32_##isa(const float *, const csm_operand *, float *,  \
                                                  const csm_layout *, int);                   \
    CSM_HIDDEN int csm_softmax_backward_f64_##isa(const double *, const csm_operand *,         \
                                                  double *, const csm_layout *, int);         \
    CSM_HIDDEN int csm_log_softmax_backward_f32_##isa(const float *, const csm_operand *,      \
                                                      float *, const csm_layout *, int);      \
    CSM_HIDDEN int csm_log_softmax_backward_f64_##isa(const double *, const csm_operand *,     \
                                                      double *, const csm_layout *, int);       \
    CSM_HIDDEN int csm_cross_entropy_f32_##isa(const float *, float *, const csm_layout *,     \
                                               const csm_ce_args *, double *, int);            \
    CSM_HIDDEN int csm_cross_entropy_f64_##isa(const double *, double *, const csm_layout *,   \
                                               const csm_ce_args *, double *, int);

CSM_DECLARE_TRAIN_ISA(scalar)
CSM_DECLARE_TRAIN_ISA(avx2)
CSM_DECLARE_TRAIN_ISA(avx512)
CSM_DECLARE_TRAIN_ISA(neon)
/* weights, signs and streaming state (weighted.inc; issue 8, parts 5, 6):
 * (x, b, y, sign, L, threads) and (x, m, hi, lo, L, threads) */
#define CSM_DECLARE_WEIGHTED_ISA(isa)                                                         \
    CSM_HIDDEN int csm_logsumexp_weighted_f32_##isa(const float *, const csm_operand *,        \
                                                    float *, float *, const csm_layout *, int); \
    CSM_HIDDEN int csm_logsumexp_weighted_f64_##isa(const double *, const csm_operand *,       \
                                                    double *, double *, const csm_layout *,    \
                                                    int);                                      \
    CSM_HIDDEN int csm_logsumexp_state_f32_##isa(const float *, double *, double *, double *,  \
                                                 const csm_layout *, int);                     \
    CSM_HIDDEN int csm_logsumexp_state_f64_##isa(const double *, double *, double *, double *, \
                                                 const csm_layout *, int);

CSM_DECLARE_WEIGHTED_ISA(scalar)
CSM_DECLARE_WEIGHTED_ISA(avx2)
CSM_DECLARE_WEIGHTED_ISA(avx512)
CSM_DECLARE_WEIGHTED_ISA(neon)

/* Records, for the calling thread, the size of the largest thread team
 * that the kernel call it just made ran (1: serial): csm_last_team(). */
CSM_HIDDEN void csm_note_team(int team);
/* test hook (not public API): that size for the calling thread's last call */
int csm_last_team(void);

/* test hook (not public API): the active target's exp on x <= 0 */
void csm_exp_nonpos_f64(const double *x, double *y, size_t n);

#endif
