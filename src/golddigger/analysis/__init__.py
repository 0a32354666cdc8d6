"""Spatial analysis of gold particles inside a region (the membrane a user outlined).

Everything is in nm (positions in pixels times the pixel size):

1. counts, region area and density per class (`density`);
2. nearest-neighbour distances within and between classes (`neighbours`);
3. clusters by single linkage (`clusters`);
4. tests against complete spatial randomness in the same region, with hard-core random
   patterns, Monte Carlo envelopes and rank p-values for mean NNDs, Ripley's K / Besag's L
   (translation edge correction, global MAD envelope test) and the fraction clustered
   (`randomness`, `ripley`, `simulate`, `geometry`);
5. tables, CSVs and plots (`result`, `report`, `plots`).

>>> from golddigger.analysis import analyze, write_outputs
>>> result = analyze(particles, pixel_size_nm=0.5587)            # doctest: +SKIP
>>> write_outputs(result, "out/S4", image=image)                   # doctest: +SKIP
"""

from golddigger.analysis.pipeline import analyze
from golddigger.analysis.report import analysis_tables, write_outputs
from golddigger.analysis.result import TABLE_NAMES, AnalysisResult

__all__ = ["TABLE_NAMES", "AnalysisResult", "analysis_tables", "analyze", "write_outputs"]
