"""Attack evaluation across levels: who crafts the inputs (the source) apart from where they are
evaluated (the level), in the shape of the source paper's Table 5.

For each batch and eps, each input set is crafted once and evaluated unchanged at every level
that reads it:

    gradient attack, --source self   algo crafts for algo; quant crafts for quant and for hw (the
                                     chip has no gradient: hw is evaluated on quant's inputs)
    gradient attack, --source L      L crafts for every level; L = hw pushes the gradient through
                                     the integer model with straight-through estimators
    --source-model FILE              another trained model crafts for every level (transfer)
    square, --source self            every level is attacked through its own output scores;
                                     at hw that is a black-box attack on the chip simulator
    square, --source L               L's scores are queried, every level evaluates

adv_loss = clean_acc - adv_acc (points). Spike activity = spikes per neuron per step, per layer;
at hw from the simulator's per-core counters. NSR (PAPERS.md eq. 14) = (SA1 - SA2) / SA1 with
SA1 / SA2 the layer's spikes on clean / adversarial inputs. Agreement: hw against quant on the
very inputs hw was evaluated on, clean and per eps, with the images whose correctness flips.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm import tqdm

from spikemesh.evaluation.levels import SpikeTally, key_seed
from spikemesh.evaluation.spec import LEVELS, AttackSpec
from spikemesh.evaluation.square import square_attack

# craft(images, labels, eps, seed, rows) -> uint8 adversarial images; rows: the batch's
# positions in the whole evaluation (saved inputs are looked up by them)
Craft = Callable[[np.ndarray, np.ndarray, int, int, slice], np.ndarray]


@dataclass
class InputSet:
    label: str                      # the source as the table names it
    craft: Craft
    queried_level: str | None = None  # square: the level whose scores it asks for
    # hw source: the crafting model's own output accumulators for given images, to show that
    # the chip computes exactly what the attack aimed at
    accumulators: Callable[[np.ndarray], np.ndarray] | None = None
    square: dict[int, dict[str, Any]] = field(default_factory=dict)   # eps -> tallies


@dataclass
class Plan:
    reads: dict[str, str]           # level -> the key of the input set it evaluates
    sets: dict[str, InputSet]       # key -> how that set is crafted


def gradient_set(label: str, crafter, spec: AttackSpec) -> InputSet:
    """Inputs made by ``crafter.craft`` (a level with a gradient, or the integer model)."""
    return InputSet(label, lambda images, labels, eps, seed, rows:
                    crafter.craft(images, labels, spec, eps, seed),
                    accumulators=getattr(crafter, "exact_accumulators", None))


def square_set(label: str, level, spec: AttackSpec) -> InputSet:
    """Inputs made by the square attack querying ``level``'s output scores."""
    tallies: dict[int, dict[str, Any]] = {}

    def craft(images, labels, eps, seed, rows):
        def scores(batch: np.ndarray) -> np.ndarray:
            return level.evaluate(batch, seed)[1]
        res = square_attack(scores, images, labels, eps, queries=spec.queries,
                            rng=np.random.default_rng(seed), p_init=spec.p_init)
        t = tallies.setdefault(eps, {"queries": [], "attacked": [], "fooled": [],
                                     "seconds": 0.0, "images_scored": 0})
        t["queries"].append(res.queries)
        t["attacked"].append(res.attacked)
        t["fooled"].append(res.fooled)
        t["seconds"] += res.seconds
        t["images_scored"] += res.images_scored
        return res.adversarial
    return InputSet(label, craft, queried_level=level.name, square=tallies)


def make_plan(levels: tuple[str, ...], source: str, spec: AttackSpec, objs: dict[str, Any],
              hw_source=None, other=None, other_label: str = "") -> Plan:
    """Which input set each level reads, and how each set is made. ``objs``: level objects by
    name (including any a source needs); ``hw_source`` crafts through the integer model;
    ``other`` is a separately trained model's level."""
    sets: dict[str, InputSet] = {}
    reads: dict[str, str] = {}
    if other is not None:
        sets["model"] = gradient_set(other_label, other, spec)
        return Plan({lv: "model" for lv in levels}, sets)
    if not spec.gradient:
        for lv in levels:
            key = lv if source == "self" else source
            if key not in sets:
                sets[key] = square_set(key, objs[key], spec)
            reads[lv] = key
        return Plan(reads, sets)
    for lv in levels:
        key = source if source != "self" else ("quant" if lv == "hw" else lv)
        if key not in sets:
            sets[key] = gradient_set("hw-ste" if key == "hw" else key,
                                     hw_source if key == "hw" else objs[key], spec)
        reads[lv] = key
    return Plan(reads, sets)


