"""HTTP/2 session helpers for ``albatross._native``: the API Python calls.

Declarations and receive-side callbacks are in nghttp2.py (this module's C is appended after
it, see build_native.py). Here: packed header blobs, response body sources with deferred data,
session construction and teardown, the receive and drain loops. The server session is
Albatross's own; the client session (``alb_h2_client_new``, ``alb_h2_submit_request``) exists
for ``albatross probe``, which sends one body-less request and reads the server's SETTINGS.
"""

INCLUDES = ""

TYPES = ""

FUNCTIONS = """
alb_h2_session *alb_h2_new(const alb_h2_config *cfg);
alb_h2_session *alb_h2_client_new(const alb_h2_config *cfg);
int32_t alb_h2_submit_request(alb_h2_session *s, const char *hdrs, size_t hlen);
void alb_h2_free(alb_h2_session *s);
ssize_t alb_h2_recv(alb_h2_session *s, const uint8_t *in, size_t len);
ssize_t alb_h2_drain(alb_h2_session *s, size_t limit);
int alb_h2_submit_response(alb_h2_session *s, int32_t sid, int status, const char *hdrs, size_t hlen,
                           const uint8_t *body, size_t blen, int has_body, int end_stream);
int alb_h2_send_data(alb_h2_session *s, int32_t sid, const uint8_t *data, size_t len, int end_stream);
int alb_h2_send_trailers(alb_h2_session *s, int32_t sid, const char *hdrs, size_t hlen);
size_t alb_h2_buffered(alb_h2_session *s, int32_t sid);
int alb_h2_reset_stream(alb_h2_session *s, int32_t sid, uint32_t error_code);
int alb_h2_consume(alb_h2_session *s, int32_t sid, size_t n);
int alb_h2_goaway(alb_h2_session *s, uint32_t error_code);
int alb_h2_want_read(alb_h2_session *s);
int alb_h2_want_write(alb_h2_session *s);
"""

