"""Sources: pull triples from WordNet (nltk), SPARQL endpoints (DBpedia, Virtuoso...) and RDF files."""
