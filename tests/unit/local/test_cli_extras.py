"""The CLI names the extra to install for a missing optional module, and reads a known export
without a preset."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from adapters.local.cli import EXTRA_OF_MODULE, _data_spec, build_parser, main, missing_extra
from tests.support import ROOT
from training.data import PRESETS, DataSpec, vendored_data_path

_OPTIONAL = ("local", "train", "helpdesk", "aws", "gcp", "azure", "azure-deploy", "spark")


def _extras() -> dict[str, set[str]]:
    """Each optional extra's distributions, by canonical name, as pyproject.toml lists them."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found: dict[str, set[str]] = {}
    for extra in _OPTIONAL:
        names = {
            re.split(r"[<>=!\[; ]", r, maxsplit=1)[0]
            for r in project["optional-dependencies"][extra]
        }
        found[extra] = {n.lower().replace("_", "-") for n in names}
    return found


def test_every_optional_distribution_maps_to_an_extra_that_installs_it() -> None:
    extras = _extras()
    modules_of: dict[str, set[str]] = {}
    for module, dists in metadata.packages_distributions().items():
        for dist in dists:
            modules_of.setdefault(dist.lower().replace("_", "-"), set()).add(module)
    checked = 0
    for extra, dists in extras.items():
        for dist in dists - {"ticket-enrich"}:
            modules = modules_of.get(dist)
            if not modules:
                continue  # not installed here
            # A namespace package (azure, google) is told apart by its longer module names.
            mapped = {e for k, e in EXTRA_OF_MODULE.items() if k.split(".")[0] in modules}
            assert mapped, f"{dist} ({extra}): none of {sorted(modules)} names an extra"
            assert any(dist in extras[m] for m in mapped), (dist, mapped)
            checked += 1
    assert checked >= 20
    assert set(EXTRA_OF_MODULE.values()) <= set(_OPTIONAL)


def test_the_longest_module_prefix_decides() -> None:
    assert missing_extra("azure.ai.ml.entities") == "azure-deploy"
    assert missing_extra("azure.storage.blob") == "azure"
    assert missing_extra("google.cloud.functions_v2") == "gcp"
    assert missing_extra("pyspark.sql") == "spark"
    assert missing_extra("nothing_of_ours") is None
    assert missing_extra(None) is None


def test_a_missing_extra_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def without_pyspark(*_args: object) -> int:
        raise ModuleNotFoundError("No module named 'pyspark'", name="pyspark")

    import adapters.local.cli as cli

    monkeypatch.setattr(cli, "_cmd_batch", without_pyspark)
    assert main(["batch", "--engine", "spark", "in.csv", "out"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "[ticket-enrich] error: `ticket-enrich batch` needs the 'spark' extra (pyspark is not "
        "installed): pip install 'ticket-enrich[spark]'"
    ]


def test_a_missing_module_of_no_extra_is_a_real_fault(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object) -> int:
        raise ModuleNotFoundError("No module named 'adapters.gone'", name="adapters.gone")

    import adapters.local.cli as cli

    monkeypatch.setattr(cli, "_cmd_batch", broken)
    with pytest.raises(ModuleNotFoundError):
        main(["batch", "in.csv", "out"])


def test_a_jira_export_without_a_preset_is_read_with_the_matching_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    parser = build_parser()
    args = parser.parse_args(["train", "--data", str(vendored_data_path())])
    assert _data_spec(args) == PRESETS["hadoop"]
    assert "preset 'hadoop'" in capsys.readouterr().err
    # A column option means the user maps the columns: nothing is guessed.
    args = parser.parse_args(
        ["train", "--data", str(vendored_data_path()), "--subject-column", "Summary"]
    )
    assert _data_spec(args) == DataSpec(subject_column="Summary")
    # Without --data, the vendored export's preset.
    assert _data_spec(parser.parse_args(["train"])) == PRESETS["hadoop"]