CUSTOMIZATIONS = r"""
/* ---- packed header blobs: "name\0value\0...\0value" -------------------------------------- */

/* Number of fields in the blob, or -1 if it does not hold whole name/value pairs. */
static long alb_nv_count(const char *p, size_t len)
{
    const char *end = p + len, *z;
    long nuls = 0;
    if (len == 0)
        return 0;
    while ((z = memchr(p, 0, (size_t)(end - p))) != NULL) {
        nuls++;
        p = z + 1;
    }
    return (nuls % 2 == 1) ? (nuls + 1) / 2 : -1;
}

static void alb_nv_fill(const char *p, size_t len, nghttp2_nv *nv, long n)
{
    const char *end = p + len;
    long i;
    for (i = 0; i < n; i++) {
        const char *z = memchr(p, 0, (size_t)(end - p));
        nv[i].name = (uint8_t *)p;
        nv[i].namelen = (size_t)(z - p);
        p = z + 1;
        z = memchr(p, 0, (size_t)(end - p));
        if (z == NULL)
            z = end;
        nv[i].value = (uint8_t *)p;
        nv[i].valuelen = (size_t)(z - p);
        nv[i].flags = NGHTTP2_NV_FLAG_NONE;  /* nghttp2 copies names and values */
        p = z + 1;
    }
}

/* nv array for `extra` leading entries plus the blob: the stack array or a malloc'ed one. */
static nghttp2_nv *alb_nv_build(const char *p, size_t len, long extra, nghttp2_nv *stack, long *count)
{
    long n = alb_nv_count(p, len);
    nghttp2_nv *nv = stack;
    if (n < 0)
        return NULL;
    if (n + extra > ALB_H2_NV_STACK && (nv = malloc(sizeof(nghttp2_nv) * (size_t)(n + extra))) == NULL)
        return NULL;
    alb_nv_fill(p, len, nv + extra, n);
    *count = n + extra;
    return nv;
}

/* True while the stream is open (nghttp2 may still know a closed stream). */
static int alb_stream_alive(alb_h2_session *s, int32_t sid)
{
    nghttp2_stream *stream = nghttp2_session_find_stream(s->session, sid);
    return stream != NULL && nghttp2_stream_get_state(stream) != NGHTTP2_STREAM_STATE_CLOSED;
}

/* ---- response bodies --------------------------------------------------------------------- */

static ssize_t alb_h2_read(nghttp2_session *session, int32_t sid, uint8_t *buf, size_t length,
                           uint32_t *data_flags, nghttp2_data_source *source, void *ud)
{
    alb_h2_stream *st = source->ptr;
    size_t avail = st->body.len - st->off;
    size_t n = avail < length ? avail : length;
    nghttp2_nv stack[ALB_H2_NV_STACK], *nv;
    long count;
    int rv;
    (void)ud;
    if (n > 0) {
        memcpy(buf, st->body.data + st->off, n);
        st->off += n;
    }
    if (st->off == st->body.len)
        st->off = st->body.len = 0;
    if (st->body.len > 0 || !st->eof) {
        if (n > 0)
            return (ssize_t)n;
        st->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    if (st->trailers == NULL)
        return (ssize_t)n;
    nv = alb_nv_build(st->trailers, st->trailers_len, 0, stack, &count);
    if (nv == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  /* resets the stream */
    rv = nghttp2_submit_trailer(session, sid, nv, (size_t)count);
    if (nv != stack)
        free(nv);
    if (rv != 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    free(st->trailers);
    st->trailers = NULL;
    *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    return (ssize_t)n;
}

static alb_h2_stream *alb_stream_new(alb_h2_session *s, int32_t sid, const uint8_t *body, size_t blen, int eof)
{
    alb_h2_stream *st = calloc(1, sizeof(*st));
    if (st == NULL)
        return NULL;
    if (alb_buf_append(&st->body, body, blen) != 0) {
        free(st);
        return NULL;
    }
    st->sid = sid;
    st->eof = eof;
    st->next = s->streams;
    if (s->streams)
        s->streams->prev = st;
    s->streams = st;
    return st;
}

static void alb_status_digits(char *out, int status)
{
    out[0] = (char)('0' + status / 100);
    out[1] = (char)('0' + status / 10 % 10);
    out[2] = (char)('0' + status % 10);
}

static int alb_h2_submit_response(alb_h2_session *s, int32_t sid, int status, const char *hdrs, size_t hlen,
                                  const uint8_t *body, size_t blen, int has_body, int end_stream)
{
    nghttp2_nv stack[ALB_H2_NV_STACK], *nv;
    nghttp2_data_provider prd;
    alb_h2_stream *st = NULL;
    char digits[3];
    long count;
    int rv;
    if (s->dead)
        return NGHTTP2_ERR_INVALID_STATE;
    if (status < 100 || status > 999)
        return NGHTTP2_ERR_INVALID_ARGUMENT;
    if (!alb_stream_alive(s, sid))
        return NGHTTP2_ERR_STREAM_CLOSED;
    if ((nv = alb_nv_build(hdrs, hlen, 1, stack, &count)) == NULL)
        return NGHTTP2_ERR_INVALID_ARGUMENT;
    alb_status_digits(digits, status);
    nv[0].name = (uint8_t *)":status";
    nv[0].namelen = 7;
    nv[0].value = (uint8_t *)digits;
    nv[0].valuelen = 3;
    nv[0].flags = NGHTTP2_NV_FLAG_NONE;
    if (!end_stream || (has_body && blen > 0)) {
        if ((st = alb_stream_new(s, sid, body, blen, end_stream)) == NULL) {
            rv = NGHTTP2_ERR_NOMEM;
            goto done;
        }
        prd.source.ptr = st;
        prd.read_callback = alb_h2_read;
    }
    rv = nghttp2_submit_response(s->session, sid, nv, (size_t)count, st ? &prd : NULL);
    if (st != NULL) {
        if (rv == 0)
            rv = nghttp2_session_set_stream_user_data(s->session, sid, st);
        if (rv != 0)
            alb_stream_free(s, st);
    }
done:
    if (nv != stack)
        free(nv);
    return rv;
}

/* The stream's body source, or an error: closed stream, or no streaming response on it. */
static alb_h2_stream *alb_stream_open(alb_h2_session *s, int32_t sid, int *rv)
{
    alb_h2_stream *st = s->dead ? NULL : nghttp2_session_get_stream_user_data(s->session, sid);
    *rv = 0;
    if (st == NULL)
        *rv = (!s->dead && alb_stream_alive(s, sid)) ? NGHTTP2_ERR_INVALID_STATE : NGHTTP2_ERR_STREAM_CLOSED;
    else if (st->eof)
        *rv = NGHTTP2_ERR_STREAM_SHUT_WR;
    return *rv ? NULL : st;
}

static int alb_stream_resume(alb_h2_session *s, alb_h2_stream *st)
{
    if (!st->deferred)
        return 0;
    st->deferred = 0;
    return nghttp2_session_resume_data(s->session, st->sid);
}

static int alb_h2_send_data(alb_h2_session *s, int32_t sid, const uint8_t *data, size_t len, int end_stream)
{
    int rv;
    alb_h2_stream *st = alb_stream_open(s, sid, &rv);
    if (st == NULL)
        return rv;
    if (st->off > 0 && st->off >= st->body.len / 2) {  /* compact, amortised O(1) per byte */
        memmove(st->body.data, st->body.data + st->off, st->body.len - st->off);
        st->body.len -= st->off;
        st->off = 0;
    }
    if (alb_buf_append(&st->body, data, len) != 0)
        return NGHTTP2_ERR_NOMEM;
    st->eof = end_stream;
    return alb_stream_resume(s, st);
}

static int alb_h2_send_trailers(alb_h2_session *s, int32_t sid, const char *hdrs, size_t hlen)
{
    int rv;
    alb_h2_stream *st = alb_stream_open(s, sid, &rv);
    if (st == NULL)
        return rv;
    if (hlen == 0 || alb_nv_count(hdrs, hlen) < 0)
        return NGHTTP2_ERR_INVALID_ARGUMENT;
    if ((st->trailers = malloc(hlen)) == NULL)
        return NGHTTP2_ERR_NOMEM;
    memcpy(st->trailers, hdrs, hlen);
    st->trailers_len = hlen;
    st->eof = 1;
    return alb_stream_resume(s, st);
}

static size_t alb_h2_buffered(alb_h2_session *s, int32_t sid)
{
    alb_h2_stream *st = s->dead ? NULL : nghttp2_session_get_stream_user_data(s->session, sid);
    return st ? st->body.len - st->off : 0;
}

/* ---- session ----------------------------------------------------------------------------- */

static nghttp2_session_callbacks *alb_h2_callbacks(void)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        return NULL;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, alb_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, alb_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, alb_on_frame_recv);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cbs, alb_on_invalid_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, alb_on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, alb_on_stream_close);
#if !ALB_H2_HAVE_MAX_CONTINUATIONS
    nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, alb_on_begin_frame);
#endif
    return cbs;
}

static nghttp2_option *alb_h2_options(const alb_h2_config *cfg)
{
    nghttp2_option *opt;
    if (nghttp2_option_new(&opt) != 0)
        return NULL;
    /* The application acknowledges request bodies with alb_h2_consume (backpressure). */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    /* No RFC 7540 priority tree: closed streams need not be retained (less memory). */
    nghttp2_option_set_no_closed_streams(opt, 1);
#if ALB_H2_HAVE_MAX_CONTINUATIONS
    nghttp2_option_set_max_continuations(opt, cfg->max_continuations);
#endif
#if ALB_H2_HAVE_RESET_RATELIM
    /* nghttp2's token bucket answers INTERNAL_ERROR; keep it above our count, which never
       refills, so that ours trips first and answers ENHANCE_YOUR_CALM. */
    nghttp2_option_set_stream_reset_rate_limit(opt, (uint64_t)cfg->max_resets + 1, 33);
#endif
    return opt;
}

static int alb_h2_start(alb_h2_session *s)
{
    nghttp2_settings_entry iv[3] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s->cfg.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, s->cfg.initial_window_size},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, s->cfg.max_header_list_size},
    };
    int rv = nghttp2_submit_settings(s->session, NGHTTP2_FLAG_NONE, iv, 3);
    if (rv == 0 && s->cfg.connection_window_size > NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE)
        rv = nghttp2_session_set_local_window_size(s->session, NGHTTP2_FLAG_NONE, 0,
                                                   (int32_t)s->cfg.connection_window_size);
    return rv;
}

static void alb_h2_free(alb_h2_session *s)
{
    if (s == NULL)
        return;
    s->freeing = 1;
    if (s->session != NULL)
        nghttp2_session_del(s->session);  /* may run callbacks: free our state only after */
    while (s->streams != NULL)
        alb_stream_free(s, s->streams);
    free(s->ev.data);
    free(s->cur.data);
    free(s->out.data);
    free(s);
}

static alb_h2_session *alb_h2_new(const alb_h2_config *cfg)
{
    alb_h2_session *s = calloc(1, sizeof(*s));
    nghttp2_session_callbacks *cbs = alb_h2_callbacks();
    nghttp2_option *opt = alb_h2_options(cfg);
    int rv = -1;
    if (s != NULL && cbs != NULL && opt != NULL) {
        s->cfg = *cfg;
        s->last_ev = -1;
        s->goaway_sid = 0x7fffffff;
        rv = nghttp2_session_server_new2(&s->session, cbs, s, opt);
        if (rv == 0)
            rv = alb_h2_start(s);
    }
    if (cbs != NULL)
        nghttp2_session_callbacks_del(cbs);
    if (opt != NULL)
        nghttp2_option_del(opt);
    if (rv != 0) {
        alb_h2_free(s);
        return NULL;
    }
    return s;
}

/* A client session: nghttp2 sends the connection preface itself, then our SETTINGS (no push;
   the window and header-list limits from cfg). Window updates are automatic: the probe reads
   whatever arrives. */
static alb_h2_session *alb_h2_client_new(const alb_h2_config *cfg)
{
    alb_h2_session *s = calloc(1, sizeof(*s));
    nghttp2_session_callbacks *cbs = alb_h2_callbacks();
    int rv = -1;
    if (s != NULL && cbs != NULL) {
        nghttp2_settings_entry iv[3] = {
            {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
            {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, cfg->initial_window_size},
            {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, cfg->max_header_list_size},
        };
        s->cfg = *cfg;
        s->client = 1;
        s->last_ev = -1;
        s->goaway_sid = 0x7fffffff;
        rv = nghttp2_session_client_new(&s->session, cbs, s);
        if (rv == 0)
            rv = nghttp2_submit_settings(s->session, NGHTTP2_FLAG_NONE, iv, 3);
    }
    if (cbs != NULL)
        nghttp2_session_callbacks_del(cbs);
    if (rv != 0) {
        alb_h2_free(s);
        return NULL;
    }
    return s;
}

/* A request without a body (pseudo-headers first in the blob): its stream id, or an nghttp2
   error code (negative). */
static int32_t alb_h2_submit_request(alb_h2_session *s, const char *hdrs, size_t hlen)
{
    nghttp2_nv stack[ALB_H2_NV_STACK], *nv;
    long count;
    int32_t sid;
    if (s->dead || !s->client)
        return NGHTTP2_ERR_INVALID_STATE;
    if ((nv = alb_nv_build(hdrs, hlen, 0, stack, &count)) == NULL || count == 0)
        return NGHTTP2_ERR_INVALID_ARGUMENT;
    sid = nghttp2_submit_request(s->session, NULL, nv, (size_t)count, NULL, NULL);
    if (nv != stack)
        free(nv);
    return sid;
}

/* Fatal error: queue GOAWAY, move every pending byte to the output buffer, stop for good. */
static void alb_h2_die(alb_h2_session *s, int rv)
{
    uint32_t code = NGHTTP2_PROTOCOL_ERROR;
    const uint8_t *p;
    ssize_t n;
    if (s->dead)
        return;
    if (s->calm || rv == NGHTTP2_ERR_FLOODED || rv == -905 /* NGHTTP2_ERR_TOO_MANY_CONTINUATIONS */)
        code = NGHTTP2_ENHANCE_YOUR_CALM;
    else if (s->oom || rv == NGHTTP2_ERR_NOMEM)
        code = NGHTTP2_INTERNAL_ERROR;
    nghttp2_session_terminate_session(s->session, code);
    while ((n = nghttp2_session_mem_send(s->session, &p)) > 0)
        if (alb_buf_append(&s->out, p, (size_t)n) != 0)
            break;
    s->dead = rv;
}

static ssize_t alb_h2_recv(alb_h2_session *s, const uint8_t *in, size_t len)
{
    ssize_t rv;
    if (s->dead)
        return s->dead;
    alb_ev_reset(s);
    rv = nghttp2_session_mem_recv(s->session, in, len);
    if (rv < 0 || s->oom) {
        alb_h2_die(s, rv < 0 ? (int)rv : NGHTTP2_ERR_NOMEM);
        return s->dead;
    }
    s->ev_done = s->ev.len;
    return rv;
}

/* Move output into s->out until it holds `limit` bytes or nghttp2 has nothing more; return
   how many bytes (at most `limit`) Python may copy from s->out.data now. */
static ssize_t alb_h2_drain(alb_h2_session *s, size_t limit)
{
    const uint8_t *p;
    ssize_t n;
    if (s->out_skip > 0) {
        memmove(s->out.data, s->out.data + s->out_skip, s->out.len - s->out_skip);
        s->out.len -= s->out_skip;
        s->out_skip = 0;
    }
    while (!s->dead && s->out.len < limit) {
        n = nghttp2_session_mem_send(s->session, &p);
        if (n == 0)
            break;
        if (n < 0) {
            alb_h2_die(s, (int)n);
            return n;
        }
        if (alb_buf_append(&s->out, p, (size_t)n) != 0) {
            s->oom = 1;
            alb_h2_die(s, NGHTTP2_ERR_NOMEM);
            return NGHTTP2_ERR_NOMEM;
        }
    }
    s->out_skip = s->out.len < limit ? s->out.len : limit;
    return (ssize_t)s->out_skip;
}

static int alb_h2_reset_stream(alb_h2_session *s, int32_t sid, uint32_t error_code)
{
    if (s->dead)
        return NGHTTP2_ERR_INVALID_STATE;
    return nghttp2_submit_rst_stream(s->session, NGHTTP2_FLAG_NONE, sid, error_code);
}

static int alb_h2_consume(alb_h2_session *s, int32_t sid, size_t n)
{
    if (s->dead)
        return 0;
    return nghttp2_session_consume(s->session, sid, n);
}

/* error_code 0: graceful GOAWAY, open streams finish; otherwise tear down after sending. */
static int alb_h2_goaway(alb_h2_session *s, uint32_t error_code)
{
    int32_t last;
    if (s->dead)
        return 0;
    if (error_code != NGHTTP2_NO_ERROR)
        return nghttp2_session_terminate_session(s->session, error_code);
    last = nghttp2_session_get_last_proc_stream_id(s->session);
    if (last < s->goaway_sid)
        s->goaway_sid = last;
    return nghttp2_submit_goaway(s->session, NGHTTP2_FLAG_NONE, s->goaway_sid, NGHTTP2_NO_ERROR, NULL, 0);
}

static int alb_h2_want_read(alb_h2_session *s)
{
    return !s->dead && nghttp2_session_want_read(s->session);
}

static int alb_h2_want_write(alb_h2_session *s)
{
    return s->out.len > s->out_skip || (!s->dead && nghttp2_session_want_write(s->session));
}
"""
