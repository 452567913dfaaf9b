"""One recipe style for both training backends, as open-r1 does: a YAML recipe plus flags parsed by
``TrlParser((ProjectArgs, SFTConfig | GRPOConfig, ModelConfig))``.

``ProjectArgs`` is the backend's own dataclass (omni_mer.train.config.OmniTrainArgs for the Qwen2.5-Omni thinker,
omni_mer.train.llm.LLMTrainArgs for the text-only Qwen2.5); TRL's configs hold every trainer and LoRA key. Every key
is also a flag, shown kebab-case first (``--output-dir``; the YAML spelling ``--output_dir`` works too). The stage
(``--stage`` or the recipe's ``stage`` key) picks the TRL config class before parsing. Bad values raise ConfigError
(one line naming the value); argparse exits 2 on a bad flag.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from omni_mer.core.errors import ConfigError

STAGES = ("sft", "grpo")
# keys renamed since a recipe or a documented command used them: the error names the key to use instead
RENAMED_KEYS = {"balance_labels": ("class_balance", "true is 1, false is 0")}  # old: (new, how the values map)


def _normalise(args: list[str]) -> list[str]:
    """``--config=X`` split into two words (TrlParser only reads the spaced form and would silently ignore it)."""
    return [part for a in args for part in (a.split("=", 1) if a.startswith("--config=") else [a])]


def recipe_path(args: Sequence[str]) -> Path | None:
    """The ``--config`` recipe, checked to exist (ConfigError naming it otherwise)."""
    if "--config" not in args:
        return None
    i = list(args).index("--config")
    if i + 1 >= len(args):
        raise ConfigError("--config needs a recipe YAML path (e.g. recipes/tiny-cpu/grpo.yaml)")
    path = Path(args[i + 1])
    if not path.is_file():
        raise ConfigError(f"--config {str(path)!r}: no such recipe file")
    return path


def _read_recipe(path: Path) -> dict:
    import yaml

    try:
        recipe = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"--config {str(path)!r}: {' '.join(str(exc).split())}") from exc
    if not isinstance(recipe, dict):
        raise ConfigError(f"--config {str(path)!r}: a recipe is a mapping of keys to values")
    return recipe


def peek_stage(args: Sequence[str], recipe: dict, default: str) -> str:
    """The stage before parsing (it picks the TRL config class): ``--stage`` or the ``recipe``'s ``stage`` key."""
    for i, a in enumerate(args):
        if a == "--stage" and i + 1 < len(args):
            return args[i + 1]
        if a.startswith("--stage="):
            return a.split("=", 1)[1]
    return str(recipe.get("stage", default))


def _flags(args: Sequence[str]) -> set[str]:
    """The flags in ``args``, without their ``=value``."""
    return {a.split("=", 1)[0] for a in args if a.startswith("--")}


def check_renamed(args: Sequence[str], recipe: dict, path: Path | None) -> None:
    """ConfigError naming the new key when a flag or the recipe (``recipe`` read from ``path``) uses a key in
    RENAMED_KEYS (checked before TRL parses, whose own checks would otherwise speak first)."""
    given = _flags(args)
    for old, (new, how) in RENAMED_KEYS.items():
        if given & {f"--{old}", f"--{old.replace('_', '-')}"}:
            raise ConfigError(f"--{old.replace('_', '-')} was renamed: use --{new.replace('_', '-')} ({how})")
        if old in recipe:
            raise ConfigError(f"--config {str(path)!r}: the key {old} was renamed: use {new} ({how})")


def check_recipe_values(parser, recipe: dict, path: Path | None, args: Sequence[str] = ()) -> None:
    """ConfigError naming the recipe key when one of its string values (or string items of a list) does not convert
    to the key's type or is not one of its choices. argparse would convert such a value only at the end of parsing,
    and on failure print its whole usage naming the flag (``--class-balance/--class_balance``) instead of the key
    in the recipe. A key a flag in ``args`` overrides is not checked (argparse never reads the recipe's value)."""
    given = _flags(args)
    # the typed action of each key (a bool key also has a typeless --no-KEY action with the same dest)
    actions = {action.dest: action for action in parser._actions
               if action.type is not None and (action.type is not str or action.choices)}
    flags_of: dict[str, set[str]] = {}  # every flag that sets a key, --no-KEY included
    for action in parser._actions:
        flags_of.setdefault(action.dest, set()).update(action.option_strings)
    for key, value in recipe.items():
        action = actions.get(key)
        if action is None or given & flags_of[key]:
            continue
        listed = isinstance(value, list) and action.nargs in ("+", "*")
        for item in (v for v in (value if listed else [value]) if isinstance(v, str)):
            try:
                converted = action.type(item)
                ok = not action.choices or converted in action.choices
            except (ValueError, TypeError, argparse.ArgumentTypeError):
                ok = False
            if not ok:
                bad = f"{key}: {item!r} in {value!r}" if listed else f"{key}={value!r}"
                raise ConfigError(f"--config {str(path)!r}: {bad} is not valid; valid values: "
                                  f"{_valid_values(action)}")


