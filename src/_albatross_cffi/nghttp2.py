"""libnghttp2 declarations and receive-side C helpers for ``albatross._native`` (see build_native.py
for the layout; the session API built on them is in nghttp2_session.py).

The server-side HTTP/2 session is driven entirely from C: no
``extern "Python"`` callback exists, so no Python code runs per frame or per header. The same
callbacks serve the client session of ``albatross probe``; only a client session reports
response header blocks (``ALB_H2_EV_RESPONSE``) and the peer's SETTINGS
(``ALB_H2_EV_SETTINGS``, payload: ``(id, value)`` pairs of native ``uint32_t``).

* **Events.** The C callbacks append fixed 16-byte records (``alb_h2_evhdr``) plus a payload to
  a growable per-session buffer. A header block is collected in a side buffer (``cur``) as
  ``name\0value\0...`` (nghttp2's RFC 9113 validation rejects NUL in fields, so the separator
  is unambiguous) and becomes one record when the block completes; a block cut short by a
  stream error never does. ``alb_h2_recv`` runs ``nghttp2_session_mem_recv`` and publishes
  ``ev_done``; Python parses ``ev[0:ev_done]`` once per call, and the next call drops it.
  Records added while sending (a stream closes once its last frame is written) wait for the
  next ``alb_h2_recv``.
* **Responses.** ``alb_h2_submit_response`` takes the status, a packed header blob
  (``name\\0value\\0...\\0value``, no trailing NUL) and an optional body. Bodies live in a
  per-stream ``alb_h2_stream`` (stream user data and data-provider source) which the read
  callback drains; while it is empty and not ended the callback returns
  ``NGHTTP2_ERR_DEFERRED`` and ``alb_h2_send_data`` resumes it. Stream contexts are freed in
  ``on_stream_close`` and, for anything left, after ``nghttp2_session_del``.
* **Output.** ``alb_h2_drain`` loops ``nghttp2_session_mem_send`` into one buffer, bounded by
  the caller's limit.
* **Budgets.** RST_STREAM frames received plus streams the peer made invalid count against
  ``max_resets`` (CVE-2023-44487 rapid reset and its relatives); CONTINUATION frames per header
  block are capped with nghttp2's own option where the installed library has it (Debian
  backports it to 1.52, hence the header probe below) and with our own counter otherwise. Both
  tear the connection down with GOAWAY(ENHANCE_YOUR_CALM). After ``max_requests`` requests a
  graceful GOAWAY is queued and later streams are refused with REFUSED_STREAM.

Callback return values follow nghttp2: 0 is success, ``NGHTTP2_ERR_CALLBACK_FAILURE`` is fatal
for the session (``alb_h2_recv`` then queues GOAWAY and marks the session dead), and
``NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE`` from header callbacks resets only that stream.
"""

import os


def _probe_header(symbol: str) -> bool:
    """True if the installed nghttp2.h declares ``symbol`` (distributions backport security
    options without raising NGHTTP2_VERSION_NUM, e.g. Debian 12's 1.52.0-1+deb12u2)."""
    dirs = [d for var in ("CPATH", "C_INCLUDE_PATH") for d in os.environ.get(var, "").split(os.pathsep) if d]
    dirs += ["/usr/local/include", "/usr/include"]
    for d in dirs:
        try:
            with open(os.path.join(d, "nghttp2", "nghttp2.h"), encoding="utf-8", errors="replace") as f:
                return symbol + "(" in f.read()
        except OSError:
            continue
    return False


_PROBES = {
    "ALB_H2_PROBED_MAX_CONTINUATIONS": "nghttp2_option_set_max_continuations",
    "ALB_H2_PROBED_RESET_RATELIM": "nghttp2_option_set_stream_reset_rate_limit",
}

INCLUDES = "".join(f"#define {macro} 1\n" for macro, sym in _PROBES.items() if _probe_header(sym)) + """
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <nghttp2/nghttp2.h>
"""

