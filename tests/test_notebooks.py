"""Trainer notebooks: committed without outputs, and run top to bottom on the session's index, saving real figures.

Executed copies and figures land in tests/artifacts/ (git-ignored) so a CI run can be looked at.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import nbformat
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = ROOT / "tests" / "artifacts"
FIGURES = ARTIFACTS / "figures"

#: notebook -> the figures it must save
EXPECTED = {
    "evaluate_retrieval.ipynb": ["threshold_sweep.png", "score_distributions.png", "confusion.png", "ablation.png"],
    "try_changes.ipynb": ["try_changes_before_after.png"],
}
#: Rows put into the feedback database, which evaluate_retrieval.ipynb must list.
UNANSWERED = "病院の駐車場は何時まで使えますか"
DISLIKED = "How should we keep the admin password list?"


@pytest.mark.parametrize("name", EXPECTED)
def test_committed_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(not c.outputs and c.execution_count is None for c in code), "strip outputs: nbstripout " + name


def _text(nb) -> str:
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            out.append(o.get("text", "") + str(o.get("data", {}).get("text/plain", "")))
            out.append(str(o.get("data", {}).get("text/html", "")))
    return "\n".join(out)


def _fill_feedback(path: Path) -> bool:
    """Feedback rows through the chat page's own store; False when this checkout has none."""
    try:
        from bot.feedback import Feedback, FeedbackStore
    except ImportError:
        return False
    store = FeedbackStore(path)
    store.add(Feedback(kind="unanswered", question=UNANSWERED, lang="ja"))
    store.add(Feedback(kind="down", question=DISLIKED, entry_id="qa-5", answered=True, confidence=0.8, lang="en"))
    return True


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_runs_and_saves_figures(name, settings, built_index, data_copy, monkeypatch, tmp_path):
    from nbclient import NotebookClient

    feedback_db = tmp_path / "feedback.sqlite3"
    has_feedback = name == "evaluate_retrieval.ipynb" and _fill_feedback(feedback_db)
    # the kernel inherits these: the session's index, and a copy of the data it was built from
    monkeypatch.setenv("FAQBOT_INDEX", str(settings.index_dir))
    monkeypatch.setenv("FAQBOT_DATA", str(data_copy))
    monkeypatch.setenv("FAQBOT_FEEDBACK_DB", str(feedback_db))
    monkeypatch.setenv("FAQBOT_FIGURES", str(FIGURES))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("FAQBOT_MODEL", raising=False)
    monkeypatch.delenv("FAQBOT_TRY_MODEL", raising=False)
    FIGURES.mkdir(parents=True, exist_ok=True)
    for figure in EXPECTED[name]:
        (FIGURES / figure).unlink(missing_ok=True)
    data_before = _digest(data_copy)

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}})
    try:
        client.execute()  # raises CellExecutionError, with the traceback, on the first failing cell
    finally:
        nbformat.write(nb, ARTIFACTS / name)

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code"), "every cell ran"
    for figure in EXPECTED[name]:
        _assert_real_figure(FIGURES / figure)
    assert _digest(data_copy) == data_before, "the notebook must not change the data it reads"
    text = _text(nb)
    if name == "evaluate_retrieval.ipynb":
        assert "Recall@1" in text and "false_answer_rate" in text and "without cos_q" in text
        if has_feedback:
            assert UNANSWERED in text and DISLIKED in text
        else:
            assert "no feedback collected yet" in text
    else:
        assert "踏み台サーバーに同時に二社つなげますか" in text and "change" in text


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()


def _assert_real_figure(path: Path) -> None:
    """A PNG with drawn content: not tiny, not one flat colour, many distinct colours (curves, bars, text)."""
    from PIL import Image

    assert path.is_file(), f"{path.name} was not saved"
    assert path.stat().st_size > 20_000, f"{path.name} is suspiciously small"
    pixels = np.asarray(Image.open(path).convert("RGB"))
    assert pixels.shape[0] >= 300 and pixels.shape[1] >= 500
    assert pixels.std() > 20
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    assert colours > 200, f"{path.name} has only {colours} colours"
