"""The retrain function's declared requirements stay in step with pyproject.toml: the core's
dependencies, Powertools and the train extra, without boto3 (the runtime's) and matplotlib
(left out to fit Lambda's package limit)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).parents[3]


def _requirements(specs: list[str]) -> dict[str, str]:
    parsed = [Requirement(s) for s in specs if s.strip() and not s.startswith("#")]
    return {r.name.lower(): str(r.specifier) for r in parsed}


def test_the_retrain_requirements_are_the_core_powertools_and_the_train_extra() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    declared = _requirements([*project["dependencies"], *extras["train"]])
    declared["aws-lambda-powertools"] = _requirements(extras["aws"])["aws-lambda-powertools"]
    declared.pop("matplotlib")
    shipped = _requirements(
        (ROOT / "deploy" / "aws" / "retrain" / "requirements.txt").read_text().splitlines()
    )
    # The trainer's temperature scaling needs scikit-learn 1.8, stricter than the extra says.
    assert shipped.pop("scikit-learn") == ">=1.8"
    declared.pop("scikit-learn")
    assert shipped == declared
    assert "boto3" not in shipped and "matplotlib" not in shipped


def test_the_retrain_package_links_the_code_it_runs_and_no_other_adapter() -> None:
    package = ROOT / "deploy" / "aws" / "retrain"
    for name in ("core", "training", "adapters/aws"):
        assert (package / name).is_symlink() and (package / name).resolve() == ROOT / name
    assert sorted(p.name for p in (package / "adapters").iterdir()) == ["__init__.py", "aws"]
