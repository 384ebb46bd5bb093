"""Symbolic music: scores from the music21 corpus and how they are played.

The corpus, ensembles of General MIDI instruments, and the renderer that plays a score's note
events straight into a soundfont.
"""
