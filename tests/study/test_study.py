"""The quick preset end to end (`dopr-robot study --preset quick`): report, figures, videos,
rerun skips, resume after damage gives the same numbers, refusals, the README section."""

from __future__ import annotations

import json
import shutil

import imageio.v3 as iio
import pytest

from dopr_robot.cli import main


def _per_seed_test_success(root):
    summary = json.loads((root / "summary.json").read_text())
    return {
        (cell["key"], label): stats["success_per_seed"]
        for cell in summary["cells"]
        for label, stats in cell["tuned"].items()
    }


def test_summary_has_disjoint_seeds_an_aggregate_and_budget_checkpoints(study):
    """What issue 13 asks the quick preset's summary.json to show."""
    summary = json.loads((study / "summary.json").read_text())
    assert summary["tuning_seeds"] == [0] and summary["verdict_seeds"] == [1, 2]
    roles = {(r["role"], r["seed"]) for r in summary["runs"]}
    assert roles == {("tuning", 0), ("verdict", 1), ("verdict", 2)}
    (cell,) = summary["cells"]
    for stats in cell["tuned"].values():  # the verdict is computed from verdict seeds only
        assert [p.split("-s")[-1].split("/")[0] for p in stats["test_dirs"]] == ["1", "2"]
        assert list(stats["budget_auc"]) == ["150", "300"]
    (comparison,) = cell["comparisons"]
    assert [row["step"] for row in comparison["budget"]] == [150, 300]
    # per cell (issue 26): the target, steps to it per run, sooner, the plateau check, better
    sooner = comparison["sooner"]
    assert set(sooner) >= {"target", "steps_base", "steps_candidate", "verdict", "holm_p"}
    assert len(sooner["steps_base"]) == len(sooner["steps_candidate"]) == 2
    assert all(s in (None, 150, 300) for s in sooner["steps_base"] + sooner["steps_candidate"])
    for role in ("base", "candidate"):
        assert comparison["plateau"][role]["steps"] == [150, 300]
        assert isinstance(comparison["plateau"][role]["plateaued"], bool)
    # two seeds cannot show a plateau (t with 1 df), so "better" is not asked
    assert comparison["better"]["verdict"] == comparison["auc"]["verdict"]
    assert comparison["auc"]["verdict"].startswith(("not converged at 300 steps", "at the "))
    (aggregate,) = summary["aggregate"]
    assert aggregate["cells"] == 1 and 0 <= aggregate["probability_of_improvement"] <= 1
    assert sum(aggregate["verdicts"].values()) == 1
    stages = summary["invocations"][0]["stages"]
    assert list(stages) == [
        "collect",
        "tune (train + validation episodes)",
        "verdict (train + test episodes + budget checkpoints)",
        "summary (statistics)",
    ]
    work = summary["invocations"][0]["worker_seconds"]
    assert set(work["tune"]) == {"train", "validation episodes"}
    assert set(work["verdict"]) == {"train", "test episodes", "budget checkpoints"}
    assert all(seconds > 0 for kinds in work.values() for seconds in kinds.values())
    assert "worker minutes" in (study / "report.md").read_text()
    budget = study / next(r["directory"] for r in summary["runs"] if r["role"] == "verdict")
    assert (budget / "eval" / "budget" / "step_0000150" / "results.json").exists()


def test_report_has_verdict_figures_and_videos(study, capsys):
    report = (study / "report.md").read_text()
    lines = report.splitlines()
    assert lines[0] == "# DoPr study `quick`" and lines[2] == "## Verdict"
    assert lines[4].startswith("**Sooner — dopr-adamw vs adamw, across 1 cells**")
    assert lines[5].startswith("**Better — dopr-adamw vs adamw, across 1 cells**")
    assert "- **balance · flow" in report and "  - better: **" in report
    assert "  - budget: " in report and "sooner target" not in report  # that is in the plot
    figures = (
        "plots/success_vs_horizon.png",
        "plots/success_vs_budget.png",
        "plots/val_loss_vs_success.png",
    )
    for figure in figures:
        assert f"]({figure})" in report
        assert iio.imread(study / figure).ndim == 3
    videos = sorted(study.glob("runs/*/*/*-s1/eval/test/videos/*.mp4"))
    assert len(videos) == 4  # 2 optimizers x 2 horizons, the first verdict seed only
    assert not list(study.glob("runs/*/*/*-s[02]/eval/test/videos"))
    frames = iio.imread(videos[0])
    assert frames.shape[0] > 10 and frames.std() > 1
    assert videos[0].relative_to(study).as_posix() in report
    assert "git_commit" in report and "torch" in report


