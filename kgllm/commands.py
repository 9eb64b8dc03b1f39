"""What every stage package's ``cli`` module uses to add its commands.

Takes: the ``kgllm`` argument parser. Makes: subcommands that share one behaviour: ``--config FILE.yaml``,
``--set key=value`` overrides and ``--force`` (:func:`add_config_args`), the effective config of a stage
(:func:`stage_config`: defaults < YAML < ``--set`` < flags), the closing lines and exit code of a stage
command (:func:`print_artifact`), argparse errors as one line with exit 2, and a suggestion for a
misspelled flag. A leaf module: the top-level :mod:`kgllm.cli` imports it and the packages' ``cli`` modules.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import sys
import typing
from collections.abc import Callable
from pathlib import Path

from . import config as cfgmod
from . import engine as enginemod
from .artifacts import read_manifest
from .errors import UsageError
from .registry import get_stage


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse's own errors become UsageError (exit 2, one line)
        raise UsageError(f"{self.prog}: {message}")

    def parse_known_args(self, args=None, namespace=None):
        ns, extras = super().parse_known_args(args, namespace)
        if extras and self._subparsers is None:
            # A leaf command: what it did not recognise is an error here, where its options are known.
            self.error(f"unrecognized arguments: {' '.join(extras)}{self._suggest(extras)}")
        return ns, extras

    def _suggest(self, extras: list[str]) -> str:
        flags = [o for o in self._option_string_actions if o.startswith("--")]
        for word in extras:
            if word.startswith("-"):
                close = difflib.get_close_matches(word.split("=", 1)[0], flags, n=1, cutoff=0.6)
                if close:
                    return f" (did you mean {close[0]}?)"
        return f" (see '{self.prog} --help')"


class Commands:
    """What a stage's ``register()`` receives: add top-level commands and grouped subcommands."""

    def __init__(self, parser: argparse.ArgumentParser):
        self._sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
        self._groups: dict[str, argparse._SubParsersAction] = {}
        self._group_parsers: dict[str, argparse.ArgumentParser] = {}

    def command(self, name: str, help: str, handler: Callable[[argparse.Namespace], int | None],
                description: str | None = None) -> argparse.ArgumentParser:
        p = self._sub.add_parser(name, help=help, description=description or help,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
        _common(p)
        p.set_defaults(func=handler)
        return p

    def subcommand(self, group: str, name: str, help: str, handler: Callable[[argparse.Namespace], int | None],
                   group_help: str = "", description: str | None = None) -> argparse.ArgumentParser:
        if group not in self._groups:
            gp = self._sub.add_parser(group, help=group_help or f"{group} commands",
                                      description=group_help or None)
            _common(gp)
            gp.set_defaults(func=lambda a, g=gp: (g.print_help(), 2)[1])
            self._groups[group] = gp.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", parser_class=Parser)
            self._group_parsers[group] = gp
        p = self._groups[group].add_parser(name, help=help, description=description or help,
                                           formatter_class=argparse.RawDescriptionHelpFormatter)
        _common(p)
        p.set_defaults(func=handler)
        return p


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                   help="more logging; show tracebacks on errors")
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="only warnings and errors; no progress bars")


