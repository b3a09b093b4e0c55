"""HTTP/1.1 field-block scanner for ``albatross._native`` (see build_native.py for the layout).

The C lives in ``alb_http1.c`` (its header comment says what the scan accepts and reports).
``albatross.http1`` uses it on the request path's fast path: one call per request head and
one per response head instead of a Python call per field.
"""

INCLUDES = '#include "alb_http1.c"'

TYPES = """
static const int ALB_H1_OK;
static const int ALB_H1_GENERAL;
static const int ALB_H1_KINDS;
"""

FUNCTIONS = """
int alb_h1_scan_request(const uint8_t *blk, size_t n, uint8_t *kept, uint32_t *out);
int alb_h1_scan_response(const uint8_t *blk, size_t n, uint8_t *kept, uint32_t *out);
"""

CUSTOMIZATIONS = ""
