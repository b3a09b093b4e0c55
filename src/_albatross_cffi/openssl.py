"""OpenSSL 3 declarations for ``albatross._native`` (see build_native.py for the layout).

The C helpers in CUSTOMIZATIONS implement the callbacks that run on every handshake (ALPN,
NPN, session-ticket keys, key log) in C: they never enter Python, cannot raise, and need no
write+execute memory. The callbacks that need Python state (SNI certificate choice, OCSP
staple lookup) are ``extern "Python"`` functions defined in ``albatross.tls.context``.

The client side (``albatross.tls.client``, used by ``albatross probe``) adds an NPN select
callback and a message callback in C: each client ``SSL`` carries an ``alb_client_state``
(owned by the Python connection) in which they record the server's NPN list and every alert
sent or received, so the probe can say *how* a server refused something.
"""

INCLUDES = """
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <openssl/opensslv.h>
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/crypto.h>
#include <openssl/objects.h>
"""

TYPES = """
typedef ... SSL_CTX;
typedef ... SSL;
typedef ... SSL_METHOD;
typedef ... SSL_CIPHER;
typedef ... SSL_SESSION;
typedef ... BIO;
typedef ... BIO_METHOD;
typedef ... X509;
typedef ... EVP_CIPHER_CTX;
typedef ... EVP_MAC_CTX;

static const long OPENSSL_VERSION_NUMBER;
static const int OPENSSL_VERSION;

static const long SSL_OP_NO_RENEGOTIATION;
static const long SSL_OP_CIPHER_SERVER_PREFERENCE;
static const long SSL_OP_NO_COMPRESSION;
static const long SSL_OP_NO_TICKET;
static const long SSL_OP_NO_TLSv1_3;
static const long SSL_OP_LEGACY_SERVER_CONNECT;

static const long SSL_MODE_RELEASE_BUFFERS;
static const long SSL_MODE_ENABLE_PARTIAL_WRITE;
static const long SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;

static const long SSL_SESS_CACHE_SERVER;
static const long SSL_SESS_CACHE_OFF;

static const int TLS1_VERSION;
static const int TLS1_1_VERSION;
static const int TLS1_2_VERSION;
static const int TLS1_3_VERSION;

static const int SSL_ERROR_NONE;
static const int SSL_ERROR_SSL;
static const int SSL_ERROR_WANT_READ;
static const int SSL_ERROR_WANT_WRITE;
static const int SSL_ERROR_SYSCALL;
static const int SSL_ERROR_ZERO_RETURN;

static const int SSL_TLSEXT_ERR_OK;
static const int SSL_TLSEXT_ERR_NOACK;
static const int SSL_TLSEXT_ERR_ALERT_FATAL;
static const int TLSEXT_NAMETYPE_host_name;
static const int TLSEXT_STATUSTYPE_ocsp;

static const int SSL_FILETYPE_PEM;

static const int ERR_LIB_SSL;
static const int ERR_LIB_SYS;
static const int SSL_R_HTTP_REQUEST;
static const int SSL_R_HTTPS_PROXY_REQUEST;
static const int SSL_R_UNEXPECTED_EOF_WHILE_READING;
static const int SSL_R_WRONG_VERSION_NUMBER;
static const int SSL_R_UNSUPPORTED_PROTOCOL;
static const int SSL_R_NO_SHARED_CIPHER;
static const int SSL_R_NO_RENEGOTIATION;
static const int SSL_R_PACKET_LENGTH_TOO_LONG;
static const int SSL_R_RECORD_LENGTH_MISMATCH;

static const int ALB_MAX_TICKET_KEYS;
static const int ALB_TICKET_KEY_LEN;

typedef struct {
    unsigned int len;
    unsigned char wire[256];
} alb_protos;

typedef struct {
    int n;
    unsigned char keys[...];
    unsigned long long encrypted;
    unsigned long long decrypted;
    unsigned long long unknown;
} alb_ticket_ring;

static const int ALB_MAX_ALERTS;

typedef struct {
    alb_protos npn_want;
    int npn_seen;
    unsigned int npn_len;
    unsigned char npn_offered[1024];
    int nalerts;
    unsigned char alerts[96];
} alb_client_state;
"""

