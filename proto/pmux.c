/*
 * pmux.c - requests multiplexed over one pchan (pmux.h): the HELLO handshake, the reader
 * thread that checks and routes frames, per-request queues with credit-based flow control,
 * and a small sender thread for the replies the mux itself makes (PONG, ERROR 501/503) so
 * that the reader never writes and so never blocks on the peer.
 *
 * Locks: mu guards all state (streams, queues, counters, flags, slots); wmu serialises writes
 * so that each frame (header + payload) goes out whole. mu is never held while writing.
 *
 * The shared window (pmux.h): its slots are PROTO_DATA_MAX bytes each; slot_out[i] is 1 while
 * slot i is the peer's (writer: lent by a DATA_SHARED, until SHARED_FREE) or ours (reader:
 * held by a DATA frame pointing into it, until the frame is freed). The reader returns freed
 * slots in batches (free_batch, a quarter of the slots, or with the next CREDIT, in the same
 * write), so that the writer's reader thread wakes once per batch, not once per slot; at
 * most free_batch - 1 slots wait in free_pending, which only ever costs the writer a slot.
 */
#include "pmux.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plat.h"
#include "pshm.h"

#define PMUX_DEFAULT_WINDOW  (2048u * 1024u)
#define PMUX_DEFAULT_STREAMS 64u
#define PMUX_DEFAULT_STALL   60000u
#define PMUX_MAX_CTL_QUEUED  256u /* control frames queued on one request: more is abuse */
/* DATA frames queued on one request: bounds the bookkeeping (~60 bytes a frame) a peer
 * sending tiny frames could make us hold within its window; honest senders send pieces
 * of kilobytes, far from this many unconsumed at once */
#define PMUX_MAX_DATA_QUEUED 4096u
#define PMUX_COMBINE_MAX     4096u
#define PMUX_SEEN_BITS       65536u /* peer ids remembered past the oldest unseen one */
#define PMUX_NO_SLOT         UINT32_MAX

struct pmux_stream {
    struct pmux *m;
    uint32_t id;
    struct plat_cond *cv;
    struct proto_frame **q; /* ring of received frames */
    size_t qcap, qhead, qlen;
    uint32_t qctl;        /* queued frames other than DATA */
    uint64_t rx_inflight; /* DATA bytes received and not yet credited back */
    uint64_t rx_consumed; /* of those, freed by the application, not yet credited */
    uint64_t tx_sent;     /* DATA bytes sent */
    uint64_t tx_granted;  /* CREDIT received */
    int local_fin, peer_fin, peer_abort;
    int in_table;
};

/* A reply the mux makes itself, sent by the sender thread. */
struct pmux_reply {
    struct pmux_reply *next;
    size_t len;
    uint8_t bytes[];
};

struct pmux {
    struct pchan *ch;
    struct pmux_config cfg;
    struct proto_hello mine;
    struct plat_mutex *mu, *wmu;
    struct plat_cond *cv;  /* ready / closed */
    struct plat_cond *rcv; /* replies queued / stopping */
    struct plat_thread *reader, *sender;
    int ready, closed, shutting, stopping;
    struct err close_err;
    struct proto_hello peer;
    struct pmux_stream **streams;
    uint32_t nstreams;
    uint32_t next_id;
    /* Which of the peer's ids were already used: every id (as id / 2) below seen_lo, and
     * those with their bit set in the ring seen[] from seen_lo up. Openers may put their
     * first frames on the wire out of id order, so "above the highest seen" would not do. */
    uint32_t seen_lo;
    uint8_t seen[PMUX_SEEN_BITS / 8];
    struct pmux_reply *replies, **replies_tail;
    struct pshm *shared; /* the shared window, or NULL */
    uint32_t nslots;
    uint8_t *slot_out;
    uint32_t slot_next;    /* writer: where the search for a free slot starts */
    int shared_on;         /* writer: the peer mapped the window; DATA may go through it */
    uint64_t shared_bytes; /* DATA bytes sent or received through the window */
    uint32_t free_pending[PROTO_SHARED_SLOTS_MAX]; /* reader: freed, not yet told */
    uint32_t nfree_pending, free_batch;
};

static uint64_t pmux_now(void)
{
    return plat_monotonic_ms();
}

/* Waits on cv until woken or the deadline (UINT64_MAX: none); 0 or ERR_TIMEOUT. */
static int pmux_wait(struct plat_cond *cv, struct plat_mutex *mu, uint64_t deadline)
{
    uint64_t now;

    if (deadline == UINT64_MAX)
        return plat_cond_wait(cv, mu, UINT32_MAX);
    now = pmux_now();
    if (now >= deadline)
        return ERR_TIMEOUT;
    if (deadline - now >= UINT32_MAX)
        return plat_cond_wait(cv, mu, UINT32_MAX - 1);
    plat_cond_wait(cv, mu, (uint32_t)(deadline - now));
    return 0; /* the caller re-checks its condition and the deadline */
}

static uint64_t pmux_deadline(uint32_t timeout_ms)
{
    return timeout_ms == UINT32_MAX ? UINT64_MAX : pmux_now() + timeout_ms;
}

static int pmux_closed_err(struct pmux *m, struct err *e)
{
    return err_set(e, ERR_IO, "the channel to the %s is closed: %s",
                   m->peer.role[0] ? m->peer.role : "peer",
                   m->close_err.msg[0] ? m->close_err.msg : "unknown reason");
}

/* ---- writing ---- */

/* 0 while the channel is up; the reason it is down (ERR_IO ...) otherwise. */
static int pmux_check_open(struct pmux *m, struct err *e)
{
    int rc = 0;

    plat_mutex_lock(m->mu);
    if (m->closed || m->shutting)
        rc = pmux_closed_err(m, e);
    plat_mutex_unlock(m->mu);
    return rc;
}

