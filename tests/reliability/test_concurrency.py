"""The nightly run, the redeploy check and a deletion purge at the same time on one ledger
(PostgreSQL, and SQLite in WAL mode with a busy timeout): no deadlock, nothing lost or
duplicated, and no reader ever sees a subject half purged."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from tests.reliability.conftest import CHUNK_ROWS, MODEL, NIGHT, NIGHT2, NIGHT_ROWS, copy_home
from tests.reliability.faults import Striker
from tests.reliability.ledger import column, ledger_rows, scalar

DEADLINE_S = 600  # far beyond the few seconds each flow needs: reaching it means a deadlock
RESULT_TABLES = ("decisions", "explanations", "attributions", "reasons")


def _request(url: str, home, subject: str) -> str:
    from governance.deletion.requests import due_date, load_or_create_salt, subject_hash
    from governance.store import deletions, init_store, session_factory

    salt = load_or_create_salt(home / "secrets" / "tombstone.salt")
    now = datetime.now(UTC)
    with session_factory(init_store(url)).begin() as session:
        request_id, _ = deletions.record_deletion_request(
            session, subject, subject_hash(subject, salt), received_at=now, due_at=due_date(now)
        )
    return request_id


class HalfPurgeWatch(threading.Thread):
    """Reads, in one statement (one snapshot), how many of a subject's decisions and of their
    explanations, attributions and reasons under ``version_id`` exist; any state other than
    all of them or none of them is a half-purged subject a reader could see."""

    def __init__(self, url: str, decision_ids: dict[str, list[str]], version_id: int):
        super().__init__(daemon=True)
        self.url, self.ids, self.version_id = url, decision_ids, version_id
        self.stop = threading.Event()
        self.seen: dict[str, set[tuple[int, ...]]] = {s: set() for s in decision_ids}
        self.reads = 0

    def _counts(self, conn: sa.Connection, ids: list[str]) -> tuple[int, ...]:
        parts = ["(SELECT COUNT(*) FROM decisions WHERE decision_id IN :ids)"] + [
            f"(SELECT COUNT(*) FROM {t} WHERE decision_id IN :ids AND model_version_id = :v)"
            for t in RESULT_TABLES[1:]
        ]
        stmt = sa.text("SELECT " + ", ".join(parts)).bindparams(sa.bindparam("ids", expanding=True))
        return tuple(conn.execute(stmt, {"ids": ids, "v": self.version_id}).one())

    def run(self) -> None:
        engine = sa.create_engine(self.url, poolclass=NullPool)
        try:
            while not self.stop.is_set():
                try:
                    with engine.connect() as conn:
                        for subject, ids in self.ids.items():
                            self.seen[subject].add(self._counts(conn, ids))
                    self.reads += 1
                except sa.exc.OperationalError:
                    pass  # a busy SQLite file: read again
                time.sleep(0.02)
        finally:
            engine.dispose()


def _flow(target, results: dict, key: str, **kwargs) -> threading.Thread:
    def run() -> None:
        try:
            results[key] = target(**kwargs)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            results[key] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _v1_rows(rows: dict[str, list[str]], keep) -> dict[str, list[str]]:
    """Result-table rows under v1 whose decision id satisfies ``keep``."""
    out = {}
    for table in RESULT_TABLES:
        out[table] = sorted(
            r
            for r in rows[table]
            if (d := json.loads(r))["model_version_id"] == f"{MODEL}/v1" and keep(d["decision_id"])
        )
    return out


def _deletion(runner, url: str, home, requests: list[str]) -> dict:
    from flows.deletion import process_deletions

    return process_deletions.with_options(task_runner=runner)(
        request_ids=requests, home=str(home), db=url, check=False
    )


def test_nightly_redeploy_and_purge_together(
    nightly, small_home, backend, make_db, clean_ledger, rel_cluster, tmp_path
):
    from prefect_dask import DaskTaskRunner

    from flows.redeploy import redeploy_check

    expected2 = clean_ledger(backend, NIGHT2)
    home = copy_home(small_home, tmp_path / "home")
    url = make_db(backend)
    nightly(NIGHT, home, url)

    # Two approved applicants (the redeploy check re-examines denials, so it reads neither):
    # X decided only on NIGHT, Y on NIGHT and again on NIGHT2, late in its chunks.
    approved = column(
        url, "SELECT subject_id FROM decisions WHERE decision = 'approved' ORDER BY decision_id"
    )
    x, y = approved[0], approved[-1]
    ids = {
        s: column(url, "SELECT decision_id FROM decisions WHERE subject_id = :s", s=s)
        for s in (x, y)
    }
    v1 = scalar(url, "SELECT id FROM model_versions WHERE version = 'v1'")
    requests = [_request(url, home, x), _request(url, home, y)]
    runner = DaskTaskRunner(address=rel_cluster.scheduler_address)
    watch = HalfPurgeWatch(url, ids, v1)
    engine = sa.create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        whole = {s: watch._counts(conn, ids[s]) for s in ids}
    engine.dispose()
    assert all(c[0] == len(ids[s]) and c[2] == 20 * c[0] for s, c in whole.items())
    watch.start()

    results: dict = {}
    redeploy = _flow(
        redeploy_check.with_options(task_runner=runner),
        results,
        "redeploy",
        model=MODEL,
        version="v2",
        home=str(home),
        db=url,
        recent_days=100_000,
        window_months=1_000,
        variants=0,
        recourse=False,
        gate=1.0,
    )
    # the purge strikes once NIGHT's chunks and two of NIGHT2's are committed
    purge = Striker(
        url, NIGHT_ROWS // CHUNK_ROWS + 2, lambda: _deletion(runner, url, home, requests)
    )
    purge.start()
    try:
        results["nightly"] = nightly(NIGHT2, home, url, deletions=False)
    except BaseException as exc:  # noqa: BLE001 - reported below with the others
        results["nightly"] = exc
    redeploy.join(DEADLINE_S)
    purge.join(DEADLINE_S)
    watch.stop.set()
    watch.join(60)
    results["deletion"] = purge.error or purge.result

    assert not redeploy.is_alive() and not purge.is_alive(), "a flow is stuck: deadlock"
    failed = {k: v for k, v in results.items() if isinstance(v, BaseException)}
    assert not failed, failed
    assert purge.done_at_strike is not None
    assert results["deletion"]["requests"] == sorted(requests), results["deletion"]

    # no reader ever saw a subject half purged
    assert watch.reads > 10
    for subject, states in watch.seen.items():
        assert states <= {whole[subject], (0, 0, 0, 0)}, (subject, whole[subject], states)
    # nothing is left about X, nor about Y's decisions of NIGHT
    assert not column(url, "SELECT decision_id FROM decisions WHERE subject_id = :s", s=x)
    assert not set(ids[y]) & set(column(url, "SELECT decision_id FROM decisions"))

    # the nightly run lost and duplicated nothing: NIGHT2 equals its clean run (Y aside)
    y_night2 = {d.replace(f"D{NIGHT:%Y%m%d}-", f"D{NIGHT2:%Y%m%d}-") for d in ids[y]}
    night2 = f"D{NIGHT2:%Y%m%d}-"
    got = _v1_rows(ledger_rows(url), lambda d: d.startswith(night2) and d not in y_night2)
    want = _v1_rows(expected2, lambda d: d.startswith(night2) and d not in y_night2)
    assert got == want
    assert len(got["decisions"]) == NIGHT_ROWS - len(y_night2)

    # the redeploy check compared every denial it read, each once, under v2
    compared = results["redeploy"]["counts"]["recent_denials"]["compared"]
    stored = column(url, "SELECT decision_id FROM version_comparisons")
    assert len(stored) == len(set(stored)) == compared > 0


# -- races pinned down deterministically, one step of each flow at a time ---------------------
def _night2_chunk_of(url: str, home, subject: str) -> dict:
    """What the nightly run of NIGHT2 holds in memory once it has pulled and validated: the
    chunk with ``subject``'s decision, and the run it belongs to."""
    from tasks.ledger import open_run
    from tasks.pull import pull
    from tasks.staging import plan_chunks
    from tasks.validate import validate

    frame, _ = pull.fn(str(home / "decision-logs"), url, NIGHT2, None)
    run = open_run.fn(url, "nightly", NIGHT2, None, {})
    checked = validate.fn(frame, NIGHT2, str(home / "registry"), url, run["run_id"])
    todo, _ = plan_chunks(checked["valid"], checked["refs"], CHUNK_ROWS, {})
    chunk = next(c for c in todo if subject in set(c["chunk"]["subject_id"]))
    return {**chunk, "run_id": run["run_id"]}


