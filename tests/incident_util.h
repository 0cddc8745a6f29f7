/*
 * incident_util.h: what the incident rules' tests (incident_rules_test.c,
 * limit_accounting_test.c) share, in incident_util.c, over the engine
 * in-process (engine_fake.h, whose CHECK and counts they use): locks of
 * one device, automatic (for REASON) or an operator's, breaker requests
 * and the reason's settle delay, what a gateway is sent, fake time
 * passing, and the events and audit records the engine writes.
 */
#ifndef FBXT_INCIDENT_UTIL_H
#define FBXT_INCIDENT_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "engine_fake.h"

/* the automatic locks' reason, and the breakers' */
#define REASON "attestation_failed"

/* lock_one - a command of type for one device of org from client peer
 * (origin automatic: reason REASON); @return the reply's err, with the
 * command's id and state. */
int lock_one(struct env *t, const char *peer, const char *org, unsigned dev,
    int type, int origin, uint64_t *id, int *state);
/* auto_lock - the detector's automatic lock of one device */
int auto_lock(struct env *t, const char *org, unsigned dev, uint64_t *id,
    int *state);
/* operator_lock - an operator's lock of one device */
int operator_lock(struct env *t, const char *org, unsigned dev, uint64_t *id,
    int *state);
/* breaker - a breaker request for REASON; rep is the caller's to free. */
int breaker(struct env *t, const char *org, int op, int global,
    const struct fbx_breaker_cfg *cfg, int on_reset,
    struct fbx_console_rep *rep);
/* settle_set - the reason's settle delay (global config), CHECKed */
void settle_set(struct env *t, const char *org, uint32_t s);
/* cmd_state - command id of org into *c; @return its state, -1 on an
 * error */
int cmd_state(
    struct env *t, const char *org, uint64_t id, struct fbx_command *c);
/* last_audit - org's newest audit record of action; 0 when found */
int last_audit(struct env *t, const char *org, const char *action,
    struct fbx_audit_rec *out);
/* delivered - delivery ids sent to peer so far, answered as succeeded */
size_t delivered(struct env *t, const char *peer, uint64_t *batch);
/* pass - let ms of fake time pass in 50 ms turns, gateway peer (if any)
 * beating its heart, so it stays alive */
void pass(struct env *t, const char *peer, int64_t ms);
/* events_of - take every event the engine published; @return how many
 * were of kind */
size_t events_of(struct env *t, int kind);

#endif