static int pmux_write_frame(struct pmux *m, uint32_t type, uint32_t id, const void *payload,
                            size_t len, struct err *e)
{
    uint8_t buf[PROTO_HEADER_SIZE + PMUX_COMBINE_MAX];
    int rc;

    if ((rc = pmux_check_open(m, e)) < 0)
        return rc;

    proto_header_encode(buf, type, (uint32_t)len, id);
    plat_mutex_lock(m->wmu);
    if (len <= PMUX_COMBINE_MAX) {
        if (len)
            memcpy(buf + PROTO_HEADER_SIZE, payload, len);
        rc = pchan_write_all(m->ch, buf, PROTO_HEADER_SIZE + len, e);
    } else {
        rc = pchan_write_all(m->ch, buf, PROTO_HEADER_SIZE, e);
        if (rc == 0)
            rc = pchan_write_all(m->ch, payload, len, e);
    }
    plat_mutex_unlock(m->wmu);
    if (rc < 0)
        err_prefix(e, "sending %s on request %lu", proto_type_name(type), (unsigned long)id);
    return rc;
}

/* Writes whole frames already encoded at buf (errors are the channel's end: ignored here). */
static int pmux_write_raw(struct pmux *m, const uint8_t *buf, size_t len)
{
    int rc;

    if ((rc = pmux_check_open(m, NULL)) < 0)
        return rc;
    plat_mutex_lock(m->wmu);
    rc = pchan_write_all(m->ch, buf, len, NULL);
    plat_mutex_unlock(m->wmu);
    return rc;
}

/* Queues a reply for the sender thread (called with mu held, from the reader). */
static void pmux_queue_reply(struct pmux *m, uint32_t type, uint32_t id, const void *payload,
                             size_t len)
{
    struct pmux_reply *r = malloc(sizeof(*r) + PROTO_HEADER_SIZE + len);

    if (!r)
        return; /* the peer times out; nothing better to do without memory */
    r->next = NULL;
    r->len = PROTO_HEADER_SIZE + len;
    proto_header_encode(r->bytes, type, (uint32_t)len, id);
    if (len)
        memcpy(r->bytes + PROTO_HEADER_SIZE, payload, len);
    *m->replies_tail = r;
    m->replies_tail = &r->next;
    plat_cond_signal(m->rcv);
}

static void pmux_queue_error(struct pmux *m, uint32_t id, int status, const char *message)
{
    struct proto_error pe;
    char *json = NULL;
    size_t len = 0;

    pe.status = status;
    snprintf(pe.message, sizeof(pe.message), "%s", message);
    if (proto_error_encode(&pe, &json, &len, NULL) == 0)
        pmux_queue_reply(m, PROTO_ERROR, id, json, len);
    free(json);
}

/* Marks the slot of frame f free and pending (reader side); 1 if a batch is due. With mu held. */
static int pmux_slot_release(struct pmux *m, struct proto_frame *f)
{
    uint32_t slot = f->shared_slot - 1;

    f->shared_slot = 0;
    m->slot_out[slot] = 0;
    m->free_pending[m->nfree_pending++] = slot;
    return m->nfree_pending >= m->free_batch;
}

/* Encodes the pending frees as a whole SHARED_FREE frame at out (room for
 * PROTO_HEADER_SIZE + PROTO_SHARED_FREE_MAX) and clears them; its length, 0 if none. With mu
 * held. */
static size_t pmux_free_frame(struct pmux *m, uint8_t *out)
{
    size_t len = 4u * m->nfree_pending;

    if (!len)
        return 0;
    proto_header_encode(out, PROTO_SHARED_FREE, (uint32_t)len, 0);
    proto_shared_free_encode(out + PROTO_HEADER_SIZE, m->free_pending, m->nfree_pending);
    m->nfree_pending = 0;
    return PROTO_HEADER_SIZE + len;
}

/* Frees a frame the application never saw; a slot of the shared window it held goes back to
 * the peer with any pending ones (SHARED_FREE, by the sender thread). With mu held. */
static void pmux_drop_locked(struct pmux *m, struct proto_frame *f)
{
    uint8_t buf[PROTO_HEADER_SIZE + PROTO_SHARED_FREE_MAX];
    size_t n;

    if (f && f->shared_slot) {
        pmux_slot_release(m, f);
        if ((n = pmux_free_frame(m, buf)) > 0)
            pmux_queue_reply(m, PROTO_SHARED_FREE, 0, buf + PROTO_HEADER_SIZE,
                             n - PROTO_HEADER_SIZE);
    }
    proto_frame_free(f);
}

static void pmux_sender(void *arg)
{
    struct pmux *m = arg;
    struct pmux_reply *r;

    plat_mutex_lock(m->mu);
    for (;;) {
        while (!m->replies && !m->stopping)
            plat_cond_wait(m->rcv, m->mu, UINT32_MAX);
        if (m->stopping)
            break;
        r = m->replies;
        m->replies = r->next;
        if (!m->replies)
            m->replies_tail = &m->replies;
        if (m->closed || m->shutting) {
            free(r);
            continue;
        }
        plat_mutex_unlock(m->mu);
        plat_mutex_lock(m->wmu);
        (void)pchan_write_all(m->ch, r->bytes, r->len, NULL);
        plat_mutex_unlock(m->wmu);
        free(r);
        plat_mutex_lock(m->mu);
    }
    while ((r = m->replies) != NULL) {
        m->replies = r->next;
        free(r);
    }
    m->replies_tail = &m->replies;
    plat_mutex_unlock(m->mu);
}

/* ---- streams ---- */

static int pmux_stream_new(struct pmux *m, uint32_t id, struct pmux_stream **out, struct err *e)
{
    struct pmux_stream *s = calloc(1, sizeof(*s));

    *out = NULL;
    if (!s)
        return err_set(e, ERR_NOMEM, "out of memory for a request");
    if (plat_cond_create(&s->cv, e) < 0) {
        free(s);
        return e ? e->code : ERR_NOMEM;
    }
    s->m = m;
    s->id = id;
    *out = s;
    return 0;
}

