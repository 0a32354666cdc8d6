"""Spatial analysis of gold particles inside a region (the membrane a user outlined).

Everything is in nm (positions in pixels times the pixel size):

1. counts, region area and density per class (`density`);
2. nearest-neighbour distances within and between classes (`neighbours`);
3. clusters by single linkage (`clusters`);
4. tests in the same region (`randomness`, `ripley`, `simulate`, `geometry`): against
   hard-core random placement (mean NNDs, Ripley's K / Besag's L with the translation edge
   correction and a global MAD envelope test, fraction clustered), and of association
   between classes (one class kept, the other re-placed; random labelling; cross K / L,
   pair correlation g), Holm-adjusted per image; without a region, the Ripley-Rasson
   window estimate;
5. several named regions per image (`pipeline.analyze_regions`), replicated patterns
   (`replicates`: pooled K over images, permutation test between groups);
6. tables, CSVs and plots (`result`, `report`, `plots`).

>>> from golddigger.analysis import analyze, write_outputs
>>> result = analyze(particles, pixel_size_nm=0.5587)            # doctest: +SKIP
>>> write_outputs(result, "out/S4", image=image)                   # doctest: +SKIP
"""

from golddigger.analysis.pipeline import analyze, analyze_regions
from golddigger.analysis.report import analysis_tables, write_outputs
from golddigger.analysis.result import TABLE_NAMES, AnalysisResult

__all__ = ["TABLE_NAMES", "AnalysisResult", "analysis_tables", "analyze", "analyze_regions",
           "write_outputs"]
