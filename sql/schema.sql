-- Generated from governance/store/models.py by governance.store.ddl.render_schema();
-- do not edit by hand. Migrations in sql/migrations create the same schema.

CREATE TABLE cost_models (
	id SERIAL NOT NULL,
	sha256 VARCHAR(64) NOT NULL,
	kind VARCHAR(32) NOT NULL,
	body JSONB NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (sha256)
);

CREATE TABLE mlflow_alias_events (
	id SERIAL NOT NULL,
	tracking_uri VARCHAR(256) NOT NULL,
	registered_model VARCHAR(64) NOT NULL,
	alias VARCHAR(64) NOT NULL,
	version VARCHAR(64),
	previous_version VARCHAR(64),
	observed_at TIMESTAMP WITH TIME ZONE NOT NULL,
	via VARCHAR(16) NOT NULL,
	actor VARCHAR(128) NOT NULL,
	model_name VARCHAR(64) NOT NULL,
	action VARCHAR(32),
	note TEXT,
	PRIMARY KEY (id)
);
CREATE INDEX ix_mlflow_alias_events_alias ON mlflow_alias_events (registered_model, alias);

CREATE TABLE model_versions (
	id SERIAL NOT NULL,
	name VARCHAR(64) NOT NULL,
	version VARCHAR(64) NOT NULL,
	artifact_sha256 VARCHAR(64) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	manifest JSONB NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (name, version)
);

CREATE TABLE result_provenance (
	id SERIAL NOT NULL,
	sha256 VARCHAR(64) NOT NULL,
	settings_sha256 VARCHAR(64) NOT NULL,
	settings JSONB NOT NULL,
	code_version VARCHAR(64) NOT NULL,
	libraries JSONB NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (sha256)
);

CREATE TABLE run_locks (
	lock_key VARCHAR(200) NOT NULL,
	holder VARCHAR(200) NOT NULL,
	description VARCHAR(200),
	acquired_at TIMESTAMP WITH TIME ZONE NOT NULL,
	heartbeat_at TIMESTAMP WITH TIME ZONE NOT NULL,
	expires_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (lock_key)
);

CREATE TABLE runs (
	id SERIAL NOT NULL,
	run_key VARCHAR(200) NOT NULL,
	kind VARCHAR(32) NOT NULL,
	night DATE,
	model_name VARCHAR(64),
	status VARCHAR(16) NOT NULL,
	parameters JSONB NOT NULL,
	code_version VARCHAR(64) NOT NULL,
	started_at TIMESTAMP WITH TIME ZONE NOT NULL,
	finished_at TIMESTAMP WITH TIME ZONE,
	attempts INTEGER NOT NULL,
	counts JSONB NOT NULL,
	timings JSONB NOT NULL,
	flow_run_id VARCHAR(64),
	error TEXT,
	PRIMARY KEY (id),
	UNIQUE (run_key)
);
CREATE INDEX ix_runs_kind ON runs (kind);
CREATE INDEX ix_runs_night ON runs (night);

CREATE TABLE action_sets (
	id SERIAL NOT NULL,
	model_version_id INTEGER NOT NULL,
	name VARCHAR(64) NOT NULL,
	version VARCHAR(64) NOT NULL,
	sha256 VARCHAR(64) NOT NULL,
	body JSONB NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (model_version_id, sha256),
	FOREIGN KEY(model_version_id) REFERENCES model_versions (id)
);

CREATE TABLE calibration_bins (
	run_id INTEGER NOT NULL,
	bin INTEGER NOT NULL,
	lower FLOAT NOT NULL,
	upper FLOAT NOT NULL,
	n INTEGER NOT NULL,
	mean_stability FLOAT,
	realised_validity FLOAT,
	ci_low FLOAT,
	ci_high FLOAT,
	PRIMARY KEY (run_id, bin),
	FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);

