"""WordNet 3.0 for nltk, set up from Debian's ``wordnet-base``: where the WordNet that ``pull.wordnet`` reads
comes from.

Takes: WordNet 3.0 in nltk's layout, found in this order:

1. an nltk WordNet the user already has (``corpora/wordnet`` anywhere on ``nltk.data.path``);
2. Debian's ``wordnet-base`` (``/usr/share/wordnet``), copied once into
   ``kgllm.resources.nltk_data_dir()/corpora/wordnet/`` with the ``lexnames`` and ``index.sense`` files nltk
   needs and Debian lacks (nltk also refuses to read corpora outside its data path, hence the copy).

Makes: that directory (atomically, one builder at a time, stamped with its source so a changed
``wordnet-base`` is rebuilt), and :func:`locate_wordnet`'s answer: what to open and where it comes from.
Nothing is ever downloaded. :func:`prepare_nltk_data` builds (2) ahead of time (``make resources``, through
:mod:`kgllm.resources`); :func:`open_wordnet` builds it lazily when it is missing.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import warnings
from pathlib import Path

from ..errors import InputError
from ..log import logger
from ..resources import nltk_data_dir

#: Where Debian's ``wordnet-base`` puts the WordNet 3.0 database files.
DEBIAN_WORDNET = Path("/usr/share/wordnet")

#: The 45 lexicographer files of WordNet 3.0 (lexnames(5WN)): number, name, syntactic category.
LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling",
    "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object", "noun.person",
    "noun.phenomenon", "noun.plant", "noun.possession", "noun.process", "noun.quantity", "noun.relation",
    "noun.shape", "noun.state", "noun.substance", "noun.time", "verb.body", "verb.change", "verb.cognition",
    "verb.communication", "verb.competition", "verb.consumption", "verb.contact", "verb.creation",
    "verb.emotion", "verb.motion", "verb.perception", "verb.possession", "verb.social", "verb.stative",
    "verb.weather", "adj.ppl",
)
_LEXNAME_CATEGORY = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}

# Files copied from wordnet-base (cntlist.rev is optional: nltk uses it only for lemma counts).
_DB_FILES = tuple(f"{kind}.{pos}" for kind in ("data", "index") for pos in ("adj", "adv", "noun", "verb")) + \
    tuple(f"{pos}.exc" for pos in ("adj", "adv", "noun", "verb"))
_OPTIONAL_FILES = ("cntlist.rev",)
_STAMP = "kgllm-source.json"


def _kgllm_wordnet_dir() -> Path:
    return nltk_data_dir() / "corpora" / "wordnet"


def _ensure_on_nltk_path(root: Path) -> None:
    """nltk only opens corpus files under a directory of ``nltk.data.path``."""
    import nltk

    if str(root) not in [str(p) for p in nltk.data.path]:
        nltk.data.path.append(str(root))


def _user_wordnet():
    """An nltk ``corpora/wordnet`` (dir or zip) already on nltk's data path, or None."""
    import nltk

    for name in ("corpora/wordnet", "corpora/wordnet.zip/wordnet/"):  # as nltk's own corpus loader does
        try:
            return nltk.data.find(name)
        except (LookupError, OSError, ValueError):
            continue
    return None


