"""The documentation site: it builds with `mkdocs build --strict`, its generated settings tables and
pictures are in the HTML, and every command and snippet of every docs/ page works (the handlers
below; docs/reference/docs-tests.md says what each does). A command no handler knows fails, so a new
page's commands get a handler, not a pass."""

from __future__ import annotations

import importlib.util
import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from solo_equimod.cli import linear_main, pretrain_main
from tests.conftest import REPO
from tests.docs_commands import Command, blocks, console_commands, shell_commands

DOCS = REPO / "docs"
HYDRA_COMMANDS = {("python", "main_pretrain.py"): pretrain_main, ("solo-equimod-pretrain",): pretrain_main,
                  ("python", "main_linear.py"): linear_main, ("solo-equimod-linear",): linear_main}
RUN_AS_IS = ("solo_equimod", "solo_equimod.reference", "solo_equimod.zoo")  # `python -m` modules run in full
ZOO_RUNS = ("list", "download", "verify")  # zoo subcommands that run (on the in-repo weights, a temporary cache)
SHELL = [c for b in blocks(DOCS, REPO / "README.md") if b.language in ("bash", "sh") for c in shell_commands(b)]
CONSOLE = [c for b in blocks(DOCS) if b.language == "console" for c in console_commands(b)]
PYTHON_PAGES = sorted({b.page for b in blocks(DOCS) if b.language == "python" and "--8<--" not in b.text})


def hydra_main(words: list[str]):
    return next((main for prefix, main in HYDRA_COMMANDS.items() if tuple(words[:len(prefix)]) == prefix), None)


def compose_only(main, args: list[str]) -> None:
    """The command as Hydra composes it, `--cfg job`: every key checked against the schema, nothing run."""
    try:
        main([*args, "--cfg", "job"])
    except SystemExit as stop:
        pytest.fail(f"exit {stop.code}")


def check_interface(target: Path, words: list[str]) -> None:
    """A command that trains or measures for minutes: its script exists and knows every option it is given."""
    assert target.is_file(), f"{target} does not exist"
    source = target.read_text() if target.suffix != "" else ""
    for option in (w.split("=")[0] for w in words if w.startswith("--")):
        assert f'"{option}"' in source or f"'{option}'" in source or option in source, f"{target} has no {option}"


def module_file(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, f"no module {module}"
    return Path(spec.origin).parent / "__main__.py" if spec.origin.endswith("__init__.py") else Path(spec.origin)


def run_command(command: Command, tmp_path: Path, monkeypatch) -> None:
    words = command.words
    main = hydra_main(words)
    if main is not None:
        compose_only(main, words[2:] if words[0] == "python" else words[1:])
    elif words[:2] == ["bash", "scripts/demo.sh"]:  # each of its commands, composed (its install is CI's)
        demo = (REPO / "scripts/demo.sh").read_text().replace("\\\n", " ")
        for line in re.findall(r"^\.venv/bin/python (main_\w+\.py .*)$", demo, re.M):
            args = [a for a in line.split() if a != '"$@"']
            compose_only(HYDRA_COMMANDS[("python", args[0])], args[1:])
    elif words == ["bash", "scripts/test.sh"]:  # the suite itself: CI's command
        assert "bash scripts/test.sh" in (REPO / ".ci/run").read_text()
    elif words[:2] == ["python", "-m"] and words[2] in RUN_AS_IS and (words[2] != "solo_equimod.zoo" or
                                                                     set(words) & set(ZOO_RUNS)):
        monkeypatch.setenv("SOLO_EQUIMOD_CACHE", str(tmp_path / "cache"))
        monkeypatch.setattr(sys, "argv", [words[2], *words[3:]])
        try:
            runpy.run_module(words[2], run_name="__main__")
        except SystemExit as stop:
            assert stop.code in (0, None), f"exit {stop.code}"
    elif words[:2] == ["python", "-m"]:  # evaluations, exports, the factor-bench writer: minutes on real checkpoints
        check_interface(module_file(words[2]), words[3:])
    elif words[0] in ("python", "bash", "sbatch") and words[1].startswith(("benchmarks/", "scripts/", "zoo/")):
        check_interface(REPO / words[1], words[2:])
    else:
        pytest.fail(f"no handler for this documented command: add one in tests/test_docs.py ({command})")


@pytest.mark.parametrize("command", SHELL, ids=str)
def test_documented_command_works(command: Command, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    run_command(command, tmp_path, monkeypatch)


@pytest.mark.parametrize("command", CONSOLE, ids=str)
def test_console_example_prints_what_the_page_shows(command: Command, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    main = hydra_main(command.words)
    assert main is not None, f"no handler for this console example: {command}"
    with pytest.raises(SystemExit):
        main(command.words[2:] if command.words[0] == "python" else command.words[1:])
    captured = capsys.readouterr()
    assert captured.out + captured.err == command.output


@pytest.mark.parametrize("page", PYTHON_PAGES)
def test_python_snippets_run(page: str, monkeypatch):
    """A page's Python blocks run in order in one namespace, from the repository's root."""
    monkeypatch.chdir(REPO)
    namespace: dict = {"__name__": "__docs__"}
    for block in (b for b in blocks(DOCS) if b.page == page and b.language == "python"):
        exec(compile(block.text, f"{page}:{block.line}", "exec"), namespace)


def load_tutorial():
    spec = importlib.util.spec_from_file_location("own_objective", DOCS / "examples/own_objective.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["own_objective"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_tutorial_objective_loss_is_the_variance_floor():
    from solo_equimod.objectives import OBJECTIVES

    try:
        tutorial = load_tutorial()
        objective = tutorial.FeatureVariance(tutorial.FeatureVarianceSettings(target_std=1.0, eps=1e-4), None)
        h = torch.tensor([[0.0, 5.0], [2.0, 5.0]])  # per feature: variance 2 (std 1.414: no loss) and 0
        loss = objective(None, {"views": [h, h]})["loss"]
        assert loss.item() == pytest.approx((0 + (1 - 1e-2)) / 2)  # relu(1 - sqrt(0 + 1e-4)) = 0.99, mean of 2
    finally:
        OBJECTIVES.pop("feature_variance", None)
        sys.modules.pop("own_objective", None)


def test_tutorial_trains_with_its_objective():
    done = subprocess.run([sys.executable, "docs/examples/own_objective.py"], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "feature_variance:\n    weight: 0.5\n    target_std: 1.0\n    eps: 0.0001" in done.stdout


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if shutil.which("mkdocs") is None and importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-4000:]
    return out


def test_site_has_the_generated_settings_tables(site: Path):
    from solo_equimod.objectives import OBJECTIVES

    care = (site / "objectives/care/index.html").read_text()
    for key in OBJECTIVES["care"].SETTINGS.__dataclass_fields__:
        assert f"<code>objectives.care.{key}</code>" in care
    assert "<code>scripts/pretrain/cifar/simclr_care.yaml</code>" in care  # the shipped configs' list
    assert "<code>method_kwargs.temperature</code>" in (site / "methods/simclr/index.html").read_text()


def test_site_pictures_resolve(site: Path):
    shown = 0
    for page in site.rglob("*.html"):
        for src in re.findall(r'<img[^>]* src="([^"]+)"', page.read_text()):
            if not src.startswith(("http:", "https:", "data:")):
                assert (page.parent / src).resolve().is_file(), f"{page}: {src}"
                shown += 1
    assert shown >= 3