FUNCTIONS = """
/* version */
unsigned long OpenSSL_version_num(void);
const char *OpenSSL_version(int);

/* errors */
unsigned long ERR_get_error(void);
unsigned long ERR_peek_error(void);
void ERR_clear_error(void);
void ERR_error_string_n(unsigned long, char *, size_t);
int ERR_GET_LIB(unsigned long);
int ERR_GET_REASON(unsigned long);
const char *ERR_reason_error_string(unsigned long);
const char *ERR_lib_error_string(unsigned long);

/* context */
const SSL_METHOD *TLS_server_method(void);
SSL_CTX *SSL_CTX_new(const SSL_METHOD *);
void SSL_CTX_free(SSL_CTX *);
uint64_t SSL_CTX_set_options(SSL_CTX *, uint64_t);
long SSL_CTX_set_mode(SSL_CTX *, long);
int SSL_CTX_set_min_proto_version(SSL_CTX *, int);
int SSL_CTX_set_max_proto_version(SSL_CTX *, int);
int SSL_CTX_set_cipher_list(SSL_CTX *, const char *);
int SSL_CTX_set_ciphersuites(SSL_CTX *, const char *);
int SSL_CTX_set1_groups_list(SSL_CTX *, char *);
long SSL_CTX_set_session_cache_mode(SSL_CTX *, long);
long SSL_CTX_sess_set_cache_size(SSL_CTX *, long);
int SSL_CTX_set_session_id_context(SSL_CTX *, const unsigned char *, unsigned int);
long SSL_CTX_set_timeout(SSL_CTX *, long);
int SSL_CTX_set_num_tickets(SSL_CTX *, size_t);
int SSL_CTX_use_certificate_chain_file(SSL_CTX *, const char *);
int SSL_CTX_use_PrivateKey_file(SSL_CTX *, const char *, int);
int SSL_CTX_check_private_key(const SSL_CTX *);
X509 *SSL_CTX_get0_certificate(const SSL_CTX *);
long SSL_CTX_set_tlsext_servername_callback(SSL_CTX *, int (*)(SSL *, int *, void *));
long SSL_CTX_set_tlsext_servername_arg(SSL_CTX *, void *);
long SSL_CTX_set_tlsext_status_cb(SSL_CTX *, int (*)(SSL *, void *));
long SSL_CTX_set_tlsext_status_arg(SSL_CTX *, void *);

/* connection */
SSL *SSL_new(SSL_CTX *);
void SSL_free(SSL *);
void SSL_set_accept_state(SSL *);
void SSL_set_bio(SSL *, BIO *, BIO *);
int SSL_do_handshake(SSL *);
int SSL_is_init_finished(const SSL *);
int SSL_read_ex(SSL *, void *, size_t, size_t *);
int SSL_write_ex(SSL *, const void *, size_t, size_t *);
int SSL_shutdown(SSL *);
int SSL_get_error(const SSL *, int);
int SSL_get_shutdown(const SSL *);
SSL_CTX *SSL_get_SSL_CTX(const SSL *);
SSL_CTX *SSL_set_SSL_CTX(SSL *, SSL_CTX *);
const char *SSL_get_servername(const SSL *, const int);
void SSL_get0_alpn_selected(const SSL *, const unsigned char **, unsigned int *);
void SSL_get0_next_proto_negotiated(const SSL *, const unsigned char **, unsigned int *);
const char *SSL_get_version(const SSL *);
int SSL_version(const SSL *);
const SSL_CIPHER *SSL_get_current_cipher(const SSL *);
const char *SSL_CIPHER_get_name(const SSL_CIPHER *);
int SSL_session_reused(const SSL *);
X509 *SSL_get_certificate(const SSL *);
long SSL_get_tlsext_status_type(SSL *);
long SSL_set_tlsext_status_ocsp_resp(SSL *, unsigned char *, long);
int SSL_get_peer_signature_type_nid(const SSL *, int *);

/* client side (albatross.tls.client) */
const SSL_METHOD *TLS_client_method(void);
void SSL_set_connect_state(SSL *);
long SSL_set_tlsext_host_name(SSL *, const char *);
int SSL_set_alpn_protos(SSL *, const unsigned char *, unsigned int);
long SSL_set_tlsext_status_type(SSL *, int);
long SSL_get_tlsext_status_ocsp_resp(SSL *, const unsigned char **);
long SSL_get_secure_renegotiation_support(SSL *);
int SSL_set1_sigalgs_list(SSL *, const char *);
int SSL_renegotiate(SSL *);
int SSL_renegotiate_pending(const SSL *);
long SSL_get_negotiated_group(SSL *);
X509 *SSL_get0_peer_certificate(const SSL *);
int i2d_X509(X509 *, unsigned char **);
int SSL_CIPHER_get_kx_nid(const SSL_CIPHER *);
int SSL_CIPHER_is_aead(const SSL_CIPHER *);
const char *OBJ_nid2sn(int);
const char *SSL_alert_type_string_long(int);
const char *SSL_alert_desc_string_long(int);
SSL_SESSION *SSL_get1_session(SSL *);
int SSL_set_session(SSL *, SSL_SESSION *);
void SSL_SESSION_free(SSL_SESSION *);
int SSL_SESSION_is_resumable(const SSL_SESSION *);
int SSL_SESSION_has_ticket(const SSL_SESSION *);
unsigned long SSL_SESSION_get_ticket_lifetime_hint(const SSL_SESSION *);
void SSL_SESSION_get0_ticket(const SSL_SESSION *, const unsigned char **, size_t *);
const unsigned char *SSL_SESSION_get_id(const SSL_SESSION *, unsigned int *);
int SSL_SESSION_get_protocol_version(const SSL_SESSION *);
void alb_client_ctx_offer_npn(SSL_CTX *);
int alb_client_attach(SSL *, alb_client_state *);

/* memory BIOs */
BIO *BIO_new(const BIO_METHOD *);
const BIO_METHOD *BIO_s_mem(void);
int BIO_free(BIO *);
int BIO_write(BIO *, const void *, int);
int BIO_read(BIO *, void *, int);
size_t BIO_ctrl_pending(BIO *);
long BIO_set_mem_eof_return(BIO *, long);

/* Albatross helpers (CUSTOMIZATIONS) */
void *alb_malloc(size_t);
int alb_ctx_set_protocols(SSL_CTX *, alb_protos *alpn, alb_protos *npn);
int alb_ctx_set_ticket_ring(SSL_CTX *, alb_ticket_ring *);
int alb_keylog_open(const char *);
void alb_keylog_close(void);
void alb_ctx_enable_keylog(SSL_CTX *);
int alb_ssl_set_fresh_bios(SSL *);
size_t alb_ssl_feed_read(SSL *, const unsigned char *, size_t, unsigned char *, size_t, int *);
int alb_ssl_write(SSL *, const unsigned char *, size_t);
size_t alb_bio_drain(SSL *, unsigned char *, size_t);
BIO *alb_ssl_rbio(SSL *);
BIO *alb_ssl_wbio(SSL *);

/* SNI and OCSP callbacks implemented in Python (albatross.tls.context) */
extern "Python" int alb_py_servername_cb(SSL *, int *, void *);
extern "Python" int alb_py_status_cb(SSL *, void *);
"""

