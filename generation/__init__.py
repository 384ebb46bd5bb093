"""What the platform can make.

``symbolic/`` holds the corpus, the ensembles and the renderer (score events to audio through a
General MIDI soundfont); ``demo/`` builds the demo catalog and the encoder's training renders
from them. Captions, which both the demo catalog and the prior's training need, live one layer
down in ``retrieval.captions``.
"""
