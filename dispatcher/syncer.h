/*
 * syncer.h: the thread that makes the engine's commits durable while the
 * engine thread works on the next turn (issue 11 item 3).
 *
 * With full durability the store is opened with MDB_NOMETASYNC: a commit
 * writes its data pages, fdatasyncs them, then writes its meta page
 * without a sync. The commit is durable once that meta page is synced;
 * until then nothing of its turn leaves the engine (replies, deliveries,
 * events are held, output.c). The syncer does that sync on its own
 * thread, so the next turn's work overlaps it.
 *
 * Tickets: the engine numbers its commits 1, 2, ... and asks for each;
 * fbxi_syncer_done() says up to which ticket every commit is durable. A
 * sync covers every commit made before it started, so asks coalesce. A
 * sync that fails is not retried for the same tickets (after a failed
 * fdatasync the kernel may have dropped the pages it could not write and
 * report the next one clean). After a failure no sync starts until the
 * engine has taken it (fbxi_syncer_done) and named the last commit it
 * made (cover): any of them may have had its meta page in the failed
 * write-back, so they stay not durable until a commit made after that
 * is synced, which covers them (its meta page was written after the
 * failure and names a tree that contains theirs; their data pages were
 * synced by their own commits, which fail otherwise: the store syncs
 * through a descriptor of its own, so both see every write-back error).
 */
#ifndef FBX_SYNCER_H
#define FBX_SYNCER_H

#include <stdint.h>

#include "fbx_store.h"

struct fbxi_syncer;

/** fbxi_syncer_start - start the thread for store st, tickets up to
 * durable being durable already and those up to no_retry never synced on
 * their own (a failed sync; both 0 for a new engine).
 * @return FBX_OK, FBX_ENOMEM, FBX_EIO (no thread or no eventfd). */
int fbxi_syncer_start(fbx_store *st, uint64_t durable, uint64_t no_retry,
    struct fbxi_syncer **out);

/** fbxi_syncer_ask - commits up to ticket are made; sync them. */
void fbxi_syncer_ask(struct fbxi_syncer *s, uint64_t ticket);

/** fbxi_syncer_done - the highest ticket known durable. *failed gets the
 * error of a sync that failed since the last call (else FBX_OK) and
 * *failed_upto the highest ticket such a sync was for; then tickets up
 * to cover (the engine's last commit) are synced only by a later one. */
uint64_t fbxi_syncer_done(struct fbxi_syncer *s, uint64_t cover,
    int *failed, uint64_t *failed_upto);

/** fbxi_syncer_fd - a descriptor that polls readable once a sync has
 * ended (durable moved, or a sync failed) since the last
 * fbxi_syncer_woken(): the engine polls it with its sockets while outputs
 * are held, so they leave as soon as their sync ends. */
int fbxi_syncer_fd(const struct fbxi_syncer *s);

/** fbxi_syncer_woken - reset that descriptor; call before
 * fbxi_syncer_done() so that no sync's end is missed. */
void fbxi_syncer_woken(struct fbxi_syncer *s);

/** fbxi_syncer_wait - wait until ticket is durable, a sync failed, or
 * ms passed. @return 1 when ticket is durable. */
int fbxi_syncer_wait(struct fbxi_syncer *s, uint64_t ticket, int ms);

/** fbxi_syncer_stop - finish the sync under way, stop and free. NULL is
 * accepted (returns 0). @return the highest ticket durable; *no_retry
 * (if not NULL) the highest whose sync failed. */
uint64_t fbxi_syncer_stop(struct fbxi_syncer *s, uint64_t *no_retry);

#endif
