"""python -m focal: the command line, the training demonstration and Figure 1.

The commands run in subprocesses from a temporary directory, so the installed
package is the one under test (./focal in the repository root would shadow it).
"""
import math
import os
import re
import struct
import subprocess
import sys
import warnings
from dataclasses import replace

import numpy as np
import pytest

import focal
from focal import _demo, _figure

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# a row of the demo's final table:
#   name  alpha  gamma  AP  share-of-all%  share-of-negatives%  focal s / total s (pct%)
TABLE_ROW = re.compile(
    r"^  (cross-entropy|alpha-balanced CE|focal loss)\s+(None|[\d.]+)\s+([\d.]+)\s+"
    r"([\d.]+)\s+(\S+)%\s+(\S+)%\s+([\d.]+) s / ([\d.]+) s \((\d+)%\)$",
    re.MULTILINE,
)


def _environment():
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # nothing may put the source tree in front of the install
    env.pop("PYTHONUNBUFFERED", None)  # the demo must flush its progress lines itself
    return env


def _run(args, cwd, timeout=120, **kwargs):
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=_environment(), capture_output=True, text=True,
        timeout=timeout, **kwargs)


def _nearest_prototype(features, prototypes):
    """Distance (C, N) from each anchor to the nearest prototype of each class."""
    x = features.T.astype(np.float64)
    return np.array([
        np.min([np.linalg.norm(x - centre, axis=1) for centre in class_prototypes], axis=0)
        for class_prototypes in prototypes])


def _png_size(path):
    with open(path, "rb") as handle:
        head = handle.read(24)
    assert head[:8] == PNG_SIGNATURE, f"{path} is not a PNG: {head[:8]!r}"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


# --------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------

