"""Alertmanager's web UI for Debian's prometheus-alertmanager, which ships without it.

Debian builds Alertmanager without its Elm web app (its index page says so) and serves one
from `--web.ui-path` if given. The upstream UI, as compiled by the Alertmanager project, is in
Debian's source package of the same version, golang-github-prometheus-alertmanager-dev, as
vfsgen data (asset/assets_vfsdata.go: each file gzipped in a Go byte-string literal). This
module unpacks it into a directory for `--web.ui-path`: the same files Debian's own
generate-ui.sh would put in /usr/share/prometheus/alertmanager/ui, without a compiler or a
download. Used by simulators.local_stack.Alertmanager, hence by the tests and the demo.
"""

from __future__ import annotations

import codecs
import gzip
import re
from pathlib import Path
from typing import Final

VFSDATA: Final = Path(
    "/usr/share/gocode/src/github.com/prometheus/alertmanager/asset/assets_vfsdata.go"
)
_ENTRY: Final = re.compile(
    r'"(?P<path>/static/[^"]+)": &vfsgen.(?P<kind>Compressed)?FileInfo\{.*?'
    r'(?:compressedContent|content): *\[\]byte\("(?P<data>(?:[^"\\]|\\.)*)"\)',
    re.DOTALL,
)


class UiError(RuntimeError):
    """The UI's source package is missing or not in the expected form."""


def ui_files(source: str) -> dict[str, bytes]:
    """The files under /static in a vfsgen Go source, by path relative to /static."""
    files: dict[str, bytes] = {}
    for match in _ENTRY.finditer(source):
        # A Go interpreted string literal of bytes: \xNN, \\, \" and the like, which Python's
        # bytes-literal escapes read the same way.
        raw, _ = codecs.escape_decode(match["data"].encode("utf-8"))
        data = gzip.decompress(raw) if match["kind"] else bytes(raw)
        files[match["path"].removeprefix("/static/")] = data
    if "index.html" not in files or "script.js" not in files:
        raise UiError("no index.html and script.js in the Alertmanager assets")
    return files


def unpack_ui(directory: Path, vfsdata: Path = VFSDATA) -> Path:
    """Write the UI into `directory` (once) and return it, for `--web.ui-path`."""
    if (directory / "script.js").exists():
        return directory
    try:
        source = vfsdata.read_text(encoding="utf-8")
    except FileNotFoundError:
        msg = f"{vfsdata} missing: install golang-github-prometheus-alertmanager-dev"
        raise UiError(msg) from None
    for name, data in ui_files(source).items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return directory
