"""config_component: one component of another config file, parsed with the calling config's settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from monai.bundle import ConfigParser

from medbundle.config_component import config_component

SHARED = """
size: "$@stored['size']"  # what the file's own runs use; a caller must never get it
stored: "$open('no_checkpoint_here.pt')"
flag: false
chain:
  - "@size"
  - "$@size * 2"
  - {_target_: builtins.dict, first: "$@sizes#0", _disabled_: "$not @flag"}
  - {_target_: builtins.dict, inner: 1, twice: "@#inner"}
"""


@pytest.fixture
def shared(tmp_path) -> Path:
    path = tmp_path / "configs" / "inference.yaml"
    path.parent.mkdir()
    path.write_text(SHARED)
    return path


def test_settings_replace_the_keys_the_component_reads(shared):
    chain = config_component(shared, "chain", {"size": 5, "sizes": [7, 8], "flag": True})
    assert chain == [5, 10, {"first": 7}, {"inner": 1, "twice": 1}]
    assert config_component(shared, "chain", {"size": 3, "sizes": [7], "flag": False}) == [3, 6, {"inner": 1, "twice": 1}]


def test_a_key_the_caller_does_not_pass_is_refused_not_read_from_the_file(shared):
    with pytest.raises(ValueError, match=r"reads \['size'\].*add them to its settings"):
        config_component(shared, "chain", {"sizes": [7], "flag": True})


def test_a_component_of_a_calling_config_is_parsed_with_its_values(shared):
    caller = ConfigParser(
        {
            "config_dir": str(shared.parent),
            "image_size": 4,
            "chain": {
                "_target_": "medbundle.config_component.config_component",
                "config_file": "$@config_dir + '/inference.yaml'",
                "id": "chain",
                "settings": {"size": "@image_size", "sizes": "$[@image_size]", "flag": True},
            },
        }
    )
    assert caller.get_parsed_content("chain")[:3] == [4, 8, {"first": 4}]


def test_missing_file_or_id_is_named(shared, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere\.yaml not found.*--config_dir <bundle>/configs"):
        config_component(tmp_path / "nowhere.yaml", "chain", {})
    with pytest.raises(KeyError, match="has no `preprocessing`"):
        config_component(shared, "preprocessing", {})


@pytest.mark.slow  # pins MONAI's behaviour with two bundle processes (~20 s); the reason config_component exists
def test_monai_macros_open_their_file_relative_to_the_working_directory(tmp_path):
    """Why config_component exists: ``%configs/inference.yaml#pair`` in a config works only from its bundle folder."""
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "inference.yaml").write_text('size: 3\npair: ["@size", "$@size * 2"]\n')
    (configs / "train.yaml").write_text('size: 5\npair: "%configs/inference.yaml#pair"\n')
    code = "import sys; from monai.bundle import ConfigParser; p = ConfigParser(); p.read_config(sys.argv[1]); "
    code += "print(p.get_parsed_content('pair'))"
    command = [sys.executable, "-c", code, str(configs / "train.yaml")]
    in_bundle = subprocess.run(command, check=False, cwd=tmp_path, capture_output=True, text=True)
    elsewhere = subprocess.run(command, check=False, cwd=configs, capture_output=True, text=True)
    assert in_bundle.returncode == 0 and in_bundle.stdout.strip() == "[5, 10]", in_bundle.stderr
    assert elsewhere.returncode != 0 and "No such file or directory: 'configs/inference.yaml'" in elsewhere.stderr
