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

-- Applicants told something that is no longer true: recourse that a later version, one that was
-- actually deployed, no longer approves (a check of a candidate never fills it).
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
    WHERE NOT v.valid
      AND EXISTS (SELECT 1 FROM deployment_events e
                  WHERE e.model_name = mv_new.name AND e.version = mv_new.version
                    AND e.state = 'deployed');

-- Per denial and model version: faithfulness of the reasons disclosed (PGI, PGU, the random
-- control, both neighbourhoods), stability where sampled, and agreement with the
-- responsiveness ranking, the permutation explainer and the previous version.
CREATE VIEW v_explanation_quality AS
SELECT d.decision_id, d.subject_id, d.decided_at, mv.name AS model_name,
       mv.version AS model_version, d.model_version_id = f.model_version_id AS own_version,
       f.k AS reasons, f.pgi, f.pgu, f.pgi_random, f.reasons_not_above_random,
       b.pgi AS pgi_background, b.pgu AS pgu_background,
       s.ris, s.ros, s.n_same_class AS stability_neighbours, s.ros_skipped,
       s.neighbourhood_std, ar.reasons_feature_agreement AS responsiveness_agreement,
       ar.rank_correlation AS responsiveness_rank_correlation,
       ae.feature_agreement AS permutation_feature_agreement,
       ae.rank_correlation AS permutation_rank_correlation,
       av.reasons_feature_agreement AS previous_version_agreement,
       av.top1_same AS previous_version_top1_same, f.run_id
FROM explanation_faithfulness f
JOIN decisions d ON d.decision_id = f.decision_id
JOIN model_versions mv ON mv.id = f.model_version_id
LEFT JOIN explanation_faithfulness b
       ON b.decision_id = f.decision_id AND b.model_version_id = f.model_version_id
      AND b.perturbation = 'background_replacement'
LEFT JOIN explanation_stability s
       ON s.decision_id = f.decision_id AND s.model_version_id = f.model_version_id
LEFT JOIN explanation_agreement ar
       ON ar.decision_id = f.decision_id AND ar.model_version_id = f.model_version_id
      AND ar.comparison = 'shap_vs_responsiveness'
LEFT JOIN explanation_agreement ae
       ON ae.decision_id = f.decision_id AND ae.model_version_id = f.model_version_id
      AND ae.comparison = 'explainer_vs_permutation'
LEFT JOIN explanation_agreement av
       ON av.decision_id = f.decision_id AND av.model_version_id = f.model_version_id
      AND av.comparison = 'version_vs_previous'
WHERE f.perturbation = 'openxai_normal';

-- The distribution of explanation quality per model version (own_version: the version made
-- the decision; false: a redeploy check re-explained it under a later one).
CREATE VIEW v_explanation_quality_by_version AS
SELECT model_name, model_version, own_version, COUNT(*) AS denials,
       COUNT(pgi) AS with_reasons, AVG(pgi) AS mean_pgi, MIN(pgi) AS min_pgi,
       MAX(pgi) AS max_pgi, AVG(pgu) AS mean_pgu, MIN(pgu) AS min_pgu, MAX(pgu) AS max_pgu,
       AVG(pgi_random) AS mean_pgi_random,
       AVG(CASE WHEN reasons_not_above_random THEN 1.0
                WHEN reasons_not_above_random IS NULL THEN NULL ELSE 0.0 END)
           AS share_not_above_random,
       AVG(pgi_background) AS mean_pgi_background, AVG(pgu_background) AS mean_pgu_background,
       COUNT(ris) AS stability_sampled, AVG(ris) AS mean_ris, MAX(ris) AS max_ris,
       AVG(ros) AS mean_ros, MAX(ros) AS max_ros,
       AVG(responsiveness_agreement) AS mean_responsiveness_agreement,
       AVG(permutation_feature_agreement) AS mean_permutation_agreement,
       AVG(previous_version_agreement) AS mean_previous_version_agreement
FROM v_explanation_quality
GROUP BY model_name, model_version, own_version;
