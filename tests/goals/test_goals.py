"""Goal specs and value systems: validation, priorities, structure, round trips, the built-in library."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from aligngoals.errors import ConfigError
from aligngoals.goals import (
    Goal,
    Principle,
    ValueSystem,
    check_goal,
    dump_goal,
    dump_value_system,
    list_goals,
    list_value_systems,
    load_goal,
    load_spec_file,
    load_value_system,
)


def _goal_dict(**over) -> dict:
    d = {
        "name": "mine",
        "level": "values",
        "description": "test goal",
        "principles": [
            {"id": "b", "statement": "Be honest.", "priority": 2, "dimensions": ["schwartz:universalism"]},
            {"id": "a", "statement": "Avoid harm.", "priority": 1, "rules": ["No weapons help."], "dimensions": ["moral_foundations:care"]},
            {"id": "c", "statement": "Be helpful.", "priority": 3},
        ],
    }
    d.update(over)
    return d


def _write(tmp_path: Path, name: str, data) -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data, sort_keys=False) if name.endswith((".yaml", ".yml")) else json.dumps(data), encoding="utf-8")
    return p


# ---------------------------------------------------------------------------------
# principles and priorities
# ---------------------------------------------------------------------------------


def test_principles_are_sorted_by_priority_and_conflicts_have_a_winner():
    g = Goal.model_validate(_goal_dict())
    assert [p.id for p in g.principles] == ["a", "b", "c"]
    assert [p.id for p in g.principles_in_priority_order()] == ["a", "b", "c"]
    assert g.winner("c", "a").id == "a"
    assert g.winner("b", "c").id == "b"
    assert g.dimension_refs() == ["moral_foundations:care", "schwartz:universalism"]


def test_duplicate_priority_is_rejected_naming_both_principles():
    d = _goal_dict()
    d["principles"][2]["priority"] = 1
    with pytest.raises(ValueError, match="'a' and 'c' both have priority 1"):
        Goal.model_validate(d)


def test_duplicate_id_and_bad_priority_are_rejected():
    d = _goal_dict()
    d["principles"][2]["id"] = "a"
    with pytest.raises(ValueError, match="id 'a' is used twice"):
        Goal.model_validate(d)
    d = _goal_dict()
    d["principles"][0]["priority"] = 0
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        Goal.model_validate(d)


def test_value_goal_needs_principles_but_instruction_goal_does_not():
    with pytest.raises(ValueError, match="at least one principle"):
        Goal.model_validate(_goal_dict(principles=[]))
    g = Goal.model_validate({"name": "follow", "level": "instructions", "data": [{"path": "tasks.jsonl", "format": "alpaca"}], "suites": ["quick"]})
    assert g.principles == [] and g.data[0].format == "alpaca"


def test_dimension_reference_must_be_qualified():
    with pytest.raises(ValueError, match="system:dimension"):
        Principle(id="x", statement="s", priority=1, dimensions=["benevolence"])


def test_unknown_key_is_an_error_not_silently_dropped(tmp_path):
    d = _goal_dict()
    d["principles"][0]["priorty"] = 5
    p = _write(tmp_path, "typo.yaml", d)
    with pytest.raises(ConfigError) as exc:
        load_goal(p)
    msg = exc.value.message
    assert str(p) in msg and "principles[0] (id 'b').priorty" in msg and "Extra inputs" in msg


# ---------------------------------------------------------------------------------
# loading, errors and round trips
# ---------------------------------------------------------------------------------


def test_round_trip_yaml_and_json(tmp_path):
    for name in list_goals():
        g = load_goal(name)
        for ext in ("yaml", "json"):
            out = dump_goal(g, tmp_path / f"{name}.{ext}")
            again = load_goal(out)
            assert again == g
            assert again.model_dump() == g.model_dump()
    user = load_goal(_write(tmp_path, "mine.yaml", _goal_dict()))
    back = load_goal(dump_goal(user, tmp_path / "mine_out.yaml"))
    assert back == user and [p.id for p in back.principles] == ["a", "b", "c"]


def test_round_trip_is_not_vacuous(tmp_path):
    g = load_goal("hhh")
    data = g.model_dump(mode="json")
    data["principles"][0]["statement"] = "Something else."
    changed = Goal.model_validate(data)
    assert changed != g


def test_value_system_round_trip(tmp_path):
    for name in list_value_systems():
        vs = load_value_system(name)
        assert load_value_system(dump_value_system(vs, tmp_path / f"{name}.yaml")) == vs


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    p = tmp_path / "broken.yaml"
    p.write_text("name: x\nlevel: values\nprinciples:\n  - id: a\n    statement: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_goal(p)
    assert f"{p}:" in exc.value.message and "not valid YAML" in exc.value.message


def test_unknown_dimension_reference_is_reported(tmp_path):
    d = _goal_dict()
    d["principles"][0]["dimensions"] = ["schwartz:kindness"]
    p = _write(tmp_path, "g.json", d)
    with pytest.raises(ConfigError) as exc:
        load_goal(p)
    assert "principle 'b'" in exc.value.message and "no dimension 'kindness'" in exc.value.message
    assert "benevolence" in exc.value.message  # says what was expected
    g = load_goal(p, check_references=False)
    assert check_goal(g) and "kindness" in check_goal(g)[0]


def test_goal_may_use_its_own_value_system(tmp_path):
    vs = {
        "name": "team",
        "title": "Team values",
        "dimensions": [{"id": "candour", "name": "Candour", "definition": "Say what you think."},
                       {"id": "care", "name": "Care", "definition": "Look after each other."}],
    }
    _write(tmp_path, "team.yaml", vs)
    d = _goal_dict(value_systems={"team": "team.yaml"})
    d["principles"][1]["dimensions"] = ["team:candour"]
    g = load_goal(_write(tmp_path, "goal.yaml", d))
    assert "team:candour" in g.dimension_refs()
    assert load_spec_file(tmp_path / "team.yaml").kind == "value_system"


def test_unknown_builtin_name_lists_the_choices():
    with pytest.raises(ConfigError) as exc:
        load_goal("hhhh")
    assert "hhh" in exc.value.hint and "constitution" in exc.value.hint
    with pytest.raises(ConfigError):
        load_value_system("schwarz")


def test_data_paths_resolve_against_goal_file(tmp_path):
    d = _goal_dict(data=[{"path": "pairs.jsonl", "format": "pairs_jsonl", "role": "train"}])
    g = load_goal(_write(tmp_path, "g.yaml", d))
    assert g.data_path(g.data[0]) == str(tmp_path / "pairs.jsonl")
    sf = load_spec_file(tmp_path / "g.yaml")
    assert any("pairs.jsonl" in w for w in sf.warnings)  # file does not exist


# ---------------------------------------------------------------------------------
# the built-in library
# ---------------------------------------------------------------------------------


def test_builtin_library_contents():
    assert {"hhh", "constitution"} <= set(list_goals())
    assert {"schwartz", "moral_foundations", "hofstede", "ethics"} <= set(list_value_systems())
    hhh = load_goal("hhh")
    assert [p.id for p in hhh.principles_in_priority_order()] == ["harmless", "honest", "helpful"]
    assert all(p.rules and p.positive_examples and p.negative_examples and p.explanation for p in hhh.principles)
    const = load_goal("constitution")
    assert 10 <= len(const.principles) <= 14
    assert sorted(p.priority for p in const.principles) == list(range(1, len(const.principles) + 1))
    for g in (hhh, const):
        assert check_goal(g) == []


def test_schwartz_structure():
    s = load_value_system("schwartz")
    assert len(s.dimensions) == 10 and len(s.groups) == 4
    assert s.members("self_transcendence") == ["benevolence", "universalism"]
    assert s.members("conservation") == ["security", "conformity", "tradition"]
    assert set(s.dimension("hedonism").groups) == {"openness_to_change", "self_enhancement"}
    # neighbours on the circle are compatible, opposite groups conflict
    assert s.are_adjacent("achievement", "power") and s.are_adjacent("universalism", "self_direction")
    assert not s.are_adjacent("power", "universalism")
    assert s.are_opposite("power", "universalism") and s.are_opposite("Self-Direction", "conformity")
    assert not s.are_opposite("benevolence", "universalism")
    assert s.relation("stimulation", "tradition") == "opposite"
    assert s.relation("security", "power") == "adjacent"
    assert s.relation("achievement", "security") == "other"
    assert s.relation("PO", "power") == "same"
    assert s.circular_distance("self_direction", "security") == 5
    assert set(s.opposites("achievement")) == {"benevolence", "universalism"}


def test_other_value_systems():
    mf = load_value_system("moral_foundations")
    assert mf.dimension_ids(include_optional=False) == ["care", "fairness", "loyalty", "authority", "sanctity"]
    assert mf.dimension("liberty").optional
    assert mf.dimension("Purity").id == "sanctity" and mf.dimension("care-harm").id == "care"
    assert mf.circular_order is None and not mf.are_adjacent("care", "fairness")
    hof = load_value_system("hofstede")
    assert [d.id for d in hof.dimensions] == [
        "power_distance", "individualism", "masculinity", "uncertainty_avoidance", "long_term_orientation", "indulgence"]
    assert all(d.low_pole and d.high_pole for d in hof.dimensions)
    eth = load_value_system("ethics")
    assert {d.id for d in eth.dimensions} == {"justice", "virtue", "deontology", "utilitarianism", "commonsense"}
    from aligngoals.data import list_formats

    for d in eth.dimensions:
        assert d.meta["data_format"] in list_formats()


def test_value_system_validation_errors():
    base = {"name": "v", "title": "V", "dimensions": [{"id": "a", "name": "A", "definition": "."}, {"id": "b", "name": "B", "definition": "."}]}
    with pytest.raises(ValueError, match="circular_order"):
        ValueSystem.model_validate({**base, "circular_order": ["a"]})
    with pytest.raises(ValueError, match="unknown group"):
        ValueSystem.model_validate({**base, "dimensions": [{"id": "a", "name": "A", "definition": ".", "groups": ["g"]}]})
    with pytest.raises(ValueError, match="also names dimension"):
        ValueSystem.model_validate({**base, "dimensions": [{"id": "a", "name": "A", "definition": "."}, {"id": "b", "name": "B", "definition": ".", "aliases": ["A"]}]})


# ---------------------------------------------------------------------------------
# the built-in value systems agree with the real instrument data
# ---------------------------------------------------------------------------------


def _valuebench_values(shared: Path, inventory: str) -> set[str]:
    with open(shared / "valuebench" / "value_orientation.csv", newline="", encoding="utf-8") as fh:
        return {r["value"] for r in csv.DictReader(fh) if r["questionnaire"] == inventory}


def test_builtin_dimensions_match_valuebench_instruments(shared_data):
    for inventory, system, n in (("PVQ40", "schwartz", 10), ("MFT08", "moral_foundations", 5), ("VSM13", "hofstede", 6)):
        vs = load_value_system(system)
        names = _valuebench_values(shared_data, inventory)
        assert len(names) == n
        assert {vs.dimension(v).id for v in names} == set(vs.dimension_ids(include_optional=False))


def test_schwartz_groups_match_valuebench_definitions(shared_data):
    s = load_value_system("schwartz")
    with open(shared_data / "valuebench" / "value_definitions.csv", newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["questionnaire"] == "PVQ40"]
    expected: dict[str, set[str]] = {}
    for r in rows:
        if s.has_dimension(r["value"]) and r["upper_dimension"]:
            expected.setdefault(s.dimension(r["value"]).id, set()).add(r["upper_dimension"])
    assert len(expected) == 10
    for dim_id, uppers in expected.items():
        assert {s.group(g).name for g in s.dimension(dim_id).groups} == uppers, dim_id


# ---------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------


@pytest.fixture()
def runner():
    from typer.testing import CliRunner

    return CliRunner()


def test_cli_list_and_show(runner):
    from aligngoals.cli.main import app

    r = runner.invoke(app, ["goals", "list"])
    assert r.exit_code == 0, r.output
    for name in ("hhh", "constitution", "schwartz", "moral_foundations", "hofstede", "ethics"):
        assert name in r.output
    r = runner.invoke(app, ["goals", "show", "hhh"])
    assert r.exit_code == 0 and "1. harmless" in r.output and "3. helpful" in r.output
    r = runner.invoke(app, ["goals", "show", "schwartz"])
    assert r.exit_code == 0 and "Circular order" in r.output and "self_transcendence" in r.output
    r = runner.invoke(app, ["goals", "show", "constitution", "--as", "json"])
    assert r.exit_code == 0
    assert Goal.model_validate(json.loads(r.output)) == load_goal("constitution")


def test_cli_validate(runner, tmp_path):
    from aligngoals.cli.main import app

    good = _write(tmp_path, "good.yaml", _goal_dict())
    r = runner.invoke(app, ["goals", "validate", str(good)])
    assert r.exit_code == 0 and "OK" in r.output
    d = _goal_dict()
    d["principles"][1]["priority"] = 2
    bad = _write(tmp_path, "bad.yaml", d)
    r = runner.invoke(app, ["goals", "validate", str(good), str(bad)])
    assert isinstance(r.exception, ConfigError)
    assert str(bad) in r.exception.message and "priority 2" in r.exception.message
