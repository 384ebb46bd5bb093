"""The demo catalog builder (corpus pieces rendered with chosen ensembles, tempi and dynamics,
written as audio plus metadata) and the encoder's training renders built on the same jobs."""
