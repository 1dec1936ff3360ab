import pytest

from tunekit.errors import TunekitError
from tunekit.study.plots import plot_learning_curve

from .test_report import row, study_rows


def test_plot_learning_curve_writes_a_png(tmp_path):
    path = tmp_path / "curve.png"
    plot_learning_curve(path, study_rows(), "IMDB: test accuracy vs labels", chance=0.5)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_plot_learning_curve_copes_with_one_seed_and_no_train_set_size(tmp_path):
    path = tmp_path / "curve.png"
    plot_learning_curve(
        path, [row("lstm_scratch", 100, 0, 0.6), row("lstm_scratch", "all", 0, 0.8)], "one seed"
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(TunekitError, match="no results"):
        plot_learning_curve(path, [], "empty")