CREATE TABLE decisions (
	decision_id VARCHAR(64) NOT NULL,
	subject_id VARCHAR(64) NOT NULL,
	decided_at TIMESTAMP WITH TIME ZONE NOT NULL,
	decision_date DATE NOT NULL,
	model_version_id INTEGER NOT NULL,
	score FLOAT NOT NULL,
	decision VARCHAR(16) NOT NULL,
	features JSONB NOT NULL,
	score_recomputed FLOAT,
	run_id INTEGER NOT NULL,
	completed_at TIMESTAMP WITH TIME ZONE,
	provenance_id INTEGER,
	out_of_range JSONB,
	PRIMARY KEY (decision_id),
	FOREIGN KEY(model_version_id) REFERENCES model_versions (id),
	FOREIGN KEY(run_id) REFERENCES runs (id),
	FOREIGN KEY(provenance_id) REFERENCES result_provenance (id)
);
CREATE INDEX ix_decisions_decision_date ON decisions (decision_date);
CREATE INDEX ix_decisions_model_version_id ON decisions (model_version_id);
CREATE INDEX ix_decisions_notice_due ON decisions (coalesce(completed_at, decided_at), decision_id) WHERE decision = 'denied';
CREATE INDEX ix_decisions_run_id ON decisions (run_id);
CREATE INDEX ix_decisions_subject ON decisions (subject_id, decided_at);

CREATE TABLE deletion_requests (
	request_id VARCHAR(64) NOT NULL,
	subject_hash VARCHAR(64) NOT NULL,
	subject_id VARCHAR(64),
	reason TEXT,
	model_name VARCHAR(64),
	received_at TIMESTAMP WITH TIME ZONE NOT NULL,
	due_at TIMESTAMP WITH TIME ZONE NOT NULL,
	status VARCHAR(16) NOT NULL,
	completed_at TIMESTAMP WITH TIME ZONE,
	run_id INTEGER,
	counts JSONB NOT NULL,
	error TEXT,
	PRIMARY KEY (request_id),
	FOREIGN KEY(run_id) REFERENCES runs (id)
);
CREATE INDEX ix_deletion_requests_due_at ON deletion_requests (due_at);
CREATE INDEX ix_deletion_requests_status ON deletion_requests (status);
CREATE INDEX ix_deletion_requests_subject_hash ON deletion_requests (subject_hash);

CREATE TABLE deployment_checks (
	run_id INTEGER NOT NULL,
	model_name VARCHAR(64) NOT NULL,
	new_version VARCHAR(64) NOT NULL,
	recourses_checked INTEGER NOT NULL,
	invalidated INTEGER NOT NULL,
	invalidation_rate FLOAT,
	gate FLOAT,
	passed BOOLEAN NOT NULL,
	checked_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (run_id),
	FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);

CREATE TABLE deployment_events (
	id SERIAL NOT NULL,
	model_name VARCHAR(64) NOT NULL,
	version VARCHAR(64) NOT NULL,
	state VARCHAR(16) NOT NULL,
	at TIMESTAMP WITH TIME ZONE NOT NULL,
	actor VARCHAR(128) NOT NULL,
	via VARCHAR(128) NOT NULL,
	reason TEXT,
	passed BOOLEAN,
	forced BOOLEAN NOT NULL,
	check_run_id INTEGER,
	invalidation_rate FLOAT,
	gate FLOAT,
	previous_version VARCHAR(64),
	PRIMARY KEY (id),
	FOREIGN KEY(check_run_id) REFERENCES runs (id)
);
CREATE INDEX ix_deployment_events_model ON deployment_events (model_name, version);

CREATE TABLE explainer_choices (
	model_version_id INTEGER NOT NULL,
	kind VARCHAR(32) NOT NULL,
	rule TEXT NOT NULL,
	evidence JSONB NOT NULL,
	sample_rows INTEGER NOT NULL,
	seed INTEGER NOT NULL,
	chosen_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (model_version_id),
	FOREIGN KEY(model_version_id) REFERENCES model_versions (id)
);

CREATE TABLE explainers (
	id SERIAL NOT NULL,
	config_sha256 VARCHAR(64) NOT NULL,
	model_version_id INTEGER NOT NULL,
	explainer VARCHAR(64) NOT NULL,
	output VARCHAR(16) NOT NULL,
	settings JSONB NOT NULL,
	background_sha256 VARCHAR(64),
	PRIMARY KEY (id),
	UNIQUE (config_sha256),
	FOREIGN KEY(model_version_id) REFERENCES model_versions (id)
);