def add_config_args(p: argparse.ArgumentParser, stage: str) -> None:
    """``--config FILE.yaml``, repeatable ``--set key=value`` overrides (the help shows a key of this
    ``stage``) and ``--force`` for a stage command."""
    p.add_argument("--config", type=Path, help="YAML config file (CLI flags override it)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help=f"override any config key, e.g. --set {set_example(stage)} (repeatable; "
                        f"'kgllm stages {stage}' lists the keys)")
    p.add_argument("--force", action="store_true", default=False,
                   help="allow replacing a kgllm artifact of another kind at --out (never a directory "
                        "kgllm did not write)")


def add_engine_args(p: argparse.ArgumentParser) -> None:
    """``--engine`` and ``--ray-address`` for a command whose heavy steps can run on Ray (kgllm.engine)."""
    p.add_argument("--engine", choices=["auto", "local", "ray"], default=None,
                   help="where heavy steps run: auto (default: Ray when an address is given or a step is "
                        "large), local (this process), ray (Ray; embedded when no address)")
    p.add_argument("--ray-address", metavar="HOST:PORT", default=None,
                   help="run heavy steps on this Ray cluster (the head's GCS address; 'auto': the cluster "
                        "`ray start` started here; 'local': an embedded instance); default: $RAY_ADDRESS")


def engine_config(args: argparse.Namespace) -> enginemod.EngineConfig:
    """The engine config of a stage command: defaults < $RAY_ADDRESS < ``--engine`` / ``--ray-address``
    (``kgllm run`` adds its YAML's ``ray:`` below them: :meth:`kgllm.pipeline.Pipeline.engine`)."""
    return enginemod.resolve(address=getattr(args, "ray_address", None), mode=getattr(args, "engine", None),
                             source="--engine/--ray-address")


def set_example(stage: str) -> str:
    """A ``key=value`` of this stage's own config for help texts: the first scalar key, nested or not."""
    def first(cls, prefix=""):
        for f in dataclasses.fields(cls):
            v = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            if isinstance(v, bool):
                return f"{prefix}{f.name}={'false' if v else 'true'}"
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return f"{prefix}{f.name}={v * 2 if v else 1}"
        for f in dataclasses.fields(cls):
            if f.default_factory is not dataclasses.MISSING:
                v = f.default_factory()
                if dataclasses.is_dataclass(v):
                    found = first(type(v), f"{prefix}{f.name}.")
                    if found:
                        return found
        return None

    return first(get_stage(stage).config) or "KEY=VALUE"


def stage_config(stage_name: str, args: argparse.Namespace, flags: dict):
    """Effective config for a stage command: defaults < ``--config`` YAML < ``--set`` < explicit flags.

    ``flags`` maps config keys (dotted for nested) to flag values; ``None`` values are ignored, so
    only flags the user gave override the YAML.
    """
    st = get_stage(stage_name)
    layers = []
    if getattr(args, "config", None):
        layers.append(cfgmod.load_yaml(args.config))
    layers.append(cfgmod.parse_overrides(getattr(args, "overrides", []) or []))
    given = [f"{k}={json.dumps(v, default=str)}" for k, v in flags.items() if v is not None]
    layers.append(cfgmod.parse_overrides(given))
    return st.make_config(*layers, source=str(args.config) if getattr(args, "config", None) else stage_name)


def print_artifact(out: Path, manifest=None) -> int:
    """The standard last lines of a stage command: where the artifact is and its counts, then each of
    its problems on stderr. Returns the exit code: 1 when the artifact records problems, else 0."""
    man = manifest or read_manifest(out)
    counts = ", ".join(f"{k}={v}" for k, v in man.counts.items() if not isinstance(v, (dict, list)))
    print(f"{man.kind} artifact: {out}  ({counts}; {man.wall_time_s:.1f}s)")
    for problem in man.problems:
        print(f"kgllm: problem: {problem}", file=sys.stderr)
    return 1 if man.problems else 0


def config_keys(cls: type, prefix: str = "") -> list[tuple[str, str, str]]:
    """``(dotted key, type, default)`` for every key of a config dataclass, nested ones flattened."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else "(required)")
        if dataclasses.is_dataclass(default):
            rows.extend(config_keys(type(default), f"{prefix}{f.name}."))
            continue
        type_ = getattr(hints[f.name], "__name__", None) if typing.get_origin(hints[f.name]) is None else None
        rows.append((f"{prefix}{f.name}", type_ or str(hints[f.name]).replace("typing.", "").replace("pathlib.", ""),
                     json.dumps(default, default=str)))
    return rows


def check_output_file(path: Path, flag: str = "--out") -> Path:
    """A command's output file must not be an existing directory: :class:`UsageError` (exit 2) before
    any work, instead of an ``IsADirectoryError`` at the end."""
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a directory; {flag} names the file to write (a new file, or "
                         "one to replace)")
    return path