def test_a_decision_pulled_before_a_purge_is_not_written_after_it(
    nightly, small_home, backend, make_db, rel_cluster, tmp_path
):
    from prefect_dask import DaskTaskRunner

    from tasks.explain import explain_chunk

    home = copy_home(small_home, tmp_path / "home")
    url = make_db(backend)
    nightly(NIGHT, home, url, deletions=False)
    y = column(url, "SELECT subject_id FROM decisions ORDER BY decision_id DESC")[0]
    c = _night2_chunk_of(url, home, y)  # 1. the nightly run has pulled Y's NIGHT2 decision
    runner = DaskTaskRunner(address=rel_cluster.scheduler_address)
    _deletion(runner, url, home, [_request(url, home, y)])  # 2. Y is erased
    explain_chunk.fn(  # 3. the nightly run writes the chunk
        c["chunk"],
        c["chunk_no"],
        c["sha"],
        c["ref"],
        c["model_version_id"],
        c["run_id"],
        url,
        {"recourse": False},
    )
    assert not column(url, "SELECT decision_id FROM decisions WHERE subject_id = :s", s=y)


def test_a_denial_purged_during_the_redeploy_check_is_skipped(
    nightly, small_home, backend, make_db, rel_cluster, tmp_path
):
    from prefect_dask import DaskTaskRunner

    from governance.registry.model_registry import ModelRegistry
    from governance.store import session_factory, writes
    from governance.store.engine import make_engine
    from governance.store.queries import recent_denied
    from tasks.ledger import open_run
    from tasks.redeploy import compare_rows, denied_frame
    from tasks.worker import ModelRef

    home = copy_home(small_home, tmp_path / "home")
    url = make_db(backend)
    nightly(NIGHT, home, url, deletions=False)
    manifest = ModelRegistry(home / "registry").manifest(MODEL, "v2")
    engine = make_engine(url)
    with session_factory(engine).begin() as session:  # 1. the check reads recent denials
        v2 = writes.ensure_model_version(session, manifest)
        denied = recent_denied(session, MODEL, v2, datetime(2000, 1, 1, tzinfo=UTC))
    engine.dispose()
    frame = denied_frame(denied, manifest.schema.names)
    x = scalar(url, "SELECT subject_id FROM decisions WHERE decision_id = :d", d=frame.iloc[0, 0])
    run = open_run.fn(url, "redeploy", None, MODEL, {}, extra_key="v2", force=True)
    runner = DaskTaskRunner(address=rel_cluster.scheduler_address)
    _deletion(runner, url, home, [_request(url, home, x)])  # 2. X is erased
    ref = ModelRef(str(home / "registry"), MODEL, "v2", manifest.artifact_sha256)
    compare_rows(  # 3. the check writes what v2 would tell the denied applicants
        frame, ref, v2, run["run_id"], url, {"recourse": False, "seed": 0, "stability": False}
    )
    stored = column(url, "SELECT decision_id FROM version_comparisons")
    assert sorted(stored) == sorted(frame["decision_id"][1:])


