"""libnghttp2 declarations for ``albatross._native`` (see build_native.py for the layout)."""

INCLUDES = """
#include <nghttp2/nghttp2.h>
"""

TYPES = """
typedef struct {
    int age;
    int version_num;
    const char *version_str;
    const char *proto_str;
} nghttp2_info;
"""

FUNCTIONS = """
nghttp2_info *nghttp2_version(int least_version);
"""

CUSTOMIZATIONS = """
"""
