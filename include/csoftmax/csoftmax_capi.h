/*
 * csoftmax_capi.h -- the csoftmax kernels from another Python C extension.
 *
 * The installed Python package exports its function table (csm_api, see
 * csoftmax.h) as the capsule csoftmax._core._C_API. This header fetches it:
 *
 *     #include "csoftmax/csoftmax_capi.h"   // include dir: csoftmax.get_include()
 *
 *     PyMODINIT_FUNC PyInit_mymod(void)
 *     {
 *         if (csm_import() < 0)             // ImportError set
 *             return NULL;
 *         return PyModule_Create(&mymod_def);
 *     }
 *
 *     // later, with or without the GIL:
 *     csm_layout L = csm_rows(rows, n);
 *     int rc = csm_API->softmax_f64(x, y, &L);   // CSM_OK
 *
 * Nothing is linked against csoftmax: the extension calls through the table,
 * whose members are the same dispatched entry points that csoftmax.softmax
 * and friends use (same instruction set, bitwise identical results).
 *
 * This is the only csoftmax header that includes Python.h (before anything
 * else, as Python requires: define PY_SSIZE_T_CLEAN, if you use it, before
 * including this header). Usable from C99 and C++.
 *
 * One table pointer per translation unit
 * ---------------------------------------
 * csm_API and csm_import() are `static`, as NumPy's PyArray_API and
 * import_array() are by default: every .c file that includes this header has
 * its own csm_API, NULL until csm_import() succeeds in that file. In an
 * extension made of several .c files, either call csm_import() in each file
 * that calls through csm_API (from the module init, e.g. through one small
 * init function per file; a second import is cheap: the module is cached),
 * or call it once and hand the pointer to the other files yourself. The
 * table is static data of csoftmax._core, valid for the rest of the process
 * once imported (CPython never unloads extension modules).
 */
#ifndef CSOFTMAX_CAPI_H
#define CSOFTMAX_CAPI_H

#include <Python.h>

#include "csoftmax.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Full name of the capsule holding the table: attribute _C_API of the
 * module csoftmax._core (the form PyCapsule_Import expects). */
#define CSM_CAPSULE_NAME "csoftmax._core._C_API"

/* Returned by wrappers over the table (the Cython ones in csoftmax/__init__.pxd)
 * when it has not been imported: csm_import() never succeeded in that unit.
 * Never returned by the library itself (its codes count down from -1). */
#define CSM_ENOAPI (-100)

#if defined(__GNUC__) || defined(__clang__)
#define CSM_CAPI_UNUSED __attribute__((unused))
#else
#define CSM_CAPI_UNUSED
#endif

/* The library's function table, once csm_import() has succeeded in this
 * translation unit; NULL before. Its members may be called without the GIL
 * (csm_API->softmax_f32(x, y, &L), ...): see csoftmax.h for their contract. */
static const csm_api *csm_API CSM_CAPI_UNUSED = NULL;

/* Imports csoftmax._core and takes its function table into csm_API.
 * Call it with the GIL held, typically from the module init function.
 * Returns 0 on success. Returns -1 with ImportError set, csm_API unchanged,
 * when:
 *   - csoftmax cannot be imported, or has no capsule of that name (the
 *     original error is the ImportError's __cause__);
 *   - the library's abi_version differs from the CSM_ABI_VERSION of the
 *     csoftmax.h this file was compiled against (the message names both:
 *     rebuild the extension against the installed csoftmax);
 *   - the library's table is smaller than sizeof(csm_api) of that header
 *     (the extension was built against a newer csoftmax than the one
 *     installed: the message names both sizes and versions).
 * A table larger than this header's csm_api is fine: members are only ever
 * appended, and this unit does not see the new ones. */
static CSM_CAPI_UNUSED int csm_import(void)
{
    const csm_api *api;
    PyObject *mod, *ver;
    const char *lib_version = "unknown";
    int rc = -1;

    api = (const csm_api *)PyCapsule_Import(CSM_CAPSULE_NAME, 0);
    if (api == NULL) {
        PyObject *type, *value, *tb, *value2;
        if (PyErr_ExceptionMatches(PyExc_ImportError))
            return -1; /* csoftmax itself is missing: already clear */
        /* an AttributeError (no capsule: csoftmax too old) or a wrong name */
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        PyErr_Format(PyExc_ImportError,
                     "csoftmax C-API: cannot get the function table, capsule %s "
                     "(this extension needs csoftmax >= %s, built against ABI version %d)",
                     CSM_CAPSULE_NAME, CSM_VERSION_STRING, (int)CSM_ABI_VERSION);
        if (value != NULL) {
            PyObject *t2, *tb2;
            PyErr_Fetch(&t2, &value2, &tb2);
            PyErr_NormalizeException(&t2, &value2, &tb2);
            PyException_SetCause(value2, value); /* steals value */
            PyErr_Restore(t2, value2, tb2);
        }
        Py_XDECREF(type);
        Py_XDECREF(tb);
        return -1;
    }

    /* the library's version string, for the messages below */
    mod = PyImport_ImportModule("csoftmax._core");
    ver = mod != NULL ? PyObject_GetAttrString(mod, "C_VERSION") : NULL;
    if (ver != NULL && PyUnicode_Check(ver)) {
        const char *v = PyUnicode_AsUTF8(ver); /* valid while ver lives */
        if (v != NULL)
            lib_version = v;
    }
    PyErr_Clear(); /* the version is only for the messages: never an error */

    if (api->abi_version != (uint32_t)CSM_ABI_VERSION) {
        PyErr_Format(PyExc_ImportError,
                     "csoftmax C-API: this extension was compiled against csoftmax ABI version "
                     "%d (csoftmax.h %s), but the installed csoftmax %s provides ABI version %u; "
                     "rebuild the extension against the installed csoftmax "
                     "(include dir: csoftmax.get_include())",
                     (int)CSM_ABI_VERSION, CSM_VERSION_STRING, lib_version,
                     (unsigned)api->abi_version);
    } else if (api->struct_size < (uint32_t)sizeof(csm_api)) {
        PyErr_Format(PyExc_ImportError,
                     "csoftmax C-API: the installed csoftmax %s exports a function table of %u "
                     "bytes, smaller than the %u bytes of the csoftmax.h %s this extension was "
                     "compiled against (ABI version %d): upgrade csoftmax, or rebuild the "
                     "extension against the installed one (csoftmax.get_include())",
                     lib_version, (unsigned)api->struct_size, (unsigned)sizeof(csm_api),
                     CSM_VERSION_STRING, (int)CSM_ABI_VERSION);
    } else {
        csm_API = api;
        rc = 0;
    }
    Py_XDECREF(ver);
    Py_XDECREF(mod);
    return rc;
}

#ifdef __cplusplus
}
#endif
#endif /* CSOFTMAX_CAPI_H */
