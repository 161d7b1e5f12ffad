/* npy.c - the header of a NumPy .npy file (format 1.0, 2.0 and 3.0), read
 * from bytes already in memory (a mapped file), checked against the bytes
 * that follow it: a header whose shape or dtype disagrees with the data is
 * refused, so the caller may index the data without further checks.
 *
 * The header is a Python dict literal, not JSON, so it is parsed here:
 * only the three keys NumPy writes, with the value types it writes. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dgm/io.h"

#define NPY_MAGIC "\x93NUMPY"
/* A cap on the header dict: NumPy itself caps 1.0 headers at 64 KiB. */
#define NPY_MAX_HEADER (1u << 20)

typedef struct npy_parser {
    const char *p, *end;
    const char *name; /* the file, for messages */
} npy_parser;

static void skip_ws(npy_parser *ps)
{
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' ||
                               *ps->p == '\n' || *ps->p == '\r'))
        ps->p++;
}

static int bad(const npy_parser *ps, const char *what)
{
    return dgm_error(DGM_EFORMAT, "%s: malformed .npy header: %s", ps->name,
                     what);
}

/* A quoted string ('x' or "x", no escapes: NumPy never writes them in the
 * three values it uses) into buf. */
static int parse_str(npy_parser *ps, char *buf, size_t cap)
{
    skip_ws(ps);
    if (ps->p >= ps->end || (*ps->p != '\'' && *ps->p != '"'))
        return bad(ps, "expected a quoted string");
    char q = *ps->p++;
    size_t n = 0;
    while (ps->p < ps->end && *ps->p != q) {
        if (*ps->p == '\\' || n + 1 >= cap)
            return bad(ps, "string too long or escaped");
        buf[n++] = *ps->p++;
    }
    if (ps->p >= ps->end)
        return bad(ps, "unterminated string");
    ps->p++;
    buf[n] = '\0';
    return 0;
}

static bool eat(npy_parser *ps, char c)
{
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == c) {
        ps->p++;
        return true;
    }
    return false;
}

/* (d0, d1, ...) with an optional trailing comma; () is a scalar. */
static int parse_shape(npy_parser *ps, dgm_npy_header *h)
{
    if (!eat(ps, '('))
        return bad(ps, "shape is not a tuple");
    h->ndim = 0;
    while (!eat(ps, ')')) {
        skip_ws(ps);
        if (h->ndim >= DGM_MAX_DIMS)
            return dgm_error(DGM_EFORMAT,
                             "%s: .npy shape has more than %d dimensions",
                             ps->name, DGM_MAX_DIMS);
        int64_t v = 0;
        int digits = 0;
        while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
            if (v > (INT64_MAX - 9) / 10)
                return bad(ps, "dimension too large");
            v = v * 10 + (*ps->p++ - '0');
            digits++;
        }
        if (ps->p < ps->end && *ps->p == 'L') /* Python 2 longs */
            ps->p++;
        if (!digits)
            return bad(ps, "dimension is not a non-negative integer");
        h->shape[h->ndim++] = v;
        if (!eat(ps, ',')) {
            if (!eat(ps, ')'))
                return bad(ps, "expected ',' or ')' in shape");
            break;
        }
    }
    return 0;
}

static int parse_dict(npy_parser *ps, dgm_npy_header *h, char *descr,
                      size_t cap)
{
    bool have_descr = false, have_order = false, have_shape = false;
    if (!eat(ps, '{'))
        return bad(ps, "not a dict");
    while (!eat(ps, '}')) {
        char key[32];
        int rc = parse_str(ps, key, sizeof key);
        if (rc < 0)
            return rc;
        if (!eat(ps, ':'))
            return bad(ps, "expected ':'");
        if (!strcmp(key, "descr") && !have_descr) {
            if ((rc = parse_str(ps, descr, cap)) < 0)
                return rc;
            have_descr = true;
        } else if (!strcmp(key, "fortran_order") && !have_order) {
            skip_ws(ps);
            size_t left = (size_t)(ps->end - ps->p);
            if (left >= 4 && !memcmp(ps->p, "True", 4)) {
                h->fortran_order = true;
                ps->p += 4;
            } else if (left >= 5 && !memcmp(ps->p, "False", 5)) {
                h->fortran_order = false;
                ps->p += 5;
            } else
                return bad(ps, "fortran_order is not True or False");
            have_order = true;
        } else if (!strcmp(key, "shape") && !have_shape) {
            if ((rc = parse_shape(ps, h)) < 0)
                return rc;
            have_shape = true;
        } else
            return dgm_error(DGM_EFORMAT,
                             "%s: .npy header key '%s' unknown or repeated",
                             ps->name, key);
        if (!eat(ps, ',')) {
            if (!eat(ps, '}'))
                return bad(ps, "expected ',' or '}'");
            break;
        }
    }
    if (!have_descr || !have_order || !have_shape)
        return dgm_error(DGM_EFORMAT, "%s: .npy header lacks '%s'", ps->name,
                         !have_descr   ? "descr"
                         : !have_order ? "fortran_order"
                                       : "shape");
    return 0;
}

