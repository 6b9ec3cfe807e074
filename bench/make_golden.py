"""Produce reachml golden files: a fixed model, denied rows, and reachml's answers for them.

Runs in the project's .venv. It trains a seeded model (logistic regression, or a small
histogram gradient-boosting model) on German credit (processed encoding of Ustun et al. 2019)
or on HELOC (the encoding of ``governance.data.real.load_heloc``), saves it with skops, takes
the rows it denies (all, or a seeded sample), and runs the reachml peer
(bench/reachml/runner.py) in bench/.reachml-venv through a subprocess. The files go to
tests/data/<data set>_<model>/, and tests/governance/recourse/test_reachml_golden.py checks our
implementation against them.

Usage:
    .venv/bin/python bench/make_golden.py [--data-set german|heloc] [--model lr|hgb]
        [--n-rows N] [--data DIR] [--out DIR] [--no-compare]

The golden configuration is reachml 0.2.0a1 with its CPLEX backend. Responsiveness scores are
kept for both single-feature searches: the paper's (runner ``--semantics paper``,
``reachml_scores.csv``) and reachml 0.2.0a1 as released (``--semantics release``,
``reachml_scores_release.csv``). Verdicts come from full reachable-set enumeration, which HELOC's
action set is far too large for (its per-part sets multiply to about 10^15 points), so HELOC
folders hold scores only. README.md in the output folder says why, and, unless
``--no-compare``, how reachml's other configurations differ.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from governance.hashing import sha256_file  # noqa: E402
from governance.registry.model import DecisionModel  # noqa: E402
from governance.registry.schema import FeatureSchema  # noqa: E402
from governance.registry.training import TrainingRecipe  # noqa: E402

RUNNER = ROOT / "bench" / "reachml" / "runner.py"
SETUP = ROOT / "bench" / "reachml" / "setup_env.sh"
VENV_PY = ROOT / "bench" / ".reachml-venv" / "bin" / "python"
ACTION_SET = ROOT / "governance" / "recourse" / "action_sets" / "german_credit.json"
CSV = "german_credit/german_processed_ustun2019.csv"
SEED = 2338  # the fold seed of reachml's research scripts
RECIPES = {
    "lr": TrainingRecipe(
        estimator="logistic_regression", params={"C": 1.0, "max_iter": 5000}, seed=SEED, label="y"
    ),
    # small on purpose: the skops file stays under 100 KiB, and trees give fixed predictions
    "hgb": TrainingRecipe(
        estimator="hist_gradient_boosting", params={"max_iter": 50, "max_leaf_nodes": 15},
        seed=SEED, label="y",
    ),
}
HELOC_ACTION_SET = ROOT / "governance" / "recourse" / "action_sets" / "heloc.json"
GOLDEN = {"solver": "cplex", "semantics": "paper"}
RELEASE = {"solver": "cplex", "semantics": "release"}
COMPARE = [{"solver": "scip", "semantics": "paper"}]
DATA_SETS = ("german", "heloc")


def default_data_dir() -> Path:
    return Path(os.environ.get("GOVERNANCE_SHARED_DATA", ROOT.parent / "shared" / "data"))


def load_german_processed(data_dir: Path, bools: list[str]) -> pd.DataFrame:
    """German credit, processed encoding: Gender -> bool Male, PurposeOfLoan one-hot, label y.

    Same transformation as ``governance.data.real.load_german("processed")`` is specified to do;
    reproduced here so the golden files do not depend on that loader. Columns named in ``bools``
    become bool; y is 1 for a good customer (the favourable class) and 0 otherwise.
    """
    raw = pd.read_csv(data_dir / CSV)
    df = raw.drop(columns=["GoodCustomer", "Gender", "PurposeOfLoan"])
    df.insert(0, "Male", raw["Gender"] == "Male")
    for c in df.columns:
        if c in bools:
            df[c] = df[c].astype(bool)
    purposes = sorted(raw["PurposeOfLoan"].unique())
    for p in purposes:
        df[f"PurposeOfLoan_{p}"] = (raw["PurposeOfLoan"] == p).astype(bool)
    df["y"] = (raw["GoodCustomer"] == 1).astype(int)
    return df


def check_against_loader(df: pd.DataFrame, features: list[str]) -> str:
    """Compare the local transformation with the project's loader, when it is there."""
    try:
        from governance.data.real import load_german
    except ImportError:
        return "governance.data.real not available; local transformation only"
    ds = load_german("processed")
    theirs = ds.X.loc[:, features].astype(np.int64).reset_index(drop=True)
    mine = df.loc[:, features].astype(np.int64).reset_index(drop=True)
    if not theirs.equals(mine) or not np.array_equal(ds.y, df["y"].to_numpy()):
        raise SystemExit("local German transformation differs from load_german('processed')")
    return "identical values to governance.data.real.load_german('processed')"


