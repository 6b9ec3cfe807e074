"""Agreement metrics against hand-computed values and a port of OpenXAI's own code."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy.stats import pearsonr, rankdata

from governance.explain.agreement import (
    agreement,
    dense_ranks,
    ndcg_drift,
    pairwise_rank_agreement,
    rank_correlation,
    top_k,
    topk_agreement,
)


def test_topk_agreement_hand_computed():
    # |a| order: f0 (0.9), f2 (0.5), f1 (0.3), f3 (0.1); |b| order: f2, f0, f3, f1.
    a = np.array([[0.9, -0.3, -0.5, 0.1]])
    b = np.array([[0.6, 0.05, -0.8, -0.2]])
    # k = 2: sets {0, 2} and {2, 0}; positions differ; signs: f0 +/+, f2 -/-.
    assert topk_agreement(a, b, 2, "overlap")[0] == 1.0
    assert topk_agreement(a, b, 2, "rank")[0] == 0.0
    assert topk_agreement(a, b, 2, "sign")[0] == 1.0
    assert topk_agreement(a, b, 2, "ranksign")[0] == 0.0
    # k = 3: {0, 2, 1} vs {2, 0, 3}: two shared; position 3 holds f1 vs f3.
    assert topk_agreement(a, b, 3, "overlap")[0] == pytest.approx(2 / 3)
    assert topk_agreement(a, b, 3, "rank")[0] == 0.0
    # Same order, one sign flipped: RA 1, SRA 2/3.
    c = np.array([[0.9, 0.3, -0.5, 0.1]])
    assert topk_agreement(a, c, 3, "rank")[0] == 1.0
    assert topk_agreement(a, c, 3, "ranksign")[0] == pytest.approx(2 / 3)
    assert topk_agreement(a, c, 3, "sign")[0] == pytest.approx(2 / 3)


def test_rank_agreement_needs_the_same_dense_rank_as_openxai():
    # a ties f1 and f2 (dense ranks 1, 2, 2), b does not (1, 2, 3): position 3 holds f2 in
    # both, but with rank 2 against 3, so OpenXAI's RA does not count it.
    a = np.array([[0.9, 0.5, 0.5]])
    b = np.array([[0.9, 0.6, 0.5]])
    assert dense_ranks(a).tolist() == [[1, 2, 2]]
    assert top_k(a, 3).tolist() == [[0, 1, 2]]
    assert topk_agreement(a, b, 3, "rank")[0] == pytest.approx(2 / 3)
    assert topk_agreement(a, b, 3, "overlap")[0] == 1.0


def test_rank_correlation_and_pairwise_hand_computed():
    a = np.array([[4.0, 3.0, 2.0, 1.0]])
    b = np.array([[4.0, 3.0, 1.0, 2.0]])
    # ranks 1,2,3,4 vs 1,2,4,3: Pearson = 1 - 6*2/(4*15) = 0.8; 5 of 6 pairs agree.
    assert rank_correlation(a, b)[0] == pytest.approx(0.8)
    assert pairwise_rank_agreement(a, b)[0] == pytest.approx(5 / 6)
    assert np.isnan(rank_correlation(np.ones((1, 4)), b)[0])


def _openxai_single_k(explanations, ground_truths, k, metric):
    """OpenXAI's ``_construct_topk_dfs`` + ``_single_k_gt_faith``, ported line by line (with
    ``map`` for pandas' removed ``applymap``)."""
    attrs = [explanations, ground_truths]
    topk_idxs = [np.argsort(-np.abs(attr), axis=1)[:, :k] for attr in attrs]
    dfs = [("feat" + pd.DataFrame(t).map(str)) for t in topk_idxs]
    if "rank" in metric:
        ranks = [rankdata(-np.abs(attr), method="dense", axis=1) for attr in attrs]
        topk_ranks = [
            np.take_along_axis(r, t, axis=1) for r, t in zip(ranks, topk_idxs, strict=True)
        ]
        dfs = [
            df + ("rank" + pd.DataFrame(r).map(str)) for df, r in zip(dfs, topk_ranks, strict=True)
        ]
    if "sign" in metric:
        signs = [
            np.take_along_axis(np.sign(attr).astype(int), t, axis=1)
            for attr, t in zip(attrs, topk_idxs, strict=True)
        ]
        dfs = [df + ("sign" + pd.DataFrame(s).map(str)) for df, s in zip(dfs, signs, strict=True)]
    if metric in ("overlap", "sign"):
        sets = [[set(row) for row in df.to_numpy()] for df in dfs]
        return np.array([len(x & y) / k for x, y in zip(*sets, strict=True)])
    return (dfs[0].to_numpy() == dfs[1].to_numpy()).sum(axis=1) / k


def _openxai_pairwise(exp_row, gt):
    exp_ranks = rankdata(-np.abs(exp_row), method="dense")
    gt_rank = rankdata(-np.abs(gt), method="dense")
    same = 0
    for f1, f2 in itertools.combinations_with_replacement(range(len(gt)), 2):
        if f1 != f2:
            same += (exp_ranks[f1] < exp_ranks[f2]) == (gt_rank[f1] < gt_rank[f2])
    return same / (len(gt) * (len(gt) - 1) / 2)


@pytest.mark.parametrize("metric", ["overlap", "rank", "sign", "ranksign"])
def test_matches_openxai_code_row_by_row(metric):
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(50, 9)), rng.normal(size=(50, 9))  # no ties
    for k in (1, 4, 9):
        expected = np.concatenate(
            [_openxai_single_k(a[i : i + 1], b[i : i + 1], k, metric) for i in range(50)]
        )
        np.testing.assert_allclose(topk_agreement(a, b, k, metric), expected)


def test_rank_correlation_and_pra_match_openxai_code():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(30, 7)), np.round(rng.normal(size=(30, 7)), 1)  # b has ties
    ranks_a = rankdata(-np.abs(a), method="dense", axis=1)
    ranks_b = rankdata(-np.abs(b), method="dense", axis=1)
    rc = [pearsonr(ranks_a[i], ranks_b[i])[0] for i in range(30)]
    np.testing.assert_allclose(rank_correlation(a, b), rc, atol=1e-12)
    pra = [_openxai_pairwise(a[i], b[i]) for i in range(30)]
    np.testing.assert_allclose(pairwise_rank_agreement(a, b), pra)


def test_agreement_of_identical_explanations_is_full():
    e = np.random.default_rng(5).normal(size=(10, 6))
    out = agreement(e, e, k=4)
    for name, values in out.items():
        np.testing.assert_allclose(values, 1.0, err_msg=name)


def test_ndcg_drift_hand_computed():
    base = np.array([0.5, 0.3, 0.2])
    # Live ranks f1 first, then f0, f2: DCG = 0.3 + 0.5/log2(3) + 0.2/2.
    dcg = 0.3 + 0.5 / np.log2(3) + 0.1
    idcg = 0.5 + 0.3 / np.log2(3) + 0.1
    assert ndcg_drift(base, np.array([0.4, 0.6, 0.1])) == pytest.approx(dcg / idcg)
    assert ndcg_drift(base, base * 7) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        ndcg_drift(base, np.ones(4))


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="cannot be compared"):
        agreement(np.ones((2, 3)), np.ones((2, 4)))