def _batches(n: int, size: int):
    for i in range(0, n, size):
        yield slice(i, min(i + size, n))


def evaluate(objs: dict[str, Any], plan: Plan, images: np.ndarray, labels: np.ndarray,
             spec: AttackSpec, *, levels: tuple[str, ...], batch_size: int = 100,
             progress: bool = True, keep_inputs: bool = False) -> tuple[dict[str, Any], dict]:
    """Run the plan on uint8 ``images``; returns (result, adversarial inputs per set and eps
    when ``keep_inputs``)."""
    n = len(labels)
    eps_list = [int(e) for e in spec.eps]
    level_id = {lv: i + 1 for i, lv in enumerate(LEVELS)}
    set_id = {k: i + 1 for i, k in enumerate(plan.sets)}
    clean_ok = {lv: 0 for lv in levels}
    adv_ok = {lv: {e: 0 for e in eps_list} for lv in levels}
    clean_tally = {lv: SpikeTally() for lv in levels}
    adv_tally = {lv: {e: SpikeTally() for e in eps_list} for lv in levels}
    agree = {"clean": _Agreement(), **{e: _Agreement() for e in eps_list}}
    with_hw = "hw" in levels
    kept: dict[str, dict[int, list[np.ndarray]]] = {k: {e: [] for e in eps_list} for k in plan.sets}
    seconds = {"craft": 0.0, **{lv: 0.0 for lv in levels}}
    exact = [0, 0]      # hw source: images whose chip outputs equal the crafting model's
    n_batches = (n + batch_size - 1) // batch_size
    bar = tqdm(total=n_batches * (1 + len(eps_list) * len(plan.sets)), unit="step",
               desc="attack", disable=not progress, file=sys.stderr, leave=False,
               dynamic_ncols=True)

    hw_scores: dict[str, np.ndarray] = {}

    def run_level(lv: str, x: np.ndarray, kind: int, bi: int, tally: SpikeTally | None):
        t = time.perf_counter()
        pred, scores = objs[lv].evaluate(x, key_seed(spec.seed, level_id[lv], kind, bi), tally)
        seconds[lv if lv in seconds else "craft"] += time.perf_counter() - t
        if lv == "hw":
            hw_scores["last"] = scores
        return pred

    for bi, rows in enumerate(_batches(n, batch_size)):
        x, y = images[rows], labels[rows]
        bar.set_postfix_str("clean")
        preds = {lv: run_level(lv, x, 0, bi, clean_tally[lv]) for lv in levels}
        for lv in levels:
            clean_ok[lv] += int((preds[lv] == y).sum())
        if with_hw:
            q = preds["quant"] if "quant" in preds else run_level("quant", x, 0, bi, None)
            agree["clean"].add(preds["hw"], q, y)
        bar.update(1)
        for ei, e in enumerate(eps_list):
            for key, iset in plan.sets.items():
                bar.set_postfix_str(f"eps {e}: {iset.label} crafts")
                t = time.perf_counter()
                x_adv = iset.craft(x, y, e, key_seed(spec.seed, 100 + set_id[key], ei, bi), rows)
                seconds["craft"] += time.perf_counter() - t
                if keep_inputs:
                    kept[key][e].append(x_adv)
                readers = [lv for lv in levels if plan.reads[lv] == key]
                bar.set_postfix_str(f"eps {e}: {', '.join(readers)} evaluate")
                adv_preds = {lv: run_level(lv, x_adv, 1 + ei, bi, adv_tally[lv][e])
                             for lv in readers}
                for lv in readers:
                    adv_ok[lv][e] += int((adv_preds[lv] == y).sum())
                if with_hw and "hw" in readers:
                    q = (adv_preds["quant"] if "quant" in adv_preds
                         else run_level("quant", x_adv, 1 + ei, bi, None))
                    agree[e].add(adv_preds["hw"], q, y)
                    if iset.accumulators is not None:
                        same = (iset.accumulators(x_adv) == hw_scores["last"]).all(axis=1)
                        exact[0] += int(same.sum())
                        exact[1] += len(same)
                bar.update(1)
    bar.close()
    result = _result(plan, spec, levels, n, objs, clean_ok, adv_ok, clean_tally, adv_tally,
                     agree if with_hw else None, seconds)
    if exact[1]:
        result["hw_source_exact"] = {"images": exact[1], "identical": exact[0]}
    inputs = {k: {e: np.concatenate(v) for e, v in d.items() if v} for k, d in kept.items()}
    return result, inputs