/* With mu held. */
static void pmux_table_add(struct pmux *m, struct pmux_stream *s)
{
    m->streams[m->nstreams++] = s;
    s->in_table = 1;
}

static void pmux_table_remove(struct pmux *m, struct pmux_stream *s)
{
    for (uint32_t i = 0; i < m->nstreams; i++) {
        if (m->streams[i] == s) {
            m->streams[i] = m->streams[--m->nstreams];
            break;
        }
    }
    s->in_table = 0;
}

static struct pmux_stream *pmux_table_find(struct pmux *m, uint32_t id)
{
    for (uint32_t i = 0; i < m->nstreams; i++)
        if (m->streams[i]->id == id)
            return m->streams[i];
    return NULL;
}

static int pmux_enqueue(struct pmux_stream *s, struct proto_frame *f)
{
    if (s->qlen == s->qcap) {
        size_t ncap = s->qcap ? s->qcap * 2 : 8;
        struct proto_frame **nq = malloc(ncap * sizeof(*nq));
        if (!nq)
            return ERR_NOMEM;
        for (size_t i = 0; i < s->qlen; i++)
            nq[i] = s->q[(s->qhead + i) % s->qcap];
        free(s->q);
        s->q = nq;
        s->qcap = ncap;
        s->qhead = 0;
    }
    s->q[(s->qhead + s->qlen) % s->qcap] = f;
    s->qlen++;
    plat_cond_broadcast(s->cv);
    return 0;
}

static struct proto_frame *pmux_dequeue(struct pmux_stream *s)
{
    struct proto_frame *f;

    if (s->qlen == 0)
        return NULL;
    f = s->q[s->qhead];
    s->qhead = (s->qhead + 1) % s->qcap;
    s->qlen--;
    if (f->h.type != PROTO_DATA)
        s->qctl--;
    return f;
}

static void pmux_stream_destroy(struct pmux_stream *s)
{
    struct pmux *m = s->m;
    struct proto_frame *f;

    plat_mutex_lock(m->mu);
    while ((f = pmux_dequeue(s)) != NULL)
        pmux_drop_locked(m, f);
    plat_mutex_unlock(m->mu);
    free(s->q);
    plat_cond_destroy(s->cv);
    free(s);
}

static int pmux_is_terminal(uint32_t type)
{
    return type == PROTO_END || type == PROTO_ERROR || type == PROTO_CANCEL ||
           type == PROTO_UPLOAD_RESULT || type == PROTO_FILE_RESULT || type == PROTO_PONG;
}

static int pmux_is_peer_id(const struct pmux *m, uint32_t id)
{
    return (id & 1u) != (m->cfg.initiator_odd ? 1u : 0u);
}

/* ---- the reader ---- */

static int pmux_on_hello(struct pmux *m, struct proto_frame *f, struct err *why)
{
    struct proto_hello peer;
    int rc;

    if (m->ready)
        return err_set(why, ERR_PROTOCOL, "the peer sent a second HELLO");
    if (f->h.request_id != 0)
        return err_set(why, ERR_PROTOCOL, "the peer sent HELLO on request %lu instead of 0",
                       (unsigned long)f->h.request_id);
    rc = proto_hello_decode(f->payload, f->h.length, &peer, why);
    if (rc < 0) {
        err_prefix(why, "the peer's HELLO is malformed");
        why->code = ERR_PROTOCOL;
        return ERR_PROTOCOL;
    }
    rc = proto_hello_check(&m->mine, &peer, why);
    if (rc < 0)
        return rc;
    if (peer.window == 0)
        return err_set(why, ERR_PROTOCOL, "the peer's HELLO advertises a window of 0 bytes");
    plat_mutex_lock(m->mu);
    m->peer = peer;
    m->ready = 1;
    m->shared_on = m->shared && pshm_writable(m->shared) && peer.shared == m->mine.shared;
    plat_cond_broadcast(m->cv);
    plat_mutex_unlock(m->mu);
    return 0;
}

static int pmux_seen_bit(const struct pmux *m, uint32_t k)
{
    return (m->seen[(k % PMUX_SEEN_BITS) / 8] >> (k % 8)) & 1;
}

static void pmux_seen_put(struct pmux *m, uint32_t k, int v)
{
    uint8_t bit = (uint8_t)(1u << (k % 8));
    if (v)
        m->seen[(k % PMUX_SEEN_BITS) / 8] |= bit;
    else
        m->seen[(k % PMUX_SEEN_BITS) / 8] &= (uint8_t)~bit;
}

/* Marks the peer's id as used; returns 1 if it was fresh. With mu held. */
static int pmux_seen_claim(struct pmux *m, uint32_t id)
{
    uint32_t k = id / 2;

    if (k < m->seen_lo)
        return 0;
    if (k - m->seen_lo >= PMUX_SEEN_BITS) {
        /* Too far ahead: forget the oldest unseen ids (their late frames will be dropped). */
        uint32_t new_lo = k - PMUX_SEEN_BITS + 1;
        if (new_lo - m->seen_lo >= PMUX_SEEN_BITS)
            memset(m->seen, 0, sizeof(m->seen));
        else
            for (uint32_t j = m->seen_lo; j != new_lo; j++)
                pmux_seen_put(m, j, 0);
        m->seen_lo = new_lo;
    } else if (pmux_seen_bit(m, k)) {
        return 0;
    }
    pmux_seen_put(m, k, 1);
    while (pmux_seen_bit(m, m->seen_lo)) {
        pmux_seen_put(m, m->seen_lo, 0);
        m->seen_lo++;
    }
    return 1;
}

