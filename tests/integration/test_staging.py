"""The staged night: each chunk task reads back exactly the rows planned for it, the flow
removes the staged file when it ends, and a purge erases subjects from staged nights."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import pandas as pd

from tests.conftest import DEMO_NIGHT


def _plan(home, url, chunk_rows=100):
    from governance.store import init_store
    from tasks.ledger import open_run
    from tasks.pull import pull
    from tasks.staging import plan_chunks
    from tasks.validate import validate

    init_store(url)
    frame, _ = pull.fn(str(home / "decision-logs"), url, DEMO_NIGHT, None)
    run = open_run.fn(url, "nightly", DEMO_NIGHT, None, {})
    checked = validate.fn(frame, DEMO_NIGHT, str(home / "registry"), url, run["run_id"])
    todo, _ = plan_chunks(checked["valid"], checked["refs"], chunk_rows, {})
    return todo, run["run_id"]


def test_each_staged_chunk_reads_back_exactly_its_planned_rows(demo_home, tmp_path):
    from governance.chunk import chunk_sha256
    from tasks.staging import read_chunk, stage_chunks, staged_file

    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    todo, run_id = _plan(demo_home, url)
    assert len(todo) > 3
    path = staged_file(tmp_path / "staging", DEMO_NIGHT, run_id)
    plan = stage_chunks(todo, path)
    assert [p["chunk_no"] for p in plan] == [c["chunk_no"] for c in todo]
    for planned, staged in zip(todo, plan, strict=True):
        assert "chunk" not in staged  # the plan carries no rows
        back = read_chunk(staged["staged"])
        pd.testing.assert_frame_equal(back, planned["chunk"])
        assert chunk_sha256(back) == staged["sha"]


def test_a_purge_erases_a_subject_from_a_staged_night(demo_home, tmp_path):
    from tasks.deletion import plan_purge, purge_files
    from tasks.staging import read_chunk, stage_chunks, staged_file

    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    todo, run_id = _plan(home, url)
    from governance import config

    plan = stage_chunks(todo, staged_file(config.staging_dir(home), DEMO_NIGHT, run_id))
    subject = str(todo[1]["chunk"]["subject_id"].iloc[0])
    registry = str(home / "registry")
    erasure, _ = plan_purge.fn(registry, None, [], [subject], str(home), [])
    purge_files.fn(erasure, registry, [subject], "del-x", datetime.now(UTC), str(home))
    back = read_chunk(plan[1]["staged"])
    assert subject not in set(back["subject_id"])
    theirs = int((todo[1]["chunk"]["subject_id"] == subject).sum())
    assert len(back) == len(todo[1]["chunk"]) - theirs


def test_the_nightly_flow_leaves_no_staged_rows(run_nightly, demo_home, tmp_path):
    from governance import config

    home = tmp_path / "home"
    shutil.copytree(demo_home, home)
    summary = run_nightly(
        DEMO_NIGHT, home, f"sqlite:///{tmp_path / 'ledger.db'}", recourse=False, chunk_rows=400
    )
    assert summary["counts"]["decisions"] == summary["counts"]["valid"] > 0
    staging = config.staging_dir(home)
    assert staging.is_dir() and not list(staging.rglob("*.parquet"))
