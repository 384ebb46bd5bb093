"""Symbolic music: the music21 corpus, ensembles of General MIDI instruments, and the renderer
that plays a score's note events straight into a soundfont."""
