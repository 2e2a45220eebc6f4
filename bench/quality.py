"""Compression quality side by side: ours vs PFEC, torch-pruning Taylor, scratch, unpruned.

For every dataset × architecture × seed, one network is pretrained and cached; then, for
every FLOPs target, each method starts from that checkpoint and gets the same number of
epochs after it (ours: structure + weight learning; baselines: prune once, then fine-tune):

- ours:      `pruning.engine.compress_model` (structure learning + weight learning);
- pfec:      uniform L1-norm filter pruning (Li et al. 2017) + fine-tuning;
- tp_taylor: torch-pruning Taylor importance, global ranking + fine-tuning;
- scratch:   ours' compact structure, re-initialised, trained with the same epochs;
- unpruned:  the unpruned network fine-tuned with the same epochs.

    python -m bench.quality [--quick] [--photos] [--cifar PATH]

`--quick` runs narrow networks for a few epochs on 2 CPU cores (a smoke comparison, not the
paper's setting); full mode is meant for a GPU machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.baselines import calibration_batches, pfec_prune, taylor_prune
from bench.common import environment, save
from bench.train import Recipe, accuracy, train
from pruning.checkpoints import load_into, read_checkpoint, save_checkpoint
from pruning.config import CompressConfig, Target
from pruning.data import load_task_data
from pruning.distillation import Distillation
from pruning.engine import TaskTensors, compress_model
from pruning.models.registry import ModelSpec, build_model
from pruning.network.metrics import count_model
from pruning.training import select_device

METHODS = ("ours", "pfec", "tp_taylor", "scratch", "unpruned")
# Ours with other settings (docs/algorithm.md): the candidates compared for the default.
FIT_VARIANTS: dict[str, dict[str, Any]] = {
    "ours_constant": {"release_schedule": "constant"},
    "ours_cost_aware": {"target_fit": "cost_aware", "release_schedule": "constant"},
    # The same fit with the default cosine release: what a job with target_fit=cost_aware runs.
    "ours_cost_aware_cosine": {"target_fit": "cost_aware"},
    "ours_greedy": {"target_fit": "greedy", "release_schedule": "constant"},
    "ours_greedy_cosine": {"target_fit": "greedy"},
    # The last channels onto the target by saliency per unit of cost (the former default).
    "ours_saliency_correction": {"correction": "saliency"},
    # The paper's wording: each unit keeps its a_l most salient channels after every
    # redistribution (the default keeps the channels it had, changing only the count).
    "ours_saliency_selection": {"selection": "saliency"},
    # Weight learning also follows the checkpoint's softened outputs (pruning.distillation).
    "ours_distill": {"distill": 0.5, "distill_phases": "weights"},
    # ... and structure learning too (its saliencies come from the distilled loss).
    "ours_distill_both": {"distill": 0.5, "distill_phases": "both"},
    # ... and ⌊s·Σa_l⌋ released in all instead of ⌊s·a_l⌋ per unit, so units narrower than
    # 1/s keep moving late in the cosine schedule.
    "ours_distill_pooled": {"distill": 0.5, "distill_phases": "both", "release_rounding": "pooled"},
    # ... and eq. (8)'s significance per unit of the cost one more channel adds (with the
    # default cosine release): regrowth favours units where a channel is cheap.
    "ours_distill_cost_aware": {
        "distill": 0.5,
        "distill_phases": "both",
        "target_fit": "cost_aware",
    },
    # ... with the pull towards cheap units tempered: ξ_l per square root of the cost.
    "ours_distill_cost_sqrt": {
        "distill": 0.5,
        "distill_phases": "both",
        "target_fit": "cost_aware",
        "cost_power": 0.5,
    },
    # Units discovered from the dependency graph instead of the zoo's hand-written lists.
    "ours_discovered": {"unit_source": "discovered"},
    # Distilled in both phases, and the channels tied by residual additions are pruned too,
    # each tied set one unit (`--prune-residual`): more for the allocation to move on ResNets.
    "ours_distill_residual": {"distill": 0.5, "distill_phases": "both", "residual": "coupled"},
}
# The baselines fine-tuned against the checkpoint as ours_distill is (same weight and
# temperature): whether distillation, not the allocation, is what puts ours ahead.
DISTILLED_BASELINES = ("pfec_distill", "tp_taylor_distill")
ALL_METHODS = (*METHODS, *FIT_VARIANTS, *DISTILLED_BASELINES)


@dataclass(frozen=True)
class Settings:
    archs: tuple[tuple[str, float], ...]  # (arch, width_mult)
    targets: tuple[float, ...]  # FLOPs reductions
    seeds: tuple[int, ...]
    pretrain_epochs: int
    structure_epochs: int  # ours; the other methods get structure + finetune epochs
    finetune_epochs: int
    calibration_batches: int  # ours' calibration and the Taylor baseline's gradients
    batch_size: int = 64
    # Pretraining and training from scratch share one recipe (one-cycle, like
    # `pruning.pretrain`); fine-tuning from the checkpoint (ours' weight learning and the
    # baselines) uses the engine's defaults: lr 0.01, ÷10 at 1/3 and 2/3.
    scratch_lr: float = 0.1
    scratch_weight_decay: float = 5e-4
    finetune_lr: float = 0.01
    # Shared by ours' weight learning and every baseline's fine-tuning (pruning.engine.schedules).
    finetune_schedule: str = "step"
    structure_lr: float = 0.01
    # None: shift-and-mirror on photos (builtin:photos, CIFAR), none on builtin:digits, where
    # mirroring changes what a digit is and a 4-pixel shift is half a stroke of the upsampled
    # 8×8 image.
    augment: bool | None = None
    train_limit: int | None = None  # subsample big datasets (quick mode on CIFAR)
    test_limit: int | None = None
    device: str = "auto"
    methods: tuple[str, ...] = METHODS

    @property
    def budget(self) -> int:
        return self.structure_epochs + self.finetune_epochs


QUICK = Settings(
    archs=(("vgg16", 0.25), ("resnet20", 0.5), ("mobilenet", 0.25)),
    targets=(0.5, 0.7, 0.85),
    seeds=(0, 1, 2),
    pretrain_epochs=4,
    structure_epochs=2,
    finetune_epochs=2,
    calibration_batches=8,
    train_limit=2000,
    test_limit=1000,
)
FULL = Settings(
    archs=(("vgg16", 1.0), ("resnet56", 1.0), ("mobilenet", 1.0)),
    targets=(0.5, 0.7, 0.85),
    seeds=(0, 1, 2),
    pretrain_epochs=160,
    structure_epochs=30,
    finetune_epochs=60,
    calibration_batches=50,
    batch_size=128,
)


@dataclass
class Task:
    tensors: TaskTensors
    input_shape: tuple[int, int, int]
    num_classes: int
    augment: bool


def _limit(x: torch.Tensor, y: torch.Tensor, limit: int | None, seed: int) -> tuple[Any, Any]:
    if limit is None or limit >= len(x):
        return x[:], y  # in memory: lazily read samples (CIFAR) are read once here
    keep = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:limit]
    return x[keep], y[keep]


def load_task(source: str, seed: int, settings: Settings) -> Task:
    """`builtin:digits`, `builtin:photos` or a CIFAR-10 python folder; digits is split by
    `seed`, photos and CIFAR have fixed test splits."""
    data = load_task_data(source, seed=seed)
    x_train, y_train = _limit(data.x_train, data.y_train, settings.train_limit, seed)
    x_test, y_test = _limit(data.x_test, data.y_test, settings.test_limit, seed)
    augment = settings.augment if settings.augment is not None else source != "builtin:digits"
    return Task(
        TaskTensors(x_train, y_train, x_test, y_test),
        data.input_shape,
        data.num_classes,
        augment,
    )


def _row(
    method: str,
    model: torch.nn.Module,
    task: Task,
    full: tuple[int, int],
    seconds: float,
    target: float | None,
    **extra: Any,
) -> dict[str, Any]:
    cost = count_model(model, task.input_shape)
    return {
        "method": method,
        "target_flops_reduction": target,
        "accuracy": accuracy(model, task.tensors),
        "flops": cost.flops,
        "params": cost.params,
        "flops_reduction": 1.0 - cost.flops / full[0],
        "params_reduction": 1.0 - cost.params / full[1],
        # The structure each method ended with, comparable across methods: out channels of
        # every conv in module order (depthwise convs included).
        "conv_widths": [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)],
        "seconds": seconds,
        **extra,
    }


class Checkpoint:
    """The pretrained network of one (dataset, arch, seed), cached on disk for the run."""

    def __init__(self, path: Path, spec: ModelSpec, device: torch.device):
        self.path, self.spec, self.device = path, spec, device

    def load(self) -> torch.nn.Module:
        state, _ = read_checkpoint(self.path)
        model = build_model(self.spec)
        load_into(model, state)
        return model.to(self.device)


def scratch_recipe(settings: Settings, task: Task) -> Recipe:
    return Recipe(
        lr=settings.scratch_lr,
        batch_size=settings.batch_size,
        weight_decay=settings.scratch_weight_decay,
        augment=task.augment,
        schedule="onecycle",
    )


def pretrain(
    spec: ModelSpec, task: Task, settings: Settings, seed: int, path: Path, device: torch.device
) -> tuple[Checkpoint, dict[str, Any]]:
    torch.manual_seed(seed)
    model = build_model(spec).to(device)
    recipe = scratch_recipe(settings, task)
    seconds = train(model, task.tensors, settings.pretrain_epochs, recipe, seed)
    save_checkpoint(path, model, spec)
    info = {"accuracy": accuracy(model, task.tensors), "seconds": seconds}
    return Checkpoint(path, spec, device), info


@dataclass(frozen=True)
class Trial:
    """What every method of one (dataset, arch, seed) shares."""

    task: Task
    spec: ModelSpec
    checkpoint: Checkpoint
    settings: Settings
    seed: int
    full: tuple[int, int]  # FLOPs and params of the unpruned network

    @property
    def example(self) -> torch.Tensor:
        return self.task.tensors.x_test[:1].to(self.checkpoint.device)

    @property
    def finetune(self) -> Recipe:
        s = self.settings
        return Recipe(
            lr=s.finetune_lr,
            batch_size=s.batch_size,
            augment=self.task.augment,
            schedule=s.finetune_schedule,
        )

    def row(
        self,
        method: str,
        model: torch.nn.Module,
        seconds: float,
        target: float | None,
        **extra: Any,
    ) -> dict[str, Any]:
        return _row(method, model, self.task, self.full, seconds, target, **extra)


def run_unpruned(trial: Trial) -> dict[str, Any]:
    model = trial.checkpoint.load()
    seconds = train(model, trial.task.tensors, trial.settings.budget, trial.finetune, trial.seed)
    return trial.row("unpruned", model, seconds, None)


def run_ours(trial: Trial, target: float, method: str = "ours") -> tuple[dict[str, Any], ModelSpec]:
    s = trial.settings
    config = CompressConfig(
        **FIT_VARIANTS.get(method, {}),
        target=Target("flops", target),
        structure_epochs=s.structure_epochs,
        finetune_epochs=s.finetune_epochs,
        batch_size=s.batch_size,
        structure_lr=s.structure_lr,
        lr=s.finetune_lr,
        finetune_schedule=s.finetune_schedule,  # type: ignore[arg-type]
        calibration_batches=s.calibration_batches,
        augment=trial.task.augment,
        seed=trial.seed,
        device=s.device,
    )
    started = time.perf_counter()
    result = compress_model(trial.checkpoint.load(), trial.spec, trial.task.tensors, config)
    seconds = time.perf_counter() - started
    structure = [h for h in result.history if h["phase"] == "structure_learning"]
    moves = {
        key: sum(h[key] for h in structure) for key in ("learned_moves", "fit_moved", "reverted")
    }
    masked = [h["accuracy"] for h in structure]
    row = trial.row(method, result.model, seconds, target, **moves, masked_accuracy=masked)
    return row, result.spec


def _teacher(trial: Trial, distill: bool) -> Distillation | None:
    """The checkpoint as the teacher, with ours_distill's weight and temperature."""
    if not distill:
        return None
    variant = FIT_VARIANTS["ours_distill"]
    return Distillation.frozen_copy(
        trial.checkpoint.load(), variant["distill"], CompressConfig.distill_temperature
    )


