-- Review views over the ledger (current definitions; each migration embeds its own copy).

-- Every reason given for a denial, with the decision and the model version that made it.
CREATE VIEW v_decision_reasons AS
    SELECT d.decision_id, d.subject_id, d.decided_at, d.decision_date,
           mv.name AS model_name, mv.version AS model_version,
           d.score, d.decision, r.rank, r.feature, r.attribution
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
