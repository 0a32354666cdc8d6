"""The napari plugin (``pip install golddigger[napari]``; manifest ``napari.yaml``).

* *Detect Gold* (`DetectGoldWidget`): the network once per run, the threshold live;
* a reader of Gold Digger CSVs and ImageJ RoiSets, writers back to both;
* sample data: the bundled synthetic FRIL example with its membrane outline;
* *Analyze* (`AnalyzeWidget`): the distribution summary and the L-function plot.

napari and Qt are imported only by this subpackage's widget modules; the rest of Gold
Digger never imports it.
"""
