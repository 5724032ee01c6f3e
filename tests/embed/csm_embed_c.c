/*
 * csm_embed_c.c -- a C extension calling csoftmax through its C-API
 * (README "Use from C / Cython", recipe 1; built and tested by tests/test_capi.py).
 *
 *   csm_embed_c.compute(op, x, y) -> status
 *       op: "softmax", "log_softmax" or "logsumexp"; x: a C-contiguous 2-D
 *       float32 or float64 buffer (rows, n); y: a writable C-contiguous buffer
 *       of the same dtype, of x's shape (logsumexp: `rows` elements).
 *       Runs the kernel on the rows of x with the GIL released.
 *   csm_embed_c.api_info() -> dict of the imported table (test helper).
 */
#define PY_SSIZE_T_CLEAN
#include "csoftmax/csoftmax_capi.h"

#include <string.h>

static int gil_held_in_kernel = -1; /* PyGILState_Check() at the kernel call (test) */

/* op `which` (0 softmax, 1 log_softmax, 2 logsumexp) on float32 or float64
 * data: a plain C call through the table, no Python object, no GIL needed */
static int run(int which, int f32, const void *x, void *y, const csm_layout *L)
{
    switch (which * 2 + (f32 ? 0 : 1)) {
    case 0: return csm_API->softmax_f32(x, y, L);
    case 1: return csm_API->softmax_f64(x, y, L);
    case 2: return csm_API->log_softmax_f32(x, y, L);
    case 3: return csm_API->log_softmax_f64(x, y, L);
    case 4: return csm_API->logsumexp_f32(x, y, L);
    default: return csm_API->logsumexp_f64(x, y, L);
    }
}

static PyObject *compute(PyObject *self, PyObject *args)
{
    const char *op;
    PyObject *xo, *yo;
    Py_buffer xb, yb;
    int rc, f32, which;
    csm_layout L;
    (void)self;
    if (!PyArg_ParseTuple(args, "sOO", &op, &xo, &yo))
        return NULL;
    which = !strcmp(op, "softmax") ? 0 : !strcmp(op, "log_softmax") ? 1
                                         : !strcmp(op, "logsumexp")  ? 2 : -1;
    if (which < 0)
        return PyErr_Format(PyExc_ValueError, "unknown op %s", op);
    if (PyObject_GetBuffer(xo, &xb, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return NULL;
    if (PyObject_GetBuffer(yo, &yb, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&xb);
        return NULL;
    }
    f32 = !strcmp(xb.format, "f");
    if (xb.ndim != 2 || (!f32 && strcmp(xb.format, "d")) || strcmp(xb.format, yb.format) ||
        yb.len != (which == 2 ? xb.len / xb.shape[1] : xb.len)) {
        PyBuffer_Release(&xb);
        PyBuffer_Release(&yb);
        return PyErr_Format(PyExc_ValueError, "x: 2-D float32/float64; y: the result's size");
    }
    /* rows of x: (rows, n) C-contiguous; y alike, or one value per row */
    L = which == 2 ? csm_rows_reduced((size_t)xb.shape[0], (size_t)xb.shape[1])
                   : csm_rows((size_t)xb.shape[0], (size_t)xb.shape[1]);
    Py_BEGIN_ALLOW_THREADS
    gil_held_in_kernel = PyGILState_Check();
    rc = run(which, f32, xb.buf, yb.buf, &L);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&xb);
    PyBuffer_Release(&yb);
    return PyLong_FromLong(rc);
}

static PyObject *api_info(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return Py_BuildValue("{s:I,s:I,s:n,s:i,s:K,s:s,s:i}", "abi_version",
                         (unsigned)csm_API->abi_version, "struct_size",
                         (unsigned)csm_API->struct_size, "header_struct_size",
                         (Py_ssize_t)sizeof(csm_api), "header_abi_version", CSM_ABI_VERSION,
                         "table", (unsigned long long)(uintptr_t)csm_API, "active_isa",
                         csm_API->isa_name(csm_API->active_isa()), "gil_held_in_kernel",
                         gil_held_in_kernel);
}

static PyMethodDef methods[] = {
    {"compute", compute, METH_VARARGS, "compute(op, x, y) -> status of the csoftmax kernel"},
    {"api_info", api_info, METH_NOARGS, "the imported csm_api table"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef moddef = {PyModuleDef_HEAD_INIT, "csm_embed_c", NULL, -1, methods,
                                    NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_csm_embed_c(void)
{
    if (csm_import() < 0) /* ImportError: csoftmax missing or incompatible */
        return NULL;
    return PyModule_Create(&moddef);
}