/* A frame for an id that is not open. Called with mu held; consumes f. */
static void pmux_on_new(struct pmux *m, struct proto_frame *f, struct pmux_stream **deliver)
{
    uint32_t id = f->h.request_id, type = f->h.type;
    char msg[128];

    *deliver = NULL;
    if (!pmux_is_peer_id(m, id) || !pmux_seen_claim(m, id))
        goto drop; /* ours and closed, or the peer's and already finished */
    switch (type) {
    case PROTO_DATA:
    case PROTO_CREDIT:
    case PROTO_END:
    case PROTO_CANCEL:
    case PROTO_ERROR:
    case PROTO_PONG:
    case PROTO_UPLOAD_RESULT:
    case PROTO_FILE_RESULT:
        goto drop; /* nothing to answer: the peer opened and abandoned it */
    case PROTO_PING:
        pmux_queue_reply(m, PROTO_PONG, id, NULL, 0);
        goto drop;
    default:
        break;
    }
    if (!m->cfg.on_request) {
        snprintf(msg, sizeof(msg), "%s requests are not handled here", proto_type_name(type));
        pmux_queue_error(m, id, 501, msg);
        goto drop;
    }
    if (m->nstreams >= m->cfg.max_streams) {
        snprintf(msg, sizeof(msg), "too many requests at once (%lu); try again later",
                 (unsigned long)m->cfg.max_streams);
        pmux_queue_error(m, id, 503, msg);
        goto drop;
    }
    if (pmux_stream_new(m, id, deliver, NULL) < 0) {
        pmux_queue_error(m, id, 503, "out of memory for a new request");
        goto drop;
    }
    pmux_table_add(m, *deliver);
    return;
drop:
    pmux_drop_locked(m, f);
}

/*
 * A DATA_SHARED from the writer: checked, and turned in place into the DATA frame the
 * application sees, its payload pointing into the slot (held until pmux_frame_free).
 */
static int pmux_shared_in(struct pmux *m, struct proto_frame *f, struct err *why)
{
    uint32_t slot = 0, len = 0;
    int rc = 0;

    if (!m->shared || pshm_writable(m->shared))
        return err_set(why, ERR_PROTOCOL,
                       "the peer sent DATA_SHARED but this side reads no shared window");
    if (proto_data_shared_decode(f->payload, f->h.length, &slot, &len, why) < 0) {
        why->code = ERR_PROTOCOL;
        return ERR_PROTOCOL;
    }
    if (slot >= m->nslots || len == 0 || len > PROTO_DATA_MAX)
        return err_set(why, ERR_PROTOCOL,
                       "the peer sent DATA_SHARED for %lu bytes in slot %lu; the window has %lu "
                       "slots of %u bytes",
                       (unsigned long)len, (unsigned long)slot, (unsigned long)m->nslots,
                       PROTO_DATA_MAX);
    plat_mutex_lock(m->mu);
    if (m->slot_out[slot]) {
        rc = err_set(why, ERR_PROTOCOL,
                     "the peer reused slot %lu of the shared window before this side freed it",
                     (unsigned long)slot);
    } else {
        m->slot_out[slot] = 1;
        m->shared_bytes += len;
        f->h.type = PROTO_DATA;
        f->h.length = len;
        f->payload = pshm_base(m->shared) + (size_t)slot * PROTO_DATA_MAX;
        f->shared_slot = slot + 1;
    }
    plat_mutex_unlock(m->mu);
    return rc;
}

/* A SHARED_FREE from the reader: those slots are ours again. */
static int pmux_shared_freed(struct pmux *m, const struct proto_frame *f, struct err *why)
{
    uint32_t slots[PROTO_SHARED_SLOTS_MAX];
    size_t n = 0;
    int rc = 0;

    if (!m->shared_on)
        return err_set(why, ERR_PROTOCOL,
                       "the peer sent SHARED_FREE but this side lent it no shared window");
    if (f->h.request_id != 0)
        return err_set(why, ERR_PROTOCOL, "the peer sent SHARED_FREE on request %lu instead of 0",
                       (unsigned long)f->h.request_id);
    if (proto_shared_free_decode(f->payload, f->h.length, slots, &n, why) < 0) {
        why->code = ERR_PROTOCOL;
        return ERR_PROTOCOL;
    }
    plat_mutex_lock(m->mu);
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (slots[i] >= m->nslots || !m->slot_out[slots[i]])
            rc = err_set(why, ERR_PROTOCOL,
                         "the peer freed slot %lu of the shared window, which it did not have",
                         (unsigned long)slots[i]);
        else
            m->slot_out[slots[i]] = 0;
    }
    plat_mutex_unlock(m->mu);
    return rc;
}

