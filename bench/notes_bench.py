"""Notes benchmark: rules-extractor notes per second on the MedCalc-Bench dev half; accuracy."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from medagent.eval.medcalc import calculator_maps, read_rows
from medagent.eval.medcalc_notes import run_notes
from medagent.notes import rules
from medagent.notes.context import Assertion, Sentences
from medagent.notes.rules import extract_rules
from medagent.scales import get_scale


def _medspacy_assertion() -> Any:
    """medspaCy ConText (PyRuSH sentences, its default rules) in place of the built-in rules.

    Only for the comparison: medspaCy is not a dependency of medagent (see docs/notes.md)."""
    from loguru import logger  # medspaCy's PyRuSH logs every token at DEBUG

    logger.remove()
    import medspacy
    from spacy.tokens import Span

    nlp = medspacy.load(medspacy_enable=["medspacy_pyrush", "medspacy_context"])
    context = nlp.get_pipe("medspacy_context")
    docs: dict[str, Any] = {}

    def assertion(sentences: Sentences, start: int, end: int) -> Assertion:
        doc = docs.get(sentences.text)
        if doc is None:
            docs.clear()
            doc = nlp.make_doc(sentences.text)
            for name, proc in nlp.pipeline:
                if name != "medspacy_context":
                    doc = proc(doc)
            docs[sentences.text] = doc
        span = doc.char_span(start, end, alignment_mode="expand")
        if span is None:
            return Assertion("affirmed", family=False, historical=False)
        doc.ents = (Span(doc, span.start, span.end, label="TARGET"),)
        context(doc)
        e = doc.ents[0]
        status = (
            "negated"
            if e._.is_negated
            else "uncertain"
            if e._.is_uncertain or e._.is_hypothetical
            else "affirmed"
        )
        return Assertion(status, family=bool(e._.is_family), historical=bool(e._.is_historical))

    return assertion


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--failures", type=Path, default=None)
    parser.add_argument("--context", choices=["builtin", "medspacy"], default="builtin")
    args = parser.parse_args()
    if args.context == "medspacy":
        rules.assertion = _medspacy_assertion()
    csv_path = args.data / "medcalc-bench-v1.0-dev.csv"
    rows = read_rows(csv_path)
    maps = calculator_maps()
    pairs = [
        (get_scale(maps[r.calculator_id].scale), r.note) for r in rows if r.calculator_id in maps
    ]
    extract_rules(*pairs[0])  # warm the lexicon and pattern caches
    start = time.perf_counter()
    for scale, note in pairs:
        extract_rules(scale, note)
    elapsed = time.perf_counter() - start
    summary = run_notes(rows, "rules", failures=args.failures).to_dict(mode="notes-rules")
    per_calc = summary["per_calculator"]
    weakest = sorted(per_calc.items(), key=lambda kv: kv[1]["adjudicated"]["accuracy"])[:12]
    print(
        json.dumps(
            {
                "csv": str(csv_path),
                "context": args.context,
                "notes": len(pairs),
                "rules_notes_per_second": round(len(pairs) / elapsed, 1),
                "mean_note_chars": round(sum(len(n) for _, n in pairs) / len(pairs)),
                "accuracy_raw": summary["accuracy"],
                "accuracy_adjudicated": summary["adjudicated"]["accuracy"],
                "self_consistent_calculators": summary["self_consistent_calculators"],
                "calculators_without_label_errors": summary["calculators_without_label_errors"],
                "per_category_adjudicated": {
                    k: v["adjudicated"] for k, v in summary["per_category"].items()
                },
                "weakest_calculators": {
                    k: {"name": v["name"], **v["adjudicated"]} for k, v in weakest
                },
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
