"""The simulated user's phrasings: a pool written apart from the parser and its tests.

Rule for whoever edits this file: write what a listener would type, never what the parser is
known to read. The evaluation reports how many of these the parser understood (its coverage),
so phrasings it misses cost the conversational system honestly instead of being tuned away.
"""

from __future__ import annotations

OPENING = {
    "tune_type": ["I'm in the mood for a {tune_type}", "got any {tune_type}s?",
                  "play me a {tune_type}", "{tune_type}, please", "looking for a {tune_type}"],
    "tempo": {"slow": ["something unhurried", "a slow one to wind down", "nothing too quick"],
              "moderate": ["something at a walking pace", "a medium tempo tune"],
              "fast": ["something quick and lively", "a fast one", "give me something brisk"]},
    "mode": {"major": ["a cheerful tune", "something happy-sounding", "a bright major piece"],
             "minor": ["something melancholy", "a sad tune", "a piece in a minor key"]},
    "family": ["something with {family}", "a tune played on {family}", "music for {family}"],
}

FAMILY_WORDS = {"strings": ["strings", "a string section", "fiddle or violin"],
                "woodwind": ["woodwinds", "a wind instrument", "flute"],
                "keyboard": ["piano", "a keyboard", "harpsichord"],
                "brass": ["brass", "horns", "trumpet"], "voice": ["voices", "singing", "a choir"],
                "plucked": ["guitar", "harp", "plucked strings"],
                "free reed": ["accordion", "a squeezebox", "concertina"],
                "bagpipes": ["bagpipes", "pipes"], "organ": ["organ", "a church organ"]}

CRITIQUE = {
    ("tempo", 1): ["more pace", "can it be pacier?", "needs more drive", "up-tempo please",
        "faster please", "this drags, can it be quicker?", "pick up the pace", "too slow for me",
        "I want something speedier", "more tempo", "could the next ones be a bit faster"],
    ("tempo", -1): ["less frantic", "take it easier on the tempo", "more laid back, slower",
        "too hurried", "slow it down", "that's too fast", "something slower",
        "less rushed, a slower one", "not so quick", "can we go slower"],
    ("mode", "minor"): ["something moodier", "a bit more mournful", "I'd prefer a minor key",
        "make it sadder", "something darker and minor", "too cheerful", "in minor, please",
        "more melancholy"],
    ("mode", "major"): ["less depressing", "more uplifting", "in a major key please",
        "happier, please", "too gloomy", "something more cheerful", "major key would be better"],
    ("meter", "triple"): ["three beats to the bar", "a waltz feel", "in three, like a waltz",
        "I want 3/4", "waltz time please", "something in triple time"],
    ("meter", "duple"): ["two beats to the bar", "straight time, not a waltz", "in two or four",
        "a straight 4/4 feel", "duple time please", "more like a march, in two"],
    ("meter", "compound"): ["a jig rhythm", "in six", "in 6/8",
        "something with a jig lilt in six-eight", "compound time please",
        "I want that 6/8 swing"],
    ("with", None): ["{family} would be nice", "switch to {family}", "with {family} instead",
        "can we have {family}?", "more {family}", "I'd like to hear {family}"],
    ("without", None): ["I don't want {instrument}", "can we skip the {instrument}",
        "no {instrument}", "without the {instrument} please", "lose the {instrument}",
        "not {instrument}", "drop the {instrument}"],
    ("density", 1): ["thicker texture", "more layers", "busier, more going on",
        "too thin, something fuller", "more instruments please", "richer texture"],
    ("density", -1): ["just one instrument", "less cluttered", "simpler please", "too busy",
        "something sparser", "fewer instruments", "strip it back, less going on"],
    ("register", 1): ["up an octave", "a higher voice", "higher pitched please",
        "something higher", "brighter, higher register", "too low"],
    ("register", -1): ["something with a darker, lower tone", "down an octave", "lower please",
        "deeper sound", "too shrill, something lower", "more bass"],
    ("more_like", None): ["#{j} is the best so far", "go with number {j}", "more like #{j}",
        "#{j} is closer", "I like number {j}", "like the {ordinal} one",
        "#{j} is nearly it, more of that"],
    ("not_like", None): ["#1 is off", "definitely not the top one", "not like #1",
        "nothing like the first one", "the first one is wrong", "less like #1",
        "not like the top one"],
}

ORDINAL = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", 6: "sixth",
           7: "seventh", 8: "eighth", 9: "ninth", 10: "tenth"}