int dgm_npy_parse(const void *data, size_t len, const char *name,
                  dgm_npy_header *out)
{
    if (!data || !out)
        return dgm_error(DGM_EINVAL, "npy_parse: NULL argument");
    name = name ? name : "(npy)";
    memset(out, 0, sizeof *out);
    const unsigned char *b = data;
    if (len < 10 || memcmp(b, NPY_MAGIC, 6) != 0)
        return dgm_error(DGM_EFORMAT,
                         "%s: not a .npy file (no \\x93NUMPY magic)", name);
    int major = b[6];
    uint64_t hlen, pre;
    if (major == 1) {
        hlen = (uint64_t)b[8] | (uint64_t)b[9] << 8;
        pre = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12)
            return dgm_error(DGM_EFORMAT,
                             "%s: .npy file truncated in its "
                             "header length",
                             name);
        hlen = (uint64_t)b[8] | (uint64_t)b[9] << 8 | (uint64_t)b[10] << 16 |
               (uint64_t)b[11] << 24;
        pre = 12;
    } else
        return dgm_error(DGM_EFORMAT,
                         "%s: .npy format %d.%d not supported "
                         "(1.0, 2.0, 3.0 are)",
                         name, major, b[7]);
    if (hlen > NPY_MAX_HEADER || pre + hlen > len)
        return dgm_error(DGM_EFORMAT,
                         "%s: .npy header of %llu bytes runs past the file "
                         "(%zu bytes) or the %u-byte cap",
                         name, (unsigned long long)hlen, len, NPY_MAX_HEADER);
    npy_parser ps = {(const char *)b + pre, (const char *)b + pre + hlen, name};
    char descr[16];
    int rc = parse_dict(&ps, out, descr, sizeof descr);
    if (rc < 0)
        return rc;
    if (out->fortran_order)
        return dgm_error(DGM_EFORMAT,
                         "%s: .npy array is in Fortran order; save it C-order "
                         "(numpy.ascontiguousarray)",
                         name);
    static const struct {
        const char *descr;
        dgm_dtype dtype;
    } types[] = {{"|u1", DGM_U8},  {"<u1", DGM_U8},  {"u1", DGM_U8},
                 {"<f4", DGM_F32}, {"<i4", DGM_I32}, {"<i8", DGM_I64},
                 {"<f8", DGM_F64}};
    bool found = false;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(descr, types[i].descr)) {
            out->dtype = types[i].dtype;
            found = true;
        }
    if (!found)
        return dgm_error(DGM_EFORMAT,
                         "%s: .npy dtype '%s' not supported (little-endian "
                         "uint8, int32, int64, float32, float64 are)",
                         name, descr);
    /* Bytes the shape claims, overflow-checked, against the bytes there. */
    uint64_t bytes = dgm_dtype_size(out->dtype);
    for (int d = 0; d < out->ndim; d++) {
        uint64_t v = (uint64_t)out->shape[d];
        if (v && bytes > UINT64_MAX / v) {
            bytes = UINT64_MAX;
            break;
        }
        bytes *= v;
    }
    out->data_offset = pre + hlen;
    out->data_bytes = bytes;
    if (bytes != len - out->data_offset) {
        char s[DGM_MAX_DIMS * 22 + 4];
        return dgm_error(DGM_EFORMAT,
                         "%s: .npy header says %s %s (%llu bytes) but the "
                         "file holds %llu data bytes",
                         name,
                         dgm_shape_str(out->ndim, out->shape, s, sizeof s),
                         descr, (unsigned long long)bytes,
                         (unsigned long long)(len - out->data_offset));
    }
    return 0;
}
