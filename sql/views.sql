-- Review views over the ledger (current definitions; each migration embeds its own copy).

-- Every reason given for a denial, with the decision and the model version that made it.
CREATE VIEW v_decision_reasons AS
    SELECT d.decision_id, d.subject_id, d.decided_at, d.decision_date,
           mv.name AS model_name, mv.version AS model_version,
           d.score, d.decision, r.rank, r.feature, r.attribution, r.mu, r.mu_state
    FROM decisions d
    JOIN model_versions mv ON mv.id = d.model_version_id
    JOIN reasons r ON r.decision_id = d.decision_id AND r.model_version_id = d.model_version_id;

-- One line per run: status, attempts and what it stored.
CREATE VIEW v_run_summary AS
    SELECT r.id AS run_id, r.run_key, r.kind, r.night, r.model_name, r.status, r.attempts,
           r.started_at, r.finished_at, r.code_version,
           (SELECT COUNT(*) FROM decisions d WHERE d.run_id = r.id) AS decisions,
           (SELECT COUNT(DISTINCT q.row_number) FROM quarantine q WHERE q.run_id = r.id)
               AS quarantined_rows
    FROM runs r;

-- Quarantined rows per run and failed check.
CREATE VIEW v_quarantine_by_check AS
    SELECT r.run_key, q."check", q."column", COUNT(*) AS rows
    FROM quarantine q JOIN runs r ON r.id = q.run_id
    GROUP BY r.run_key, q."check", q."column";

-- Per denied decision: recourse verification, how its reasons fare, and the issued recourse.
CREATE VIEW v_recourse_overview AS
    SELECT d.decision_id, d.subject_id, d.decided_at, mv.name AS model_name,
           mv.version AS model_version, c.status, c.complete, c.reasons_given,
           c.responsive_reasons, c.all_reasons_unresponsive, c.fixed_with_reasons,
           i.recourse_id, i.cost, i.score_after, i.minimal_over
    FROM recourse_checks c
    JOIN decisions d ON d.decision_id = c.decision_id
    JOIN model_versions mv ON mv.id = c.model_version_id
    LEFT JOIN issued_recourse i
           ON i.decision_id = c.decision_id AND i.model_version_id = c.model_version_id;

-- Applicants told something that is no longer true: recourse a later version no longer approves.
CREATE VIEW v_recontact AS
    SELECT d.subject_id, d.decision_id, i.recourse_id, i.issued_at,
           mv_old.name AS model_name, mv_old.version AS issued_under,
           mv_new.version AS checked_under, i.score_after AS promised_score,
           v.score AS new_score, i.changes, i.stability, v.checked_at, v.run_id
    FROM recourse_validity v
    JOIN issued_recourse i ON i.recourse_id = v.recourse_id
    JOIN decisions d ON d.decision_id = i.decision_id
    JOIN model_versions mv_old ON mv_old.id = i.model_version_id
    JOIN model_versions mv_new ON mv_new.id = v.model_version_id
    WHERE NOT v.valid;
