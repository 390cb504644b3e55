/*  crm_keys: every Redis key autocrm uses, in one place.
 *
 *  Keys are namespaced "crm:" and the parts that must move together carry a
 *  hash tag ({...}) so the layout can go to Redis Cluster: a stream's events
 *  and its sequence counter share the tag of the stream's name.
 *
 *  crm:{<stream>}:events   stream; entry ID "<seq>-0", field m = envelope
 *  crm:{<stream>}:seq      string; last sequence number allocated
 *  crm:cursor:<consumer>   hash; stream -> last sequence applied
 *  crm:svc:<service>       hash with a TTL; the running instance's status
 *  crm:rejects             stream; frames and messages refused: service, origin, kind
 *                          (event|request|frame), seq, peer, type, field, reason, frame
 *  crm:rejects:state       hash; reject entry id -> applied:<ms> | refused:<ms> (reject.retry)
 *  crm:ans:<service>:<digest>  string with a TTL; the answer first given to a request, in
 *                          the compact form (crm_msg_encode_compact; a whole envelope before);
 *                          (digest: SHA-256 of service, peer, keyspace and the request's key);
 *                          kept CRM_ANSWER_TTL_DAYS (7), lead submissions
 *                          CRM_SUBMISSION_TTL_DAYS (90)
 *  crm:timers:<set>        sorted set; timer id scored by due time (ms)
 *  crm:due:<set>           sorted set; a compact timer: its id ("o:K12") scored by its due
 *                          time (ms); fired as timers.fired on stream "timer" (crm_store_fire_due)
 *  crm:timers:<set>:frame  hash; timer id -> envelope to emit when due
 *  crm:timers:<set>:meta   hash; timer id -> "<stream> <seq offset>"
 *
 *  Intake (leads and customers):
 *  (the answer first given to a submission: crm:ans:intake:<digest>, above)
 *  crm:quarantine          sorted set; every quarantine id Q<n>, scored n (listing)
 *  crm:quarantine:<Q>      hash; one kept submission: quarantine_id, submission_id, channel,
 *                          received_ms, errors, frame (or document: what no converter read),
 *                          state: open | retried:<lead id> | rejected-again:Q<m>. One key per
 *                          entry, so intake instances committing in any order never collide
 *  crm:ids:customer|lead|quarantine  counters for new ids (C<n>, L<n>, Q<n>)
 *  crm:cust:{<C>}          hash; the customer record: the current value of each field,
 *                          created_ms, updated_ms, first_channel, first_lead (the lead it was
 *                          created from) or first_ref (the dealer's record it was created from)
 *  crm:cust:{<C>}:history  stream; every field change: field, old, new, channel, lead, ts. A new
 *                          record's first values are not repeated here (the record, created_ms,
 *                          first_channel and its first lead say them; a later change keeps the
 *                          value it replaced as "<field>.old"): a dealer's file's creation has an
 *                          entry only for values the rules refused or rewrote ("<field>.raw"; a
 *                          lead's are in crm:lead:<L>)
 *  crm:cust:{<C>}:leads    list; the customer's later lead ids, oldest first (the first is the
 *                          record's first_lead; a record from before first_lead has them all here)
 *  crm:cust:{<C>}:findings hash; "<field>:<code>" -> "<severity>|<message>" for the
 *                          record as it stands
 *  crm:lead:<L>            hash; one lead: customer_id, channel, source, model, ..., and
 *                          "<field>.raw": a value as received where the rules rewrote or refused it
 *  crm:idx:mobile:<mobile> string; customer id (match key)
 *  crm:idx:id:<id number>  string; customer id (match key)
 *  crm:idx:name:<name>     set; customer ids (for crmctl customer find --name), C<n> kept as n
 *                          (a set of numbers is Redis's compact intset)
 *
 *  Dispatcher (dealers and test drives):
 *  crm:dealer:<D>          hash; name, region, province, city, address, capacity (absent: the
 *                          dispatcher's default), hours (working hours, China time, "HH:MM-HH:MM";
 *                          absent: the scheduler's, 09:00-18:00), state, created_ms, acked,
 *                          acked_ms, ack_pending
 *  crm:dealers:acks_pending  set; dealers whose long acknowledgement is being finished
 *  crm:regions             hash; province -> sales region (crm_regions.h)
 *  crm:regions:table       list; one "region=province,..." line per region, in order
 *  crm:dealers             set; every dealer id
 *  crm:dealers:city:<c>, crm:dealers:province:<p>, crm:dealers:region:<r>
 *                          sets; dealer ids, for routing
 *  crm:dealer:<D>:open     set; the dealer's open test drives
 *  crm:dealer:<D>:day:<YYYYMMDD>  counter; test drives booked that day (China time); expires
 *                          7 days after that day
 *  crm:dealer:<D>:seq2td   hash; dealer-stream number -> test drive, until acknowledged (numbers
 *                          of dealer.assigned and dealer.task have no entry: acks pass over them)
 *  crm:{dealer.<D>}:events, crm:{dealer.<D>}:seq   the dealer's own dispatch stream
 *  crm:timers:dispatch     an earlier release's timers ("due:<T>", "escalate:<T>", whole
 *                          envelopes) until crm-dispatcher moves them at start (one whose id
 *                          is no test drive's stays and fires as it is)
 *  crm:due:dispatch        the dispatcher's compact timers, decided when due from crm:td:<T>:
 *                          "d:<T>" its dispatch at T-3 09:00 (testdrive.due if still routed),
 *                          "e:<T>" its escalation (not acknowledged since dispatched_ms:
 *                          escalated; an acknowledgement removes it)
 *  crm:td:<T>              hash; a test drive: lead, customer, dealer, reason, at, status, ...
 *  crm:td:<T>:history      stream; what the dealer says of it (status, by, ts, at, note); the
 *                          routing, the dispatch and the acknowledgement are the record's own
 *                          (requested_ms, reason_text; dispatched_ms; acked_ms)
 *  crm:tds                 sorted set; test drives by requested time
 *
 *  Dealer uplink (crm-dispatcher's uplink.c; what dealers' systems send back):
 *  crm:cust:{<C>} also holds dealer_id (owning dealer), consultant_id, stage
 *                          (prospect | customer (ordered) | owner | lost_pending | lost), remark,
 *                          fleet, vip, difficult ("1"/"0"), grade, expected_purchase_date,
 *                          last_followup_ms, last_followup_id, last_result, next_at, next_content,
 *                          lost_reason, lost_note, lost_by, lost_requested_ms, lost_ms,
 *                          lost_approved_by, last_service_date, open_orders (placed, not yet
 *                          delivered or cancelled), sale_date (the latest file's sale date, as
 *                          given when it could not be read: part one of the audit)
 *  crm:cust:{<C>}:history  entries from a dealer carry channel dealer:<D> and record <record id>;
 *                          what a file gave that no rule could read: "<field>.raw"
 *  crm:cust:{<C>}:findings:dealer  hash; the dealer's latest customer file's own findings (vehicle
 *                          dates, grade, consultant, VIN, shared match keys), "<field>:<code>" ->
 *                          "<severity>|<message>"; crm:cust:{<C>}:findings holds the record rules
 *  crm:cust:{<C>}:vehicles set; VINs of the customer's cars
 *  crm:veh:<VIN>           hash; vin, customer_id, dealer_id, engine_number, model, transmission,
 *                          colour, plate, plate_date, sale_date, first_service_date,
 *                          first_service_mileage, order_id, delivered_date, last_service_date,
 *                          last_service_mileage
 *  crm:cust:{<C>}:followups  stream; followup_id, dealer_id, record_id, consultant_id, at, result,
 *                          content, feedback, grade, expected_purchase_date, next_at, next_content
 *  crm:cust:{<C>}:orders   set; "<D>:<O>", O the first 32 hex digits of the SHA-256 of the
 *                          dealer's order number (any characters, so never in a key as it is)
 *  crm:order:<D>:<O>       hash; order_id, dealer_id, customer_id, model, price, promised_date,
 *                          first_promised_date, state (placed | cancelled | delivered), consultant_id,
 *                          placed_ms, record_id, delays, delay_reason, reason, vin, delivered_date
 *  crm:cust:{<C>}:service  stream; work_order, dealer_id, record_id, vin, date, mileage, work, amount_fen
 *  crm:ids:followup        counter for follow-up ids (F<n>)
 *  crm:dealer:<D>:staff    set; staff ids
 *  crm:dealer:<D>:staff:<S>  hash; staff_id, dealer_id, role, name, manager_id, state (active | left),
 *                          created_ms, updated_ms, left_ms, reason, away_from, away_to (YYYY-MM-DD,
 *                          staff.away), away_postpone (1/0)
 *  crm:reassign:<R>        hash; a reassignment: reassign_id, dealer_id, from_consultant,
 *                          to_consultant, customers (space-separated), reason, state (done | undone),
 *                          created_ms, undone_ms
 *  crm:ids:reassign        counter for reassignment ids (R<n>)
 *  crm:cust:{<C>} also holds original_consultant (its owner before its first reassignment)
 *  crm:dealer:<D>:customers  set; the customers the dealer owns
 *  crm:dealer:<D>:staff:<S>:customers  set; a consultant's customers
 *  crm:dealer:<D>:lost_pending, crm:dealer:<D>:lost  sets; lost prospects waiting, approved
 *  (the answer first given to an uplink record: crm:ans:dispatcher:<digest>, kept
 *  uplink-keep-days, 90 by default)
 *  Scheduler (crm-scheduler: plans, tasks, timers, reports):
 *  crm:plan:{<C>}          hash; a prospect's plan: dealer_id, consultant_id, grade,
 *                          expected_purchase_date, last_contact_ms, last_effective_ms, task (the open
 *                          follow-up task), stage (prospect | ordered | lost), released (1),
 *                          released_ms, released_from, expired_ms, transfer_to, transfer_from,
 *                          transfer_ms (a transfer waiting for the director), transfer_decision,
 *                          updated_ms
 *  crm:cust:{<C>}:tasks    set; every task of the customer, open or closed
 *  crm:cust:{<C>}:tasks:open  set; its open (or overdue) tasks
 *  crm:task:<K>            hash; task_id, customer_id, dealer_id, consultant_id, kind, source,
 *                          content, due_ms, day (YYYY-MM-DD, China), state (open | overdue | done |
 *                          replaced | postponed | cancelled), created_ms, closed_ms, followup_id,
 *                          replaces, warned_ms, overdue_ms
 *  crm:ids:task            counter for task ids (K<n>)
 *  crm:tasks:open:<D>      sorted set; the dealer's open tasks by due time (ms)
 *  crm:tasks:dealers       set; every dealer that ever had a task
 *  crm:tasks:open:<D>:<S>  sorted set; a consultant's open tasks ("-": the dealer's, no one yet)
 *  crm:due:followup        the scheduler's timers: "w:<K>" warning, "o:<K>" overdue,
 *                          "x:<C>" expected date passes, "r:<C>" release after no effective
 *                          follow-up; care: "t:<T>" test drive T-1, "f:<T>" feedback call,
 *                          "b:<C>" birthday, "h:<YYYY-MM-DD>" holiday greeting, "c:<C>:<days>"
 *                          owner call-back, "s:<C>" service reminder
 *  crm:report:<YYYY-MM-DD>:<D>  hash; daily counters "<S>|<what>": due, done, done_late, overdue,
 *                          expired, missing_plan, released, flagged
 *  crm:report:<YYYY-MM-DD> set; dealers with counters that day
 *  crm:violations:<YYYY-MM>  stream; the facts behind the sanctions: code (overdue, expired,
 *                          missing_plan, under_frequency, pushed_out), dealer_id, consultant_id,
 *                          manager_id, customer_id, records, at, day
 *  crm:metrics:scheduler   hash; timers_fired, timers_late (fired after every scheduler was down),
 *                          late_max_ms
 *  crm:calendar            hash; text (the working-day calendar loaded with crmctl calendar load),
 *                          source, loaded_ms, version (one more each load); absent: the built-in table
 *  Auditor (crm-auditor: live findings, audit runs, value classes, retention):
 *  crm:cust:{<C>}:findings written by crm-auditor only, on every change of the record: the
 *                          record's findings as it stands (crm_audit's rules)
 *  crm:audit:rec:{<C>}     hash; the auditor's view of a record: ver (rule set), fail, not_run
 *                          (hex rule masks, crm_audit.h), at (ms evaluated), dealers (space-separated:
 *                          every dealer that filed it), m, i (its mobile and ID number as indexed for
 *                          the duplicates), by:<field> (the consultant whose file set that field);
 *                          a field without a value is left out (read back absent: empty)
 *  crm:audit:files:<D>     hash; the dealer's customer files: customer id -> "<ver> <fail> <not_run>
 *                          <expected purchase day or ->" (what a run reads, one entry per record)
 *  crm:audit:period:<P>:<D>  set; the dealer's files created or changed in period P (YYYY-MM, YYYYQn,
 *                          China time)
 *  crm:audit:keys:<n>      hash (n = 0..16383, a hash of the value); "m:<mobile>" | "i:<ID number>" ->
 *                          the customer ids holding it, space-separated
 *  crm:audit:dups          set; the "m:..."/"i:..." keys held by two customers or more
 *  crm:ids:audit           counter for run ids (A<n>)
 *  crm:audit:runs          sorted set; every run id by the time it was asked for (ms)
 *  crm:audit:running       set; runs asked for and not finished (taken again after a restart)
 *  crm:audit:run:<A>       hash; run_id, kind (audit | abc | retention), period (or "all"), dealer,
 *                          region, as_of, ruleset, rate_rules, requested_by, state (running | done |
 *                          failed), created_ms, finished_ms, supersedes, superseded_by, and the
 *                          summary: dealers, audited, in_error, highest_ppm, lowest_ppm, average_ppm,
 *                          dealers_at_zero, not_run (rules, comma-separated), regions (JSON),
 *                          region_comparison (done | not_run: a one-dealer run)
 *  crm:audit:run:<A>:dealers  hash; dealer id -> its figures, JSON (audit: audited, in_error, unjudged,
 *                          email, per rule failed / not run / up to 10 sample ids, deduction; retention:
 *                          the table by vehicle age)
 *  crm:audit:run:<A>:recs:<D>  list; "<customer id> <fail> <not_run>" for every record of the dealer
 *                          that failed a rule (crmctl audit show A --dealer D --rule R)
 *  crm:audit:run:<A>:rows  list; abc: "<customer id> <amount fen> <visits> <running fen> <share cbp>
 *                          <class> <previous class or ->", descending
 *  crm:audit:scope:<kind>|<period>|<dealer>|<region>  string; the latest run of that scope (a later
 *                          one supersedes it)
 *  crm:audit:dealer:<D>:runs  list; the audit runs that covered the dealer, oldest first
 *  crm:audit:abc:<D>:last  hash; customer id -> class at the dealer's last ABC run
 *  crm:audit:paid:<D>:<YYYY-MM>  hash; "<C>" -> fen paid that month (work orders; delivered
 *                          orders' prices), "<C>#v" -> service visits
 *  crm:audit:paid:<D>:months  set; the months with payments
 *  crm:audit:cars:<D>      hash; VIN of a car the dealer sold -> "<sale date>|<customer id>|<service
 *                          visits at the dealer>|<last service date or ->"
 *  crm:audit:scheduled:<P> string; the scheduled run of period P was asked for (once)
 *  Notifier (crm-notifier: notifications, consent, dealer webhooks, call tasks):
 *  crm:ids:notify          counter for notification numbers (N<n>)
 *  crm:notify:req:<digest> string; N, the notification of a request id (digest: crm_id_digest
 *                          of the request id, an opaque key)
 *  crm:notify:<N>          hash; request_id, channel, class, recipient, recipient_id, to,
 *                          template, customer_id, dealer_id, not_before, not_after, created_ms,
 *                          text, subject, sign, code (the gateway's template code), params (JSON
 *                          object), state (queued | deferred | sending | sent | delivered |
 *                          undelivered | failed | dead), reason, attempts, next_ms, provider_id,
 *                          sent_ms, delivered_ms, uncertain (starts that found it being sent:
 *                          each may have sent it once more), resent (such sends that went),
 *                          last_code, last_error, updated_ms
 *  crm:notify:<N>:log      stream; every step: state, reason, code, at, attempt
 *  crm:due:notify_<channel>  compact timers "n:<N>": when to look at a notification again,
 *                          one set per channel (sms, email, call, webhook), so that a full
 *                          channel's backlog never holds up the others
 *  crm:notify:inflight     set; N recorded as being sent (the window: looked at on start)
 *  crm:notify:count:<channel>:<C>:<YYYY-MM-DD>  counter; messages to a customer on a channel
 *                          that China day (the daily cap); expires after 2 days
 *  crm:notify:dlq          stream; the dead letters: notification, request_id, channel,
 *                          reason, code, message, attempts, at
 *  crm:notify:dlq:state    hash; notification -> retried:<ms>, its latest notify.retry (an
 *                          entry older than it was retried)
 *  crm:notify:replies      stream; SMS replies (上行): phone, content, at, customer_id, optout
 *  crm:notify:sms:cursor   string; where the receipt and reply poll is in the gateway's queue
 *  crm:consent:{<C>}       hash; channel -> "<opt_in|opt_out>|<at ms>|<source>", the
 *                          current state (C: a customer id, or tel:<mobile> for a number no
 *                          record has)
 *  crm:consent:{<C>}:ledger  stream, append-only; channel, state, source, text, at, by
 *  crm:webhook:<D>         hash; url, secrets (whsec_..., newest first, space-separated),
 *                          prev_until (ms; the older secret signs until then), state (enabled |
 *                          disabled), failing_since, disabled_ms, disabled_reason,
 *                          contact_email, contact_mobile, updated_ms
 *  crm:ids:call            counter for call task ids (P<n>)
 *  crm:call:<P>            hash; call_id, request_id, queue, dealer_id, consultant_id,
 *                          customer_id, phone, template, text, due_ms, state (open), created_ms
 *  crm:calls:open:<Q>      sorted set; a queue's open call tasks by due time (Q: a dealer id,
 *                          or callcentre)
 *  crm:calls:queues        set; every queue that ever had a call task
 *  crm:metrics:notifier    hash; sent, dead, dropped, deferred, retried, delivered,
 *                          undelivered, uncertain (found being sent at a start), resent (sent
 *                          again after that), reconciled (found sent by the gateway's records)
 *  crm:test:*              used by the test suite only
 */
