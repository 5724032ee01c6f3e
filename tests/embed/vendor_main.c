/*
 * vendor_main.c -- a plain C99 program on the vendored csoftmax core: no
 * Python anywhere (README "Use from C / Cython", recipe 3; built and run by
 * tests/test_capi.py):
 *
 *   cc -std=c99 -O2 -ffp-contract=off -Iinclude vendor_main.c SRC -lm
 *
 * where SRC is every .c file of csoftmax/_src (the README has the line).
 *
 * Runs the README's example (softmax of [13, 31, 5]), then calls the six
 * kernels on two rows of three values, directly and through csm_get_api(),
 * and prints every result as a hexadecimal float:
 *     <op>_<dtype> <row> <index> <value>      ("example" for the first)
 * (the test compares them with exact values from mpmath). Prints the active
 * instruction set, then "ok"; exit status 0 only if every call returned
 * CSM_OK, the table is the library's own and gives the same bits.
 */
#include <stdio.h>
#include <string.h>

#include "csoftmax/csoftmax.h"

#define ROWS 2
#define N 3

static const double X[ROWS][N] = {{13.0, 31.0, 5.0}, {0.0, -40.0, 1e-3}};

static int failures;

static void check(int ok, const char *what)
{
    if (!ok) {
        printf("FAILED: %s\n", what);
        failures++;
    }
}

static void print_rows(const char *name, const double *y, size_t rows, size_t per_row)
{
    for (size_t r = 0; r < rows; r++)
        for (size_t i = 0; i < per_row; i++)
            printf("%s %zu %zu %a\n", name, r, i, y[r * per_row + i]);
}

/* the README's example */
static int example(void)
{
    double x[3] = {13, 31, 5}, y[3];
    csm_layout L = csm_rows(1, 3);          /* 1 row of 3 contiguous elements */
    csm_init();                             /* optional: picks the best instruction set */
    int rc = csm_softmax_f64(x, y, &L);     /* CSM_OK */
    print_rows("example", y, 1, 3);
    return rc;
}

int main(void)
{
    const csm_api *api = csm_get_api();
    csm_layout L = csm_rows(ROWS, N);           /* softmax, log_softmax */
    csm_layout R = csm_rows_reduced(ROWS, N);   /* logsumexp: one value per row */
    double xd[ROWS * N], yd[ROWS * N], td[ROWS * N], pd[ROWS * N];
    float xf[ROWS * N], yf[ROWS * N], tf[ROWS * N];

    check(example() == CSM_OK, "example");
    for (size_t i = 0; i < ROWS * N; i++) {
        xd[i] = X[i / N][i % N];
        xf[i] = (float)xd[i];
    }

    /* the table: this library's, filled with the public entry points */
    check(api != NULL && api->abi_version == CSM_ABI_VERSION, "abi_version");
    check(api->struct_size == sizeof(csm_api), "struct_size");
    check(api->softmax_f32 == csm_softmax_f32 && api->softmax_f64 == csm_softmax_f64 &&
              api->log_softmax_f32 == csm_log_softmax_f32 &&
              api->log_softmax_f64 == csm_log_softmax_f64 &&
              api->logsumexp_f32 == csm_logsumexp_f32 && api->logsumexp_f64 == csm_logsumexp_f64,
          "table members are the public entry points");
    check(api->active_isa() == csm_active_isa(), "active_isa");
    printf("isa %s\n", api->isa_name(api->active_isa()));

#define RUN(op, T, x, y, t, layout, per_row)                                                    \
    do {                                                                                      \
        check(csm_##op##_##T(x, y, &layout) == CSM_OK, #op "_" #T);                          \
        check(api->op##_##T(x, t, &layout) == CSM_OK, "api " #op "_" #T);                    \
        check(memcmp(y, t, ROWS * (per_row) * sizeof *(y)) == 0, "api bits " #op "_" #T);     \
        for (size_t i = 0; i < ROWS * (per_row); i++)                                         \
            pd[i] = (double)(y)[i];                                                           \
        print_rows(#op "_" #T, pd, ROWS, per_row);                                            \
    } while (0)

    RUN(softmax, f64, xd, yd, td, L, N);
    RUN(log_softmax, f64, xd, yd, td, L, N);
    RUN(logsumexp, f64, xd, yd, td, R, 1);
    RUN(softmax, f32, xf, yf, tf, L, N);
    RUN(log_softmax, f32, xf, yf, tf, L, N);
    RUN(logsumexp, f32, xf, yf, tf, R, 1);

    /* in place, and the documented refusal of a NULL pointer */
    memcpy(td, xd, sizeof xd);
    check(csm_softmax_f64(td, td, &L) == CSM_OK, "in place");
    check(csm_softmax_f64(xd, yd, &L) == CSM_OK && memcmp(td, yd, sizeof yd) == 0,
          "in place gives the same bits");
    check(csm_softmax_f64(NULL, yd, &L) == CSM_EINVAL, "NULL x -> CSM_EINVAL");

    if (failures)
        return 1;
    printf("ok\n");
    return 0;
}