TYPES = """
typedef struct {
    int age;
    int version_num;
    const char *version_str;
    const char *proto_str;
} nghttp2_info;

static const int NGHTTP2_VERSION_NUM;
static const int NGHTTP2_NO_ERROR;
static const int NGHTTP2_PROTOCOL_ERROR;
static const int NGHTTP2_INTERNAL_ERROR;
static const int NGHTTP2_REFUSED_STREAM;
static const int NGHTTP2_CANCEL;
static const int NGHTTP2_ENHANCE_YOUR_CALM;
static const int NGHTTP2_ERR_INVALID_ARGUMENT;
static const int NGHTTP2_ERR_INVALID_STATE;
static const int NGHTTP2_ERR_CALLBACK_FAILURE;
static const int NGHTTP2_ERR_FLOODED;

static const int ALB_H2_EV_REQUEST;
static const int ALB_H2_EV_DATA;
static const int ALB_H2_EV_TRAILERS;
static const int ALB_H2_EV_END_STREAM;
static const int ALB_H2_EV_CLOSED;
static const int ALB_H2_EV_RESET;
static const int ALB_H2_EV_GOAWAY;
static const int ALB_H2_EV_RESPONSE;
static const int ALB_H2_EV_SETTINGS;
static const int ALB_H2_HAVE_MAX_CONTINUATIONS;
static const int ALB_H2_HAVE_RESET_RATELIM;

typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
} alb_h2_buf;

typedef struct {
    uint32_t max_concurrent_streams;
    uint32_t initial_window_size;
    uint32_t connection_window_size;
    uint32_t max_header_list_size;
    uint32_t max_requests;
    uint32_t max_resets;
    uint32_t max_continuations;
} alb_h2_config;

typedef struct {
    alb_h2_buf ev;
    size_t ev_done;
    alb_h2_buf out;
    uint32_t nrequests;
    uint32_t nstrikes;
    int calm;
    int dead;
    ...;
} alb_h2_session;
"""

FUNCTIONS = """
nghttp2_info *nghttp2_version(int least_version);
const char *nghttp2_strerror(int lib_error_code);
int nghttp2_is_fatal(int lib_error_code);

"""

