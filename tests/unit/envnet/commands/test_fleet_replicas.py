"""`envnet fleet replicas`: the partition of the inventory, as the replicas compute it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aggregator.cluster.partition import owner
from envnet.cli import main

NODES = [f"sz-node-{i}" for i in range(12)]


def fleet_file(tmp_path: Path) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text("".join(f'[nodes.{n}]\nsite = "S {n}"\n' for n in NODES), encoding="utf-8")
    return path


def test_each_node_is_listed_once_under_its_owner_with_the_moves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = fleet_file(tmp_path)
    assert main(["fleet", "replicas", "3", "--from", "2", "--fleet", str(path), "--json"]) == 0
    shares = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [s["replica"] for s in shares] == ["0/3", "1/3", "2/3"]
    listed = [n for s in shares for n in s["nodes"]]
    assert sorted(listed) == sorted(NODES)
    for index, share in enumerate(shares):
        assert all(owner(n, 3) == index for n in share["nodes"])
        assert share["moved_in"] == [n for n in share["nodes"] if owner(n, 2) != index]
    # Rendezvous hashing: going from 2 to 3, nodes move only to the new replica.
    assert shares[0]["moved_in"] == shares[1]["moved_in"] == []


def test_the_text_form_counts_nodes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fleet", "replicas", "2", "--fleet", str(fleet_file(tmp_path))]) == 0
    out = capsys.readouterr().out
    counts = [int(line.split(": ")[1].split()[0]) for line in out.splitlines() if ":" in line]
    assert sum(counts) == len(NODES) and len(counts) == 2


@pytest.mark.parametrize("argv", [["0"], ["2", "--from", "0"], ["2000"]])
def test_bad_counts_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert main(["fleet", "replicas", *argv, "--fleet", str(fleet_file(tmp_path))]) == 2
    assert "counts go from 1" in capsys.readouterr().err
