"""The red-team catalogue is complete and docs/REDTEAM.md is generated from it."""

from __future__ import annotations

import importlib.util

from catalogue import ATTACKS, CATEGORIES, QUESTIONS

from conftest import ROOT


def _table_script():
    spec = importlib.util.spec_from_file_location("redteam_table", ROOT / "scripts" / "redteam_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_catalogue_covers_every_category():
    assert len(ATTACKS) >= 34
    assert {a.category for a in ATTACKS} == set(CATEGORIES)
    assert len({a.name for a in ATTACKS}) == len(ATTACKS) and len({a.who for a in ATTACKS}) == len(ATTACKS)
    for a in ATTACKS:
        assert a.tries and a.defence, a.name
        assert set(a.expected.questions) <= set(QUESTIONS), a.name
        assert abs(sum(a.expected.question_points().values()) - a.expected.score) < 1e-6, a.name


def test_doc_is_generated_from_the_catalogue():
    script = _table_script()
    doc = script.DOC.read_text(encoding="utf-8")
    assert doc == script.render(doc), "docs/REDTEAM.md is out of date: run scripts/redteam_table.py"
    for a in ATTACKS:
        assert f"| `{a.name}` | {a.category} |" in doc, a.name
    assert "## Measured" in doc


def test_readme_links_the_red_team_report():
    assert "docs/REDTEAM.md" in (ROOT / "README.md").read_text(encoding="utf-8")