def _valid_values(action) -> str:
    """What ``action`` accepts, in words (its choices, or its type)."""
    if action.choices:
        return ", ".join(map(str, action.choices))
    name = getattr(action.type, "__name__", str(action.type))
    return {"float": "a number", "int": "an integer", "string_to_bool": "true or false"}.get(name, f"a {name}")


def build_parser(project_args: type, stage: str, prog: str, description: str, epilog: str):
    """TrlParser of (project_args, the stage's TRL config, ModelConfig) with ``--config`` listed; kebab-case first."""
    from trl import GRPOConfig, ModelConfig, SFTConfig, TrlParser

    if stage not in STAGES:
        raise ConfigError(f"stage={stage!r} is not valid; valid values: {', '.join(STAGES)}")
    parser = TrlParser((project_args, SFTConfig if stage == "sft" else GRPOConfig, ModelConfig), prog=prog,
                       description=description, epilog=epilog)
    parser.add_argument("--config", metavar="RECIPE.yaml", default=argparse.SUPPRESS,
                        help="recipe YAML whose keys set the defaults; flags given here override it")
    for action in parser._actions:  # kebab-case first in usage and help, like every other omni-mer command
        action.option_strings.sort(key=lambda opt: "_" in opt)
    return parser


def parse_recipe(argv: Sequence[str] | None, project_args: type, prog: str, description: str, epilog: str,
                 default_stage: str = "sft"):
    """``(project args, SFTConfig | GRPOConfig, ModelConfig)`` from ``--config RECIPE.yaml`` plus flags."""
    import yaml

    args = _normalise(list(sys.argv[1:] if argv is None else argv))
    path = recipe_path(args)
    recipe = _read_recipe(path) if path is not None else {}
    check_renamed(args, recipe, path)
    stage = peek_stage(args, recipe, default_stage)
    parser = build_parser(project_args, stage, prog, description, epilog)
    check_recipe_values(parser, recipe, path, args)
    try:
        script, train_cfg, model_cfg = parser.parse_args_and_config(args)
    except ConfigError:
        raise
    except (ValueError, TypeError, yaml.YAMLError) as exc:  # a bad key or value in the recipe, or TRL's own checks
        where = f"--config {str(path)!r}: " if path is not None else ""
        raise ConfigError(f"{where}{' '.join(str(exc).split())}") from exc
    check_lora(model_cfg)
    return script, train_cfg, model_cfg


def check_lora(model_cfg) -> None:
    """ModelConfig's LoRA values checked at parse time (peft would only fail once the model is loaded)."""
    for name in ("lora_r", "lora_alpha"):
        value = getattr(model_cfg, name)
        if not (isinstance(value, (int, float)) and value > 0):
            raise ConfigError(f"{name}={value!r} must be a positive number")
    if not 0 <= model_cfg.lora_dropout < 1:
        raise ConfigError(f"lora_dropout={model_cfg.lora_dropout!r} must be in [0, 1)")


def reward_functions(names: Sequence[str]) -> list:
    """TRL reward functions from the registry, each named after its registry key (TRL logs ``rewards/<name>``).

    Errors propagate: TRL does not catch them, so a failing reward stops training naming itself."""
    from omni_mer.train.rewards import get_reward

    fns = []
    for name in names:
        fn = get_reward(name)

        def reward(completions, _fn=fn, _name=name, **columns):
            try:
                return _fn(completions, **columns)
            except Exception as exc:
                raise RuntimeError(f"reward {_name!r} failed: {exc}") from exc

        reward.__name__ = name
        fns.append(reward)
    return fns


def plain_items(obj) -> dict:
    """The str/number/bool/list/None fields of a config object (what recipe.yaml records)."""
    items = obj.to_dict() if hasattr(obj, "to_dict") else vars(obj)
    return {k: v for k, v in items.items() if isinstance(v, (str, int, float, bool, list, type(None)))}