def _build_from_debian(source: Path, dest: Path) -> Path:
    """Copy wordnet-base's database files into ``dest`` plus a generated ``lexnames`` (atomic)."""
    missing = [f for f in _DB_FILES if not (source / f).is_file()]
    if missing:
        raise InputError(f"{source}: incomplete WordNet database (missing {', '.join(missing)}); "
                         "reinstall it with `apt-get install --reinstall wordnet-base`")
    stamp = _source_stamp(source)
    if _stamp_matches(dest, stamp):
        return dest  # already built from this very source: the fast path
    dest.parent.mkdir(parents=True, exist_ok=True)
    # One builder at a time (parallel test sessions, `make -j`): the others wait, then find it built.
    with open(dest.parent / f".{dest.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _stamp_matches(dest, stamp):
            _build(source, dest, stamp)
    return dest


def _stamp_matches(dest: Path, stamp: dict) -> bool:
    try:
        return json.loads((dest / _STAMP).read_text("utf-8")) == stamp
    except (OSError, ValueError):
        return False


def _build(source: Path, dest: Path, stamp: dict) -> None:
    logger.info("preparing WordNet 3.0 for nltk from %s into %s", source, dest)
    # nltk refuses files and directories that others can write: make the whole chain 0755/0644.
    for d in (dest.parent.parent, dest.parent):
        os.chmod(d, 0o755)
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(mode=0o755)
    os.chmod(tmp, 0o755)
    for name in _DB_FILES + _OPTIONAL_FILES:
        if (source / name).is_file():
            shutil.copyfile(source / name, tmp / name)
            os.chmod(tmp / name, 0o644)
    with open(tmp / "lexnames", "w", encoding="ascii") as f:
        for i, name in enumerate(LEXNAMES):
            f.write(f"{i:02d}\t{name}\t{_LEXNAME_CATEGORY[name.split('.')[0]]}\n")
    os.chmod(tmp / "lexnames", 0o644)
    _write_index_sense(tmp)
    os.chmod(tmp / "index.sense", 0o644)
    (tmp / _STAMP).write_text(json.dumps(stamp, indent=1, sort_keys=True) + "\n", "utf-8")
    os.chmod(tmp / _STAMP, 0o644)
    if dest.exists():
        if not (dest / _STAMP).is_file():  # not built by kgllm: never replace it
            shutil.rmtree(tmp, ignore_errors=True)
            raise InputError(f"{dest}: holds a WordNet kgllm did not build (no {_STAMP}); kgllm will not replace "
                             "it. Move it away, or set KGLLM_HOME to another directory")
        shutil.rmtree(dest)
    os.replace(tmp, dest)


def _write_index_sense(wndir: Path) -> int:
    """Generate ``index.sense`` (senseidx(5WN)), which wordnet-base lacks and nltk's reader opens.

    Each line: ``sense_key synset_offset sense_number tag_cnt``, sorted by sense key. Sense numbers
    come from the lemma's synset order in ``index.POS``, tag counts from ``cntlist.rev`` (0 when
    absent). Parsed directly from the database files: a fraction of a full nltk pass.
    """
    sense_no: dict[tuple[str, str, int], int] = {}
    for pos in ("noun", "verb", "adj", "adv"):
        with open(wndir / f"index.{pos}", encoding="utf-8") as f:
            for line in f:
                if line.startswith(" "):
                    continue
                t = line.split()
                n_ptr = int(t[3])
                for i, off in enumerate(t[6 + n_ptr:6 + n_ptr + int(t[2])], 1):
                    sense_no[(t[0], t[1], int(off))] = i
    tag_cnt: dict[str, str] = {}
    if (wndir / "cntlist.rev").is_file():
        with open(wndir / "cntlist.rev", encoding="utf-8") as f:
            for line in f:
                t = line.split()
                if len(t) == 3:
                    tag_cnt[t[0]] = t[2]
    ss_type = {"n": 1, "v": 2, "a": 3, "r": 4, "s": 5}
    heads: dict[int, tuple[str, int]] = {}  # adjective offset -> (first word, its lex_id)
    satellites: list[tuple[int, int, list[tuple[str, int]], int]] = []
    rows: list[tuple[str, int, int]] = []
    for pos in ("noun", "verb", "adj", "adv"):
        with open(wndir / f"data.{pos}", encoding="utf-8") as f:
            for line in f:
                if line.startswith(" "):
                    continue
                t = line.split(" | ", 1)[0].split()
                off, lexfile, sst = int(t[0]), int(t[1]), t[2]
                n_words = int(t[3], 16)
                words = [(_strip_marker(t[4 + 2 * i]).lower(), int(t[5 + 2 * i], 16)) for i in range(n_words)]
                if sst == "s":
                    k = 4 + 2 * n_words
                    ptrs = [t[k + 1 + 4 * j:k + 5 + 4 * j] for j in range(int(t[k]))]
                    head = next(int(p[1]) for p in ptrs if p[0] == "&")
                    satellites.append((off, lexfile, words, head))
                    continue
                if sst == "a":
                    heads[off] = words[0]
                for w, lex_id in words:
                    rows.append((f"{w}%{ss_type[sst]}:{lexfile:02d}:{lex_id:02d}::", off,
                                 sense_no.get((w, sst, off), 0)))
    for off, lexfile, words, head in satellites:
        hw, hid = heads[head]
        for w, lex_id in words:
            rows.append((f"{w}%5:{lexfile:02d}:{lex_id:02d}:{hw}:{hid:02d}", off, sense_no.get((w, "a", off), 0)))
    # Letter names ("A" and "a" in one synset) give the same sense key twice: one line each.
    rows = sorted(set(rows))
    with open(wndir / "index.sense", "w", encoding="utf-8") as f:
        for key, off, num in rows:
            f.write(f"{key} {off:08d} {num} {tag_cnt.get(key, '0')}\n")
    return len(rows)


def _strip_marker(word: str) -> str:
    """``big(a)`` -> ``big``: adjective syntactic markers are not part of the lemma."""
    return word[:word.index("(")] if word.endswith(")") and "(" in word else word


def _source_stamp(source: Path) -> dict:
    files = {}
    for name in _DB_FILES + _OPTIONAL_FILES:
        p = source / name
        if p.is_file():
            st = p.stat()
            files[name] = [st.st_size, int(st.st_mtime)]
    # layout: bump when what is generated changes, so prepared directories are rebuilt.
    return {"source": str(source), "files": files, "lexnames": len(LEXNAMES), "layout": 2}


def locate_wordnet(debian_dir: Path | None = None) -> tuple[object, str]:
    """The WordNet 3.0 to read (a path or nltk path pointer) and where it comes from.

    Order: the user's nltk WordNet, else kgllm's copy of Debian's wordnet-base (built if needed).
    Raises :class:`InputError` saying how to install WordNet when there is none.
    """
    debian_dir = Path(debian_dir or DEBIAN_WORDNET)
    ours = _kgllm_wordnet_dir()
    found = _user_wordnet()
    if found is not None and Path(str(found)).resolve() != ours.resolve():
        return found, "nltk"
    if all((debian_dir / f).is_file() for f in _DB_FILES):
        _build_from_debian(debian_dir, ours)
        _ensure_on_nltk_path(ours.parent.parent)
        return ours, f"debian:{debian_dir}"
    if found is not None:  # our own copy, built earlier from a wordnet-base since removed
        return found, "kgllm"
    if (ours / _STAMP).is_file() and (ours / "lexnames").is_file():
        _ensure_on_nltk_path(ours.parent.parent)
        return ours, "kgllm"
    import nltk

    raise InputError(
        "WordNet 3.0 not found: no nltk 'corpora/wordnet' under nltk's data path "
        f"({', '.join(map(str, nltk.data.path))}) and no Debian wordnet-base in {debian_dir}. "
        "Install it with `apt-get install wordnet-base` (then `make resources`); kgllm never downloads it.")


def open_wordnet(debian_dir: Path | None = None):
    """A fresh nltk ``WordNetCorpusReader`` over WordNet 3.0 and a description of its source."""
    import nltk
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class _Reader(WordNetCorpusReader):
        def map_wn(self, version="wordnet"):
            # nltk maps "wordnet" (3.0) sense keys onto the loaded WordNet for OMW data: reading
            # index.sense twice for an identity map when the loaded WordNet is 3.0 itself.
            return None if self.get_version() == "3.0" else super().map_wn(version)

    where, origin = locate_wordnet(debian_dir)
    with warnings.catch_warnings():
        # "multilingual functions are not available": we read English WordNet only.
        warnings.simplefilter("ignore")
        reader = _Reader(where if not isinstance(where, Path) else str(where), None)
    version = reader.get_version()
    if version != "3.0":
        raise InputError(f"{where}: this is WordNet {version}, but kgllm's WordNet IRIs use WordNet 3.0 "
                         "offsets; install WordNet 3.0 (`apt-get install wordnet-base`)")
    info = {"path": str(where), "origin": origin, "wordnet_version": version, "nltk_version": nltk.__version__}
    return reader, info


def prepare_nltk_data() -> Path:
    """Make WordNet 3.0 readable by nltk (idempotent; fast when done) and return its directory."""
    where, _ = locate_wordnet()
    return Path(str(where))
