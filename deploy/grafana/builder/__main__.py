"""Write the generated JSON under deploy/grafana/, or with --check report what is stale.

python -m deploy.grafana.builder          # regenerate
python -m deploy.grafana.builder --check  # exit 1 if any file differs or is unexpected
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from deploy.grafana.builder.assets import GENERATED_DIRS, GENERATED_SUFFIXES, render

ROOT = Path(__file__).resolve().parents[1]


def stale_files(root: Path, expected: dict[str, str]) -> list[str]:
    """Generated files that are missing or differ, and JSON files nothing generates."""
    stale = [
        path
        for path, text in expected.items()
        if not (root / path).is_file() or (root / path).read_text(encoding="utf-8") != text
    ]
    present = {
        str(p.relative_to(root))
        for d in GENERATED_DIRS
        for p in (root / d).rglob("*")
        if p.suffix in GENERATED_SUFFIXES
    }
    return sorted(stale + sorted(present - expected.keys()))


def write(root: Path, expected: dict[str, str]) -> None:
    for path, text in expected.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.grafana.builder")
    parser.add_argument("--check", action="store_true", help="fail if committed JSON is stale")
    args = parser.parse_args(argv)
    expected = render()
    if not args.check:
        write(ROOT, expected)
        return 0
    stale = stale_files(ROOT, expected)
    for path in stale:
        sys.stderr.write(f"stale: deploy/grafana/{path}\n")
    if stale:
        sys.stderr.write("regenerate with: python -m deploy.grafana.builder\n")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
