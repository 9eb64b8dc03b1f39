"""``kgllm pull {file,wordnet,sparql,dbpedia}``: the pull subcommands (handlers import lazily)."""

from __future__ import annotations

GROUP_HELP = "pull triples from WordNet, SPARQL endpoints or RDF files into a graph artifact"


def register(cmds) -> None:
    # Each source adds its subcommand with cmds.subcommand("pull", NAME, HELP, handler, group_help=GROUP_HELP).
    from . import _pull_cli  # WordNet and local files

    _pull_cli.register_wordnet(cmds)
    _pull_cli.register_file(cmds)
    from . import dbpedia, sparql  # SPARQL endpoints and DBpedia presets

    sparql.register_cli(cmds, GROUP_HELP)
    dbpedia.register_cli(cmds, GROUP_HELP)
    pass