#ifndef CRM_KEYS_H
#define CRM_KEYS_H

#define CRM_KEY_EVENTS_FMT "crm:{%s}:events"
#define CRM_KEY_SEQ_FMT "crm:{%s}:seq"
#define CRM_KEY_CURSOR_FMT "crm:cursor:%s"
#define CRM_KEY_SVC_FMT "crm:svc:%s"
#define CRM_KEY_REJECTS "crm:rejects"
#define CRM_KEY_REJECTS_STATE "crm:rejects:state"
#define CRM_KEY_ANSWER_FMT "crm:ans:%s:%s"
#define CRM_KEY_TIMERS_FMT "crm:timers:%s"
#define CRM_KEY_DUE_FMT "crm:due:%s"
#define CRM_KEY_PLAN_FMT "crm:plan:{%s}"
#define CRM_KEY_TASK_FMT "crm:task:%s"
#define CRM_KEY_TASKS_OPEN_FMT "crm:tasks:open:%s"
#define CRM_KEY_TASKS_DEALERS "crm:tasks:dealers"
#define CRM_KEY_TASKS_MINE_FMT "crm:tasks:open:%s:%s"
#define CRM_KEY_CUST_TASKS_FMT "crm:cust:{%s}:tasks"
#define CRM_KEY_CUST_OPEN_TASKS_FMT "crm:cust:{%s}:tasks:open"
#define CRM_KEY_REPORT_FMT "crm:report:%s:%s"
#define CRM_KEY_REPORT_DEALERS_FMT "crm:report:%s"
#define CRM_KEY_VIOLATIONS_FMT "crm:violations:%s"
#define CRM_KEY_CALENDAR "crm:calendar"
#define CRM_KEY_SCHED_METRICS "crm:metrics:scheduler"
#define CRM_REJECTS_MAXLEN "100000"
#define CRM_KEY_QUARANTINE "crm:quarantine"
#define CRM_KEY_QUARANTINE_FMT "crm:quarantine:%s"
#define CRM_KEY_CUST_FMT "crm:cust:{%s}"
#define CRM_KEY_LEAD_FMT "crm:lead:%s"
#define CRM_KEY_IDX_MOBILE "crm:idx:mobile:"
#define CRM_KEY_IDX_ID "crm:idx:id:"
#define CRM_KEY_IDX_NAME "crm:idx:name:"
#define CRM_KEY_IDX_MOBILE_FMT CRM_KEY_IDX_MOBILE "%s"
#define CRM_KEY_IDX_ID_FMT CRM_KEY_IDX_ID "%s"
#define CRM_KEY_IDX_NAME_FMT CRM_KEY_IDX_NAME "%s"
#define CRM_KEY_DEALER_FMT "crm:dealer:%s"
#define CRM_KEY_DEALERS "crm:dealers"
#define CRM_KEY_REGIONS "crm:regions"
#define CRM_KEY_ACKS_PENDING "crm:dealers:acks_pending"
#define CRM_KEY_REGIONS_TABLE "crm:regions:table"
#define CRM_KEY_TD_FMT "crm:td:%s"
#define CRM_KEY_TDS "crm:tds"
#define CRM_KEY_FINDINGS_FMT "crm:cust:{%s}:findings"
#define CRM_KEY_AUDIT_REC_FMT "crm:audit:rec:{%s}"
#define CRM_KEY_AUDIT_FILES_FMT "crm:audit:files:%s"
#define CRM_KEY_AUDIT_PERIOD_FMT "crm:audit:period:%s:%s"
#define CRM_KEY_AUDIT_KEYS_FMT "crm:audit:keys:%u"
#define CRM_AUDIT_KEY_BUCKETS 16384u
#define CRM_KEY_AUDIT_DUPS "crm:audit:dups"
#define CRM_KEY_AUDIT_RUNS "crm:audit:runs"
#define CRM_KEY_AUDIT_RUNNING "crm:audit:running"
#define CRM_KEY_AUDIT_RUN_FMT "crm:audit:run:%s"
#define CRM_KEY_AUDIT_RUN_DEALERS_FMT "crm:audit:run:%s:dealers"
#define CRM_KEY_AUDIT_RUN_RECS_FMT "crm:audit:run:%s:recs:%s"
#define CRM_KEY_AUDIT_RUN_ROWS_FMT "crm:audit:run:%s:rows"
#define CRM_KEY_AUDIT_SCOPE_FMT "crm:audit:scope:%s"
#define CRM_KEY_AUDIT_DEALER_RUNS_FMT "crm:audit:dealer:%s:runs"
#define CRM_KEY_AUDIT_ABC_LAST_FMT "crm:audit:abc:%s:last"
#define CRM_KEY_AUDIT_PAID_FMT "crm:audit:paid:%s:%s"
#define CRM_KEY_AUDIT_PAID_MONTHS_FMT "crm:audit:paid:%s:months"
#define CRM_KEY_AUDIT_CARS_FMT "crm:audit:cars:%s"
#define CRM_KEY_AUDIT_SCHEDULED_FMT "crm:audit:scheduled:%s"
#define CRM_KEY_NOTIFY_IDS "crm:ids:notify"
#define CRM_KEY_NOTIFY_REQ_FMT "crm:notify:req:%s"
#define CRM_KEY_NOTIFY_FMT "crm:notify:%s"
#define CRM_KEY_NOTIFY_LOG_FMT "crm:notify:%s:log"
#define CRM_NOTIFY_SET_FMT "notify_%s" /* a channel's timer set: crm:due:notify_sms ... */
#define CRM_KEY_NOTIFY_INFLIGHT "crm:notify:inflight"
#define CRM_KEY_NOTIFY_COUNT_FMT "crm:notify:count:%s"
#define CRM_KEY_NOTIFY_DLQ "crm:notify:dlq"
#define CRM_KEY_NOTIFY_DLQ_STATE "crm:notify:dlq:state"
#define CRM_KEY_NOTIFY_REPLIES "crm:notify:replies"
#define CRM_KEY_NOTIFY_SMS_CURSOR "crm:notify:sms:cursor"
#define CRM_KEY_CONSENT_FMT "crm:consent:{%s}"
#define CRM_KEY_CONSENT_LEDGER_FMT "crm:consent:{%s}:ledger"
#define CRM_KEY_WEBHOOK_FMT "crm:webhook:%s"
#define CRM_KEY_CALL_IDS "crm:ids:call"
#define CRM_KEY_CALL_FMT "crm:call:%s"
#define CRM_KEY_CALLS_OPEN_FMT "crm:calls:open:%s"
#define CRM_KEY_CALLS_QUEUES "crm:calls:queues"
#define CRM_KEY_NOTIFY_METRICS "crm:metrics:notifier"

/* The event streams, for heartbeats and `crmctl`. */
#define CRM_STREAMS(S) S(lead) S(customer) S(testdrive) S(followup) S(order) S(service) S(audit) S(notify) S(notice) S(dealers) S(ops) S(task) S(timer)

/* The five services, in start order, with their default publish and control ports. */
#define CRM_SERVICES(S)                                                                           \
    S(intake, 7101, 7211) S(dispatcher, 7102, 7212) S(scheduler, 7103, 7213)                       \
    S(auditor, 7104, 7214) S(notifier, 7105, 7215)

#endif