CUSTOMIZATIONS = r"""
#if OPENSSL_VERSION_NUMBER < 0x30000000L
#error "Albatross needs OpenSSL 3.0 or newer"
#endif

#define ALB_MAX_TICKET_KEYS 16
#define ALB_TICKET_KEY_LEN 80

typedef struct {
    unsigned int len;
    unsigned char wire[256];
} alb_protos;

typedef struct {
    int n;
    unsigned char keys[ALB_MAX_TICKET_KEYS * ALB_TICKET_KEY_LEN];
    unsigned long long encrypted;
    unsigned long long decrypted;
    unsigned long long unknown;
} alb_ticket_ring;

/* OPENSSL_malloc is a macro carrying __FILE__/__LINE__: wrap it. Memory handed to
   SSL_set_tlsext_status_ocsp_resp must come from here, because the SSL frees it. */
static void *alb_malloc(size_t n) { return OPENSSL_malloc(n); }

/* ---- ALPN and NPN -------------------------------------------------------------------
   Both lists live in alb_protos structs owned by the Python context object for as long as
   the SSL_CTX lives: OpenSSL keeps pointers into them after the callbacks return. */

static int alb_alpn_select_cb(SSL *s, const unsigned char **out, unsigned char *outlen,
                              const unsigned char *in, unsigned int inlen, void *arg)
{
    alb_protos *p = (alb_protos *)arg;
    unsigned char *sel = NULL;
    unsigned char sellen = 0;
    (void)s;
    if (p == NULL || p->len == 0)
        return SSL_TLSEXT_ERR_NOACK;
    /* The server's list is passed first: its order wins (h2 over http/1.1 whatever the
       client's order), and the selection points into our long-lived buffer. */
    if (SSL_select_next_proto(&sel, &sellen, p->wire, p->len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    *outlen = sellen;
    return SSL_TLSEXT_ERR_OK;
}

static int alb_npn_advertise_cb(SSL *s, const unsigned char **out, unsigned int *outlen, void *arg)
{
    alb_protos *p = (alb_protos *)arg;
    (void)s;
    if (p == NULL || p->len == 0)
        return SSL_TLSEXT_ERR_NOACK;
    *out = p->wire;
    *outlen = p->len;
    return SSL_TLSEXT_ERR_OK;
}

/* NPN exists only up to TLS 1.2. A client that offers NPN and no ALPN (or offers ALPN to a
   listener whose ALPN is off) would get TLS 1.3 and no protocol negotiation at all; cap such a
   connection at TLS 1.2 so NPN works, as it did on ALB before TLS 1.3. Policies whose minimum
   is TLS 1.3 are left alone. */
static int alb_client_hello_cb(SSL *s, int *al, void *arg)
{
    alb_protos *alpn = (alb_protos *)arg;
    const unsigned char *ext;
    size_t extlen;
    int min;
    (void)al;
    if (!SSL_client_hello_get0_ext(s, TLSEXT_TYPE_next_proto_neg, &ext, &extlen))
        return SSL_CLIENT_HELLO_SUCCESS;
    if (alpn != NULL && alpn->len > 0
        && SSL_client_hello_get0_ext(s, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext, &extlen))
        return SSL_CLIENT_HELLO_SUCCESS;
    min = SSL_get_min_proto_version(s);
    if (min != 0 && min > TLS1_2_VERSION)
        return SSL_CLIENT_HELLO_SUCCESS;
    SSL_set_max_proto_version(s, TLS1_2_VERSION);
    return SSL_CLIENT_HELLO_SUCCESS;
}

static int alb_ctx_set_protocols(SSL_CTX *ctx, alb_protos *alpn, alb_protos *npn)
{
    if (npn != NULL && npn->len > 0)
        SSL_CTX_set_client_hello_cb(ctx, alb_client_hello_cb, alpn);
    else
        SSL_CTX_set_client_hello_cb(ctx, NULL, NULL);
    if (alpn != NULL && alpn->len > 0)
        SSL_CTX_set_alpn_select_cb(ctx, alb_alpn_select_cb, alpn);
    else
        SSL_CTX_set_alpn_select_cb(ctx, NULL, NULL);
    if (npn != NULL && npn->len > 0)
        SSL_CTX_set_next_protos_advertised_cb(ctx, alb_npn_advertise_cb, npn);
    else
        SSL_CTX_set_next_protos_advertised_cb(ctx, NULL, NULL);
    return 1;
}

/* ---- Session-ticket keys ------------------------------------------------------------
   A ring of 80-byte keys (16-byte name, 32-byte AES-256-CBC key, 32-byte HMAC-SHA256 key),
   newest first: the first encrypts, every one decrypts. The ring is owned by Python and
   rewritten in place when the key file changes (single-threaded: the event loop thread). */


static int alb_ring_index = -1;
static char alb_sha256_name[] = "SHA256";

static int alb_set_hmac(EVP_MAC_CTX *hctx, unsigned char *key)
{
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, 32);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, alb_sha256_name, 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params);
}

/* Return values (SSL_CTX_set_tlsext_ticket_key_evp_cb(3)): encrypting, 1 = ticket, 0 = no
   ticket, <0 = fatal; decrypting, 1 = resume, 2 = resume and issue a new ticket, 0 = unknown
   key (full handshake), <0 = fatal. TLS 1.2 tickets are never renewed: OpenSSL writes a
   lifetime hint of 0 into a ticket renewed on resumption, and every TLS 1.2 ticket must carry
   the configured hint. TLS 1.3 tickets are renewed so single-use clients can resume again. */
static int alb_ticket_cb(SSL *s, unsigned char key_name[16], unsigned char *iv,
                         EVP_CIPHER_CTX *ctx, EVP_MAC_CTX *hctx, int enc)
{
    alb_ticket_ring *r = (alb_ticket_ring *)SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), alb_ring_index);
    unsigned char *k;
    int i;
    if (r == NULL || r->n <= 0)
        return enc ? 0 : 0;
    if (enc) {
        k = r->keys;
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) <= 0)
            return -1;
        memcpy(key_name, k, 16);
        if (!EVP_EncryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, k + 16, iv))
            return -1;
        if (!alb_set_hmac(hctx, k + 48))
            return -1;
        r->encrypted++;
        return 1;
    }
    for (i = 0; i < r->n && i < ALB_MAX_TICKET_KEYS; i++) {
        k = r->keys + (size_t)i * ALB_TICKET_KEY_LEN;
        if (memcmp(key_name, k, 16) != 0)
            continue;
        if (!alb_set_hmac(hctx, k + 48))
            return -1;
        if (!EVP_DecryptInit_ex(ctx, EVP_aes_256_cbc(), NULL, k + 16, iv))
            return -1;
        r->decrypted++;
        return SSL_version(s) >= TLS1_3_VERSION ? 2 : 1;
    }
    r->unknown++;
    return 0;
}

static int alb_ctx_set_ticket_ring(SSL_CTX *ctx, alb_ticket_ring *ring)
{
    if (alb_ring_index < 0) {
        alb_ring_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
        if (alb_ring_index < 0)
            return 0;
    }
    if (!SSL_CTX_set_ex_data(ctx, alb_ring_index, ring))
        return 0;
    return SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, alb_ticket_cb) == 1;
}

/* ---- NSS key log ----------------------------------------------------------------------
   One file per process, opened with mode 0600 and appended to, flushed per line so that a
   capture can be decrypted while the server runs. */

static FILE *alb_keylog_fp = NULL;

static void alb_keylog_cb(const SSL *s, const char *line)
{
    (void)s;
    if (alb_keylog_fp == NULL)
        return;
    fputs(line, alb_keylog_fp);
    fputc('\n', alb_keylog_fp);
    fflush(alb_keylog_fp);
}

static int alb_keylog_open(const char *path)
{
    FILE *fp;
    mode_t old = umask(077);
    fp = fopen(path, "a");
    umask(old);
    if (fp == NULL)
        return 0;
    if (alb_keylog_fp != NULL)
        fclose(alb_keylog_fp);
    alb_keylog_fp = fp;
    return 1;
}

static void alb_keylog_close(void)
{
    if (alb_keylog_fp != NULL)
        fclose(alb_keylog_fp);
    alb_keylog_fp = NULL;
}

static void alb_ctx_enable_keylog(SSL_CTX *ctx)
{
    SSL_CTX_set_keylog_callback(ctx, alb_keylog_cb);
}

/* ---- Memory BIOs ------------------------------------------------------------------------ */

/* Give the SSL a pair of memory BIOs (ownership passes to the SSL: never BIO_free them). */
static int alb_ssl_set_fresh_bios(SSL *s)
{
    BIO *rbio = BIO_new(BIO_s_mem());
    BIO *wbio = BIO_new(BIO_s_mem());
    if (rbio == NULL || wbio == NULL) {
        BIO_free(rbio);
        BIO_free(wbio);
        return 0;
    }
    /* An empty read BIO means "wait for more", not end of file. */
    BIO_set_mem_eof_return(rbio, -1);
    BIO_set_mem_eof_return(wbio, -1);
    SSL_set_bio(s, rbio, wbio);
    return 1;
}

/* The hot path in one call each way, so Python crosses into C twice per request, not a dozen
   times. alb_ssl_feed_read: queue ciphertext, then read plaintext into out until OpenSSL wants
   more input (*err = SSL_ERROR_WANT_READ), fails (*err = its SSL_get_error code) or out is full
   (*err = SSL_ERROR_NONE: call again with no input). The error queue is cleared before each
   SSL call, so *err is never a stale error from another connection. */
static size_t alb_ssl_feed_read(SSL *s, const unsigned char *in, size_t inlen,
                                unsigned char *out, size_t outcap, int *err)
{
    size_t total = 0, n = 0;
    if (inlen > 0 && BIO_write(SSL_get_rbio(s), in, (int)inlen) != (int)inlen) {
        *err = SSL_ERROR_SYSCALL;
        return 0;
    }
    while (total < outcap) {
        ERR_clear_error();
        if (!SSL_read_ex(s, out + total, outcap - total, &n)) {
            *err = SSL_get_error(s, 0);
            return total;
        }
        total += n;
    }
    *err = SSL_ERROR_NONE;
    return total;
}

/* Encrypt all of data (memory BIOs never make SSL_write partial). 1, or minus the SSL_get_error code. */
static int alb_ssl_write(SSL *s, const unsigned char *data, size_t len)
{
    size_t written = 0;
    ERR_clear_error();
    if (SSL_write_ex(s, data, len, &written))
        return 1;
    return -SSL_get_error(s, 0);
}

/* Move what OpenSSL wrote for the network into out: at most cap bytes. */
static size_t alb_bio_drain(SSL *s, unsigned char *out, size_t cap)
{
    BIO *wbio = SSL_get_wbio(s);
    size_t total = 0;
    int got;
    while (total < cap && BIO_ctrl_pending(wbio) > 0) {
        got = BIO_read(wbio, out + total, (int)(cap - total > 0x40000000 ? 0x40000000 : cap - total));
        if (got <= 0)
            break;
        total += (size_t)got;
    }
    return total;
}

static BIO *alb_ssl_rbio(SSL *s) { return SSL_get_rbio(s); }
static BIO *alb_ssl_wbio(SSL *s) { return SSL_get_wbio(s); }

/* ---- Client side (albatross probe) -----------------------------------------------------
   One alb_client_state per client SSL, owned by the Python connection object and reached
   through ex_data (NPN) and the message-callback argument (alerts). */

#define ALB_MAX_ALERTS 32

typedef struct {
    alb_protos npn_want;             /* our NPN preference, wire format */
    int npn_seen;                    /* the server sent NPN in its ServerHello */
    unsigned int npn_len;            /* the server's list, wire format (truncated to fit) */
    unsigned char npn_offered[1024];
    int nalerts;                     /* alerts seen: (sent?, level, description) triples */
    unsigned char alerts[ALB_MAX_ALERTS * 3];
} alb_client_state;

static int alb_client_index = -1;

/* NPN, client side: record what the server advertises, then choose by *our* preference (the
   client chooses in NPN). Without overlap NPN's rule is to ask for our first protocol anyway.
   OpenSSL has validated the list's framing and copies the selection at once. */
static int alb_npn_select_cb(SSL *s, unsigned char **out, unsigned char *outlen,
                             const unsigned char *in, unsigned int inlen, void *arg)
{
    alb_client_state *st = (alb_client_state *)SSL_get_ex_data(s, alb_client_index);
    unsigned char *want;
    unsigned int i, j;
    (void)arg;
    if (st == NULL || st->npn_want.len == 0)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    st->npn_seen = 1;
    st->npn_len = inlen < sizeof(st->npn_offered) ? inlen : (unsigned int)sizeof(st->npn_offered);
    memcpy(st->npn_offered, in, st->npn_len);
    want = st->npn_want.wire;
    for (i = 0; i < st->npn_want.len; i += 1u + want[i]) {
        for (j = 0; j < inlen && j + 1u + in[j] <= inlen; j += 1u + in[j]) {
            if (in[j] == want[i] && memcmp(in + j + 1, want + i + 1, want[i]) == 0) {
                *out = want + i + 1;
                *outlen = want[i];
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    *out = want + 1;
    *outlen = want[0];
    return SSL_TLSEXT_ERR_OK;
}

/* Every alert that crosses the wire, either way (TLS 1.3 ones after decryption). */
static void alb_client_msg_cb(int write_p, int version, int content_type, const void *buf,
                              size_t len, SSL *s, void *arg)
{
    alb_client_state *st = (alb_client_state *)arg;
    const unsigned char *b = (const unsigned char *)buf;
    (void)version; (void)s;
    if (st == NULL || content_type != SSL3_RT_ALERT || len < 2 || st->nalerts >= ALB_MAX_ALERTS)
        return;
    st->alerts[st->nalerts * 3] = (unsigned char)(write_p ? 1 : 0);
    st->alerts[st->nalerts * 3 + 1] = b[0];
    st->alerts[st->nalerts * 3 + 2] = b[1];
    st->nalerts++;
}

/* A client context offers NPN only if it has a select callback. */
static void alb_client_ctx_offer_npn(SSL_CTX *ctx)
{
    SSL_CTX_set_next_proto_select_cb(ctx, alb_npn_select_cb, NULL);
}

static int alb_client_attach(SSL *s, alb_client_state *st)
{
    if (alb_client_index < 0) {
        alb_client_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
        if (alb_client_index < 0)
            return 0;
    }
    if (!SSL_set_ex_data(s, alb_client_index, st))
        return 0;
    SSL_set_msg_callback(s, alb_client_msg_cb);
    SSL_set_msg_callback_arg(s, st);
    return 1;
}

static int alb_py_servername_cb(SSL *, int *, void *);
static int alb_py_status_cb(SSL *, void *);
"""