CUSTOMIZATIONS = r"""
#if NGHTTP2_VERSION_NUM < 0x012900
#error "Albatross needs libnghttp2 1.41 or newer"
#endif
#if defined(ALB_H2_PROBED_MAX_CONTINUATIONS) || NGHTTP2_VERSION_NUM >= 0x013d00
#define ALB_H2_HAVE_MAX_CONTINUATIONS 1
#else
#define ALB_H2_HAVE_MAX_CONTINUATIONS 0
#endif
#if defined(ALB_H2_PROBED_RESET_RATELIM) || NGHTTP2_VERSION_NUM >= 0x013900
#define ALB_H2_HAVE_RESET_RATELIM 1
#else
#define ALB_H2_HAVE_RESET_RATELIM 0
#endif

enum { ALB_H2_EV_REQUEST = 1, ALB_H2_EV_DATA, ALB_H2_EV_TRAILERS, ALB_H2_EV_END_STREAM,
       ALB_H2_EV_CLOSED, ALB_H2_EV_RESET, ALB_H2_EV_GOAWAY, ALB_H2_EV_RESPONSE, ALB_H2_EV_SETTINGS };
#define ALB_H2_NV_STACK 64

typedef struct { uint8_t *data; size_t len; size_t cap; } alb_h2_buf;

/* One event record; the payload (len bytes) follows it. Parsed in Python as "=BBxxiII". */
typedef struct { uint8_t type, flags; uint16_t pad; int32_t sid; uint32_t code; uint32_t len; } alb_h2_evhdr;

typedef struct {
    uint32_t max_concurrent_streams, initial_window_size, connection_window_size;
    uint32_t max_header_list_size, max_requests, max_resets, max_continuations;
} alb_h2_config;

/* Response body source of one stream: buffered bytes, end flag, optional packed trailers. */
typedef struct alb_h2_stream {
    struct alb_h2_stream *prev, *next;
    int32_t sid;
    int eof, deferred;
    alb_h2_buf body;
    size_t off;
    char *trailers;
    size_t trailers_len;
} alb_h2_stream;

typedef struct {
    alb_h2_buf ev;          /* event records; complete up to ev_done after alb_h2_recv */
    size_t ev_done;
    alb_h2_buf out;         /* output; the first out_skip bytes were taken by Python */
    uint32_t nrequests, nstrikes;
    int calm, dead;
    size_t out_skip;
    nghttp2_session *session;
    alb_h2_config cfg;
    alb_h2_stream *streams;  /* every live body source, for teardown */
    alb_h2_buf cur;          /* the header block being received */
    int cur_type;            /* its record type; 0 when none or when it is discarded */
    int32_t cur_sid;
    long last_ev;            /* offset of the last record, or -1 */
    int32_t goaway_sid;      /* streams above this are refused once we sent GOAWAY */
    int32_t rst_sid;         /* stream whose RST_STREAM was just received */
    uint32_t ncont;
    int oom, freeing;
    int client;              /* a client session (albatross probe): responses and SETTINGS reported */
} alb_h2_session;

static int alb_buf_reserve(alb_h2_buf *b, size_t extra)
{
    size_t cap;
    uint8_t *p;
    if (b->len + extra <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra)
        cap *= 2;
    p = realloc(b->data, cap);
    if (p == NULL)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

static int alb_buf_append(alb_h2_buf *b, const void *p, size_t n)
{
    if (alb_buf_reserve(b, n) != 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

/* ---- event buffer ---------------------------------------------------------------------- */

static alb_h2_evhdr *alb_ev_at(alb_h2_session *s, long off)
{
    return (alb_h2_evhdr *)(void *)(s->ev.data + off);
}

static int alb_ev_push(alb_h2_session *s, int type, int flags, int32_t sid, uint32_t code,
                       const uint8_t *payload, size_t len)
{
    alb_h2_evhdr h;
    if (s->freeing)
        return 0;
    memset(&h, 0, sizeof(h));
    h.type = (uint8_t)type;
    h.flags = (uint8_t)flags;
    h.sid = sid;
    h.code = code;
    h.len = (uint32_t)len;
    if (alb_buf_reserve(&s->ev, sizeof(h) + len) != 0) {
        s->oom = 1;
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    s->last_ev = (long)s->ev.len;
    alb_buf_append(&s->ev, &h, sizeof(h));
    alb_buf_append(&s->ev, payload, len);
    return 0;
}

/* Start of a read: drop the records Python parsed last time, keep those added since (stream
   closes caused by sending). */
static void alb_ev_reset(alb_h2_session *s)
{
    if (s->ev_done > 0) {
        memmove(s->ev.data, s->ev.data + s->ev_done, s->ev.len - s->ev_done);
        s->ev.len -= s->ev_done;
        s->ev_done = 0;
    }
    s->last_ev = -1;
}

/* ---- budgets ----------------------------------------------------------------------------- */

static void alb_h2_calm(alb_h2_session *s)
{
    if (s->calm)
        return;
    s->calm = 1;
    nghttp2_session_terminate_session(s->session, NGHTTP2_ENHANCE_YOUR_CALM);
}

/* One more stream the peer reset or made invalid; past the budget, tear down. */
static void alb_h2_strike(alb_h2_session *s)
{
    if (++s->nstrikes > s->cfg.max_resets)
        alb_h2_calm(s);
}

/* ---- receive callbacks ------------------------------------------------------------------- */

static int alb_on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    alb_h2_session *s = ud;
    int32_t sid = frame->hd.stream_id;
    int type = ALB_H2_EV_TRAILERS;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (frame->headers.cat == NGHTTP2_HCAT_RESPONSE) {
        type = ALB_H2_EV_RESPONSE;  /* only a client session receives responses */
    } else if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        type = ALB_H2_EV_REQUEST;
        if (sid > s->goaway_sid) {
            /* After our GOAWAY: refuse, so the client may retry elsewhere. */
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, sid, NGHTTP2_REFUSED_STREAM);
            type = 0;
        } else if (++s->nrequests == s->cfg.max_requests) {
            s->goaway_sid = sid;
            nghttp2_submit_goaway(session, NGHTTP2_FLAG_NONE, sid, NGHTTP2_NO_ERROR, NULL, 0);
        }
    }
    s->cur.len = 0;
    s->cur_type = type;
    s->cur_sid = sid;
    return 0;
}

static int alb_on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                         size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    alb_h2_session *s = ud;
    alb_h2_buf *b = &s->cur;
    (void)session; (void)flags;
    if (s->cur_type == 0 || frame->hd.stream_id != s->cur_sid)
        return 0;
    if (b->len + namelen + valuelen + 2 > s->cfg.max_header_list_size) {
        s->cur_type = 0;
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  /* resets this stream only */
    }
    if (alb_buf_reserve(b, namelen + valuelen + 2) != 0) {
        s->oom = 1;
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    alb_buf_append(b, name, namelen);
    b->data[b->len++] = 0;
    alb_buf_append(b, value, valuelen);
    b->data[b->len++] = 0;
    return 0;
}

/* The header block is complete: one record, without the final NUL. */
static int alb_end_header_block(alb_h2_session *s, const nghttp2_frame *frame)
{
    int type = s->cur_type;
    size_t len = s->cur.len;
    if (type == 0 || frame->hd.stream_id != s->cur_sid)
        return 0;
    s->cur_type = 0;
    return alb_ev_push(s, type, (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) ? 1 : 0, s->cur_sid, 0,
                       s->cur.data, len ? len - 1 : 0);
}

/* The peer's SETTINGS as received (not ACKs): one record of (id, value) pairs. */
static int alb_settings_event(alb_h2_session *s, const nghttp2_settings *settings)
{
    uint32_t *pairs;
    size_t i;
    int rv;
    if (!s->client || (settings->hd.flags & NGHTTP2_FLAG_ACK))
        return 0;
    if ((pairs = malloc(sizeof(uint32_t) * 2 * (settings->niv + 1))) == NULL) {
        s->oom = 1;
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    for (i = 0; i < settings->niv; i++) {
        pairs[2 * i] = (uint32_t)settings->iv[i].settings_id;
        pairs[2 * i + 1] = settings->iv[i].value;
    }
    rv = alb_ev_push(s, ALB_H2_EV_SETTINGS, 0, 0, 0, (const uint8_t *)pairs, sizeof(uint32_t) * 2 * settings->niv);
    free(pairs);
    return rv;
}

static int alb_on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *ud)
{
    alb_h2_session *s = ud;
    alb_h2_evhdr *last;
    (void)session;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        return alb_end_header_block(s, frame);
    case NGHTTP2_DATA:
        if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
            return 0;
        if (s->last_ev >= 0) {
            last = alb_ev_at(s, s->last_ev);
            if (last->type == ALB_H2_EV_DATA && last->sid == frame->hd.stream_id) {
                last->flags = 1;
                return 0;
            }
        }
        return alb_ev_push(s, ALB_H2_EV_END_STREAM, 1, frame->hd.stream_id, 0, NULL, 0);
    case NGHTTP2_RST_STREAM:
        s->rst_sid = frame->hd.stream_id;  /* on_stream_close follows: report a peer reset */
        alb_h2_strike(s);
        return 0;
    case NGHTTP2_GOAWAY:
        return alb_ev_push(s, ALB_H2_EV_GOAWAY, 0, frame->goaway.last_stream_id,
                           frame->goaway.error_code, NULL, 0);
    case NGHTTP2_SETTINGS:
        return alb_settings_event(s, &frame->settings);
    }
    return 0;
}

static int alb_on_invalid_frame_recv(nghttp2_session *session, const nghttp2_frame *frame,
                                     int lib_error_code, void *ud)
{
    (void)session; (void)frame; (void)lib_error_code;
    alb_h2_strike((alb_h2_session *)ud);
    return 0;
}

/* Consecutive chunks of one stream within a read are merged into one record. */
static int alb_on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t sid,
                                  const uint8_t *data, size_t len, void *ud)
{
    alb_h2_session *s = ud;
    alb_h2_evhdr *last;
    (void)session; (void)flags;
    if (s->last_ev >= 0) {
        last = alb_ev_at(s, s->last_ev);
        if (last->type == ALB_H2_EV_DATA && last->sid == sid && last->len + len <= 0x7fffffff) {
            if (alb_buf_append(&s->ev, data, len) != 0) {
                s->oom = 1;
                return NGHTTP2_ERR_CALLBACK_FAILURE;
            }
            alb_ev_at(s, s->last_ev)->len += (uint32_t)len;  /* the buffer may have moved */
            return 0;
        }
    }
    return alb_ev_push(s, ALB_H2_EV_DATA, 0, sid, 0, data, len);
}

static void alb_stream_free(alb_h2_session *s, alb_h2_stream *st)
{
    if (st->prev)
        st->prev->next = st->next;
    else
        s->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    free(st->body.data);
    free(st->trailers);
    free(st);
}

static int alb_on_stream_close(nghttp2_session *session, int32_t sid, uint32_t error_code, void *ud)
{
    alb_h2_session *s = ud;
    alb_h2_stream *st;
    int type = ALB_H2_EV_CLOSED;
    if (s->freeing)
        return 0;  /* nghttp2_session_del: alb_h2_free releases every stream itself */
    st = nghttp2_session_get_stream_user_data(session, sid);
    if (st != NULL) {
        nghttp2_session_set_stream_user_data(session, sid, NULL);
        alb_stream_free(s, st);
    }
    if (sid == s->rst_sid) {
        type = ALB_H2_EV_RESET;
        s->rst_sid = 0;
    }
    return alb_ev_push(s, type, 0, sid, error_code, NULL, 0);
}

#if !ALB_H2_HAVE_MAX_CONTINUATIONS
static int alb_on_begin_frame(nghttp2_session *session, const nghttp2_frame_hd *hd, void *ud)
{
    alb_h2_session *s = ud;
    (void)session;
    if (hd->type == NGHTTP2_HEADERS) {
        s->ncont = 0;
    } else if (hd->type == NGHTTP2_CONTINUATION && ++s->ncont > s->cfg.max_continuations) {
        alb_h2_calm(s);
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}
#endif

"""
