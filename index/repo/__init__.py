"""Data access per aggregate: the only SQL that routes and jobs reach."""
