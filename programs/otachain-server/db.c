/* The database thread with group commit (db.h). */
#include "db.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct srv_db {
    struct ota_fleet_store *store;
    struct event_base *base;
    struct event *done_ev;
    struct srv_metrics *m;
    struct srv_log *lg;
    unsigned queue_max, batch_max;

    pthread_t thread;
    bool started;
    pthread_mutex_t mu; /* queue, count, stop */
    pthread_cond_t cv;
    struct srv_job *head, *tail;
    unsigned count;
    bool stop;

    pthread_mutex_t done_mu; /* done list */
    struct srv_job *done_head, *done_tail;
};

static void run_batch(struct srv_db *db, struct srv_job *batch, unsigned n)
{
    struct ota_fleet_store *s = db->store;
    struct ota_detail det;
    int rc;

    det.msg[0] = '\0';
    if (s == NULL) {
        /* A file thread: jobs run one by one, no database. */
        for (struct srv_job *j = batch; j != NULL; j = j->next) {
            j->det.msg[0] = '\0';
            j->rc = j->run(j, NULL, &j->det);
        }
        return;
    }
    rc = s->ops->begin(s, &det);
    for (struct srv_job *j = batch; rc == 0 && j != NULL; j = j->next) {
        j->det.msg[0] = '\0';
        j->rc = s->ops->savepoint(s, &j->det);
        if (j->rc == 0)
            j->rc = j->run(j, s, &j->det);
        if (j->rc == 0)
            j->rc = s->ops->release(s, &j->det);
        else
            s->ops->rollback_to(s);
    }
    if (rc == 0) {
        rc = s->ops->commit(s, &det);
        if (rc == 0) {
            atomic_fetch_add(&db->m->db_commits, 1);
            if (n > atomic_load(&db->m->db_batch_max))
                atomic_store(&db->m->db_batch_max, n);
        }
    }
    if (rc != 0) {
        char q[256];
        srv_log(db->lg, "error", "db_commit", "jobs=%u error=%s detail=%s", n, ota_errname(rc),
                srv_log_q(q, sizeof(q), det.msg));
        for (struct srv_job *j = batch; j != NULL; j = j->next) {
            j->rc = rc;
            j->det = det;
        }
    }
}

static void *thread_main(void *arg)
{
    struct srv_db *db = arg;

    pthread_mutex_lock(&db->mu);
    for (;;) {
        struct srv_job *batch;
        struct srv_job *last;
        unsigned n = 1;

        while (db->head == NULL && !db->stop)
            pthread_cond_wait(&db->cv, &db->mu);
        if (db->head == NULL)
            break;
        batch = db->head;
        last = batch;
        while (last->next != NULL && n < db->batch_max) {
            last = last->next;
            n++;
        }
        db->head = last->next;
        if (db->head == NULL)
            db->tail = NULL;
        last->next = NULL;
        db->count -= n;
        if (db->store != NULL) /* the gauge is the database's */
            atomic_store(&db->m->db_queue, db->count);
        pthread_mutex_unlock(&db->mu);

        run_batch(db, batch, n);

        pthread_mutex_lock(&db->done_mu);
        if (db->done_tail != NULL)
            db->done_tail->next = batch;
        else
            db->done_head = batch;
        db->done_tail = last;
        pthread_mutex_unlock(&db->done_mu);
        event_active(db->done_ev, EV_READ, 0);
        pthread_mutex_lock(&db->mu);
    }
    pthread_mutex_unlock(&db->mu);
    return NULL;
}

static void run_done(struct srv_db *db)
{
    struct srv_job *j;

    pthread_mutex_lock(&db->done_mu);
    j = db->done_head;
    db->done_head = db->done_tail = NULL;
    pthread_mutex_unlock(&db->done_mu);
    while (j != NULL) {
        struct srv_job *next = j->next;
        j->next = NULL;
        j->done(j);
        j = next;
    }
}

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run_done(arg);
}

int srv_db_start(struct srv_db **out, struct event_base *base, struct ota_fleet_store *store,
                 unsigned queue_max, unsigned batch_max, struct srv_metrics *m, struct srv_log *lg,
                 struct ota_detail *det)
{
    struct srv_db *db = calloc(1, sizeof(*db));

    *out = NULL;
    if (db == NULL)
        return OTA_ERR_NOMEM;
    db->store = store;
    db->base = base;
    db->m = m;
    db->lg = lg;
    db->queue_max = queue_max;
    db->batch_max = batch_max ? batch_max : 1;
    pthread_mutex_init(&db->mu, NULL);
    pthread_mutex_init(&db->done_mu, NULL);
    pthread_cond_init(&db->cv, NULL);
    db->done_ev = event_new(base, -1, 0, on_done, db);
    if (db->done_ev == NULL || pthread_create(&db->thread, NULL, thread_main, db) != 0) {
        ota_detail_set(det, "cannot start the database thread");
        if (db->done_ev != NULL)
            event_free(db->done_ev);
        pthread_cond_destroy(&db->cv);
        pthread_mutex_destroy(&db->mu);
        pthread_mutex_destroy(&db->done_mu);
        free(db);
        return OTA_ERR_NOMEM;
    }
    db->started = true;
    *out = db;
    return 0;
}

int srv_db_submit(struct srv_db *db, struct srv_job *j)
{
    int rc = 0;

    j->next = NULL;
    pthread_mutex_lock(&db->mu);
    if (db->stop || db->count >= db->queue_max) {
        rc = OTA_ERR_BUSY;
    } else {
        if (db->tail != NULL)
            db->tail->next = j;
        else
            db->head = j;
        db->tail = j;
        db->count++;
        if (db->store != NULL) /* the gauge is the database's */
            atomic_store(&db->m->db_queue, db->count);
        pthread_cond_signal(&db->cv);
    }
    pthread_mutex_unlock(&db->mu);
    return rc;
}

unsigned srv_db_pending(struct srv_db *db)
{
    unsigned n;

    pthread_mutex_lock(&db->mu);
    n = db->count;
    pthread_mutex_unlock(&db->mu);
    return n;
}

void srv_db_stop(struct srv_db *db)
{
    if (db == NULL)
        return;
    pthread_mutex_lock(&db->mu);
    db->stop = true;
    pthread_cond_signal(&db->cv);
    pthread_mutex_unlock(&db->mu);
    if (db->started)
        pthread_join(db->thread, NULL);
    run_done(db);
    event_free(db->done_ev);
    ota_fleet_store_close(db->store);
    pthread_cond_destroy(&db->cv);
    pthread_mutex_destroy(&db->mu);
    pthread_mutex_destroy(&db->done_mu);
    free(db);
}
