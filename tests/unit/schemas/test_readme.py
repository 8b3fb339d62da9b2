"""schemas/README.md documents every quantity, unit and topic exactly as the code has them."""

from __future__ import annotations

import re
from pathlib import Path

from schemas import topics
from schemas.export import MESSAGES
from schemas.quantities import SPECS

README = (Path(__file__).resolve().parents[3] / "schemas" / "README.md").read_text()
ROW = re.compile(r"^\| `(\w+)` \| `([^`]+)` \| (\w+) \| `(\w+)` \| (\S+) … (\S+) \|", re.MULTILINE)


def test_quantity_table_matches_the_vocabulary() -> None:
    rows = {m.group(1): m.groups()[1:] for m in ROW.finditer(README)}
    assert set(rows) == set(SPECS)
    for quantity, spec in SPECS.items():
        unit, family, stat, lower, upper = rows[quantity]
        assert (unit, family, stat) == (spec.unit, spec.family, spec.default_stat), quantity
        assert (float(lower), float(upper)) == (spec.lower, spec.upper), quantity


def test_every_topic_and_schema_is_documented() -> None:
    node_topics = [
        t.replace("nodes/n/", "nodes/{node}/")
        for t in (topics.readings("n"), topics.status("n"), topics.ack("n"), topics.refusal("n"))
    ]
    alert_topic = topics.alert("n", "r").replace("/n/r", "/{node}/{rule}")
    for topic in (*node_topics, alert_topic, topics.ALERT_EVENTS):
        assert f"`{topic}`" in README, topic
    for name in MESSAGES:
        assert f"envnet.{name}/1" in README, name
