"""The pull stage: triples from WordNet (nltk), SPARQL endpoints (DBpedia, Virtuoso...) and RDF files.

Takes: a source named in a stage config (WordNet 3.0, local RDF files, an endpoint and a query, a DBpedia
preset). Makes: a graph artifact (see :mod:`kgllm.rdf`).

  * :mod:`.wordnet`: WordNet 3.0 -> RDF (``pull.wordnet``); :mod:`.wordnet_data` sets up nltk's WordNet
    from Debian's ``wordnet-base``;
  * :mod:`.files`: local RDF files (``pull.file``);
  * :mod:`.sparql`: the SPARQL harvester (``pull.sparql``); :mod:`.dbpedia`: its DBpedia presets
    (``pull.dbpedia``);
  * :mod:`.cli`: ``kgllm pull {wordnet,file,sparql,dbpedia}``; :mod:`.stage`: the stages.
"""
