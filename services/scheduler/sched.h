/*  crm-scheduler's state and modules.
 *
 *  plans.c     what a follow-up, an assignment, an order or a lost prospect
 *              does to a prospect's plan (the cadence by intent grade)
 *  tasks.c     tasks (planned activities) and their timers, the daily
 *              counters and the violations behind the sanctions
 *  fire.c      what a fired timer does: warning, overdue, expired, released
 *  care.c      reminders and care: test drives, delays, birthdays, holidays,
 *              owners' call-backs and service reminders
 *  calendar.c  the working-day calendar in Redis (calendar.load)
 */
#ifndef SCHED_H
#define SCHED_H

#include "crm_cadence.h"
#include "crm_service.h"

#define SCHED_SET "followup" /* the compact timer set (crm:due:followup) */
#define SCHED_FIELD_MAX 4100 /* a dealer's content: 4000 bytes at most */

typedef struct {
    crm_calendar_t *cal;
    char cal_source[128];
    int64_t cal_version;      /* crm:calendar version of the table in use (0: built-in) */
    crm_hours_t hours;        /* --hours: dealers without their own */
    int64_t first_contact_ms; /* --first-contact-hours, working time */
    int64_t warn_lead_ms;     /* --warn-lead-min, working time */
    int day_end_min;          /* --day-end */
    int64_t late_after_ms;    /* --late-after-ms */
    int release_days;         /* --release-days */
    int pushed_out_days;      /* --pushed-out-days */
    bool shift_followup;      /* grade-made due dates move off non-working days */
    bool shift_expiry;        /* an expected date on a holiday expires after the next working day */
    int callbacks[8];         /* --owner-callback-days */
    int ncallbacks;
    int service_days;         /* --service-reminder-days */
    crm_tx_t *reads;          /* pipelined reads */
    zhash_t *dealer_hours;    /* dealer -> its hours (crm:dealer:<D> hours), read at most every 5 s */
} sched_t;

sched_t *sched_of(crm_service_t *svc);

/* A task (planned activity), as stored in crm:task:<K>. */
typedef struct {
    char task_id[32];
    char customer_id[64];
    char dealer_id[64];
    char consultant_id[128];
    char kind[32];
    char source[32];
    char content[SCHED_FIELD_MAX];
    char state[16];
    int64_t due_ms;
} sched_task_t;

/* tasks.c */
/* A dealer's working hours (crm:dealer:<D> hours, read again after 5 s or a
   dealer.updated), else --hours. */
crm_hours_t sched_hours(crm_service_t *svc, const char *dealer);
crm_handled_t sched_on_dealer_updated(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
/* Opens a task: stored, indexed, its warning and overdue timers set,
   task.opened emitted. `t->task_id` gets its id. 0, or -1 (Redis). */
int sched_task_open(crm_service_t *svc, crm_tx_t *tx, sched_task_t *t, const char *replaces);
/* Closes task `t` (read with sched_task_read) as `state` (done, replaced,
   postponed, cancelled); `followup_id` for done. */
void sched_task_close(crm_service_t *svc, crm_tx_t *tx, const sched_task_t *t, const char *state,
                      const char *followup_id, int64_t at);
/* Open or overdue (not yet done). */
bool sched_task_is_open(const sched_task_t *t);
/* The customer's open tasks (crm:cust:{C}:tasks:open, in one pipeline):
   *out (caller frees) and *n; 0, or -1 when Redis could not say. */
int sched_open_tasks(crm_service_t *svc, const char *cid, sched_task_t **out, size_t *n);
/* Reads task `id`; 1 found, 0 not, -1 Redis. */
int sched_task_read(crm_service_t *svc, const char *id, sched_task_t *t);
void sched_task_from_reply(const redisReply *h, sched_task_t *t);
/* Counts `what` for a consultant on a CST day in the daily report. */
void sched_count(crm_tx_t *tx, int64_t day, const char *dealer, const char *consultant, const char *what, int n);
/* A task not done by the end of its day (`at`, fired `late` ms after it):
   followup.overdue, the manager told, counted, a violation. */
void sched_overdue(crm_service_t *svc, crm_tx_t *tx, const sched_task_t *t, const char *manager, int64_t at,
                   int64_t late);
/* The escalation: a notify.request on the dealer channel for the
   consultant's manager (none: nothing). */
void sched_escalate(crm_tx_t *tx, const char *timer, int64_t due, const char *dealer, const char *manager,
                    const char *consultant, const char *customer, const char *what, const char *record);
/* Records a violation (the sanctions' facts) for the month of `at`. */
void sched_violation(crm_tx_t *tx, int64_t at, const char *code, const char *dealer, const char *consultant,
                     const char *manager, const char *customer, const char *records);
/* The consultant's manager (crm:dealer:<D>:staff:<S> manager_id) into out. */
void sched_manager(crm_service_t *svc, const char *dealer, const char *consultant, char *out, size_t size);

/* plans.c */
crm_handled_t sched_on_followup(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
crm_handled_t sched_on_owner(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
crm_handled_t sched_on_order(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
crm_handled_t sched_on_lost(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
crm_handled_t sched_on_transfer_decided(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
crm_handled_t sched_on_absent(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);

/* A grade changed outside a follow-up (a dealer's customer file): the
   grade-made next activity is recomputed from the last contact. */
crm_handled_t sched_regrade(crm_service_t *svc, crm_tx_t *tx, const char *cid, int64_t at);

/* care.c */
crm_handled_t sched_on_dispatched(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
crm_handled_t sched_on_testdrive_status(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
crm_handled_t sched_on_delayed(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
crm_handled_t sched_on_delivered(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
crm_handled_t sched_on_serviced(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
crm_handled_t sched_on_lead(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
crm_handled_t sched_on_customer_updated(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
crm_handled_t sched_on_customer_recorded(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);
/* The next 09:00 China time of a birthday after `now`; 0 for none (the
   1900-01-01 sentinel, not a date). */
int64_t sched_next_birthday(const char *birthday, int64_t now);
/* Timers for the first day of every public holiday still to come. */
void sched_holidays(crm_service_t *svc, crm_tx_t *tx);
/* A care timer (t, f, b, c, s, h) fired; `what` its test drive or customer.
   0, or -1 when Redis failed (the batch is tried again). */
int sched_fire_care(crm_service_t *svc, crm_tx_t *tx, char kind, const char *id, int64_t due, const redisReply *what);

/* fire.c */
crm_handled_t sched_on_fired(crm_service_t *svc, const crm_msg_t *msg, crm_tx_t *tx);

/* calendar.c */
int sched_calendar_start(crm_service_t *svc);
void sched_calendar_tick(crm_service_t *svc);
crm_handled_t sched_req_calendar_load(crm_service_t *svc, crm_req_t *req, crm_tx_t *tx);

#endif
