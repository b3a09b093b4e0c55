/* One pass over an HTTP/1.1 field block for the request path's fast path.
 *
 * The block is the bytes between the start line's CRLF and the empty line that ends the head:
 * "Name: value\r\n" repeated (possibly zero times). llhttp has validated the head (or will, on
 * the same bytes, before anything is forwarded); this scan decides whether the block is in the
 * one form the fast path reproduces byte for byte, finds the fields the request path handles
 * itself, and copies every other line, unchanged and in order, into ``kept``.
 *
 * "Canonical" is what the general path would write for the same field: the name, ": ", and the
 * value as llhttp reports it (leading whitespace removed, trailing kept). So a line qualifies when
 * its name is made of [A-Za-z0-9-], the colon is followed by exactly one SP and the value does
 * not start with SP or HT, and every value byte is HT, 0x20-0x7E or 0x80-0xFF. Anything else
 * (obs-fold, bare CR or LF, other token characters, control characters, odd spacing) returns
 * ALB_H1_GENERAL and the general path, which stays the reference, handles the request.
 *
 * out[] receives, for each recorded kind k, out[2k] = value offset in the block and
 * out[2k+1] = value length (offset ALB_H1_ABSENT when the field is absent), then
 * out[2*ALB_H1_KINDS] = bytes written to kept and out[2*ALB_H1_KINDS+1] = number of fields.
 */

#include <stdint.h>
#include <string.h>

#define ALB_H1_OK 0
#define ALB_H1_GENERAL 1
#define ALB_H1_KINDS 8
#define ALB_H1_ABSENT 0xFFFFFFFFu

/* Recorded kinds (out[] slots). Request mode: host, content-length, x-forwarded-for,
   x-amzn-trace-id, cookie, user-agent, connection. Response mode: content-length, connection,
   date, set-cookie. The same slot numbers serve both modes. */
enum {
    K_HOST = 0, K_CL = 1, K_XFF = 2, K_TRACE = 3, K_COOKIE = 4, K_UA = 5, K_CONN = 6, K_DATE = 7,
    K_SET_COOKIE = 4 /* response mode reuses the cookie slot */
};

/* What to do with a field: record it (slot), keep or drop its line, or give up (general path). */
#define A_KEEP 0x100
#define A_DROP 0x200
#define A_GENERAL 0x400
#define A_ONCE 0x800 /* a second line of this field sends the request to the general path */
#define A_SLOT_MASK 0xFF
#define A_NONE 0xFF

static int alb_h1_lower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

static int alb_h1_name_is(const uint8_t *p, size_t n, const char *lit)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (lit[i] == 0 || alb_h1_lower(p[i]) != lit[i])
            return 0;
    }
    return lit[n] == 0;
}

/* Names up to 23 bytes (x-amzn-tls-cipher-suite) are looked up; the table is tried only for
   names of a length some rule has, so a typical browser field costs one bit test. */
#define ALB_H1_MAX_RULE_NAME 23

struct alb_h1_rule { const char *name; int action; };

static const struct alb_h1_rule alb_h1_request_rules[] = {
    {"host", A_DROP | A_ONCE | K_HOST},
    {"content-length", A_DROP | A_ONCE | K_CL},
    {"x-forwarded-for", A_DROP | A_ONCE | K_XFF},
    {"x-amzn-trace-id", A_DROP | A_ONCE | K_TRACE},
    {"cookie", A_KEEP | A_ONCE | K_COOKIE},
    {"user-agent", A_KEEP | A_ONCE | K_UA},
    {"connection", A_DROP | A_ONCE | K_CONN},
    {"x-forwarded-proto", A_DROP | A_NONE},
    {"x-forwarded-port", A_DROP | A_NONE},
    {"x-amzn-tls-version", A_DROP | A_NONE},
    {"x-amzn-tls-cipher-suite", A_DROP | A_NONE},
    {"keep-alive", A_DROP | A_NONE},
    {"proxy-connection", A_DROP | A_NONE},
    {"http2-settings", A_DROP | A_NONE},
    {"te", A_DROP | A_NONE},
    {"transfer-encoding", A_GENERAL},
    {"upgrade", A_GENERAL},
    {"expect", A_GENERAL},
    {0, 0},
};

static const struct alb_h1_rule alb_h1_response_rules[] = {
    {"content-length", A_DROP | A_ONCE | K_CL},
    {"connection", A_DROP | A_ONCE | K_CONN},
    {"date", A_KEEP | A_ONCE | K_DATE},
    {"set-cookie", A_KEEP | K_SET_COOKIE},
    {"keep-alive", A_DROP | A_NONE},
    {"proxy-connection", A_DROP | A_NONE},
    {"http2-settings", A_DROP | A_NONE},
    {"te", A_DROP | A_NONE},
    {"trailer", A_DROP | A_NONE},
    {"upgrade", A_DROP | A_NONE},
    {"transfer-encoding", A_GENERAL},
    {0, 0},
};