CREATE TABLE notices (
	notice_id VARCHAR(32) NOT NULL,
	decision_id VARCHAR(64) NOT NULL,
	subject_id VARCHAR(64),
	model_version_id INTEGER NOT NULL,
	kind VARCHAR(16) NOT NULL,
	text TEXT NOT NULL,
	html TEXT NOT NULL,
	sha256 VARCHAR(64) NOT NULL,
	reasons JSONB NOT NULL,
	flags JSONB NOT NULL,
	issued_at TIMESTAMP WITH TIME ZONE NOT NULL,
	due_at TIMESTAMP WITH TIME ZONE NOT NULL,
	retain_until TIMESTAMP WITH TIME ZONE NOT NULL,
	erasure_request_id VARCHAR(64),
	PRIMARY KEY (notice_id),
	UNIQUE (decision_id, kind),
	FOREIGN KEY(model_version_id) REFERENCES model_versions (id)
);
CREATE INDEX ix_notices_retain_until ON notices (retain_until);
CREATE INDEX ix_notices_subject_id ON notices (subject_id);

CREATE TABLE quarantine (
	id SERIAL NOT NULL,
	run_id INTEGER NOT NULL,
	row_number INTEGER NOT NULL,
	decision_id VARCHAR(64),
	subject_id VARCHAR(64),
	model_name VARCHAR(64),
	model_version VARCHAR(64),
	"check" VARCHAR(100) NOT NULL,
	"column" VARCHAR(64),
	value TEXT,
	row_json TEXT NOT NULL,
	quarantined_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (run_id, row_number, "check", "column"),
	FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
CREATE INDEX ix_quarantine_run_id ON quarantine (run_id);
CREATE INDEX ix_quarantine_subject_id ON quarantine (subject_id);

CREATE TABLE reason_statements (
	id SERIAL NOT NULL,
	model_version_id INTEGER NOT NULL,
	feature VARCHAR(64) NOT NULL,
	direction VARCHAR(8) NOT NULL,
	statement TEXT NOT NULL,
	reviewer VARCHAR(128) NOT NULL,
	reviewed_at TIMESTAMP WITH TIME ZONE NOT NULL,
	superseded_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (id),
	FOREIGN KEY(model_version_id) REFERENCES model_versions (id)
);
CREATE INDEX ix_reason_statements_key ON reason_statements (model_version_id, feature, direction);

CREATE TABLE run_chunks (
	run_id INTEGER NOT NULL,
	chunk_no INTEGER NOT NULL,
	chunk_sha256 VARCHAR(64) NOT NULL,
	rows INTEGER NOT NULL,
	counts JSONB NOT NULL,
	seconds FLOAT NOT NULL,
	finished_at TIMESTAMP WITH TIME ZONE NOT NULL,
	provenance_id INTEGER,
	PRIMARY KEY (run_id, chunk_no),
	FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE,
	FOREIGN KEY(provenance_id) REFERENCES result_provenance (id)
);

CREATE TABLE attributions (
	decision_id VARCHAR(64) NOT NULL,
	model_version_id INTEGER NOT NULL,
	feature VARCHAR(64) NOT NULL,
	value TEXT,
	attribution FLOAT NOT NULL,
	PRIMARY KEY (decision_id, model_version_id, feature),
	FOREIGN KEY(decision_id) REFERENCES decisions (decision_id) ON DELETE CASCADE,
	FOREIGN KEY(model_version_id) REFERENCES model_versions (id)
);

CREATE TABLE deletion_checks (
	request_id VARCHAR(64) NOT NULL,
	model_name VARCHAR(64) NOT NULL,
	current_version VARCHAR(64) NOT NULL,
	candidate_version VARCHAR(64),
	training_rows_removed INTEGER NOT NULL,
	original_rows_removed INTEGER,
	sha256_before VARCHAR(64),
	sha256_after VARCHAR(64),
	recourses_checked INTEGER NOT NULL,
	invalidated INTEGER NOT NULL,
	reasons_changed INTEGER NOT NULL,
	became_fixed INTEGER NOT NULL,
	gained_recourse INTEGER NOT NULL,
	run_id INTEGER NOT NULL,
	invalidated_by_deletion INTEGER,
	invalidated_by_retraining INTEGER,
	PRIMARY KEY (request_id, model_name),
	FOREIGN KEY(request_id) REFERENCES deletion_requests (request_id) ON DELETE CASCADE,
	FOREIGN KEY(run_id) REFERENCES runs (id)
);

CREATE TABLE explanations (
	decision_id VARCHAR(64) NOT NULL,
	model_version_id INTEGER NOT NULL,
	explainer_id INTEGER NOT NULL,
	base_value FLOAT NOT NULL,
	model_output FLOAT NOT NULL,
	additivity_error FLOAT NOT NULL,
	additive BOOLEAN NOT NULL,
	run_id INTEGER NOT NULL,
	PRIMARY KEY (decision_id, model_version_id),
	FOREIGN KEY(decision_id) REFERENCES decisions (decision_id) ON DELETE CASCADE,
	FOREIGN KEY(model_version_id) REFERENCES model_versions (id),
	FOREIGN KEY(explainer_id) REFERENCES explainers (id),
	FOREIGN KEY(run_id) REFERENCES runs (id)
);
CREATE INDEX ix_explanations_run_id ON explanations (run_id);

CREATE TABLE issued_recourse (
	recourse_id VARCHAR(88) NOT NULL,
	decision_id VARCHAR(64) NOT NULL,
	model_version_id INTEGER NOT NULL,
	action_set_id INTEGER NOT NULL,
	cost_model_id INTEGER NOT NULL,
	issued_at TIMESTAMP WITH TIME ZONE NOT NULL,
	cost FLOAT NOT NULL,
	score_before FLOAT NOT NULL,
	score_after FLOAT NOT NULL,
	complete BOOLEAN NOT NULL,
	minimal_over VARCHAR(16),
	changes JSONB NOT NULL,
	x_after JSONB NOT NULL,
	run_id INTEGER NOT NULL,
	kind VARCHAR(16) DEFAULT 'minimal' NOT NULL,
	stability FLOAT,
	alternative JSONB,
	x_codes BYTEA,
	layout_sha256 VARCHAR(64),
	changed TEXT,
	provenance_id INTEGER,
	PRIMARY KEY (recourse_id),
	UNIQUE (decision_id, model_version_id),
	FOREIGN KEY(decision_id) REFERENCES decisions (decision_id) ON DELETE CASCADE,
	FOREIGN KEY(model_version_id) REFERENCES model_versions (id),
	FOREIGN KEY(action_set_id) REFERENCES action_sets (id),
	FOREIGN KEY(cost_model_id) REFERENCES cost_models (id),
	FOREIGN KEY(run_id) REFERENCES runs (id),
	FOREIGN KEY(provenance_id) REFERENCES result_provenance (id)
);
CREATE INDEX ix_issued_recourse_decision_id ON issued_recourse (decision_id);
CREATE INDEX ix_issued_recourse_issued_at ON issued_recourse (issued_at);
CREATE INDEX ix_issued_recourse_model_version_id ON issued_recourse (model_version_id);
CREATE INDEX ix_issued_recourse_run_id ON issued_recourse (run_id);

CREATE TABLE quality_settings (
	id SERIAL NOT NULL,
	sha256 VARCHAR(64) NOT NULL,
	metric VARCHAR(32) NOT NULL,
	model_version_id INTEGER NOT NULL,
	explainer_id INTEGER,
	background_sha256 VARCHAR(64),
	body JSONB NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (sha256),
	FOREIGN KEY(model_version_id) REFERENCES model_versions (id),
	FOREIGN KEY(explainer_id) REFERENCES explainers (id)
);

CREATE TABLE reasons (
	decision_id VARCHAR(64) NOT NULL,
	model_version_id INTEGER NOT NULL,
	rank INTEGER NOT NULL,
	feature VARCHAR(64) NOT NULL,
	attribution FLOAT NOT NULL,
	mu FLOAT,
	mu_state VARCHAR(16),
	PRIMARY KEY (decision_id, model_version_id, rank),
	FOREIGN KEY(decision_id) REFERENCES decisions (decision_id) ON DELETE CASCADE,
	FOREIGN KEY(model_version_id) REFERENCES model_versions (id)
);

CREATE TABLE recourse_checks (
	decision_id VARCHAR(64) NOT NULL,
	model_version_id INTEGER NOT NULL,
	action_set_id INTEGER NOT NULL,
	status VARCHAR(16) NOT NULL,
	complete BOOLEAN NOT NULL,
	n_points INTEGER NOT NULL,
	reasons_given INTEGER NOT NULL,
	responsive_reasons INTEGER NOT NULL,
	all_reasons_unresponsive BOOLEAN NOT NULL,
	fixed_with_reasons BOOLEAN NOT NULL,
	run_id INTEGER NOT NULL,
	PRIMARY KEY (decision_id, model_version_id),
	FOREIGN KEY(decision_id) REFERENCES decisions (decision_id) ON DELETE CASCADE,
	FOREIGN KEY(model_version_id) REFERENCES model_versions (id),
	FOREIGN KEY(action_set_id) REFERENCES action_sets (id),
	FOREIGN KEY(run_id) REFERENCES runs (id)
);
CREATE INDEX ix_recourse_checks_run_id ON recourse_checks (run_id);
CREATE INDEX ix_recourse_checks_status ON recourse_checks (status);

CREATE TABLE responsive_reasons (
	decision_id VARCHAR(64) NOT NULL,
	model_version_id INTEGER NOT NULL,
	rank INTEGER NOT NULL,
	feature VARCHAR(64) NOT NULL,
	mu FLOAT NOT NULL,
	PRIMARY KEY (decision_id, model_version_id, rank),
	FOREIGN KEY(decision_id) REFERENCES decisions (decision_id) ON DELETE CASCADE,
	FOREIGN KEY(model_version_id) REFERENCES model_versions (id)
);

CREATE TABLE responsiveness (
	decision_id VARCHAR(64) NOT NULL,
	model_version_id INTEGER NOT NULL,
	feature VARCHAR(64) NOT NULL,
	action_set_id INTEGER NOT NULL,
	attribution FLOAT,
	mu FLOAT,
	mu_state VARCHAR(16) DEFAULT 'scored' NOT NULL,
	n_points INTEGER NOT NULL,
	method VARCHAR(16) NOT NULL,
	PRIMARY KEY (decision_id, model_version_id, feature),
	FOREIGN KEY(decision_id) REFERENCES decisions (decision_id) ON DELETE CASCADE,
	FOREIGN KEY(model_version_id) REFERENCES model_versions (id),
	FOREIGN KEY(action_set_id) REFERENCES action_sets (id)
);

CREATE TABLE tombstones (
	request_id VARCHAR(64) NOT NULL,
	subject_hash VARCHAR(64) NOT NULL,
	received_at TIMESTAMP WITH TIME ZONE NOT NULL,
	purged_at TIMESTAMP WITH TIME ZONE NOT NULL,
	counts JSONB NOT NULL,
	PRIMARY KEY (request_id),
	FOREIGN KEY(request_id) REFERENCES deletion_requests (request_id) ON DELETE CASCADE
);
CREATE INDEX ix_tombstones_subject_hash ON tombstones (subject_hash);

CREATE TABLE version_comparisons (
	decision_id VARCHAR(64) NOT NULL,
	model_version_id INTEGER NOT NULL,
	old_model_version_id INTEGER NOT NULL,
	run_id INTEGER NOT NULL,
	new_score FLOAT NOT NULL,
	reasons_changed BOOLEAN NOT NULL,
	feature_agreement FLOAT NOT NULL,
	rank_agreement FLOAT NOT NULL,
	old_status VARCHAR(16),
	new_status VARCHAR(16),
	became_fixed BOOLEAN NOT NULL,
	gained_recourse BOOLEAN NOT NULL,
	mu_mean_abs_change FLOAT,
	PRIMARY KEY (decision_id, model_version_id),
	FOREIGN KEY(decision_id) REFERENCES decisions (decision_id) ON DELETE CASCADE,
	FOREIGN KEY(model_version_id) REFERENCES model_versions (id),
	FOREIGN KEY(old_model_version_id) REFERENCES model_versions (id),
	FOREIGN KEY(run_id) REFERENCES runs (id)
);
CREATE INDEX ix_version_comparisons_run_id ON version_comparisons (run_id);

CREATE TABLE explanation_agreement (
	decision_id VARCHAR(64) NOT NULL,
	model_version_id INTEGER NOT NULL,
	comparison VARCHAR(32) NOT NULL,
	other VARCHAR(64) NOT NULL,
	other_model_version_id INTEGER,
	settings_id INTEGER,
	k INTEGER NOT NULL,
	feature_agreement FLOAT NOT NULL,
	rank_agreement FLOAT NOT NULL,
	sign_agreement FLOAT,
	signed_rank_agreement FLOAT,
	rank_correlation FLOAT,
	pairwise_rank_agreement FLOAT,
	reasons_feature_agreement FLOAT NOT NULL,
	reasons_rank_agreement FLOAT NOT NULL,
	top1_same BOOLEAN NOT NULL,
	run_id INTEGER NOT NULL,
	PRIMARY KEY (decision_id, model_version_id, comparison),
	FOREIGN KEY(decision_id) REFERENCES decisions (decision_id) ON DELETE CASCADE,
	FOREIGN KEY(model_version_id) REFERENCES model_versions (id),
	FOREIGN KEY(other_model_version_id) REFERENCES model_versions (id),
	FOREIGN KEY(settings_id) REFERENCES quality_settings (id),
	FOREIGN KEY(run_id) REFERENCES runs (id)
);
CREATE INDEX ix_explanation_agreement_run_id ON explanation_agreement (run_id);

CREATE TABLE explanation_faithfulness (
	decision_id VARCHAR(64) NOT NULL,
	model_version_id INTEGER NOT NULL,
	perturbation VARCHAR(32) NOT NULL,
	explainer_id INTEGER NOT NULL,
	settings_id INTEGER,
	k INTEGER NOT NULL,
	pgi FLOAT,
	pgu FLOAT,
	pgi_random FLOAT,
	reasons_not_above_random BOOLEAN,
	run_id INTEGER NOT NULL,
	PRIMARY KEY (decision_id, model_version_id, perturbation),
	FOREIGN KEY(decision_id) REFERENCES decisions (decision_id) ON DELETE CASCADE,
	FOREIGN KEY(model_version_id) REFERENCES model_versions (id),
	FOREIGN KEY(explainer_id) REFERENCES explainers (id),
	FOREIGN KEY(settings_id) REFERENCES quality_settings (id),
	FOREIGN KEY(run_id) REFERENCES runs (id)
);
CREATE INDEX ix_explanation_faithfulness_run_id ON explanation_faithfulness (run_id);

CREATE TABLE explanation_stability (
	decision_id VARCHAR(64) NOT NULL,
	model_version_id INTEGER NOT NULL,
	explainer_id INTEGER NOT NULL,
	settings_id INTEGER,
	ris FLOAT,
	ros FLOAT,
	n_draws INTEGER NOT NULL,
	n_same_class INTEGER NOT NULL,
	ris_skipped INTEGER NOT NULL,
	ros_skipped INTEGER NOT NULL,
	neighbourhood_std FLOAT NOT NULL,
	run_id INTEGER NOT NULL,
	PRIMARY KEY (decision_id, model_version_id),
	FOREIGN KEY(decision_id) REFERENCES decisions (decision_id) ON DELETE CASCADE,
	FOREIGN KEY(model_version_id) REFERENCES model_versions (id),
	FOREIGN KEY(explainer_id) REFERENCES explainers (id),
	FOREIGN KEY(settings_id) REFERENCES quality_settings (id),
	FOREIGN KEY(run_id) REFERENCES runs (id)
);
CREATE INDEX ix_explanation_stability_run_id ON explanation_stability (run_id);

CREATE TABLE recourse_fragility (
	recourse_id VARCHAR(88) NOT NULL,
	model_version_id INTEGER NOT NULL,
	k INTEGER,
	budget INTEGER NOT NULL,
	method VARCHAR(16) NOT NULL,
	final_score FLOAT,
	run_id INTEGER NOT NULL,
	computed_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (recourse_id, model_version_id),
	FOREIGN KEY(recourse_id) REFERENCES issued_recourse (recourse_id) ON DELETE CASCADE,
	FOREIGN KEY(model_version_id) REFERENCES model_versions (id),
	FOREIGN KEY(run_id) REFERENCES runs (id)
);
CREATE INDEX ix_recourse_fragility_run_id ON recourse_fragility (run_id);

CREATE TABLE recourse_validity (
	recourse_id VARCHAR(88) NOT NULL,
	model_version_id INTEGER NOT NULL,
	run_id INTEGER NOT NULL,
	valid BOOLEAN NOT NULL,
	score FLOAT NOT NULL,
	checked_at TIMESTAMP WITH TIME ZONE NOT NULL,
	forward_validity FLOAT,
	n_variants INTEGER,
	alternative_valid BOOLEAN,
	PRIMARY KEY (recourse_id, model_version_id),
	FOREIGN KEY(recourse_id) REFERENCES issued_recourse (recourse_id) ON DELETE CASCADE,
	FOREIGN KEY(model_version_id) REFERENCES model_versions (id),
	FOREIGN KEY(run_id) REFERENCES runs (id)
);
CREATE INDEX ix_recourse_validity_run_id ON recourse_validity (run_id);
