"""Where outputs go, and the one check of whether they can be written there."""

from __future__ import annotations

from utils import config


def test_outputs_go_under_the_folder_named_and_quick_mode_has_its_own(tmp_path, monkeypatch):
    monkeypatch.setenv(config.OUTPUT_ENV, str(tmp_path / "outputs"))
    monkeypatch.setenv(config.QUICK_ENV, "1")
    assert config.output_dir("figures") == tmp_path / "outputs" / "quick" / "figures"
    assert config.output_dir("figures").is_dir()
    assert config.outputs_problem() is None
    monkeypatch.delenv(config.QUICK_ENV)
    assert config.output_dir() == tmp_path / "outputs"


def test_an_outputs_folder_that_cannot_be_made_is_one_line_with_the_fix(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(config.OUTPUT_ENV, str(blocker / "outputs"))
    monkeypatch.delenv(config.QUICK_ENV, raising=False)
    folder = config.output_dir("models")  # never raises: the writer that needs it says so
    assert folder == blocker / "outputs" / "models" and not folder.exists()
    problem = config.outputs_problem()
    assert problem is not None and len(problem.splitlines()) == 1
    assert f"{blocker / 'outputs'} cannot be written (Not a directory)" in problem
    assert "models stay in memory" in problem and "%env AE_OUTPUT_DIR=" in problem