static uint32_t alb_h1_lengths(const struct alb_h1_rule *rules)
{
    uint32_t mask = 0;
    for (; rules->name != 0; rules++)
        mask |= 1u << strlen(rules->name);
    return mask;
}

static int alb_h1_action(const struct alb_h1_rule *rules, uint32_t lengths, const uint8_t *name, size_t n)
{
    const struct alb_h1_rule *r;
    if (n > ALB_H1_MAX_RULE_NAME || !(lengths & (1u << n)))
        return A_KEEP | A_NONE;
    for (r = rules; r->name != 0; r++) {
        if (r->name[0] == alb_h1_lower(name[0]) && alb_h1_name_is(name, n, r->name))
            return r->action;
    }
    return A_KEEP | A_NONE;
}

/* A Connection value the fast path may drop: exactly "keep-alive" or "close" (any case). */
static int alb_h1_plain_connection(const uint8_t *v, size_t n)
{
    return (n == 10 && alb_h1_name_is(v, n, "keep-alive")) || (n == 5 && alb_h1_name_is(v, n, "close"));
}

static int alb_h1_name_char(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

/* A rule table and the name lengths it has (filled in on first use). */
struct alb_h1_table { const struct alb_h1_rule *rules; uint32_t lengths; };

static struct alb_h1_table alb_h1_request_table = {alb_h1_request_rules, 0};
static struct alb_h1_table alb_h1_response_table = {alb_h1_response_rules, 0};

static int alb_h1_scan(struct alb_h1_table *table, const uint8_t *blk, size_t n, uint8_t *kept, uint32_t *out)
{
    const struct alb_h1_rule *rules = table->rules;
    uint32_t lengths;
    size_t pos = 0, kept_len = 0;
    uint32_t fields = 0;
    int k;
    if (!table->lengths)
        table->lengths = alb_h1_lengths(rules);
    lengths = table->lengths;
    for (k = 0; k < ALB_H1_KINDS; k++) {
        out[2 * k] = ALB_H1_ABSENT;
        out[2 * k + 1] = 0;
    }
    while (pos < n) {
        size_t start = pos, name_len, value_at, end;
        int action, slot;
        while (pos < n && alb_h1_name_char(blk[pos]))
            pos++;
        name_len = pos - start;
        if (name_len == 0 || pos + 1 >= n || blk[pos] != ':' || blk[pos + 1] != ' ')
            return ALB_H1_GENERAL;
        pos += 2;
        value_at = pos;
        if (pos < n && (blk[pos] == ' ' || blk[pos] == '\t'))
            return ALB_H1_GENERAL;
        for (;;) {
            uint8_t c;
            if (pos >= n)
                return ALB_H1_GENERAL; /* no CRLF at the end */
            c = blk[pos];
            if (c == '\r')
                break;
            if ((c < 0x20 && c != '\t') || c == 0x7F)
                return ALB_H1_GENERAL;
            pos++;
        }
        if (pos + 1 >= n || blk[pos + 1] != '\n')
            return ALB_H1_GENERAL;
        end = pos;
        pos += 2;
        fields++;
        action = alb_h1_action(rules, lengths, blk + start, name_len);
        if (action & A_GENERAL)
            return ALB_H1_GENERAL;
        slot = action & A_SLOT_MASK;
        if (slot != A_NONE) {
            if (out[2 * slot] != ALB_H1_ABSENT) {
                if (action & A_ONCE)
                    return ALB_H1_GENERAL;
            } else {
                out[2 * slot] = (uint32_t)value_at;
                out[2 * slot + 1] = (uint32_t)(end - value_at);
            }
            if (slot == K_CONN && !alb_h1_plain_connection(blk + value_at, end - value_at))
                return ALB_H1_GENERAL;
        }
        if (action & A_KEEP) {
            memcpy(kept + kept_len, blk + start, pos - start);
            kept_len += pos - start;
        }
    }
    out[2 * ALB_H1_KINDS] = (uint32_t)kept_len;
    out[2 * ALB_H1_KINDS + 1] = fields;
    return ALB_H1_OK;
}

/* ``kept`` must hold at least ``n`` bytes; ``out`` 2 * ALB_H1_KINDS + 2 entries. */
static int alb_h1_scan_request(const uint8_t *blk, size_t n, uint8_t *kept, uint32_t *out)
{
    return alb_h1_scan(&alb_h1_request_table, blk, n, kept, out);
}

static int alb_h1_scan_response(const uint8_t *blk, size_t n, uint8_t *kept, uint32_t *out)
{
    return alb_h1_scan(&alb_h1_response_table, blk, n, kept, out);
}