def test_rerun_skips_finished_work(study, capsys):
    checkpoints = sorted(study.glob("runs/**/model.safetensors"))
    before = {path: path.stat().st_mtime_ns for path in checkpoints}
    results = sorted(study.glob("runs/**/results.json"))
    results_before = {path: path.stat().st_mtime_ns for path in results}
    assert main(["study", "--preset", "quick", "--out", str(study), "--quiet"]) == 0
    assert {path: path.stat().st_mtime_ns for path in checkpoints} == before
    assert {path: path.stat().st_mtime_ns for path in results} == results_before
    assert "better: **" in capsys.readouterr().out


def test_other_settings_are_refused_and_nothing_is_touched(study, tmp_path, capsys):
    changed = tmp_path / "changed.toml"
    from dopr_robot.study.config import preset_path

    text = preset_path("quick").read_text()
    changed.write_text(text.replace("verdict_seeds = 2", "verdict_seeds = 3"))
    listing = sorted(p.relative_to(study) for p in study.rglob("*"))
    assert main(["study", "--config", str(changed), "--out", str(study), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "other settings (verdict_seeds)" in error
    assert sorted(p.relative_to(study) for p in study.rglob("*")) == listing


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["study", "--config", str(tmp_path / "none.toml"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["study", "--preset", "quick", "--workers", "0", "--out", str(tmp_path)]) == 2
    assert "--workers" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["study", "--preset", "huge"])
    assert exit_info.value.code == 2


def test_readme_section_is_generated_between_markers(study, tmp_path):
    from dopr_robot.study.readme import BEGIN, END

    readme = tmp_path / "docs" / "results.md"
    readme.parent.mkdir()
    readme.write_text(f"# Title\n\nbefore\n\n{BEGIN}\nold text\n{END}\n\nafter\n")
    assert main(["study", "--preset", "quick", "--out", str(study), "--quiet",
                 "--readme", str(readme)]) == 0  # fmt: skip
    text = readme.read_text()
    assert text.startswith("# Title\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    assert "old text" not in text and "dopr-adamw vs adamw" in text
    assert "| adamw | 0.001 |" in text
    assert (tmp_path / "docs" / "results" / "quick_success_vs_horizon.png").exists()
    assert "](results/quick_success_vs_horizon.png)" in text
    broken = tmp_path / "NO_MARKERS.md"
    broken.write_text("# nothing here\n")
    assert main(["study", "--preset", "quick", "--out", str(study), "--quiet",
                 "--readme", str(broken)]) == 2  # fmt: skip
    assert broken.read_text() == "# nothing here\n"


def test_a_moved_study_resumes_with_the_same_numbers(study, tmp_path):
    """Copy the study, move the copy elsewhere, damage one evaluation there: the study resumes
    in its new place (paths count relative to the run), retrains nothing, and gives the same
    per-seed numbers."""
    expected = _per_seed_test_success(study)
    first = tmp_path / "first" / "quick"
    shutil.copytree(study, first, copy_function=shutil.copy2)
    moved = tmp_path / "elsewhere" / "quick"
    moved.parent.mkdir()
    shutil.move(first, moved)
    checkpoints = sorted(moved.glob("runs/**/model.safetensors"))
    before = {path: path.stat().st_mtime_ns for path in checkpoints}
    damaged = next(moved.glob("runs/balance/flow-c1/adamw-*-s2/eval/test"))
    (damaged / "results.json").unlink()
    lines = (damaged / "episodes.jsonl").read_text().splitlines()
    (damaged / "episodes.jsonl").write_text("\n".join(lines[:2]) + "\n")
    assert main(["study", "--preset", "quick", "--out", str(moved), "--quiet"]) == 0
    assert {path: path.stat().st_mtime_ns for path in checkpoints} == before
    assert (damaged / "results.json").exists()
    assert _per_seed_test_success(moved) == expected


def test_a_study_from_before_image_norm_is_still_the_same_study(study, tmp_path):
    """Runs saved before `image_norm` existed have no such key; for state-only policies it
    changes nothing, so their study resumes (nothing retrained) instead of being refused."""
    old = tmp_path / "old" / "quick"
    shutil.copytree(study, old, copy_function=shutil.copy2)
    for path in old.glob("runs/**/config.json"):
        record = json.loads(path.read_text())
        if "policy" in record:
            record["policy"].pop("image_norm")
            path.write_text(json.dumps(record))
    checkpoints = sorted(old.glob("runs/**/model.safetensors"))
    before = {path: path.stat().st_mtime_ns for path in checkpoints}
    assert main(["study", "--preset", "quick", "--out", str(old), "--quiet"]) == 0
    assert {path: path.stat().st_mtime_ns for path in checkpoints} == before


def test_resume_after_damage_gives_the_same_numbers(study, tmp_path):
    """Damages two runs of the shared study, resumes, and then puts the original files back
    (with their mtimes), so no other test depends on running before or after this one."""
    expected = _per_seed_test_success(study)
    run = next(study.glob("runs/balance/flow-c1/dopr-adamw-*-s2"))
    other = next(study.glob("runs/balance/flow-c1/adamw-*-s1/eval/test"))
    backups = {path: tmp_path / f"backup{i}" for i, path in enumerate((run, other))}
    for path, backup in backups.items():
        shutil.copytree(path, backup, copy_function=shutil.copy2)
    try:
        shutil.rmtree(run / "checkpoints")  # a kill before the first checkpoint
        (run / "metrics.jsonl").unlink()
        (other / "results.json").unlink()  # a kill during the test evaluation
        lines = (other / "episodes.jsonl").read_text().splitlines()
        (other / "episodes.jsonl").write_text("\n".join(lines[:3]) + "\n")
        assert main(["study", "--preset", "quick", "--out", str(study), "--quiet"]) == 0
        assert _per_seed_test_success(study) == expected
    finally:
        for path, backup in backups.items():
            shutil.rmtree(path)
            shutil.copytree(backup, path, copy_function=shutil.copy2)


def test_the_score_metric_rereads_the_same_runs_and_refuses_results_without_a_score(
    study, tmp_path, capsys
):
    """`metric = "score"` on a finished study retrains nothing and compares mean scores (on
    balance the share of H survived, so never below success); results written before scores
    existed are refused with one sentence."""
    copy = tmp_path / "quick"
    shutil.copytree(study, copy, copy_function=shutil.copy2)
    checkpoints = sorted(copy.glob("runs/**/model.safetensors"))
    before = {path: path.stat().st_mtime_ns for path in checkpoints}
    config = tmp_path / "score.toml"
    config.write_text('extends = "quick"\nmetric = "score"\n')
    assert main(["study", "--config", str(config), "--out", str(copy), "--quiet"]) == 0
    assert {path: path.stat().st_mtime_ns for path in checkpoints} == before
    success, score = _per_seed_test_success(study), _per_seed_test_success(copy)
    assert success.keys() == score.keys()
    for key, per_h in score.items():
        for h, values in per_h.items():
            assert all(s >= w for s, w in zip(values, success[key][h], strict=True))
    assert "metric is the **score**" in (copy / "report.md").read_text()
    results = next(copy.glob("runs/balance/flow-c1/adamw-*-s1/eval/test/results.json"))
    old = json.loads(results.read_text())
    old["schema"] = "dopr-robot/eval-results/1"
    for cell in old["cells"]:
        del cell["mean_score"]
    results.write_text(json.dumps(old))
    capsys.readouterr()
    assert main(["study", "--config", str(config), "--out", str(copy), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert 'metric is "score", but' in error and "has no score" in error
    assert error.count("\n") == 1
