"""Drift statistics: equal to scipy's, verdicts on shifted and resampled data, reports, CLI."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from mlspec.runtime.drift import compare as D
from mlspec.runtime.drift import stats as S
from mlspec.runtime.drift.stats import _ks_block
from tests.runtime.conftest import REPO

REL = 1e-9


def _close(a, b):
    return abs(a - b) <= REL * max(abs(b), 1e-300)


@pytest.mark.parametrize("n1, n2", [(150, 120), (40, 40), (3000, 5000), (20000, 12000),
                                    (120_000, 90_000)])
def test_ks_and_wasserstein_equal_scipy(n1, n2):
    rng = np.random.default_rng(n1 + n2)
    ref = rng.normal(size=(4, n1))
    cur = rng.normal(0.05, 1.1, size=(4, n2))
    ref[1], cur[1] = np.round(ref[1], 1), np.round(cur[1], 1)  # heavy ties within and across
    ref[2], cur[2] = rng.integers(0, 5, n1), rng.integers(0, 6, n2)
    ref[3, :7], cur[3, -4:] = np.nan, np.nan  # missing values are left out
    rs, c1 = S.sort_rows(ref)
    cs, c2 = S.sort_rows(cur)
    d, w = S.ks_wasserstein(rs, c1, cs, c2)
    d, p = S.ks_p_values(d, c1, c2)
    for j in range(4):
        r, c = ref[j][~np.isnan(ref[j])], cur[j][~np.isnan(cur[j])]
        expected = stats.ks_2samp(r, c)
        assert _close(d[j], expected.statistic), (j, d[j], expected.statistic)
        assert _close(p[j], expected.pvalue), (j, p[j], expected.pvalue)
        assert _close(w[j], stats.wasserstein_distance(r, c))


KS_SHAPES = {
    "normal": lambda rng, n, s: rng.normal(s, 1, n),
    "rounded": lambda rng, n, s: np.round(rng.normal(s, 1, n), 1),
    "few integers": lambda rng, n, s: rng.integers(0, 5 + int(s * 10), n).astype(float),
    "lognormal, 3 decimals": lambda rng, n, s: np.round(rng.lognormal(0, 1 + s, n), 3),
    "30% zeros": lambda rng, n, s: np.where(rng.random(n) < 0.3, 0.0, rng.normal(s, 1, n)),
    "cauchy": lambda rng, n, s: rng.standard_cauchy(n) + s,
    "spike": lambda rng, n, s: np.concatenate([rng.normal(0, 1, n // 2),
                                               rng.normal(5 + s, 0.01, n - n // 2)]),
}


@pytest.mark.parametrize("shape", sorted(KS_SHAPES))
def test_bounded_ks_search_equals_a_full_merge(shape):
    """The bounded grid search (samples above KS_FULL_MERGE_MAX together) finds exactly the D
    of a full merge, for ties, heavy tails, spikes, tiny and large shifts and unequal sizes."""
    rng = np.random.default_rng(len(shape))
    sizes = [tuple(int(x) for x in rng.integers(5_000, 150_000, 2)) for _ in range(6)]
    sizes += [(int(rng.integers(200, 1_500)), int(rng.integers(9_000, 40_000))), (30, 20_000)]
    for (n1, n2), shift in zip(sizes, (0.0, 0.0, 0.001, 0.01, 0.05, 0.3, 0.0, 0.05),
                               strict=True):
        # the small-vs-large pairs give a grid step of 1 in one sample: exact brackets there
        r = np.sort(KS_SHAPES[shape](rng, n1, 0.0))
        c = np.sort(KS_SHAPES[shape](rng, n2, shift))
        full = _ks_block(r[None, :], np.array([n1]), c[None, :], np.array([n2]))
        assert S.ks_sorted(r, c) == float(full[0]), (shape, shift, n1, n2)


def test_ks_of_an_empty_or_single_value_sample():
    big = np.sort(np.random.default_rng(0).normal(size=20_000))
    assert np.isnan(S.ks_sorted(np.array([]), big)) and np.isnan(S.ks_sorted(big, np.array([])))
    assert S.ks_sorted(np.array([0.0]), big) == stats.ks_2samp([0.0], big).statistic


def test_chi2_and_js_equal_scipy():
    rng = np.random.default_rng(3)
    ref = rng.integers(0, 60, size=(6, 7))
    cur = rng.integers(0, 60, size=(6, 7))
    ref[1, 3:] = cur[1, 3:] = 0  # a category absent from both samples is dropped
    ref[2, 2:] = cur[2, 2:] = 0  # two categories: Yates' correction, as scipy applies it
    cur[3, 5] = 0
    stat, p = S.chi2_table(ref, cur)
    js = S.js_distance(ref, cur)
    for j in range(6):
        table = np.array([ref[j], cur[j]])
        table = table[:, table.sum(axis=0) > 0]
        expected = stats.chi2_contingency(table)
        assert _close(stat[j], expected.statistic) and _close(p[j], expected.pvalue)
        assert _close(js[j], jensenshannon(ref[j], cur[j], base=2))


def test_psi_definition():
    ref = np.array([[50, 30, 20, 0]])
    cur = np.array([[30, 30, 30, 10]])
    p = np.maximum(ref / 100, S.PSI_FLOOR)
    q = np.maximum(cur / 100, S.PSI_FLOOR)
    assert S.psi(ref, cur)[0] == pytest.approx(((q - p) * np.log(q / p)).sum(), rel=1e-12)


def _wine():
    from mlspec.runtime.io import load_sklearn

    return load_sklearn("wine").drop(columns=["target"])


@pytest.mark.parametrize("method", D.METHODS)
def test_shifted_copy_drifts_and_resample_does_not(method):
    """Default thresholds: a bootstrap resample of breast_cancer (569 rows, 30 features) is
    not drift; the same resample with two features shifted is, in exactly those two."""
    from mlspec.runtime.io import load_sklearn

    ref = load_sklearn("breast_cancer").drop(columns=["target"])
    resample = ref.sample(frac=1.0, replace=True, random_state=0).reset_index(drop=True)
    shifted = resample.copy()
    shifted["mean_radius"] += 2 * ref["mean_radius"].std()
    shifted["worst_texture"] *= 1.8
    quiet = D.compare(ref, resample, method)
    assert not quiet.drift, [(f.name, f.statistic) for f in quiet.features if f.drifted]
    loud = D.compare(ref, shifted, method)
    assert {f.name for f in loud.features if f.drifted} == {"mean_radius", "worst_texture"}


def test_profile_reference_matches_dataset_reference(tmp_path):
    from mlspec.runtime.features import feature_specs
    from mlspec.runtime.profile import build_profile
    from mlspec.runtime.spec import load_project
    from tests.runtime.conftest import iris_spec

    ref = _wine()
    cur = ref.sample(frac=0.7, random_state=1).reset_index(drop=True)
    cur["alcohol"] += 0.4
    project = load_project(iris_spec(tmp_path, data__features={}, data__target="none"))
    profile = json.loads(json.dumps(build_profile(ref, feature_specs(project, ref))))
    for method in ("psi", "js", "chi2"):
        exact = D.compare(ref, cur, method).to_dict()
        approx = D.compare(profile, cur, method).to_dict()
        for a, b in zip(exact["features"], approx["features"], strict=True):
            assert a["statistic"] == b["statistic"], (method, a, b)  # the same bins, exactly
    for method, tolerance in (("ks", 0.03), ("wasserstein", 0.05)):
        exact = D.compare(ref, cur, method).to_dict()["features"]
        approx = D.compare(profile, cur, method).to_dict()["features"]
        for a, b in zip(exact, approx, strict=True):
            assert abs(a["statistic"] - b["statistic"]) < tolerance, (method, a, b)
    online = D.drift_from_profile(profile, {c: cur[c].to_numpy() for c in ("alcohol", "ash")})
    assert set(online) == {"alcohol", "ash"} and online["alcohol"][1] > 0.2 > online["ash"][1]
    assert online["alcohol"][0] == "psi"


def test_categorical_features_and_fallbacks():
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"colour": rng.choice(["red", "blue", "green"], 2000, p=[.5, .3, .2]),
                        "size": rng.normal(size=2000)})
    cur = pd.DataFrame({"colour": rng.choice(["red", "blue", "pink"], 2000, p=[.2, .3, .5]),
                        "size": rng.normal(size=2000)})
    report = D.compare(ref, cur, "ks")
    colour = report.features[0]
    assert colour.kind == "categorical" and colour.method == "chi2" and colour.drifted
    assert report.features[1].method == "ks" and not report.features[1].drifted
    assert D.compare(ref, cur, "wasserstein").features[0].method == "js"
    psi = D.compare(ref, cur, "psi").features[0]
    assert psi.method == "psi" and psi.statistic > 1  # a new category: floored proportions
    # Online, the gauge carries the method each feature was measured with (the server labels
    # mlspec_feature_drift with it, and the alert compares it with that method's threshold).
    from mlspec.runtime.features import FeatureSpec
    from mlspec.runtime.profile import build_profile

    profile = build_profile(ref, [FeatureSpec("colour", "category"), FeatureSpec("size", "float")])
    online = D.drift_from_profile(profile, {c: cur[c].to_numpy() for c in cur}, "ks")
    assert online["colour"][0] == "chi2" and online["size"][0] == "ks"


def test_json_document_shape():
    ref = _wine()
    doc = D.compare(ref, ref, "ks", 0.1).to_dict()
    assert list(doc) == ["version", "drift", "method", "threshold", "features"]
    assert doc["version"] == 1 and doc["drift"] is False and doc["threshold"] == 0.1
    assert list(doc["features"][0]) == ["name", "method", "statistic", "p_value", "threshold",
                                        "drifted"]
    json.dumps(doc, allow_nan=False)


def test_bad_method_and_threshold():
    from mlspec.runtime.errors import StepError

    with pytest.raises(StepError, match="unknown drift method 'kl'"):
        D.compare(_wine(), _wine(), "kl")
    with pytest.raises(StepError, match="positive number"):
        D.compare(_wine(), _wine(), "psi", -1.0)


def _mlspec(*args, cwd):
    return subprocess.run([sys.executable, "-m", "mlspec", "drift", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin",
                               "COLUMNS": "120"})


@pytest.fixture
def drift_files(tmp_path):
    ref = _wine()
    ref.to_parquet(tmp_path / "ref.parquet")
    ref.sample(frac=1.0, replace=True, random_state=3).to_csv(tmp_path / "same.csv", index=False)
    shifted = ref.copy()
    shifted["proline"] *= 1.5
    shifted.to_parquet(tmp_path / "shifted.parquet")
    return tmp_path


@pytest.mark.slow
def test_mlspec_drift_command(drift_files):
    tmp = drift_files
    done = _mlspec("-r", "ref.parquet", "-c", "same.csv", cwd=tmp)
    assert done.returncode == 0, done.stderr
    assert "No drift in 13 features" in done.stdout and "proline" in done.stdout
    done = _mlspec("-r", "ref.parquet", "-c", "shifted.parquet", "--format", "json",
                   "--method", "ks", cwd=tmp)
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert [f["name"] for f in doc["features"] if f["drifted"]] == ["proline"]
    done = _mlspec("-r", "ref.parquet", "-c", "shifted.parquet", "-f", "html", "-o", "r.html",
                   cwd=tmp)
    assert done.returncode == 1 and done.stdout == ""
    page = (tmp / "r.html").read_text()
    assert page.count("<svg") == 1 and "proline" in page
    assert not re.search(r"<script|<link|src=|url\(|https?://(?!www\.w3\.org/2000/svg)", page)
    for args in (["-r", "nope.parquet", "-c", "same.csv"],
                 ["-r", "ref.parquet", "-c", "same.csv", "--method", "kl"]):
        done = _mlspec(*args, cwd=tmp)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr


@pytest.mark.slow
def test_mlspec_drift_with_spec_and_model_folder(iris_run, tmp_path):
    from tests.runtime.conftest import write_spec

    spec = dict(iris_run["spec"])
    spec["monitoring"] = {**spec["monitoring"],
                          "drift": {"method": "ks", "threshold": 0.3, "features":
                                    ["petal_length", "sepal_width"], "window": "1h"}}
    spec_file = write_spec(tmp_path, spec)
    test = pd.read_parquet(iris_run["test"])
    test["petal_length"] += 3
    test.to_parquet(tmp_path / "cur.parquet")
    done = _mlspec("-r", iris_run["model"], "-c", "cur.parquet", "--spec", spec_file, "-f", "json",
                   cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    doc = json.loads(done.stdout)
    assert doc["method"] == "ks" and doc["threshold"] == 0.3
    assert [(f["name"], f["drifted"]) for f in doc["features"]] == [
        ("petal_length", True), ("sepal_width", False)]


def test_kolmogorov_sf_equals_scipy():
    """The log-space Smirnov series (used where scipy loops over n terms) matches scipy."""
    for n in (141, 1000, 7500, 100_000):
        for x in (0.004, 0.01, 0.03, 0.05, 0.1, 0.2, 0.45, 0.6):
            assert _close(S.kolmogorov_sf(x, n), stats.kstwo.sf(x, n)) or \
                abs(S.kolmogorov_sf(x, n) - stats.kstwo.sf(x, n)) < 1e-300, (n, x)


@pytest.mark.parametrize("values", [
    pd.Series(["a", "b", None, "a"], dtype="str"),
    pd.Series(["a", "b", None, "a"], dtype=object),
    pd.Series([1, "1", 2.5, None, True], dtype=object),  # 1 and "1" print alike: one category
    pd.Series(pd.Categorical(["x", "y", "x", None], categories=["x", "y", "unused"])),
    pd.Series([True, False, True]),
    pd.Series([3, 1, 3, 3]),
])
def test_value_counts_counts_each_printed_value_once(values):
    """The one category counter (dataset drift, profiles, online drift) gives what
    ``dropna().astype(str).value_counts()`` gives, on every dtype."""
    from mlspec.runtime.drift.stats import value_counts

    labels, counts = value_counts(values)
    expected = values.dropna().astype(str).value_counts()
    assert dict(zip(labels, counts.tolist(), strict=True)) == expected.to_dict()
    assert len(set(labels)) == len(labels)


def test_profile_ks_p_value_is_scipys():
    """Online KS against a profile: the p-value is kstwo's at the effective sample size."""
    from scipy.stats import distributions

    rng = np.random.default_rng(3)
    ref = pd.DataFrame({"x": rng.normal(size=50_000)})
    from mlspec.runtime.features import FeatureSpec
    from mlspec.runtime.profile import build_profile

    profile = build_profile(ref, [FeatureSpec("x", "float")])
    for shift in (0.0, 0.02, 0.05):
        cur = np.sort(rng.normal(loc=shift, size=4000))
        d, p = D._profile_numeric(profile["features"]["x"], cur, "ks")
        n_eff = round(50_000 * 4000 / 54_000)
        assert p == pytest.approx(distributions.kstwo.sf(d, n_eff), rel=1e-9)