def test_help_lists_the_subcommands(tmp_path):
    result = _run(["-m", "focal", "--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    for command in ("train", "batch", "figure", "bench"):
        assert re.search(rf"^\s+{command}\s+\S", result.stdout, re.MULTILINE), (
            f"{command!r} missing from:\n{result.stdout}")


def test_the_installed_package_runs(tmp_path):
    result = _run(["-c", "import focal, sys; print(focal.__file__)"], tmp_path)
    assert result.returncode == 0, result.stderr
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    assert not os.path.abspath(result.stdout.strip()).startswith(os.path.join(root, "focal"))


def test_figure_help_names_the_out_option(tmp_path):
    result = _run(["-m", "focal", "figure", "--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "--out PATH" in result.stdout


# --------------------------------------------------------------------------
# The training demonstration, end to end
# --------------------------------------------------------------------------

def test_demo_runs_end_to_end(tmp_path):
    """`python -m focal` (the default command, train) shows progress while it
    trains, flushed line by line, and ends with the three-row table.  (How
    long it takes is not asserted here: a loaded machine says nothing about
    focal.)"""
    process = subprocess.Popen(
        [sys.executable, "-m", "focal"], cwd=tmp_path, env=_environment(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # Raw reads of the pipe: each returns what the demo has written so far.
        # Unflushed, the whole output (about 2 KB, under one buffer) would
        # arrive in one piece at exit; flushed, the first progress line arrives
        # while two more models still have to train before the table.
        received, at_first_progress = b"", None
        while True:
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                break
            received += chunk
            if at_first_progress is None and b" epoch " in received:
                at_first_progress = received.decode()
        returncode = process.wait(timeout=120)  # a guard against a hang, not a bound
        stderr = process.stderr.read().decode()
    finally:
        if process.poll() is None:
            process.kill()
        process.stdout.close()
        process.stderr.close()
    output = received.decode()
    assert returncode == 0, stderr
    assert stderr == ""
    assert at_first_progress is not None, output
    assert TABLE_ROW.search(output), output
    assert not TABLE_ROW.search(at_first_progress), (
        "the progress lines arrived only with the table, at the end:\n" + at_first_progress)

    # progress: every model reports its last epoch
    for name, _, _ in _demo.LOSSES:
        assert re.search(rf"^  {re.escape(name)}\s+epoch\s+15/15 .* held-out AP [\d.]+",
                         output, re.MULTILINE), output

    rows = TABLE_ROW.findall(output)
    assert [row[0] for row in rows] == ["cross-entropy", "alpha-balanced CE", "focal loss"], output
    assert [(row[1], row[2]) for row in rows] == [("None", "0"), ("0.75", "0"), ("0.25", "2")]
    for name, _, _, ap, share_all, share_negatives, in_focal, total, percent in rows:
        assert 0.0 <= float(ap) <= 1.0, name
        assert 0.0 <= float(share_all) <= float(share_negatives) <= 100.0, name
        assert 0.0 < float(in_focal) < float(total), name  # a part of the loop's time
        assert abs(int(percent) - 100 * float(in_focal) / float(total)) <= 1.0, name

    # the conclusion states what the table shows, whichever way it goes
    ap = {row[0]: float(row[3]) for row in rows}
    focal_wins = ap["focal loss"] >= max(ap.values())
    expected = "Focal loss has the highest" if focal_wins else "Focal loss does not have the highest"
    assert expected in output
    ideal = re.search(r"true posterior .* gives AP (\d\.\d+)", output)
    assert ideal and 0.0 < float(ideal.group(1)) <= 1.0, output


# --------------------------------------------------------------------------
# The demonstration's pieces, on a small configuration
# --------------------------------------------------------------------------

SMALL = replace(_demo.Config(), train_anchors=20_000, test_anchors=20_000, positive_rate=0.01,
                clusters_per_class=1, epochs=6, batch=1024, report_every=3)


def test_data_look_like_dense_detection():
    config = _demo.Config()
    train, test, prototypes = _demo.make_datasets(config)
    assert prototypes.shape == (config.classes, config.clusters_per_class, config.dims)
    for data, anchors in ((train, config.train_anchors), (test, config.test_anchors)):
        assert data.features.shape == (config.dims, anchors)
        assert data.features.dtype == np.float32
        assert set(np.unique(data.labels)) == set(range(config.classes + 1))  # C = background
        positives = np.count_nonzero(data.labels < config.classes)
        assert positives == anchors // 1000
        assert np.count_nonzero(data.hard) == config.hard_per_positive * positives
        assert np.all(data.labels[data.hard] == config.classes)  # hard negatives are background
    # fixed seeds: the same data every time
    again = _demo.make_datasets(config)[0]
    np.testing.assert_array_equal(again.features, train.features)
    # the hard negatives sit near the prototypes, the easy ones far away
    nearest = _nearest_prototype(train.features, prototypes).min(axis=0)
    easy = ~train.hard & (train.labels == config.classes)
    assert np.median(nearest[train.hard]) < 2.0 < 5.0 < np.median(nearest[easy])


def test_backward_matches_finite_differences():
    """The model's gradient (focal's d loss/d logits through both layers)."""
    config = replace(SMALL, train_anchors=2000, test_anchors=2000, positive_rate=0.01)
    train, _, _ = _demo.make_datasets(config)
    rng = np.random.default_rng(0)
    params = {k: v.astype(np.float64) for k, v in _demo.init_params(config).items()}
    params["W2"] += rng.normal(0.0, 0.5, params["W2"].shape)  # away from the flat start
    x, y = train.features.astype(np.float64), train.labels

    def loss(p):
        logits, _ = _demo.forward(p, x)
        return float(focal.loss(logits.T, y, alpha=0.25, gamma=2.0, reduction=_demo.REDUCTION))

    logits, hidden = _demo.forward(params, x)
    dlogits = np.empty_like(logits)
    focal.loss_and_grad(logits.T, y, alpha=0.25, gamma=2.0, reduction=_demo.REDUCTION,
                        out=dlogits.T)
    grads = _demo.backward(params, x, hidden, dlogits)
    for name, value in params.items():
        index = np.unravel_index(np.argmax(np.abs(grads[name])), value.shape)
        up = {k: v.copy() for k, v in params.items()}
        down = {k: v.copy() for k, v in params.items()}
        up[name][index] += 1e-6
        down[name][index] -= 1e-6
        numeric = (loss(up) - loss(down)) / 2e-6
        assert grads[name][index] == pytest.approx(numeric, rel=1e-5), name


def test_initial_output_is_the_prior():
    """The paper's initialisation: output bias prior_bias(0.01), small output
    weights, so every anchor starts near p = 0.01 for every class."""
    config = _demo.Config()
    train, _, _ = _demo.make_datasets(config)
    params = _demo.init_params(config)
    bias = np.float32(focal.prior_bias(0.01))
    assert params["b2"].shape == (config.classes, 1) and np.all(params["b2"] == bias)
    logits, _ = _demo.forward(params, train.features)
    offset = np.abs(logits - bias)
    assert np.median(offset) < 0.2 and offset.max() < 1.0  # p within 0.0037 .. 0.027
    assert np.all(_demo.init_params(config)["W1"] == params["W1"])  # the same start every run


@pytest.mark.parametrize("scores, positive, expected", [
    ([0.9, 0.8, 0.7, 0.6], [1, 1, 0, 0], 1.0),
    ([0.9, 0.8, 0.7, 0.6], [0, 0, 1, 1], (1 / 3 + 2 / 4) / 2),
    ([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0], (1 / 1 + 2 / 3) / 2),
    ([0.1, 0.4, 0.3, 0.2], [0, 0, 0, 1], 1 / 3),
])
def test_average_precision_by_hand(scores, positive, expected):
    value = _demo.average_precision(np.array(scores), np.array(positive, dtype=bool))
    assert value == pytest.approx(expected, rel=1e-12)


def test_average_precision_of_random_scores_is_the_positive_rate():
    rng = np.random.default_rng(5)
    positive = rng.random(200_000) < 0.01
    value = _demo.average_precision(rng.random(200_000), positive)
    assert value == pytest.approx(positive.mean(), rel=0.25)
    assert math.isnan(_demo.average_precision(np.zeros(3), np.zeros(3, dtype=bool)))


def test_easy_negative_shares_by_hand():
    # anchors: class 0, background (label 2), background; two classes
    loss = np.array([[5.0, 1.0],      # positive 5, negative 1
                     [0.5, 0.25],     # negatives
                     [2.0, 0.25]])    # negatives
    labels = np.array([0, 2, 2])
    # negatives sorted: 0.25 0.25 0.5 1 2; the easiest 90% (int(4.5) = 4 of 5): 2.0 of 4.0
    share_all, share_negatives = _demo.easy_negative_shares(loss, labels)
    assert share_negatives == pytest.approx(2.0 / 4.0)
    assert share_all == pytest.approx(2.0 / 9.0)


def test_small_training_run_learns_and_is_reproducible():
    logged = []
    results = _demo.run(SMALL, log=logged.append)
    assert [r.name for r in results] == [name for name, _, _ in _demo.LOSSES]
    assert sum(" epoch " in line for line in logged) == 3 * 2  # epochs 3 and 6, three models
    positive_rate = SMALL.positive_rate
    for r in results:
        assert 0.0 <= r.ap <= 1.0
        assert r.ap > 5 * positive_rate, r  # far better than random ranking
        assert 0.0 <= r.easy_share_total <= r.easy_share_negatives <= 1.0
        assert 0.0 < r.focal_seconds < r.total_seconds
    again = _demo.run(SMALL, log=lambda line: None)
    assert [r.ap for r in again] == [r.ap for r in results]
    assert [r.easy_share_negatives for r in again] == [r.easy_share_negatives for r in results]


def test_best_possible_ap_follows_the_overlap():
    """The ideal ranking reaches AP ~1 when positives stand apart, and only the
    positives' share of the crowd when hard negatives look exactly like them."""
    base = replace(_demo.Config(), test_anchors=100_000)

    def ideal(config):
        _, test, prototypes = _demo.make_datasets(config)
        return _demo.best_possible_ap(config, prototypes, test)

    assert ideal(replace(base, hard_per_positive=0)) > 0.99
    indistinguishable = ideal(replace(base, hard_spread=base.positive_spread))
    assert 0.04 < indistinguishable < 0.2  # 1 positive in 11 around every prototype
    assert indistinguishable < ideal(base) < 0.99


def test_report_states_the_result_truthfully():
    def result(name, alpha, gamma, ap, share):
        return _demo.Result(name, alpha, gamma, ap, share / 2, share, 1.0, 4.0)

    losing = [result("cross-entropy", None, 0.0, 0.40, 1e-2),
              result("alpha-balanced CE", 0.75, 0.0, 0.30, 1e-3),
              result("focal loss", 0.25, 2.0, 0.35, 1e-5)]
    text = "\n".join(_demo.table(losing) + _demo.verdict(losing, 0.5))
    assert "Focal loss does not have the highest held-out AP here: 0.350" in text
    assert "1,000 times less" in text
    assert [row[3] for row in TABLE_ROW.findall(text)] == ["0.400", "0.300", "0.350"]

    winning = [r._replace(ap=0.2) if r.gamma == 0 else r for r in losing]
    assert "Focal loss has the highest held-out AP here: 0.350" in "\n".join(
        _demo.verdict(winning, 0.5))


# --------------------------------------------------------------------------
# Figure 1
# --------------------------------------------------------------------------

def test_matplotlib_is_installed_for_the_tests():
    try:
        with warnings.catch_warnings():  # old matplotlib warns about newer pyparsing
            warnings.simplefilter("ignore", DeprecationWarning)
            import matplotlib  # noqa: F401
    except ImportError:  # pragma: no cover
        pytest.fail("matplotlib is missing: it belongs in the test extra of pyproject.toml")


def test_figure_command_writes_a_png(tmp_path):
    out = tmp_path / "figure1.png"
    result = _run(["-m", "focal", "figure", "--out", str(out)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    assert _png_size(out) == (800, 600)
    assert out.stat().st_size > 10_000  # curves, not an empty canvas


def test_figure_default_path_is_in_the_current_directory(tmp_path):
    result = _run(["-m", "focal", "figure"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert _png_size(tmp_path / "focal_figure1.png") == (800, 600)


def test_figure_reports_an_unwritable_path(tmp_path):
    out = tmp_path / "missing" / "figure1.png"
    result = _run(["-m", "focal", "figure", "--out", str(out)], tmp_path)
    assert result.returncode == 1
    assert "could not write" in result.stderr
    assert not out.exists()


BLOCK_MATPLOTLIB = """
import sys

class BlockMatplotlib:
    def find_spec(self, name, path=None, target=None):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)")
        return None

sys.meta_path.insert(0, BlockMatplotlib())
from focal.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def test_figure_without_matplotlib_prints_the_table(tmp_path):
    out = tmp_path / "figure1.png"
    result = _run(["-c", BLOCK_MATPLOTLIB, "figure", "--out", str(out)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert not out.exists()
    assert 'pip install "focal[plot]"' in result.stdout
    assert 'pip install ".[plot]"' in result.stdout
    header = re.search(r"^  p_t\s+(.*)$", result.stdout, re.MULTILINE)
    assert header, result.stdout
    assert re.findall(r"gamma = ([\d.]+)", header.group(1)) == ["0", "0.5", "1", "2", "5"]
    rows = re.findall(r"^  (0\.\d\d)((?:\s+\S+){5})$", result.stdout, re.MULTILINE)
    assert [p for p, _ in rows] == [f"{0.05 * i:.2f}" for i in range(1, 20)]
    for p, cells in rows:
        p_t = float(p)
        for gamma, cell in zip(_figure.GAMMAS, cells.split()):
            expected = -((1 - p_t) ** gamma) * math.log(p_t)
            assert float(cell) == pytest.approx(expected, rel=1e-3), (p, gamma)


def test_figure_without_matplotlib_in_process(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "figure1.png"
    assert _figure.main(type("Args", (), {"out": str(out)})()) == 0
    printed = capsys.readouterr().out
    assert "matplotlib is not installed" in printed
    assert "  0.50" in printed
    assert not out.exists()


def test_figure_curves_are_the_paper_formula():
    p_t = np.array([0.0, 0.1, 0.5, 0.9, 0.968, 1.0])
    values = _figure.curves(p_t)
    assert sorted(values) == [0.0, 0.5, 1.0, 2.0, 5.0]
    for gamma, loss in values.items():
        assert loss[0] == np.inf and loss[-1] == 0.0
        expected = -((1 - p_t[1:-1]) ** gamma) * np.log(p_t[1:-1])
        np.testing.assert_allclose(loss[1:-1], expected, rtol=1e-12)
    ratio = values[2.0][1:-1] / values[0.0][1:-1]
    assert ratio[2] == pytest.approx(1 / 100, rel=1e-12)  # Figure 1: 100x lower at p_t = 0.9
    assert 1 / ratio[3] == pytest.approx(977, rel=1e-3)   # ~1000x lower near p_t = 0.968