def feature_order(action_set: dict) -> list[str]:
    return [f["name"] for f in action_set["features"]]


def run_reachml(in_dir: Path, out_dir: Path, solver: str, semantics: str,
                what: str = "both") -> dict:
    """Run the reachml runner in its own venv and return its timing.json."""
    cmd = [str(VENV_PY), str(RUNNER), str(in_dir), str(out_dir), "--solver", solver,
           "--semantics", semantics, "--what", what]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"reachml runner failed ({' '.join(cmd)}):\n{res.stderr[-3000:]}")
    timing = json.loads((out_dir / "timing.json").read_text())
    timing["subprocess_seconds"] = time.perf_counter() - t0
    return timing


def load_data(name: str, data_dir: Path) -> dict:
    """Features + y, feature order, schema, action set and a description of one data set."""
    if name == "german":
        if not (data_dir / CSV).exists():
            raise SystemExit(f"German credit csv not found under {data_dir}; pass --data")
        spec = json.loads(ACTION_SET.read_text())
        features = feature_order(spec)
        df = load_german_processed(
            data_dir, [f["name"] for f in spec["features"] if f["type"] == "bool"]
        )
        if sorted(features) != sorted(c for c in df.columns if c != "y"):
            raise SystemExit("action set features differ from the processed German credit columns")
        return {
            "df": df, "features": features, "action_set": ACTION_SET,
            "schema": FeatureSchema.from_frame(df.loc[:, features]),
            "title": "German credit",
            "data": (f"`{CSV}` (Ustun, Spangher & Liu 2019 processed encoding), Gender -> "
                     "bool `Male`,\n  PurposeOfLoan one-hot to bool `PurposeOfLoan_<value>`, "
                     "label y = 1 for GoodCustomer = 1.\n  Loader check: "
                     f"{check_against_loader(df, features)}."),
            "action_set_text": ("German credit \"complex_nD\" of reachml's research code, adapted "
                                "to this\n  encoding"),
            "verdicts": True,
        }
    if name == "heloc":
        import os

        from governance.data.real import ENV_VAR, load_heloc

        os.environ.setdefault(ENV_VAR, str(data_dir))
        ds = load_heloc()
        features = feature_order(json.loads(HELOC_ACTION_SET.read_text()))
        if features != list(ds.X.columns):
            raise SystemExit("action set features differ from load_heloc()'s columns")
        df = ds.X.assign(y=ds.y)
        return {
            "df": df, "features": features, "action_set": HELOC_ACTION_SET, "schema": ds.schema,
            "title": "HELOC",
            "data": ("`heloc/heloc_dataset_v1.csv` through `governance.data.real.load_heloc()` "
                     "(rows without\n  any bureau record dropped, special values filled, indicator "
                     "columns), label y = 1 for\n  RiskPerformance = Good; sha256 "
                     f"`{ds.source_sha256['heloc_dataset_v1.csv'][:16]}...`."),
            "action_set_text": ("FICO \"complex_nD\" of reachml's research code, adapted to "
                                "this encoding"),
            "verdicts": False,
        }
    raise SystemExit(f"unknown data set {name!r}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=default_data_dir())
    ap.add_argument("--data-set", default="german", choices=DATA_SETS)
    ap.add_argument("--model", default="lr", choices=sorted(RECIPES))
    ap.add_argument("--out", type=Path, default=None,
                    help="output folder (default tests/data/<data set>_<model>)")
    ap.add_argument("--n-rows", type=int, default=0,
                    help="denied rows to sample (seeded); 0 takes every row the model denies")
    ap.add_argument("--no-compare", action="store_true",
                    help="skip the runs of reachml's other configurations")
    args = ap.parse_args(argv)
    recipe = RECIPES[args.model]
    if args.out is None:
        args.out = ROOT / "tests" / "data" / f"{args.data_set}_{args.model}"
    if not VENV_PY.exists():
        print("make_golden: reachml venv missing, running setup_env.sh")
        subprocess.run(["bash", str(SETUP)], check=True)

    data = load_data(args.data_set, args.data)
    df, features, schema = data["df"], data["features"], data["schema"]
    # model: seeded, on a stratified 80 % split, via the project's training recipe
    idx_train, idx_test = train_test_split(
        df.index.to_numpy(), test_size=0.2, stratify=df["y"], random_state=SEED
    )
    pipe = recipe.fit(schema, df.loc[idx_train, features], df.loc[idx_train, "y"])
    model = DecisionModel(pipe, schema, favourable_class=1, threshold=0.5)
    test = df.loc[idx_test]
    auc = roc_auc_score(test["y"], model.score(test[features]))
    denied_all = df.index[~model.approve(df[features])]
    rng = np.random.default_rng(SEED)
    take = len(denied_all) if args.n_rows <= 0 else min(args.n_rows, len(denied_all))
    denied = pd.Index(np.sort(rng.choice(denied_all.to_numpy(), size=take, replace=False)))
    rows = df.loc[denied, features + ["y"]].copy()
    rows.insert(0, "row", denied)

    args.out.mkdir(parents=True, exist_ok=True)
    sio.dump(pipe, args.out / "model.skops", compression=zipfile.ZIP_DEFLATED, compresslevel=9)
    meta = {
        "features": features,
        "favourable_class": 1,
        "threshold": 0.5,
        "schema": schema.to_list(),
        "recipe": recipe.to_dict(),
        "split": {"test_size": 0.2, "stratify": "y", "random_state": SEED},
        "test_auc": round(float(auc), 6),
        "model_sha256": sha256_file(args.out / "model.skops"),
    }
    (args.out / "model.json").write_text(json.dumps(meta, indent=1) + "\n")
    shutil.copyfile(data["action_set"], args.out / "action_set.json")
    num = rows.copy()
    for c in num.columns:
        if num[c].dtype == bool:
            num[c] = num[c].astype(int)
    num.to_csv(args.out / "rows.csv", index=False)

    what = "both" if data["verdicts"] else "scores"
    configs = [(GOLDEN, what), (RELEASE, "scores")]
    if not args.no_compare:
        configs += [(c, what) for c in COMPARE]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ex = tmp / "in"
        ex.mkdir()
        for name in ("model.skops", "model.json", "action_set.json"):
            shutil.copyfile(args.out / name, ex / name)
        num.drop(columns=["y"]).to_csv(ex / "data.csv", index=False)

        runs = {}
        for cfg, part in configs:
            key = f"{cfg['solver']}/{cfg['semantics']}"
            out = tmp / key.replace("/", "_")
            print(f"make_golden: reachml {key} ({part}) on {len(num)} denied rows ...", flush=True)
            timing = run_reachml(ex, out, what=part, **cfg)
            runs[key] = {
                "timing": timing,
                "scores": pd.read_csv(out / "scores.csv"),
                "verdicts": pd.read_csv(out / "verdicts.csv") if part == "both" else None,
            }
            print(f"  {timing['seconds_per_person']:.3f} s/person", flush=True)
        gkey = f"{GOLDEN['solver']}/{GOLDEN['semantics']}"
        rkey = f"{RELEASE['solver']}/{RELEASE['semantics']}"
        golden = runs[gkey]
        golden["scores"].to_csv(args.out / "reachml_scores.csv", index=False,
                                float_format="%.17g")
        runs[rkey]["scores"].to_csv(args.out / "reachml_scores_release.csv", index=False,
                                    float_format="%.17g")
        if golden["verdicts"] is not None:
            golden["verdicts"].to_csv(args.out / "reachml_verdicts.csv", index=False)

    mu_g = golden["scores"]["mu"].to_numpy()
    lines = []
    for key, r in runs.items():
        t = r["timing"]
        cells = [key, f"{t['seconds_per_person']:.3f}", f"{t['scores']['seconds_per_person']:.3f}",
                 f"{t['verdicts']['seconds_per_person']:.3f}" if "verdicts" in t else "-"]
        if key == gkey:
            cells += ["golden"] * 3
        else:
            mu_o = r["scores"]["mu"].to_numpy()
            diff = golden["scores"].loc[~np.isclose(mu_g, mu_o, atol=1e-9), "row"].nunique()
            cells.append(f"{diff} of {len(num)}")
            if r["verdicts"] is not None and golden["verdicts"] is not None:
                v, o = golden["verdicts"], r["verdicts"]
                st = (o["status"].to_numpy() != v["status"].to_numpy()).sum()
                na = (o["n_approved"].to_numpy() != v["n_approved"].to_numpy()).sum()
                cells += [f"{st} of {len(num)}", f"{na} of {len(num)}"]
            else:
                cells += ["-", "-"]
        lines.append("| " + " | ".join(cells) + " |")

    vers = golden["timing"]["versions"]
    if take == len(denied_all):
        sample_text = f"all {take} rows of the data set that the model denies"
    else:
        sample_text = (f"{take} rows drawn without replacement (`numpy.random.default_rng({SEED})`)"
                       f" from the {len(denied_all)} rows of the data set that the model denies")
    if golden["verdicts"] is not None:
        v = golden["verdicts"]
        counts = v["status"].value_counts().to_dict()
        n_fixed = int(counts.get("fixed", 0))
        verdict_files = (
            "  - `reachml_verdicts.csv`: row, pred, status, n_reachable (points of the full "
            "reachable set,\n    x included), n_approved (approved points other than x), "
            "complete, from\n    `ReachableSetEnumerator(...).enumerate()`; fixed = complete "
            "and no approved point.\n"
        )
        share = n_fixed / max(len(v), 1)
        verdict_text = (
            f"Verdicts: {counts}; fixed share {n_fixed}/{len(v)} = {share:.1%} of the\n"
            "denied rows (reachml's ICLR 2024 tables: 8.5 % for German LR, 8.6 % XGB, 29.8 % RF, "
            "under\nits own encoding and models).\n"
        )
    else:
        counts, n_fixed = {}, 0
        verdict_files = ""
        verdict_text = (
            "No verdicts: reachml verifies recourse by enumerating the full reachable set, the "
            "product of\nthe per-part sets, which for this action set's wide integer features "
            "runs to about 10^15\npoints per person. The scores enumerate one feature at a time "
            "and are exact.\n"
        )
    readme = f"""# Golden files: reachml on {data['title']} ({recipe.estimator})

Produced by `bench/make_golden.py --data-set {args.data_set} --model {args.model}` on
{datetime.now(UTC).strftime("%Y-%m-%d")}; do not edit by hand, rerun the script (it needs
`bench/reachml/setup_env.sh` and the shared data).

- Data: {data['data']}
- Model: `{recipe}`, fitted on a
  stratified 80 % split (`train_test_split(test_size=0.2, random_state={SEED})`); test AUC
  {auc:.3f}. `model.skops` (sha256 `{meta['model_sha256'][:16]}...`), `model.json` (feature order,
  favourable class 1, threshold 0.5, schema).
- Rows: {sample_text} (train and test alike; `rows.csv`, `row` = 0-based row index of the
  data set, bools as 0/1, `y` the true label).
- Action set: `action_set.json`, a copy of
  `governance/recourse/action_sets/{data['action_set'].name}` at the time of the run
  ({data['action_set_text']}).
- reachml {vers['reachml']} (numpy {vers['numpy']}, pandas {vers['pandas']}, scikit-learn
  {vers['scikit-learn']}, cplex {vers['cplex']}, pyscipopt {vers['pyscipopt']}), run by
  `bench/reachml/runner.py --solver {GOLDEN['solver']}`:
  - `reachml_scores.csv`: row, feature, mu from `ResponsivenessScorer(method="enumerate")` with
    the paper's single-feature search (`--semantics paper`).
  - `reachml_scores_release.csv`: the same with reachml 0.2.0a1's search as released
    (`--semantics release`).
{verdict_files}
{verdict_text}
Why CPLEX, and the two semantics:
- reachml 0.2.0a1's SCIP backend (`DirectionalLinkage.add_to_scip`) replaces the target's
  `c = a + b` row for each linkage, so when two linkages share a target (German credit:
  YearsAtCurrentHome -> Age and YearsAtCurrentJob_lt_1 -> Age; HELOC: both trades-with-balance
  counts -> NumTotalTrades) only the last one moves it. Its CPLEX backend adds them up, as the
  linkage is defined. Scores are unaffected (each single-feature search sees one linkage);
  full reachable sets, hence verdicts, are.
- reachml 0.2.0a1 comments out the early stop in `ResponsivenessScorer._find_actions`, so
  A_j(x) holds every joint action with c_j = a_j, even when changing j alone is feasible; its own
  tests (tests/test_scorer.py) and the code behind the ICLR 2025 paper stop there. "paper"
  restores that one line (runner.use_paper_semantics); "release" runs it as shipped. The
  product offers both (`responsiveness(..., semantics=...)`, "paper" by default).

Timing (seconds per person, this machine, one process) and disagreement with the golden run:

| reachml solver/semantics | total | scores | verdicts | rows, mu differ | rows, status differs \
| rows, n_approved differs |
|---|---|---|---|---|---|---|
""" + "\n".join(lines) + "\n"
    (args.out / "README.md").write_text(readme)
    size = sum(p.stat().st_size for p in args.out.iterdir())
    print(f"make_golden: {args.data_set} {recipe.estimator}: wrote {args.out} "
          f"({size / 1024:.0f} KiB); verdicts {counts}; fixed {n_fixed}; test AUC {auc:.3f}")
    print(f"make_golden: versions {vers}; project scikit-learn {metadata.version('scikit-learn')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