/* Routes one frame; consumes f. A negative return closes the channel with why. */
static int pmux_dispatch(struct pmux *m, struct proto_frame *f, struct err *why)
{
    uint32_t id = f->h.request_id, type = f->h.type;
    struct pmux_stream *s, *fresh = NULL;
    int rc = 0;

    if (type == PROTO_HELLO) {
        rc = pmux_on_hello(m, f, why);
        proto_frame_free(f);
        return rc;
    }
    if (!m->ready) {
        plat_mutex_lock(m->mu);
        pmux_drop_locked(m, f);
        plat_mutex_unlock(m->mu);
        return err_set(why, ERR_PROTOCOL, "the peer sent %s before HELLO", proto_type_name(type));
    }
    if (type == PROTO_SHARED_FREE) {
        rc = pmux_shared_freed(m, f, why);
        proto_frame_free(f);
        return rc;
    }
    if (type == PROTO_LOG || id == 0) {
        struct proto_log lg;
        if (type != PROTO_LOG || id != 0) {
            rc = err_set(why, ERR_PROTOCOL, "the peer sent %s on request %lu",
                         proto_type_name(type), (unsigned long)id);
        } else if (m->cfg.on_log && proto_log_decode(f->payload, f->h.length, &lg, NULL) == 0) {
            m->cfg.on_log(m->cfg.ctx, &lg);
        }
        proto_frame_free(f);
        return rc;
    }

    plat_mutex_lock(m->mu);
    s = pmux_table_find(m, id);
    if (!s) {
        pmux_on_new(m, f, &fresh);
        plat_mutex_unlock(m->mu);
        if (fresh)
            m->cfg.on_request(m->cfg.ctx, fresh, f);
        return 0;
    }
    if (type == PROTO_CREDIT) {
        uint32_t n = 0;
        rc = proto_credit_decode(f->payload, f->h.length, &n, why);
        if (rc == 0 && s->tx_granted + n > s->tx_sent)
            rc = err_set(why, ERR_PROTOCOL,
                         "the peer granted credit for %llu DATA bytes on request %lu, more than "
                         "were sent",
                         (unsigned long long)(s->tx_granted + n - s->tx_sent), (unsigned long)id);
        if (rc == 0) {
            s->tx_granted += n;
            plat_cond_broadcast(s->cv);
        }
        proto_frame_free(f);
        goto out;
    }
    if (type == PROTO_DATA) {
        if (s->qlen - s->qctl >= PMUX_MAX_DATA_QUEUED) {
            rc = err_set(why, ERR_PROTOCOL,
                         "the peer queued more than %u DATA frames on request %lu",
                         PMUX_MAX_DATA_QUEUED, (unsigned long)id);
            pmux_drop_locked(m, f);
            goto out;
        }
        if (s->rx_inflight + f->h.length > m->mine.window) {
            rc = err_set(why, ERR_PROTOCOL,
                         "the peer sent %llu DATA bytes on request %lu beyond the window of %lu "
                         "bytes",
                         (unsigned long long)(s->rx_inflight + f->h.length - m->mine.window),
                         (unsigned long)id, (unsigned long)m->mine.window);
            pmux_drop_locked(m, f);
            goto out;
        }
        s->rx_inflight += f->h.length;
    } else {
        if (s->qctl >= PMUX_MAX_CTL_QUEUED) {
            rc = err_set(why, ERR_PROTOCOL,
                         "the peer queued more than %u control frames on request %lu",
                         PMUX_MAX_CTL_QUEUED, (unsigned long)id);
            proto_frame_free(f);
            goto out;
        }
        s->qctl++;
        if (pmux_is_terminal(type)) {
            s->peer_fin = 1;
            if (type != PROTO_END)
                s->peer_abort = 1;
        }
    }
    if (pmux_enqueue(s, f) < 0) {
        rc = err_set(why, ERR_NOMEM, "out of memory queueing a frame on request %lu",
                     (unsigned long)id);
        pmux_drop_locked(m, f);
    }
out:
    plat_mutex_unlock(m->mu);
    return rc;
}

static void pmux_reader(void *arg)
{
    struct pmux *m = arg;
    struct err why = ERR_INIT;
    uint8_t hb[PROTO_HEADER_SIZE];
    struct proto_header h;
    struct proto_frame *f;

    for (;;) {
        if (pchan_read_full(m->ch, hb, sizeof(hb), &why) < 0)
            break;
        if (proto_header_decode(hb, &h, &why) < 0)
            break;
        if (proto_frame_alloc(&h, &f, &why) < 0)
            break;
        if (h.length && pchan_read_full(m->ch, f->payload, h.length, &why) < 0) {
            proto_frame_free(f);
            break;
        }
        if (h.type == PROTO_DATA_SHARED && pmux_shared_in(m, f, &why) < 0) {
            proto_frame_free(f);
            break;
        }
        if (pmux_dispatch(m, f, &why) < 0)
            break;
    }

    plat_mutex_lock(m->mu);
    if (m->shutting)
        err_set(&why, ERR_IO, "the channel was shut down");
    m->close_err = why;
    m->closed = 1;
    plat_cond_broadcast(m->cv);
    for (uint32_t i = 0; i < m->nstreams; i++)
        plat_cond_broadcast(m->streams[i]->cv);
    plat_mutex_unlock(m->mu);
    pchan_shutdown(m->ch);
    if (m->cfg.on_close)
        m->cfg.on_close(m->cfg.ctx, &why);
}

/* ---- lifetime ---- */

int pmux_start(struct pchan *ch, const struct pmux_config *cfg, struct pmux **out, struct err *e)
{
    struct pmux *m = NULL;
    struct pshm *shared = cfg->shared;
    char *json = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    m = calloc(1, sizeof(*m));
    if (!m) {
        rc = err_set(e, ERR_NOMEM, "out of memory for a channel");
        goto out;
    }
    m->cfg = *cfg;
    m->cfg.shared = NULL;
    if (!m->cfg.window)
        m->cfg.window = PMUX_DEFAULT_WINDOW;
    if (!m->cfg.max_streams)
        m->cfg.max_streams = PMUX_DEFAULT_STREAMS;
    if (!m->cfg.stall_timeout_ms)
        m->cfg.stall_timeout_ms = PMUX_DEFAULT_STALL;
    m->mine = cfg->hello;
    if (!m->mine.product[0]) {
        struct proto_hello d;
        proto_hello_init(&d, m->mine.role);
        memcpy(m->mine.product, d.product, sizeof(d.product));
        memcpy(m->mine.version, d.version, sizeof(d.version));
        m->mine.proto = d.proto;
    }
    if (!m->mine.pid)
        m->mine.pid = (uint32_t)plat_pid();
    m->mine.window = m->cfg.window;
    m->mine.shared = 0;
    if (shared && pshm_size(shared) / PROTO_DATA_MAX > 0 && pshm_size(shared) <= UINT32_MAX) {
        m->nslots = (uint32_t)(pshm_size(shared) / PROTO_DATA_MAX);
        if (m->nslots > PROTO_SHARED_SLOTS_MAX)
            m->nslots = PROTO_SHARED_SLOTS_MAX;
        m->free_batch = m->nslots / 4 ? m->nslots / 4 : 1;
        if (!(m->slot_out = calloc(m->nslots, 1))) {
            rc = err_set(e, ERR_NOMEM, "out of memory for a channel");
            goto out;
        }
        m->mine.shared = (uint32_t)pshm_size(shared);
        m->shared = shared;
        shared = NULL;
    }
    m->next_id = m->cfg.initiator_odd ? 1 : 2;
    m->seen_lo = m->cfg.initiator_odd ? 1 : 0; /* the peer's first id is 2 or 1: index 1 or 0 */
    m->replies_tail = &m->replies;
    m->streams = calloc(m->cfg.max_streams, sizeof(*m->streams));
    if (!m->streams) {
        rc = err_set(e, ERR_NOMEM, "out of memory for a channel");
        goto out;
    }
    if ((rc = plat_mutex_create(&m->mu, e)) < 0 || (rc = plat_mutex_create(&m->wmu, e)) < 0 ||
        (rc = plat_cond_create(&m->cv, e)) < 0 || (rc = plat_cond_create(&m->rcv, e)) < 0)
        goto out;
    m->ch = ch;
    ch = NULL;
    if ((rc = proto_hello_encode(&m->mine, &json, &len, e)) < 0)
        goto out;
    if ((rc = pmux_write_frame(m, PROTO_HELLO, 0, json, len, e)) < 0)
        goto out;
    if ((rc = plat_thread_start(&m->sender, pmux_sender, m, e)) < 0)
        goto out;
    if ((rc = plat_thread_start(&m->reader, pmux_reader, m, e)) < 0)
        goto out;
    *out = m;
    m = NULL;
out:
    free(json);
    pchan_close(ch);
    pshm_free(shared); /* none, or one too small to hold a slot */
    if (m)
        pmux_free(m);
    return rc;
}