@dataclass
class _Agreement:
    n: int = 0
    same: int = 0
    hw_only: int = 0      # hw right, quant wrong
    quant_only: int = 0   # quant right, hw wrong

    def add(self, hw: np.ndarray, quant: np.ndarray, y: np.ndarray) -> None:
        self.n += len(y)
        self.same += int((hw == quant).sum())
        self.hw_only += int(((hw == y) & (quant != y)).sum())
        self.quant_only += int(((hw != y) & (quant == y)).sum())

    def as_dict(self) -> dict[str, Any]:
        return {"top1": 100.0 * self.same / max(self.n, 1), "flips": self.hw_only + self.quant_only,
                "hw_only_correct": self.hw_only, "quant_only_correct": self.quant_only}


def _nsr(clean: SpikeTally, adv: SpikeTally) -> dict[str, float]:
    return {k: ((v - adv.spikes.get(k, 0.0)) / v if v else 0.0) for k, v in clean.spikes.items()}


def _result(plan: Plan, spec: AttackSpec, levels, n, objs, clean_ok, adv_ok, clean_tally,
            adv_tally, agree, seconds) -> dict[str, Any]:
    out: dict[str, Any] = {"attack": spec.name, "targeted": spec.targeted, "n": n,
                           "eps_unit": "grey levels (eps/255 in pixels)", "levels": {}}
    if spec.name == "pgd":
        out.update(steps=spec.steps, step_size=round(spec.step_size * 255, 6),
                   random_start=spec.random_start)
    if spec.name == "square":
        out.update(queries=spec.queries, p_init=spec.p_init)
    for lv in levels:
        clean_acc = 100.0 * clean_ok[lv] / max(n, 1)
        entry: dict[str, Any] = {
            "weight_bits": objs[lv].bits, "source": plan.sets[plan.reads[lv]].label,
            "clean_acc": clean_acc, "eps": {}, "spike_activity": clean_tally[lv].activity(),
            "spike_activity_adv": {}, "nsr": {}}
        for e, ok in adv_ok[lv].items():
            adv_acc = 100.0 * ok / max(n, 1)
            entry["eps"][str(e)] = {"adv_acc": adv_acc, "adv_loss": clean_acc - adv_acc}
            entry["spike_activity_adv"][str(e)] = adv_tally[lv][e].activity()
            entry["nsr"][str(e)] = _nsr(clean_tally[lv], adv_tally[lv][e])
        out["levels"][lv] = entry
    if agree is not None:
        out["agreement"] = {"inputs": plan.sets[plan.reads["hw"]].label,
                            "clean": agree["clean"].as_dict(),
                            "eps": {str(e): a.as_dict() for e, a in agree.items() if e != "clean"}}
    square = {}
    for key, iset in plan.sets.items():
        if iset.queried_level is None or not iset.square:
            continue
        square[key] = {}
        for e, t in iset.square.items():
            q, fooled = np.concatenate(t["queries"]), np.concatenate(t["fooled"])
            attacked = np.concatenate(t["attacked"])
            square[key][str(e)] = {
                "queried_level": iset.queried_level, "budget": spec.queries,
                "attacked": int(attacked.sum()),
                "success_rate": (100.0 * float(fooled.sum() / attacked.sum())
                                 if attacked.any() else 0.0),
                "mean_queries": float(q[fooled].mean()) if fooled.any() else None,
                "median_queries": float(np.median(q[fooled])) if fooled.any() else None,
                "queries_per_second": t["images_scored"] / max(t["seconds"], 1e-9)}
    if square:
        out["square"] = square
    out["seconds"] = seconds
    return out
