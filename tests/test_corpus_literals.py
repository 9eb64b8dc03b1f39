"""Literal realization and unseen-predicate lexicalization in the WebNLG template verbalizer."""

from __future__ import annotations

from kgllm.corpus import verbalize as v


def test_dates_months_years():
    assert v.realize("1871-01-01") == "1 January 1871"
    assert v.realize('"1986-04-15"') == "15 April 1986"
    assert v.realize('"1950-05"') == "May 1950"
    assert v.realize("1871") == "1871"
    # a reference that writes the date in words still delexicalises to a slot
    assert v.delexicalise("Bananaman last aired on April 15th 1986.", ["Bananaman", '"1986-04-15"']) \
        == "{0} last aired on {1}."
    assert v.fill("{0} was founded on {1}.", ["Chicago_Cubs", "1871-01-01"]) == "Chicago Cubs was founded on 1 January 1871."


def test_numbers_and_units():
    assert v.realize("17068.8 (millimetres)") == "17,068.8 millimetres"
    assert v.realize("837080.744 (squareKilometres)") == "837,080.744 square kilometres"
    assert v.realize("17.99 (kilometrePerSeconds)") == "17.99 kilometres per second"
    assert v.realize("28.0 (metres)") == "28 metres"
    assert v.realize("1200 (square metres)") == "1200 square metres"  # four digits: no separator
    assert v.realize("94531") == "94531"  # a bare integer may be a postcode
    assert v.unit_words("kilogram") == "kilograms" and v.unit_words("inch") == "inches"
    # the unit in the reference goes into the slot; a unit the reference spells otherwise stays in the template
    ents = ["AIDAstella", "253260.0 (millimetres)"]
    assert v.delexicalise("AIDAstella is 253260.0 millimetres in length.", ents) == "{0} is {1} in length."
    t = v.delexicalise("AIDAstella is 253260.0 mm in length.", ents)
    assert t == "{0} is {1:n} mm in length."
    assert v.fill(t, ents) == "AIDAstella is 253,260 mm in length."


def test_ranges():
    ents = ["ALCO_RS-3", '"May 1950 - August 1956"']
    assert v.fill("{0}'s build date is {1}.", ents) == "ALCO RS-3's build date is from May 1950 to August 1956."
    assert v.fill("{0} was built in {1}.", ents) == "ALCO RS-3 was built from May 1950 to August 1956."
    assert v.fill("{0} was built between {1}.", ents) == "ALCO RS-3 was built between May 1950 and August 1956."
    assert v.delexicalise("The ALCO RS-3 was built from May 1950 to August 1956.", ents) == "The {0} was built from {1}."


def test_unseen_predicate_lexicalization():
    assert v.lexicalize("foundedBy") == "{0} was founded by {1}."
    assert v.lexicalize("locatedIn") == "{0} is located in {1}."
    assert v.lexicalize("isPartOf") == "{0} is part of {1}."
    assert v.lexicalize("memberOf") == "{0} is a member of {1}."
    assert v.lexicalize("<http://dbpedia.org/ontology/leaderTitle>") == "{0}'s leader title is {1}."
    # an event noun and its time or place: a verb ("died in", "died on" a date); a gerund with its doubled
    # consonant: the present tense; a gerund whose stem cannot be told without a dictionary stays a noun
    assert v.lexicalize("deathYear") == "{0} died in {1}."
    assert v.lexicalize("deathDate") == "{0} died on {1}."
    assert v.lexicalize("openingYear") == "{0} opened in {1}."
    assert v.lexicalize("starring") == "{0} stars {1}."
    assert v.lexicalize("featuring") == "{0}'s featuring is {1}."
    # with no learned templates at all, an unseen predicate is lexicalised from its name
    text = v.TemplateVerbalizer({}).verbalize([("Acme_Corp", "foundedByPerson", "Jane_Doe")])
    assert "Acme Corp" in text and "Jane Doe" in text


def test_tidy_repairs_what_slot_filling_leaves():
    # a value that ends with a full stop, at the end of a sentence; an ellipsis stays
    assert v.tidy("Alan Martin plays for Clyde F.C.. He waits...") == "Alan Martin plays for Clyde F.C. He waits..."
    # a unit the value and the template both say
    assert v.tidy("Its area is 490.9 square kilometres square kilometres.") == "Its area is 490.9 square kilometres."
    assert v.tidy("He had had 5 5 apples.") == "He had had 5 5 apples."
    # a template's "the" before a one-word name, not before an acronym, a plural name or a longer name, and
    # never a "the" inside a name
    assert v.fill("{0} is in the {1}.", ["Arianespace", "France"]) == "Arianespace is in France."
    assert v.fill("The {0} is big.", ["Italy", "x"]) == "Italy is big."
    assert v.fill("The {0} aired it in the {1} and the {2}.", ["BBC", "Netherlands", "United_States"]) == \
        "The BBC aired it in the Netherlands and the United States."
    assert v.fill("{0} is dedicated to the {1}.", ["Memorial", '"soldiers killed in the Battle of Baku"']) == \
        "Memorial is dedicated to the soldiers killed in the Battle of Baku."
    assert v.fill("{0} was written by {1}.", ["Above_the_Veil", "Garth_Nix"]) == "Above the Veil was written by Garth Nix."
    assert v.tidy("ACM Transactions on Information Systems's abbreviation") == \
        "ACM Transactions on Information Systems' abbreviation"
    text = v.TemplateVerbalizer({}).verbalize([("Clyde_F.C.", "ground", "Broadwood_Stadium"),
                                              ("Alan_Martin", "club", "Clyde_F.C.")])
    assert ".." not in text and "Clyde F.C." in text


def test_realized_literal_span_links_to_its_triple():
    triples = [("Chicago_Cubs", "foundingDate", "1871-01-01"), ("ALCO_RS-3", "length", "17068.8 (millimetres)")]
    for s, p, o in triples:
        key, ents = v.canonical([(s, p, o)])
        text, spans = v.fill_spans("{0} has {1}.", ents)
        (a0, b0, i0), (a1, b1, i1) = spans
        assert text[a0:b0] == v.realize(s) and ents[i0] == s
        assert text[a1:b1] == v.realize(o) and ents[i1] == o  # the realized form, linked to the object
    # the corpus annotator (planner) realizes literals the same way, so its spans are the realized forms
    from kgllm.corpus.render import render_literal

    assert render_literal('"1871-01-01"^^<http://www.w3.org/2001/XMLSchema#date>') == v.realize("1871-01-01")


def test_same_subject_facts_aggregate_into_one_sentence():
    from kgllm.corpus.verbalize import TemplateVerbalizer

    v = TemplateVerbalizer(templates={})  # no learned templates: every fact takes the name-based phrasing
    text = v.verbalize([("Acme_Works", "foundedBy", "Jane_Doe"), ("Zed_Town", "isPartOf", "Big_County"),
                        ("Acme_Works", "locatedIn", "Zed_Town"), ("Acme_Works", "leaderTitle", "Director")])
    # The three facts about Acme Works are kept together and joined; the other subject keeps its sentence.
    assert text.count(".") == 2 and text.startswith("Acme Works was founded by Jane Doe, is located in Zed Town and "
                                                   "its leader title is Director.")
    assert "Zed Town is part of Big County." in text


def test_a_surname_is_a_word():
    # "Apollo 8" taken for a person (a template said "his" of it) is not named again as "8"
    assert v.referring_expression("Apollo_8", [], person=True) == "Apollo 8"
    assert v.referring_expression("Alan_Bean", [], person=True) == "Bean"
