/*
 * audit_int.h: the audit record's stored layout, shared by the files of
 * the audit trail (audit.c writes and decodes records, audit_query.c
 * lists and verifies them, audit_archive.c archives and prunes them).
 */
#ifndef FBX_AUDIT_INT_H
#define FBX_AUDIT_INT_H

/* Audit records are chained: each carries the SHA-256 of the previous
 * record, and its own hash covers its sequence, that link and its body.
 * Changing, removing or reordering a stored record breaks the chain at
 * that point, which fbx "audit verify" reports.
 *
 * Layout (little-endian): ver u8, prev[32], hash[32], at_ms i64, then
 * org, actor, action as u8 length + bytes, note and params as u16 length
 * + bytes. hash = SHA-256(seq u64 BE || the record with hash zeroed). */
#define AUDIT_V1 1
#define AUDIT_HASH_OFF 33
#define AUDIT_MAX 1200
#define AUDIT_PARAMS_MAX 511 /* the wire's limit (protocol.md) */

#endif
