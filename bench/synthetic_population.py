"""The synthetic lender's population figures that governance/data/synthetic.py cites.

Generates the population (seed 0) and prints, for label shift s = 0: the share that repays and
the share with p_repay < 0.5; then the demo's model (governance.demo.DEMO_RECIPE, histogram
gradient boosting) trained on 20,000 rows: its AUC on 10,000 fresh rows and the share it denies
at threshold 0.5; and the share that repays at s = 1 and s = -1.

Usage:
    .venv/bin/python bench/synthetic_population.py [--rows 100000] [--out bench/out]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from governance.data.synthetic import LABEL, SYNTHETIC_SCHEMA, generate_population  # noqa: E402
from governance.demo import DEMO_RECIPE  # noqa: E402
from governance.registry.model import DecisionModel  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = ap.parse_args(argv)
    pop = generate_population(args.rows, seed=0)
    out = {
        "repaid_s0": float(pop[LABEL].mean()),
        "p_repay_below_half_s0": float((pop["p_repay"] < 0.5).mean()),
    }
    train = generate_population(20_000, seed=1)
    test = generate_population(10_000, seed=1, start_id=20_000)
    model = DecisionModel(
        DEMO_RECIPE.fit(SYNTHETIC_SCHEMA, train, train[LABEL].to_numpy()), SYNTHETIC_SCHEMA
    )
    scores = model.score(test)
    out["model_auc"] = float(roc_auc_score(test[LABEL], scores))
    out["model_denied"] = float((scores < model.threshold).mean())
    for s in (1.0, -1.0):
        out[f"repaid_s{s:+.0f}"] = float(generate_population(args.rows, seed=0,
                                                             label_shift=s)[LABEL].mean())
    print(f"synthetic population, {args.rows:,} rows, seed 0")
    print(f"  s = 0: repaid {out['repaid_s0']:.1%}, "
          f"p_repay < 0.5 {out['p_repay_below_half_s0']:.1%}")
    print(f"  demo recipe on 20,000 rows: AUC {out['model_auc']:.3f} on 10,000 fresh rows, "
          f"denies {out['model_denied']:.1%} at threshold 0.5")
    print(f"  s = 1: repaid {out['repaid_s+1']:.1%}; s = -1: repaid {out['repaid_s-1']:.1%}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "synthetic_population.json").write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
