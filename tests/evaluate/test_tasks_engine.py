"""The task engine: YAML specs and their errors, templates, few-shot draws, answer extraction,
limits and seeds, request deduplication and the four request types (with the embedded model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aligngoals.errors import ConfigError, DataError
from aligngoals.evaluate.runner import EvalSettings, run_evaluation
from aligngoals.evaluate.suites import load_suite, resolve_selection, suite_entries
from aligngoals.evaluate.tasks.base import BuildContext
from aligngoals.evaluate.tasks.extract import extract, first_letter, first_number
from aligngoals.evaluate.tasks.registry import make_task
from aligngoals.evaluate.tasks.spec import Extraction, TaskSpec, load_task_spec
from aligngoals.models.base import GenerationRequest, LoglikelihoodRequest
from aligngoals.store import RunStore

ROWS = [
    {"id": "q1", "question": "What is 2 + 2?", "choices": ["4", "5"], "answer": 0, "meta": {"kind": "math"}},
    {"id": "q2", "question": "What colour is the sky on a clear day?", "choices": ["green", "blue"], "answer": 1,
     "meta": {"kind": "facts"}},
    {"id": "q3", "question": "What is 10 - 3?", "choices": ["7", "6", "3"], "answer": 0, "meta": {"kind": "math"}},
    {"id": "q4", "question": "Which animal says meow?", "choices": ["a dog", "a cat"], "answer": 1,
     "meta": {"kind": "facts"}},
    {"id": "q5", "question": "What is the capital of France?", "choices": ["Paris", "Rome"], "answer": 0,
     "meta": {"kind": "facts"}},
    {"id": "q6", "question": "What is 3 * 3?", "choices": ["6", "9"], "answer": 1, "meta": {"kind": "math"}},
]


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_task(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


def mc_spec(tmp_path: Path, **kw) -> TaskSpec:
    write_jsonl(tmp_path / "mc.jsonl", ROWS)
    base = {"name": "mc", "level": "instructions", "data": {"path": str(tmp_path / "mc.jsonl")}}
    base.update(kw)
    return TaskSpec.model_validate(base)


# --- YAML loading and validation -----------------------------------------------------------------
def test_task_yaml_loads_with_data_relative_to_the_file(tmp_path):
    write_jsonl(tmp_path / "items.jsonl", ROWS)
    path = write_task(tmp_path / "t.yaml", "name: t\nlevel: instructions\ndata: {path: items.jsonl}\n"
                      "prompt: \"Q: {{ question }}\\nA:\"\nmetrics: [acc]\n")
    spec = load_task_spec(path)
    assert spec.type == "multiple_choice" and spec.metrics == ["acc"]
    task = make_task(spec)
    prep = task.prepare(data_dir=None, limit=None, seed=0)
    assert [d["id"] for d in prep.docs] == [r["id"] for r in ROWS]
    reqs = task.requests(prep.docs[0], [], BuildContext(seed=0))
    assert reqs == [LoglikelihoodRequest("Q: What is 2 + 2?\nA:", " 4"), LoglikelihoodRequest("Q: What is 2 + 2?\nA:", " 5")]


@pytest.mark.parametrize(
    "body, fragments",
    [
        ("name: t\nlevel: instructions\ndata: {path: x.jsonl}\nmetrics: [acc, accuracy]\n", ["field 'metrics'", "accuracy"]),
        ("name: t\nlevel: opinions\ndata: {path: x.jsonl}\n", ["field 'level'"]),
        ("name: t\nlevel: values\n", ["field 'data'"]),
        ("name: t\nlevel: values\ndata: {format: jsonl}\n", ["field 'data'", "exactly one of 'path' or 'datasets'"]),
        ("name: t\nlevel: values\ndata: {path: x.jsonl}\npromt: hi\n", ["field 'promt'"]),
        ("name: t\nlevel: values\ndata: {path: x.jsonl}\ntype: generate\nextract: {type: regex}\n",
         ["field 'extract'", "pattern"]),
        ("name: t\nlevel: values\ndata: {path: x.jsonl}\nfewshot: {n: -1}\n", ["field 'fewshot.n'"]),
        ("name: t\nlevel: [values\n", ["is not valid YAML", ".yaml:"]),
        ("- just\n- a list\n", ["must hold a mapping"]),
    ],
)
def test_task_file_errors_name_the_file_and_the_field(tmp_path, body, fragments):
    path = write_task(tmp_path / "broken.yaml", body)
    with pytest.raises(ConfigError) as exc:
        load_task_spec(path)
    assert str(path) in exc.value.message
    for f in fragments:
        assert f in exc.value.message
    assert exc.value.hint


def test_template_errors_name_the_task_item_and_field(tmp_path):
    task = make_task(mc_spec(tmp_path, prompt="Q: {{ questoin }}"))
    prep = task.prepare(data_dir=None, limit=None, seed=0)
    with pytest.raises(ConfigError) as exc:
        task.requests(prep.docs[0], [], BuildContext(seed=0))
    assert "questoin" in exc.value.message and "item q1" in exc.value.message
    assert "question" in exc.value.hint  # the available fields
    task = make_task(mc_spec(tmp_path, prompt="{% if question %}unclosed"))
    with pytest.raises(ConfigError, match="syntax error"):
        task.requests(prep.docs[0], [], BuildContext(seed=0))


def test_bad_data_names_file_line_and_field(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps({"question": "x", "choices": ["a", "b"]}) + "\n")
    task = make_task(TaskSpec(name="t", level="values", data={"path": str(bad)}))
    with pytest.raises(DataError) as exc:
        task.prepare(data_dir=None, limit=None, seed=0)
    assert "bad.jsonl:2" in exc.value.message and "answer" in exc.value.message
    # a gold index outside the choices is caught when the item is scored
    write_jsonl(tmp_path / "oob.jsonl", [{"id": "z", "question": "q", "choices": ["a", "b"], "answer": 0}])
    task = make_task(TaskSpec(name="t", level="values", data={"path": str(tmp_path / "oob.jsonl")},
                              answer="meta.nope"))
    doc = task.prepare(data_dir=None, limit=None, seed=0).docs[0]
    with pytest.raises(DataError, match="field 'meta.nope'"):
        task.gold(doc)


def test_jinja_templates_see_fields_meta_labels_and_loops(tmp_path):
    spec = mc_spec(tmp_path, type="mc_generate",
                   prompt="[{{ meta.kind }}] {{ question }}\n{% for c in choices %}{{ labels[loop.index0] }}. {{ c }}\n"
                          "{% endfor %}Answer:")
    task = make_task(spec)
    doc = task.prepare(data_dir=None, limit=None, seed=0).docs[2]
    req = task.requests(doc, [], BuildContext(seed=0))[0]
    assert isinstance(req, GenerationRequest)
    assert req.prompt == "[math] What is 10 - 3?\nA. 7\nB. 6\nC. 3\nAnswer:"


# --- few-shot exemplars --------------------------------------------------------------------------
def test_fewshot_exemplars_are_drawn_with_a_fixed_seed_and_never_scored(tmp_path):
    spec = mc_spec(tmp_path, fewshot={"n": 2}, choice=" {{ choice }}")
    task = make_task(spec)
    a = task.prepare(data_dir=None, limit=None, seed=0)
    b = task.prepare(data_dir=None, limit=None, seed=0)
    assert [d["id"] for d in a.fewshot] == [d["id"] for d in b.fewshot] and len(a.fewshot) == 2
    assert not {d["id"] for d in a.fewshot} & {d["id"] for d in a.docs}
    assert len(a.docs) == len(ROWS) - 2
    draws = {tuple(d["id"] for d in task.prepare(data_dir=None, limit=None, seed=s).fewshot) for s in range(8)}
    assert len(draws) > 1, "the seed decides the draw"
    # exemplars come first, each with its gold answer, separated by a blank line
    ex = a.fewshot
    context = task.requests(a.docs[0], task.exemplars(a, a.docs[0], 0), BuildContext(seed=0))[0].context
    expected_prefix = "\n\n".join(f"Question: {e['question']}\nAnswer: {e['choices'][e['answer']]}" for e in ex)
    assert context.startswith(expected_prefix + "\n\nQuestion: ")
    # with a limit, exemplars come from the items left out of the sample
    lim = task.prepare(data_dir=None, limit=3, seed=0)
    assert [d["id"] for d in lim.docs] == ["q1", "q2", "q3"]
    assert {d["id"] for d in lim.fewshot} <= {"q4", "q5", "q6"}


def test_fewshot_per_item_excludes_the_item_itself(tmp_path):
    task = make_task(mc_spec(tmp_path, fewshot={"n": 5, "per_item": True}))
    prep = task.prepare(data_dir=None, limit=None, seed=3)
    assert len(prep.docs) == len(ROWS)
    for doc in prep.docs:
        shots = task.exemplars(prep, doc, 3)
        assert len(shots) == 5 and doc["id"] not in {s["id"] for s in shots}
        assert shots == task.exemplars(prep, doc, 3)


# --- answer extraction ---------------------------------------------------------------------------
def test_extraction_rules():
    assert first_letter("The answer is (B).", "ABC") == 1
    assert first_letter("B", "ABCD") == 1 and first_letter("D) none", "ABC") is None
    assert first_letter("Answer: C. Because", "ABC") == 2
    assert first_letter("BAD idea", "AB") is None  # letters inside words do not count
    assert first_number("It costs $1,250.50 in total, or 3 payments") == "1250.5"
    assert first_number("about -3.0 degrees") == "-3" and first_number("no digits") is None
    assert extract("Final answer: 42 apples", Extraction(type="regex", pattern=r"answer:\s*(\d+)")) == "42"
    assert extract("FINAL ANSWER: 7", Extraction(type="regex", pattern=r"answer:\s*(\d+)")) == "7"
    assert extract("FINAL ANSWER: 7", Extraction(type="regex", pattern=r"answer:\s*(\d+)", ignore_case=False)) is None
    assert extract("yes it is", Extraction(type="regex", pattern=r"yes|no")) == "yes"
    assert extract("\n\n  first line \nsecond", Extraction(type="first_line")) == "first line"
    assert extract("  text  ", Extraction()) == "text"


# --- limits and seeds ----------------------------------------------------------------------------
def test_limit_takes_the_first_items_or_a_seeded_sample(tmp_path):
    first = make_task(mc_spec(tmp_path))
    assert [d["id"] for d in first.prepare(data_dir=None, limit=2, seed=0).docs] == ["q1", "q2"]
    rnd = make_task(mc_spec(tmp_path, sample="random"))
    s0 = [d["id"] for d in rnd.prepare(data_dir=None, limit=3, seed=0).docs]
    assert s0 == [d["id"] for d in rnd.prepare(data_dir=None, limit=3, seed=0).docs]
    samples = {tuple(d["id"] for d in rnd.prepare(data_dir=None, limit=3, seed=s).docs) for s in range(6)}
    assert len(samples) > 1
    # --limit-mode overrides the task's own sample setting both ways (first = lm-eval's --limit)
    assert [d["id"] for d in rnd.prepare(data_dir=None, limit=2, seed=0, mode="first").docs] == ["q1", "q2"]
    forced = {tuple(d["id"] for d in first.prepare(data_dir=None, limit=3, seed=s, mode="random").docs)
              for s in range(6)}
    assert len(forced) > 1
    with pytest.raises(DataError, match="limit mode"):
        first.prepare(data_dir=None, limit=2, seed=0, mode="last")
    # --limit beats the suite's limit, which beats the task's own
    task = make_task(mc_spec(tmp_path, limit=5))
    assert EvalSettings().limit_for(task) == 5
    assert EvalSettings(limits={"mc": 4}).limit_for(task) == 4
    assert EvalSettings(limit=2, limits={"mc": 4}).limit_for(task) == 2


def test_builtin_suites_resolve_with_their_limits():
    label, specs, limits = resolve_selection(suite="preferences")
    names = [s.name for s in specs]
    assert label == "preferences" and {"truthfulqa_mc1", "truthfulqa_mc2", "truthfulqa_gen", "bbq", "crows_pairs",
                                        "hh_rlhf_helpful", "hh_rlhf_harmless"} == set(names)
    assert limits["truthfulqa_gen"] == 50 and limits["truthfulqa_mc1"] == 200
    entries = suite_entries(load_suite("instructions"))
    assert {s.generalization for s, _ in entries} == {"held_out_categories", "new_data_known_types", "held_out_samples"}
    with pytest.raises(ConfigError, match="Unknown suite"):
        load_suite("no-such-suite")
    with pytest.raises(ConfigError, match="Unknown task"):
        resolve_selection(tasks="no_such_task")


# --- the engine with the embedded model ----------------------------------------------------------
def test_requests_are_deduplicated_across_tasks_and_a_rerun_is_free(llama_model, tmp_path):
    """Two tasks over the same items and prompt ask the model each question once."""
    a = mc_spec(tmp_path, name="a", metrics=["acc", "acc_norm"], limit=4)
    b = mc_spec(tmp_path, name="b", metrics=["acc"], limit=4)
    report = run_evaluation(llama_model, [a, b], tmp_path / "run", EvalSettings(), log=lambda _: None)
    n_unique = sum(len(r["choices"]) for r in ROWS[:4])
    assert report["run"]["requests_computed"] == n_unique
    assert report["tasks"]["a"]["metrics"]["acc"] == report["tasks"]["b"]["metrics"]["acc"]
    m = report["tasks"]["a"]["metrics"]["acc"]
    assert m["n"] == 4 and m["ci_low"] <= m["value"] <= m["ci_high"]
    with RunStore(tmp_path / "run") as store:
        items = {item_id: data for _, item_id, data in store.items("a")}
    assert set(items) == {"q1", "q2", "q3", "q4"} and len(items["q3"]["logprobs"]) == 3
    again = run_evaluation(llama_model, [a, b], tmp_path / "run", EvalSettings(), log=lambda _: None)
    assert again["run"]["requests_computed"] == 0 and again["tasks"] == report["tasks"]
    # the report says which items a limit kept
    assert report["tasks"]["a"]["limit_mode"] == "first" and report["settings"]["limit_mode"] is None
    forced = run_evaluation(llama_model, [a], tmp_path / "run2", EvalSettings(limit_mode="random"), log=lambda _: None)
    assert forced["tasks"]["a"]["limit_mode"] == "random" and forced["settings"]["limit_mode"] == "random"


def test_breakdown_and_missing_data_is_skipped_with_its_reason(llama_model, tmp_path):
    ok = mc_spec(tmp_path, name="ok", metrics=["acc"], breakdown=["meta.kind"])
    gone = TaskSpec(name="gone", level="values", data={"path": "nowhere/missing.jsonl"})
    report = run_evaluation(llama_model, [ok, gone], tmp_path / "run", EvalSettings(data_dir=str(tmp_path)),
                            log=lambda _: None)
    assert set(report["tasks"]["ok"]["breakdown"]) == {"math", "facts"}
    assert report["tasks"]["ok"]["breakdown"]["math"]["acc"]["n"] == 3
    assert report["tasks"]["gone"]["n"] == 0 and "missing.jsonl" in report["tasks"]["gone"]["skipped"]
    with pytest.raises(Exception, match="No task could run"):
        run_evaluation(llama_model, [gone], tmp_path / "run2", EvalSettings(), log=lambda _: None)


def test_multiple_choice_by_generated_letter(llama_model, tmp_path):
    spec = mc_spec(tmp_path, type="mc_generate", chat=True, metrics=["acc", "parse_rate"], limit=3,
                   prompt="{{ question }}\n{% for c in choices %}{{ labels[loop.index0] }}. {{ c }}\n{% endfor %}"
                          "Reply with the letter of the right answer only.",
                   generation={"max_tokens": 4})
    report = run_evaluation(llama_model, [spec], tmp_path / "run", EvalSettings(), log=lambda _: None)
    with RunStore(tmp_path / "run") as store:
        items = [data for _, _, data in store.items("mc")]
    assert len(items) == 3
    by_id = {r["id"]: r for r in ROWS}
    for it in items:
        labels = "ABC"[: len(by_id[it["id"]]["choices"])]
        assert it["extracted"] == first_letter(it["output"], labels)
        assert it["scores"]["acc"] == float(it["extracted"] == it["answer"])
        assert it["model_input"][-1]["role"] == "user"
    m = report["tasks"]["mc"]["metrics"]
    assert m["parse_rate"]["n"] == 3 and m["acc"]["n"] == 3


def test_pair_loglikelihood(llama_model, tmp_path):
    rows = [
        {"id": "p1", "prompt": "Human: What is the capital of France?\n\nAssistant:", "chosen": "Paris is the capital.",
         "rejected": "I refuse to say."},
        {"id": "p2", "prompt": "Human: Say hello.\n\nAssistant:", "chosen": "Hello!", "rejected": "Hello! How are you?"},
    ]
    write_jsonl(tmp_path / "pairs.jsonl", rows)
    spec = TaskSpec(name="pairs", level="preferences", type="pair",
                    data={"path": str(tmp_path / "pairs.jsonl"), "format": "jsonl"}, prompt="{{ prompt }}",
                    metrics=["pref_acc", "pref_acc_per_token", "logprob_margin"])
    report = run_evaluation(llama_model, [spec], tmp_path / "run", EvalSettings(), log=lambda _: None)
    direct = llama_model.loglikelihood([LoglikelihoodRequest(r["prompt"], " " + r[k]) for r in rows
                                        for k in ("chosen", "rejected")])
    with RunStore(tmp_path / "run") as store:
        items = {i: d for _, i, d in store.items("pairs")}
    for j, r in enumerate(rows):
        c, rj = direct[2 * j], direct[2 * j + 1]
        assert items[r["id"]]["logprobs"] == pytest.approx([c.logprob, rj.logprob], abs=1e-6)
        assert items[r["id"]]["scores"]["pref_acc"] == (1.0 if c.logprob > rj.logprob else 0.0)
    m = report["tasks"]["pairs"]["metrics"]
    margins = [direct[0].logprob - direct[1].logprob, direct[2].logprob - direct[3].logprob]
    assert m["logprob_margin"]["value"] == pytest.approx(sum(margins) / 2, abs=1e-6)


def test_generation_with_references_and_number_extraction(llama_model, tmp_path):
    rows = [{"id": "g1", "instruction": "What is 2 + 3? Reply with the number only.", "output": "5"},
            {"id": "g2", "instruction": "What is 10 + 10? Reply with the number only.", "output": "The answer is 20."}]
    write_jsonl(tmp_path / "gen.jsonl", rows)
    spec = TaskSpec(name="gen", level="instructions", type="generate", chat=True,
                    data={"path": str(tmp_path / "gen.jsonl"), "format": "jsonl"}, prompt="{{ instruction }}",
                    target="{{ output }}", extract={"type": "first_number"}, generation={"max_tokens": 8},
                    metrics=["exact_match", "token_f1", "rougeL", "bleu", "parse_rate"])
    report = run_evaluation(llama_model, [spec], tmp_path / "run", EvalSettings(), log=lambda _: None)
    with RunStore(tmp_path / "run") as store:
        items = {i: d for _, i, d in store.items("gen")}
    for r in rows:
        it = items[r["id"]]
        assert it["extracted"] == first_number(it["output"])
        ref_number = first_number(r["output"])
        assert it["scores"]["exact_match"] == float(it["extracted"] == ref_number)
    m = report["tasks"]["gen"]["metrics"]
    assert set(m) == {"exact_match", "token_f1", "rougeL", "bleu", "parse_rate"}
    assert m["bleu"]["n"] == 2 and 0.0 <= m["bleu"]["value"] <= 100.0


def test_hf_cross_item_batching_equals_the_naive_computation(hf_model):
    """Contexts of several items in one right-padded batch, then their choices on the forked
    caches (a small token budget forces several continuation chunks), equal full recomputation."""
    reqs = [LoglikelihoodRequest("Question: Which animal says meow?\nAnswer:", c)
            for c in (" a cat", " a dog that barks loudly at night", " fish")]
    reqs += [LoglikelihoodRequest(f"Item {i}: " + "word " * (3 * i), f" answer {i}" + " more" * i) for i in range(5)]
    reqs += [LoglikelihoodRequest("The sky is ", "blue"), LoglikelihoodRequest("", "Hello world"),
             LoglikelihoodRequest("Item 2: " + "word " * 6, " x")]
    import torch

    saved = (hf_model.cross_item_batching, hf_model.prefix_reuse, torch.get_num_threads())
    hf_model.cross_item_batching = True
    hf_model.token_budget = 24
    torch.set_num_threads(1)  # two spinning threads on a shared 2-core machine took 24 s instead of 0.5 s
    try:
        assert hf_model.groups_per_call > 1
        batched = hf_model.loglikelihood(reqs)
        hf_model.prefix_reuse = False
        naive = hf_model.loglikelihood(reqs)
    finally:
        hf_model.cross_item_batching, hf_model.prefix_reuse = saved[:2]
        torch.set_num_threads(saved[2])
        del hf_model.token_budget
    for a, b in zip(batched, naive):
        assert a.n_tokens == b.n_tokens and a.is_greedy == b.is_greedy
        assert abs(a.logprob - b.logprob) < 1e-4, (a, b)