# -- one run at a time -------------------------------------------------------------------------
def test_a_second_nightly_for_the_same_night_is_refused_naming_the_first(
    small_home, backend, make_db, rel_cluster, prefect_backend, tmp_path
):
    """Two `govern nightly` processes for one night on one ledger: the second is refused in one
    line naming the first (exit 4), the first does the work once."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from governance.store import init_store
    from governance.store.locks import holder_of, run_lock_key

    home = copy_home(small_home, tmp_path / "home")
    url = make_db(backend)
    engine = init_store(url)
    govern = str(Path(sys.executable).with_name("govern"))
    args = [govern, "nightly", "--date", NIGHT.isoformat(), "--home", str(home), "--db", url,
            "--dask-address", rel_cluster.scheduler_address, "--chunk-rows", "10"]
    env = {**os.environ, "PREFECT_API_URL": prefect_backend}
    first = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 300
        while holder_of(engine, run_lock_key("nightly", NIGHT, None)) is None:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run never took the night"
            time.sleep(0.2)
        second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
        assert first.poll() is None, "the first run ended before the second was refused"
    finally:
        out, err = first.communicate(timeout=DEADLINE_S)
        engine.dispose()
    assert second.returncode == 4, second.stdout + second.stderr
    lines = [line for line in second.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, second.stderr
    holder = f"nightly:{NIGHT.isoformat()}:*) is already running (held by pid {first.pid} "
    assert holder in lines[0]
    assert "--wait" in lines[0]
    assert first.returncode == 0, out + err
    assert scalar(url, "SELECT COUNT(*) FROM runs") == 1
    assert scalar(url, "SELECT attempts FROM runs") == 1
    assert scalar(url, "SELECT COUNT(*) FROM run_locks") == 0  # given back


def test_recourse_purged_during_revalidation_is_not_written_back(
    nightly, small_home, backend, make_db, rel_cluster, tmp_path
):
    from prefect_dask import DaskTaskRunner

    from governance.registry.model_registry import ModelRegistry
    from governance.store import session_factory, writes
    from governance.store.engine import make_engine
    from governance.store.queries import open_recourse_slice
    from tasks.ledger import open_run
    from tasks.redeploy import revalidate_rows
    from tasks.worker import ModelRef

    home = copy_home(small_home, tmp_path / "home")
    url = make_db(backend)
    nightly(NIGHT, home, url, deletions=False, recourse=True, stability=False)
    reg = ModelRegistry(home / "registry")
    manifest = reg.manifest(MODEL, "v2")
    engine = make_engine(url)
    with session_factory(engine).begin() as session:  # 1. the check reads the open recourse
        v2 = writes.ensure_model_version(session, manifest)
        mark = writes.erasure_mark(session)
    rows = open_recourse_slice(
        engine, MODEL, v2, datetime(2000, 1, 1, tzinfo=UTC), None,
        layout=reg.load(MODEL, "v2").schema.layout_sha256,
    )
    engine.dispose()
    ids = rows["recourse_id"].to_pylist()
    assert len(ids) > 5, "the night issued too little recourse to test with"
    x = scalar(
        url,
        "SELECT d.subject_id FROM decisions d JOIN issued_recourse i "
        "ON i.decision_id = d.decision_id WHERE i.recourse_id = :r",
        r=ids[0],
    )
    theirs = set(
        column(
            url,
            "SELECT i.recourse_id FROM issued_recourse i JOIN decisions d "
            "ON i.decision_id = d.decision_id WHERE d.subject_id = :s",
            s=x,
        )
    )
    run = open_run.fn(url, "redeploy", None, MODEL, {}, extra_key="v2", force=True)
    runner = DaskTaskRunner(address=rel_cluster.scheduler_address)
    _deletion(runner, url, home, [_request(url, home, x)])  # 2. X is erased
    ref = ModelRef(str(home / "registry"), MODEL, "v2", manifest.artifact_sha256)
    out = revalidate_rows(rows, ref, v2, run["run_id"], url, read_mark=mark)  # 3. the write
    stored = column(url, "SELECT recourse_id FROM recourse_validity")
    assert sorted(stored) == sorted(set(ids) - theirs)
    assert out["tally"].n == len(stored)