def run_pfec(trial: Trial, target: float, distill: bool = False) -> dict[str, Any]:
    started = time.perf_counter()
    model = trial.checkpoint.load()
    pfec_prune(model, trial.example, target)
    teacher = _teacher(trial, distill)
    train(model, trial.task.tensors, trial.settings.budget, trial.finetune, trial.seed, teacher)
    method = "pfec_distill" if distill else "pfec"
    return trial.row(method, model, time.perf_counter() - started, target)


def run_taylor(trial: Trial, target: float, distill: bool = False) -> dict[str, Any]:
    started = time.perf_counter()
    device = trial.checkpoint.device
    tensors = trial.task.tensors
    batches = calibration_batches(
        tensors.x_train.to(device),
        tensors.y_train.to(device),
        trial.settings.batch_size,
        trial.settings.calibration_batches,  # as many gradient batches as ours calibrates on
        trial.seed,
    )
    outcome = taylor_prune(trial.checkpoint.load(), trial.example, batches, target)
    teacher = _teacher(trial, distill)
    train(outcome.model, tensors, trial.settings.budget, trial.finetune, trial.seed, teacher)
    seconds = time.perf_counter() - started
    method = "tp_taylor_distill" if distill else "tp_taylor"
    return trial.row(method, outcome.model, seconds, target, tp_pruning_ratio=outcome.pruning_ratio)


