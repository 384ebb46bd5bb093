"""The demo catalog and the encoder's training renders, built on the same render jobs.

The catalog builder renders corpus pieces with chosen ensembles, tempi and dynamics and writes
audio plus metadata; the training sets reuse its jobs so both agree on splits and labels.
"""
