/* The database thread of otachain-server: the only user of the fleet
 * store once the server runs, with group commit (docs/server.md,
 * "Database").
 *
 *   event loop                         database thread
 *   ----------                         ---------------
 *   srv_db_submit(job) ──queue──►  take up to group_commit_max jobs
 *   (returns at once; 503 busy         BEGIN
 *    when the queue is full)           each job: SAVEPOINT, run(), RELEASE
 *                                                (ROLLBACK TO on failure)
 *                                      COMMIT          <- durable here
 *   done(job) ◄──event_active()──  hand the batch back
 *   (replies: only here, on the loop)
 *
 * Invariants:
 *  1. A job's done() runs on the event loop, after the transaction that
 *     ran it committed (or failed: then rc says so and nothing of it is
 *     stored), so a 200 is never sent for a check-in that is not durable.
 *  2. The loop never waits on the database: submit only takes a mutex
 *     held for a list splice.
 *  3. One job's failure does not undo the others of its batch (its
 *     savepoint is rolled back); a failed COMMIT fails every job of the
 *     batch.
 */
#ifndef OTACHAIN_SERVER_DB_H
#define OTACHAIN_SERVER_DB_H

#include <event2/event.h>

#include "log.h"
#include "metrics.h"
#include "otachain/fleet_store.h"

struct srv_job;

struct srv_job {
    struct srv_job *next; /* queue link (owned by db.c while queued) */
    /* On the database thread, inside a transaction and a savepoint:
     * 0 keeps what it wrote, an error undoes it. */
    int (*run)(struct srv_job *j, struct ota_fleet_store *s, struct ota_detail *det);
    /* On the event loop once the batch is committed; owns j afterwards. */
    void (*done)(struct srv_job *j);
    int rc; /* run()'s result, or the commit's failure */
    struct ota_detail det;
};

struct srv_db;

/* Starts the thread over store (which it owns from now on, and closes
 * at stop). base must have been created after evthread_use_pthreads().
 * With store NULL it is a file thread: jobs run one at a time, outside
 * any transaction (run() gets a NULL store), for disk work that must
 * not hold up the database's commits (blob uploads). */
OTA_WUR int srv_db_start(struct srv_db **out, struct event_base *base,
                         struct ota_fleet_store *store, unsigned queue_max, unsigned batch_max,
                         struct srv_metrics *m, struct srv_log *lg, struct ota_detail *det);

/* Queues j: 0, or OTA_ERR_BUSY when the queue is full or the thread
 * stopped (j was not taken: the caller still owns it). */
OTA_WUR int srv_db_submit(struct srv_db *db, struct srv_job *j);

/* Jobs queued now. */
unsigned srv_db_pending(struct srv_db *db);

/* Runs what is queued, stops and joins the thread, runs the remaining
 * done() callbacks, closes the store and frees; accepts NULL. */
void srv_db_stop(struct srv_db *db);

#endif