def run_scratch(trial: Trial, target: float, structure: ModelSpec) -> dict[str, Any]:
    """The paper's argument: is it the structure or the inherited weights that matter?"""
    torch.manual_seed(trial.seed)
    model = build_model(replace(trial.spec, widths=structure.widths))
    model = model.to(trial.checkpoint.device)
    recipe = scratch_recipe(trial.settings, trial.task)
    seconds = train(model, trial.task.tensors, trial.settings.budget, recipe, trial.seed)
    return trial.row("scratch", model, seconds, target)


def run_seed(
    dataset: str, arch: str, width: float, seed: int, settings: Settings, tmp: Path
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Pretrain once, then every method at every target from that checkpoint."""
    device = select_device(settings.device)
    task = load_task(dataset, seed, settings)
    spec = ModelSpec(
        arch=arch, in_channels=task.input_shape[0], num_classes=task.num_classes, width_mult=width
    )
    path = tmp / f"{Path(dataset).name.replace(':', '_')}-{arch}-{seed}.safetensors"
    checkpoint, pretrained = pretrain(spec, task, settings, seed, path, device)
    cost = count_model(checkpoint.load(), task.input_shape)
    trial = Trial(task, spec, checkpoint, settings, seed, (cost.flops, cost.params))

    methods = settings.methods
    rows: list[dict[str, Any]] = []

    def done(row: dict[str, Any]) -> None:
        rows.append(row)
        print(
            {"arch": arch, "seed": seed, **{k: round(v, 4) if isinstance(v, float) else v
                                            for k, v in row.items()}},
            flush=True,
        )  # fmt: skip

    if "unpruned" in methods:
        done(run_unpruned(trial))
    for target in settings.targets:
        ours, structure = run_ours(trial, target)
        done(ours)
        for method in FIT_VARIANTS:
            if method in methods:
                done(run_ours(trial, target, method)[0])
        if "pfec" in methods:
            done(run_pfec(trial, target))
        if "tp_taylor" in methods:
            done(run_taylor(trial, target))
        if "pfec_distill" in methods:
            done(run_pfec(trial, target, distill=True))
        if "tp_taylor_distill" in methods:
            done(run_taylor(trial, target, distill=True))
        if "scratch" in methods:
            done(run_scratch(trial, target, structure))
    common = {"dataset": dataset, "arch": arch, "width_mult": width, "seed": seed}
    for row in rows:
        row.update(common, epochs=settings.budget)
    return {**common, **pretrained, "epochs": settings.pretrain_epochs}, rows


def run(
    datasets: Sequence[str],
    settings: Settings,
    after_seed: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Every (dataset, arch, seed) in turn; `after_seed` gets the results so far after each,
    so that a run stopped early (these take hours) keeps what it measured."""
    pretrained: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="edgeprune-bench-") as tmp:
        for dataset in datasets:
            for arch, width in settings.archs:
                for seed in settings.seeds:
                    info, rows = run_seed(dataset, arch, width, seed, settings, Path(tmp))
                    pretrained.append(info)
                    runs.extend(rows)
                    if after_seed is not None:
                        after_seed({"pretrained": pretrained, "runs": runs})
    return {"pretrained": pretrained, "runs": runs}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="narrow nets, few epochs (CPU)")
    parser.add_argument("--cifar", type=Path, help="a CIFAR-10 python-format folder")
    parser.add_argument("--no-digits", action="store_true", help="skip builtin:digits")
    parser.add_argument(
        "--photos",
        action="store_true",
        help="add builtin:photos (patches of scikit-image's photographs; CNNs are not at "
        "their ceiling there)",
    )
    parser.add_argument("--seeds", type=int, help="number of seeds (default 3)")
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="seeds run from this one (e.g. --first-seed 3 --seeds 2 adds seeds 3 and 4 to "
        "an earlier 3-seed run)",
    )
    parser.add_argument(
        "--targets", type=float, nargs="+", help="FLOPs reductions (default 0.5 0.7 0.85)"
    )
    parser.add_argument(
        "--archs", nargs="+", help="arch:width pairs, e.g. vgg16:0.25 (default: the mode's)"
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=ALL_METHODS,
        help=f"methods to run; ours always runs (default: {' '.join(METHODS)})",
    )
    parser.add_argument(
        "--pretrain-epochs", type=int, help="epochs of pretraining (default: the mode's)"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        nargs=2,
        metavar=("STRUCTURE", "FINETUNE"),
        help="ours' structure and weight-learning epochs; the others get their sum",
    )
    parser.add_argument("--finetune-lr", type=float, help="fine-tuning lr (default 0.01)")
    parser.add_argument(
        "--finetune-schedule",
        choices=("step", "cosine"),
        help="fine-tuning lr schedule shared by every method (default step)",
    )
    parser.add_argument("--name", default="quality", help="results file name")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    settings = QUICK if args.quick else FULL
    if args.seeds is not None:
        settings = replace(
            settings, seeds=tuple(range(args.first_seed, args.first_seed + args.seeds))
        )
    elif args.first_seed:
        settings = replace(settings, seeds=tuple(s + args.first_seed for s in settings.seeds))
    if args.targets:
        settings = replace(settings, targets=tuple(args.targets))
    if args.archs:
        archs = tuple((a.split(":")[0], float(a.split(":")[1])) for a in args.archs)
        settings = replace(settings, archs=archs)
    if args.pretrain_epochs is not None:
        settings = replace(settings, pretrain_epochs=args.pretrain_epochs)
    if args.epochs:
        settings = replace(
            settings, structure_epochs=args.epochs[0], finetune_epochs=args.epochs[1]
        )
    if args.finetune_lr is not None:
        settings = replace(settings, finetune_lr=args.finetune_lr)
    if args.finetune_schedule:
        settings = replace(settings, finetune_schedule=args.finetune_schedule)
    if args.methods:
        settings = replace(settings, methods=tuple(dict.fromkeys(["ours", *args.methods])))
    datasets = (
        ([] if args.no_digits else ["builtin:digits"])
        + (["builtin:photos"] if args.photos else [])
        + ([str(args.cifar)] if args.cifar else [])
    )
    if not datasets:
        parser.error("nothing to run: give --photos or --cifar PATH, or drop --no-digits")
    env = environment()
    print(env)
    if args.quick:
        print(
            "quick mode: width_mult "
            + ", ".join(f"{a}×{w}" for a, w in settings.archs)
            + f", {settings.pretrain_epochs} pretraining epochs, {settings.budget} epochs per "
            "method: a CPU smoke comparison, not the paper's setting",
            flush=True,
        )
    started = time.perf_counter()

    def write(results: dict[str, Any], complete: bool) -> None:
        # Written after every seed: `complete` is false until the last one is in.
        payload = {
            "environment": env,
            "quick": args.quick,
            "settings": asdict(settings),
            "datasets": datasets,
            "seconds": time.perf_counter() - started,
            "complete": complete,
        }
        save(args.name, {**payload, **results})

    write(run(datasets, settings, after_seed=lambda so_far: write(so_far, False)), True)


if __name__ == "__main__":
    main()