int pmux_wait_ready(struct pmux *m, uint32_t timeout_ms, struct proto_hello *peer, struct err *e)
{
    uint64_t deadline = pmux_deadline(timeout_ms);
    int rc;

    plat_mutex_lock(m->mu);
    for (;;) {
        if (m->ready) {
            if (peer)
                *peer = m->peer;
            rc = 0;
            break;
        }
        if (m->closed) {
            if (m->close_err.code == ERR_PROTOCOL)
                rc = err_set(e, ERR_PROTOCOL, "%s", m->close_err.msg);
            else
                rc = pmux_closed_err(m, e);
            break;
        }
        if (pmux_wait(m->cv, m->mu, deadline) < 0) {
            rc = err_set(e, ERR_TIMEOUT, "no HELLO from the peer within %lu ms",
                         (unsigned long)timeout_ms);
            break;
        }
    }
    plat_mutex_unlock(m->mu);
    return rc;
}

int pmux_alive(struct pmux *m)
{
    int alive;

    plat_mutex_lock(m->mu);
    alive = !m->closed && !m->shutting;
    plat_mutex_unlock(m->mu);
    return alive;
}

void pmux_log(struct pmux *m, const char *level, const char *message)
{
    struct proto_log lg;
    char *json = NULL;
    size_t len = 0;

    snprintf(lg.level, sizeof(lg.level), "%s", level);
    snprintf(lg.message, sizeof(lg.message), "%s", message);
    if (proto_log_encode(&lg, &json, &len, NULL) == 0)
        (void)pmux_write_frame(m, PROTO_LOG, 0, json, len, NULL);
    free(json);
}

void pmux_shutdown(struct pmux *m)
{
    if (!m || !m->mu)
        return;
    plat_mutex_lock(m->mu);
    m->shutting = 1;
    plat_mutex_unlock(m->mu);
    if (m->ch)
        pchan_shutdown(m->ch);
}

void pmux_free(struct pmux *m)
{
    if (!m)
        return;
    if (m->mu)
        pmux_shutdown(m);
    plat_thread_join(m->reader);
    for (uint32_t i = 0; i < m->nstreams; i++)
        pmux_stream_destroy(m->streams[i]); /* the caller should have closed these */
    m->nstreams = 0;
    if (m->sender) {
        plat_mutex_lock(m->mu);
        m->stopping = 1;
        plat_cond_broadcast(m->rcv);
        plat_mutex_unlock(m->mu);
        plat_thread_join(m->sender);
    }
    free(m->streams);
    free(m->slot_out);
    pshm_free(m->shared);
    pchan_close(m->ch);
    plat_cond_destroy(m->rcv);
    plat_cond_destroy(m->cv);
    plat_mutex_destroy(m->wmu);
    plat_mutex_destroy(m->mu);
    free(m);
}

/* ---- requests ---- */

int pmux_open(struct pmux *m, struct pmux_stream **out, struct err *e)
{
    struct pmux_stream *s = NULL;
    int rc = 0;

    *out = NULL;
    plat_mutex_lock(m->mu);
    if (m->closed || m->shutting) {
        rc = pmux_closed_err(m, e);
        goto out;
    }
    if (m->nstreams >= m->cfg.max_streams) {
        rc = err_set(e, ERR_BUSY, "%lu requests are already open on this channel; try again later",
                     (unsigned long)m->nstreams);
        goto out;
    }
    if (m->next_id > UINT32_MAX - 2) {
        rc = err_set(e, ERR_BUSY, "this channel has used up its request ids; reconnect");
        goto out;
    }
    if ((rc = pmux_stream_new(m, m->next_id, &s, e)) < 0)
        goto out;
    m->next_id += 2;
    pmux_table_add(m, s);
    *out = s;
out:
    plat_mutex_unlock(m->mu);
    return rc;
}

uint32_t pmux_stream_id(const struct pmux_stream *s)
{
    return s->id;
}

