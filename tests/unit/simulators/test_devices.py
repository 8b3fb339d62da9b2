"""`envnet sim devices` configuration: the example devices.toml loads and the command is wired;
errors name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from envnet.cli import EXIT_CONFIG, build_parser, main
from schemas.runtime.configfile import ConfigError
from simulators.devices import load_devices_config

ROOT = Path(__file__).parents[3]


def test_example_devices_config_loads_and_the_command_is_wired() -> None:
    config = load_devices_config(ROOT / "deploy/config/devices.toml")
    assert {d.name for d in config.uart} == {"pm", "pm-b"}
    assert {d.name for d in config.modbus} == {"noise", "gas", "odour", "sonde"}
    args = build_parser().parse_args(["sim", "devices", "--config", "d.toml"])
    assert args.config == Path("d.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no devices"),
        (
            '[[uart]]\nname = "a"\nkind = "pms5003"\n[[uart]]\nname = "a"\nkind = "sds011"\n',
            "unique",
        ),
        ('[[modbus]]\nname = "a"\n', "exactly one"),
        ('[[modbus]]\nname = "a"\nprofile = "typical-noise"\nfaults = { fire = 0.1 }\n', "fire"),
        ('[[uart]]\nname = "a"\nkind = "pms7003"\n', "kind"),
        (
            '[[uart]]\nname = "a"\nkind = "sds011"\nfaults = { silence = 0.8, garbage = 0.8 }\n',
            "sum",
        ),
    ],
)
def test_devices_config_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "devices.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_devices_config(path)
    assert main(["sim", "devices", "--config", str(path), "--duration", "0"]) == EXIT_CONFIG


def test_two_slaves_with_one_address_on_a_line_are_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "devices.toml"
    path.write_text(
        '[[modbus]]\nname = "a"\nline = "l"\nprofile = "typical-noise"\n'
        '[[modbus]]\nname = "b"\nline = "l"\nprofile = "typical-odour"\n'
    )
    assert main(["sim", "devices", "--config", str(path), "--duration", "0"]) == EXIT_CONFIG
