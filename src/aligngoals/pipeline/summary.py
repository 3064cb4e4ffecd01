"""The final report as text: before/after at every level beside the in-context baseline."""

from __future__ import annotations

from typing import Any


def _f(x: Any, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:+.{digits}f}" if isinstance(x, float) and x < 0 else (
        f"{x:.{digits}f}" if isinstance(x, (int, float)) else str(x))


def _ci(ci: Any) -> str:
    return f"[{_f(ci[0])}, {_f(ci[1])}]" if ci and None not in ci else ""


def report_markdown(report: dict) -> str:
    lines = [f"# Pipeline {report['recipe']} (goal {report['goal']})", ""]
    for name, a in report.get("align", {}).items():
        lines += [f"## {name}: align {a['method']} (held-out data of the stage)", "",
                  "| task.metric | before | after | change [95% CI] | in-context (principles in prompt) |",
                  "|---|---|---|---|---|"]
        icl = a.get("in_context", {})
        for r in a.get("before_after", []):
            key = f"{r['task']}.{r['metric']}"
            lines.append(f"| {key} | {_f(r['before'])} | {_f(r['after'])} | {_f(r['diff'])} "
                         f"{_ci([r['ci_low'], r['ci_high']])} | {_f(icl.get(key))} |")
        for key, v in a.get("implicit", {}).items():
            lines.append(f"| {key} (DPO implicit reward, after vs reference) | | {_f(v)} {_ci(a['implicit_ci'].get(key))} | | |")
        lines.append("")
    for name, m in report.get("evaluate", {}).items():
        lines += [f"## {name}: measured at the value level", ""]
        cd = m.get("context_distillation")
        if cd:
            lines += ["Context distillation (mean log-likelihood per token of the principle-prompted answers, "
                      f"n={cd['n']} held-out prompts):", "",
                      f"- in-context effect (base, with vs without principles): {_f(cd['icl_effect'])} {_ci(cd.get('icl_effect_ci'))}",
                      f"- engraved effect (aligned vs base, both without): {_f(cd.get('engraved_effect'))} {_ci(cd.get('engraved_effect_ci'))}",
                      f"- retained share: {_f(cd.get('retained'))} {_ci(cd.get('retained_ci'))}", ""]
        for key, label in (("refusal", "refusal on harmful requests (higher is safer)"),
                           ("overrefusal", "refusal on benign risky requests (lower is better)")):
            if key in m:
                lines += [f"| {label} | rate [95% CI] | n |", "|---|---|---|"]
                lines += [f"| {who} | {_f(r['rate'])} {_ci(r['ci'])} | {r['n']} |" for who, r in m[key].items()]
                lines.append("")
        lines += _rubric_lines(m.get("rubric"))
    return "\n".join(lines) + "\n"


def _rubric_lines(r: dict | None) -> list[str]:
    if not r:
        return []
    if "withheld" in r:
        return [f"Rubric score withheld: {r['withheld']}.", ""]
    judge = r.get("judge", {})
    lines = [f"| judge's grade 1-10 against {r.get('goal')}'s principles ({judge.get('backend')}:{judge.get('name')}) "
             "| mean [95% CI] | graded / n |", "|---|---|---|"]
    for who, v in r.items():
        if isinstance(v, dict) and "mean" in v:
            lines.append(f"| {who} | {_f(v['mean'], 2)} {_ci(v['ci'])} | {v['graded']} / {v['n']} |")
    return lines + [""]
