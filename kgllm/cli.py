"""The ``kgllm`` command: one subcommand per stage, plus ``run`` for whole pipelines.

Each stage package contributes its subcommands through a light ``cli`` module listed in
``_CLI_MODULES`` with a ``register(cli: Commands)`` function; packages not built yet are absent.
Handlers import their heavy dependencies inside the handler, so ``kgllm --help`` stays fast.

Errors: a :class:`~kgllm.errors.KgllmError` is printed as one line ``kgllm: error: ...`` with its exit
code (2 for usage/input errors, 1 otherwise); ``-v`` also prints the traceback.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.util
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .errors import KgllmError, UsageError

_CLI_MODULES = (
    "kgllm.sources.cli",
    "kgllm.validate.cli",
    "kgllm.corpus.cli",
    "kgllm.index.cli",
    "kgllm.train.cli",
    "kgllm.rag.cli",
    "kgllm.eval.cli",
)


class _Parser(argparse.ArgumentParser):
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
        self._sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
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
            self._groups[group] = gp.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", parser_class=_Parser)
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


def set_example(stage: str) -> str:
    """A ``key=value`` of this stage's own config for help texts: the first scalar key, nested or not."""
    import dataclasses

    from .stages import get_stage

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
    from . import config as cfgmod
    from .stages import get_stage

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
    from .artifacts import read_manifest

    man = manifest or read_manifest(out)
    counts = ", ".join(f"{k}={v}" for k, v in man.counts.items() if not isinstance(v, (dict, list)))
    print(f"{man.kind} artifact: {out}  ({counts}; {man.wall_time_s:.1f}s)")
    for problem in man.problems:
        print(f"kgllm: problem: {problem}", file=sys.stderr)
    return 1 if man.problems else 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kgllm", description="Turn knowledge graphs into grounded language models.",
                     formatter_class=argparse.RawDescriptionHelpFormatter,
                     epilog="Run 'kgllm COMMAND --help' for a command's options.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging; tracebacks on errors")
    parser.add_argument("-q", "--quiet", action="store_true", default=False,
                        help="only warnings and errors; no progress bars (KGLLM_PROGRESS=0 also hides the bars)")
    parser.add_argument("--version", action="version", version="kgllm 0.1.0")
    cmds = Commands(parser)
    _register_builtin(cmds)
    for modname in _CLI_MODULES:
        if importlib.util.find_spec(modname.rsplit(".", 1)[0]) is None:
            continue
        if importlib.util.find_spec(modname) is None:
            continue
        importlib.import_module(modname).register(cmds)
    return parser


def _register_builtin(cmds: Commands) -> None:
    p = cmds.command("run", "run a pipeline YAML: each stage in order, skipping up-to-date ones", _cmd_run,
                     description="Run a pipeline YAML: each stage in order, skipping up-to-date ones.\n\n"
                                 "The whole pipeline is checked before any step runs. The exit code is the worst of\n"
                                 "its steps: 1 when a step's artifact records problems (they are listed in the\n"
                                 "summary), or the error's code when a step fails.\n"
                                 "Example:\n  kgllm run examples/quickstart.yaml --dry-run")
    p.add_argument("pipeline", type=Path, help="pipeline YAML (see examples/)")
    p.add_argument("--force", action="append", default=[], metavar="STEP",
                   help="rerun this step even if up to date ('all' for every step); repeatable")
    p.add_argument("--only", action="append", default=[], metavar="STEP", help="run only this step; repeatable")
    p.add_argument("--dry-run", action="store_true",
                   help="check the whole pipeline and print each step's output, status and config")
    p = cmds.command("stages", "list the pipeline stages and their config keys", _cmd_stages,
                     description="List the pipeline stages, or one stage's config keys with types and defaults.\n"
                                 "Example:\n  kgllm stages validate")
    p.add_argument("name", nargs="?", help="a stage name (e.g. validate, pull.file): show its keys in detail")


def _cmd_run(args: argparse.Namespace) -> int:
    import dataclasses

    import yaml

    from .pipeline import load_pipeline

    pipe = load_pipeline(args.pipeline)
    if args.dry_run:
        for p in pipe.plan(force=args.force, only=args.only):
            print(f"{p.step.id} ({p.stage.name}): {p.status} -> {p.out}")
            if p.inputs:
                print(f"  inputs: {', '.join(map(str, p.inputs))}")
            cfg = json.loads(json.dumps(dataclasses.asdict(p.config), default=str))
            print("  config:\n" + "\n".join("    " + line for line in
                                             yaml.safe_dump(cfg, sort_keys=False).rstrip().splitlines()))
        return 0
    results = []
    try:
        pipe.run(force=args.force, only=args.only, on_step=results.append)
    finally:
        _print_run_summary(results)
    return 1 if any(r.problems for r in results) else 0


def _print_run_summary(results) -> None:
    if not results:
        return
    print("\nArtifacts:")
    for r in results:
        counts = ", ".join(f"{k}={v}" for k, v in r.counts.items() if not isinstance(v, (dict, list)))
        print(f"  {r.id:<12} {r.stage:<14} {r.status:<8} {r.out}  ({counts})")
    problems = [(r, p) for r in results for p in r.problems]
    if problems:
        print("\nProblems:")
        for r, p in problems:
            print(f"  {r.id}: {p}")
            print(f"kgllm: problem: step {r.id}: {p}", file=sys.stderr)


def _cmd_stages(args: argparse.Namespace) -> int:
    import dataclasses

    from .stages import get_stage, list_stages

    if args.name:
        st = get_stage(args.name)
        print(f"{st.name} -> {st.kind} artifact: {st.help}")
        for name, type_, default in config_keys(st.config):
            print(f"  {name:<34} {type_:<26} default: {default}")
        return 0
    for st in list_stages():
        keys = ", ".join(f.name for f in dataclasses.fields(st.config))
        print(f"{st.name:<16} -> {st.kind:<10} {st.help}\n{'':<16}    keys: {keys}")
    print("\nRun 'kgllm stages NAME' for a stage's keys with their types and defaults.")
    return 0


def config_keys(cls: type, prefix: str = "") -> list[tuple[str, str, str]]:
    """``(dotted key, type, default)`` for every key of a config dataclass, nested ones flattened."""
    import dataclasses
    import typing

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


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = sum(1 for a in argv if a in ("-v", "--verbose")) + sum(
        a.count("v") for a in argv if a.startswith("-v") and set(a[1:]) == {"v"} and len(a) > 2)
    quiet = any(a in ("-q", "--quiet") for a in argv)
    from .log import setup_logging

    setup_logging(verbose, quiet=quiet)
    try:
        parser = build_parser()
        if not argv:
            parser.print_help()
            return 2
        args = parser.parse_args(argv)
        if not hasattr(args, "func"):
            parser.print_help()
            return 2
        rc = args.func(args)
        return int(rc or 0)
    except KgllmError as e:
        if verbose:
            import traceback

            traceback.print_exc()
        print(f"kgllm: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("kgllm: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `kgllm ... | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0
    except Exception as e:  # an unexpected failure: one line unless -v
        if verbose:
            raise
        print(f"kgllm: error: {type(e).__name__}: {e} (rerun with -v for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