int pmux_send(struct pmux_stream *s, uint32_t type, const void *payload, size_t len, struct err *e)
{
    struct pmux *m = s->m;
    int rc;

    if (type == PROTO_DATA || type == PROTO_CREDIT || type == PROTO_HELLO || type == PROTO_LOG ||
        type == PROTO_DATA_SHARED || type == PROTO_SHARED_FREE ||
        strcmp(proto_type_name(type), "UNKNOWN") == 0)
        return err_set(e, ERR_INVALID, "%s (type %lu) cannot be sent with pmux_send",
                       proto_type_name(type), (unsigned long)type);
    if (len > proto_max_len(type))
        return err_set(e, ERR_TOO_LARGE, "a %s payload of %zu bytes exceeds its limit of %lu",
                       proto_type_name(type), len, (unsigned long)proto_max_len(type));
    rc = pmux_write_frame(m, type, s->id, payload, len, e);
    if (rc == 0 && pmux_is_terminal(type)) {
        plat_mutex_lock(m->mu);
        s->local_fin = 1;
        plat_mutex_unlock(m->mu);
    }
    return rc;
}

int pmux_send_error(struct pmux_stream *s, int status, const char *message, struct err *e)
{
    struct proto_error pe;
    char *json = NULL;
    size_t len = 0;
    int rc;

    pe.status = status;
    snprintf(pe.message, sizeof(pe.message), "%s", message ? message : "");
    rc = proto_error_encode(&pe, &json, &len, e);
    if (rc == 0)
        rc = pmux_send(s, PROTO_ERROR, json, len, e);
    free(json);
    return rc;
}

/*
 * Waits (m->mu held) for credit to send some of want bytes on s, then reserves up to
 * PROTO_DATA_MAX of them (*n, counted as sent). Errors as for pmux_write_data.
 */
static int pmux_reserve(struct pmux_stream *s, uint64_t want, size_t *n, struct err *e)
{
    struct pmux *m = s->m;
    uint64_t deadline = pmux_deadline(m->cfg.stall_timeout_ms), avail;

    for (;;) {
        if (m->closed || m->shutting)
            return pmux_closed_err(m, e);
        if (s->peer_abort)
            return err_set(e, ERR_CANCELLED,
                           "the peer ended request %lu (it cancelled, failed or answered)",
                           (unsigned long)s->id);
        avail = m->ready ? m->peer.window + s->tx_granted - s->tx_sent : 0;
        if (avail > 0)
            break;
        if (pmux_wait(s->cv, m->mu, deadline) < 0)
            return err_set(e, ERR_TIMEOUT,
                           "the peer took no data on request %lu for %lu ms; it is stalled",
                           (unsigned long)s->id, (unsigned long)m->cfg.stall_timeout_ms);
    }
    *n = want < PROTO_DATA_MAX ? (size_t)want : PROTO_DATA_MAX;
    if (*n > avail)
        *n = (size_t)avail;
    s->tx_sent += *n;
    return 0;
}

/* A free slot of the shared window, now lent to the peer, or PMUX_NO_SLOT. With mu held. */
static uint32_t pmux_slot_take(struct pmux *m)
{
    if (!m->shared_on)
        return PMUX_NO_SLOT;
    for (uint32_t k = 0; k < m->nslots; k++) {
        uint32_t i = (m->slot_next + k) % m->nslots;
        if (!m->slot_out[i]) {
            m->slot_out[i] = 1;
            m->slot_next = i + 1;
            return i;
        }
    }
    return PMUX_NO_SLOT;
}

int pmux_write_data_from(struct pmux_stream *s, size_t max, uint8_t *spare, pmux_fill_fn fill,
                         void *ctx, size_t *sent, struct err *e)
{
    struct pmux *m = s->m;
    uint32_t slot = PMUX_NO_SLOT;
    uint8_t *buf, pl[PROTO_DATA_SHARED_LEN];
    size_t n = 0, got = 0;
    int rc, on_wire = 0;

    *sent = 0;
    if (max > PROTO_DATA_MAX)
        max = PROTO_DATA_MAX;
    if (max == 0)
        return 0;
    plat_mutex_lock(m->mu);
    if ((rc = pmux_reserve(s, max, &n, e)) == 0)
        slot = pmux_slot_take(m);
    plat_mutex_unlock(m->mu);
    if (rc < 0)
        return rc;

    buf = slot != PMUX_NO_SLOT ? pshm_base(m->shared) + (size_t)slot * PROTO_DATA_MAX : spare;
    rc = fill(ctx, buf, n, &got, e);
    if (rc == 0 && got > n)
        rc = err_set(e, ERR_INTERNAL, "a DATA piece of %zu bytes was filled with %zu", n, got);
    if (rc == 0 && got > 0) {
        on_wire = 1;
        if (slot != PMUX_NO_SLOT) {
            proto_data_shared_encode(pl, slot, (uint32_t)got);
            rc = pmux_write_frame(m, PROTO_DATA_SHARED, s->id, pl, sizeof(pl), e);
        } else {
            rc = pmux_write_frame(m, PROTO_DATA, s->id, buf, got, e);
        }
    }

    plat_mutex_lock(m->mu);
    s->tx_sent -= n - (on_wire ? got : 0); /* the credit of what was reserved but not sent */
    if (slot != PMUX_NO_SLOT && !on_wire)
        m->slot_out[slot] = 0;
    if (slot != PMUX_NO_SLOT && on_wire && rc == 0)
        m->shared_bytes += got;
    plat_mutex_unlock(m->mu);
    if (rc == 0)
        *sent = got;
    return rc;
}

/* pmux_write_data's fill: the bytes are at ctx already; copied only into a slot. */
static int pmux_fill_copy(void *ctx, uint8_t *buf, size_t cap, size_t *n, struct err *e)
{
    (void)e;
    if (buf != ctx)
        memcpy(buf, ctx, cap);
    *n = cap;
    return 0;
}

int pmux_write_data(struct pmux_stream *s, const void *data, size_t len, struct err *e)
{
    uint8_t *p = (uint8_t *)data; /* "spare" below is only ever read: see pmux_fill_copy */
    size_t n;
    int rc = 0;

    while (len > 0) {
        if ((rc = pmux_write_data_from(s, len, p, pmux_fill_copy, p, &n, e)) < 0)
            break;
        p += n;
        len -= n;
    }
    return rc;
}

