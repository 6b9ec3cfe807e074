"""One night, one set of rows: a night's ledger does not depend on how the command was spelled
(with or without --model) nor on how many Dask workers ran it, and a forced rerun reproduces
it bit for bit. Two demo nights of 2,000 decisions, compared with bench/ledger_diff.py."""

from __future__ import annotations

import shutil
from datetime import date

import pytest
import sqlalchemy as sa

from bench.ledger_diff import diff_ledgers, differs
from governance.demo import MODEL_NAME, prepare_demo

NIGHTS = [date(2026, 11, 10), date(2026, 11, 11)]
ROWS = 2_000
CHUNK = 500  # four chunks a night, so two workers share a night
# How the command was spelled is recorded with the run, and nowhere else.
SPELLING = ("runs.parameters.model", "runs.parameters.force")


@pytest.fixture(scope="module")
def demo_nights(demo_home, tmp_path_factory):
    """The demo registry (v1 deployed) with two nights of 2,000 decisions each."""
    home = tmp_path_factory.mktemp("determinism") / "home"
    shutil.copytree(demo_home, home)
    prepare_demo(home, rows_per_night=ROWS, nights=NIGHTS)  # reuses v1 and v2: logs only
    return home


@pytest.fixture(scope="module")
def one_worker():
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                           dashboard_address=":0")
    yield cluster
    cluster.close()


def _run(cluster, night, home, url, **kwargs):
    from prefect_dask import DaskTaskRunner

    from flows.nightly import nightly_governance

    flow = nightly_governance.with_options(
        task_runner=DaskTaskRunner(address=cluster.scheduler_address)
    )
    return flow(night=night, home=str(home), db=url, chunk_rows=CHUNK, deletions=False, **kwargs)


def _nightly_runs(url: str) -> list[tuple[str, str]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT run_key, status FROM runs WHERE kind = 'nightly' ORDER BY run_key")
        ).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def test_a_nights_rows_depend_on_neither_spelling_nor_workers(
    demo_nights, dask_cluster, one_worker, tmp_path
):
    two = f"sqlite:///{tmp_path / 'model-two-workers.db'}"
    one = f"sqlite:///{tmp_path / 'all-one-worker.db'}"
    proven = {}
    for night in NIGHTS:
        a = _run(dask_cluster, night, demo_nights, two, model=MODEL_NAME)
        b = _run(one_worker, night, demo_nights, one)
        assert a["counts"]["recourse"] > 0 and a["counts"]["chunks"] == 4
        proven[night] = a["counts"]["recourse_minimal_on_grid"]
        assert b["counts"]["recourse_minimal_on_grid"] == proven[night]
    report = diff_ledgers(two, one, ignore=SPELLING)
    assert not differs(report), {t: r for t, r in report.items() if r.get("only_left")}
    assert report["issued_recourse"]["left"] > 0 and report["decisions"]["left"] > 3_900

    # the same night again, spelled the other way, forced on the other cluster: still one run
    # per night, and every row as it was
    again = _run(dask_cluster, NIGHTS[0], demo_nights, one, model=MODEL_NAME, force=True)
    assert again["counts"]["chunks_skipped"] == 0
    assert again["counts"]["recourse_minimal_on_grid"] == proven[NIGHTS[0]]
    assert _nightly_runs(one) == [(f"nightly:{n}:*", "succeeded") for n in NIGHTS]
    report = diff_ledgers(two, one, ignore=SPELLING)
    assert not differs(report), {t: r for t, r in report.items() if r.get("only_left")}