uint64_t pmux_shared_bytes(struct pmux *m)
{
    uint64_t n;

    plat_mutex_lock(m->mu);
    n = m->shared_bytes;
    plat_mutex_unlock(m->mu);
    return n;
}

struct pmux_file_header {
    uint32_t id;
};

static void pmux_data_header(void *ctx, size_t n, uint8_t *header)
{
    const struct pmux_file_header *h = ctx;
    proto_header_encode(header, PROTO_DATA, (uint32_t)n, h->id);
}

/* One DATA frame of up to n bytes of f at off, spliced by the channel; ERR_UNSUPPORTED: not
 * here (nothing sent). */
static int pmux_write_file_frame(struct pmux *m, uint32_t id, struct plat_file *f, uint64_t off,
                                 size_t n, size_t *got, struct err *e)
{
    struct pmux_file_header h = {id};
    int rc;

    if ((rc = pmux_check_open(m, e)) < 0)
        return rc;
    plat_mutex_lock(m->wmu);
    rc =
        pchan_write_file_frame(m->ch, plat_file_os_handle(f), off, n, pmux_data_header, &h, got, e);
    plat_mutex_unlock(m->wmu);
    if (rc < 0 && rc != ERR_UNSUPPORTED)
        err_prefix(e, "sending DATA on request %lu", (unsigned long)id);
    return rc;
}

int pmux_write_file(struct pmux_stream *s, struct plat_file *f, uint64_t off, uint64_t len,
                    uint64_t *sent, struct err *e)
{
    struct pmux *m = s->m;
    uint8_t *buf = NULL;
    size_t n, got;
    int rc = 0, splice_ok = 1;

    *sent = 0;
    plat_mutex_lock(m->mu);
    while (len > 0) {
        if ((rc = pmux_reserve(s, len, &n, e)) < 0)
            break;
        plat_mutex_unlock(m->mu);
        got = 0;
        rc = splice_ok ? pmux_write_file_frame(m, s->id, f, off, n, &got, e) : ERR_UNSUPPORTED;
        if (rc == ERR_UNSUPPORTED) {
            /* read it here instead (Windows, or a file the kernel cannot splice) */
            splice_ok = 0;
            err_clear(e);
            rc = 0;
            if (!buf && !(buf = malloc(PROTO_DATA_MAX)))
                rc = err_set(e, ERR_NOMEM, "out of memory for a file's DATA");
            if (rc == 0)
                rc = plat_file_pread(f, buf, n, off, &got, e);
            if (rc == 0 && got > 0)
                rc = pmux_write_frame(m, PROTO_DATA, s->id, buf, got, e);
        }
        plat_mutex_lock(m->mu);
        s->tx_sent -= n - got; /* the credit of what was reserved but not sent */
        if (rc < 0 || got == 0)
            break; /* an error, or the end of the file */
        off += got;
        len -= got;
        *sent += got;
    }
    plat_mutex_unlock(m->mu);
    free(buf);
    return rc;
}

int pmux_recv(struct pmux_stream *s, uint32_t timeout_ms, struct proto_frame **out, struct err *e)
{
    struct pmux *m = s->m;
    uint64_t deadline = pmux_deadline(timeout_ms);
    int rc = 0;

    *out = NULL;
    plat_mutex_lock(m->mu);
    while (s->qlen == 0) {
        if (m->closed) {
            rc = pmux_closed_err(m, e);
            goto out;
        }
        if (pmux_wait(s->cv, m->mu, deadline) < 0) {
            rc = err_set(e, ERR_TIMEOUT, "no answer on request %lu within %lu ms",
                         (unsigned long)s->id, (unsigned long)timeout_ms);
            goto out;
        }
    }
    *out = pmux_dequeue(s);
out:
    plat_mutex_unlock(m->mu);
    return rc;
}

void pmux_frame_free(struct pmux_stream *s, struct proto_frame *f)
{
    struct pmux *m;
    uint64_t credit = 0;
    uint32_t half;
    int batch = 0;
    size_t n = 0;
    uint8_t out[PROTO_HEADER_SIZE + PROTO_SHARED_FREE_MAX + PROTO_HEADER_SIZE + 4];

    if (!f)
        return;
    if (s && f->h.type == PROTO_DATA && f->h.length > 0) {
        m = s->m;
        half = m->mine.window / 2 ? m->mine.window / 2 : 1;
        plat_mutex_lock(m->mu);
        if (f->shared_slot)
            batch = pmux_slot_release(m, f);
        if (s->in_table) {
            s->rx_consumed += f->h.length;
            if (s->rx_consumed >= half) {
                credit = s->rx_consumed;
                s->rx_inflight -= credit;
                s->rx_consumed = 0;
            }
        }
        /* freed slots go back with the credit, or once a batch is due: one write */
        if (batch || credit)
            n = pmux_free_frame(m, out);
        plat_mutex_unlock(m->mu);
        if (credit) {
            proto_header_encode(out + n, PROTO_CREDIT, 4, s->id);
            proto_credit_encode(out + n + PROTO_HEADER_SIZE, (uint32_t)credit);
            n += PROTO_HEADER_SIZE + 4;
        }
        if (n)
            (void)pmux_write_raw(m, out, n);
    }
    proto_frame_free(f);
}

void pmux_close(struct pmux_stream *s)
{
    struct pmux *m;
    int cancel;

    if (!s)
        return;
    m = s->m;
    plat_mutex_lock(m->mu);
    pmux_table_remove(m, s);
    cancel = !s->local_fin && !s->peer_fin && !m->closed && !m->shutting;
    plat_mutex_unlock(m->mu);
    if (cancel)
        (void)pmux_write_frame(m, PROTO_CANCEL, s->id, NULL, 0, NULL);
    pmux_stream_destroy(s);
}
