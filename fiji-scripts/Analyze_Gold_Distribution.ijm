// Gold Digger > Analyze Gold Distribution
//
// Spatial statistics of the particles in the ROI Manager (point and oval ROIs of the
// current slice: Gold Digger detections and your own points) inside the membrane region:
// counts, area and density per class, nearest-neighbour distances within and between
// classes, clusters, and Monte Carlo tests against random placement in the same region.
// Shows the tables "Gold Digger Analysis" (counts, density, NND and clusters per class),
// "Gold Digger NND", "Gold Digger Randomness" and "Gold Digger Clusters" (with image and
// region columns; rows are added image after image with append) and (plots) the particle
// map, NND histograms and L / g functions; all tables (CSV) and plots (PNG) are written to
// <output>/<image name>/ (default: a temporary folder), named in the Log.
//
// In a macro:
//   run("Analyze Gold Distribution", "region=selection simulations=499 output=[/data/analysis]");
// Options: region (selection|roi_manager|hull), convex_estimate (with no region: run the
// tests on a convex region estimated from the particles; convex membranes only; off: no
// tests, the Log says why), default_class (nm, for points that state no class), pixel_size
// (nm/px; 0 = the image's calibration), simulations, cluster_distance (nm),
// min_cluster_size, output, overwrite, append, plots.
//@GENERATED@

requires("1.52t");
if (nImages == 0) exit("Gold Digger: open the image first");
opts = gdAsk();
title = getTitle();
cur = getSliceNumber();
unit = gdUnit();
tmp = gdTempDir();
wasBatch = is("Batch Mode");
setBatchMode(true);
id = getImageID();
hadSel = selectionType() >= 0;
if (hadSel) gdKeepSelection(tmp);
rois = "";
if (roiManager("count") > 0) {
	roiManager("Deselect");  // with a ROI selected, "Save" writes only that one
	roiManager("Save", tmp + "rois.zip");
	rois = tmp + "rois.zip";
} else if (selectionType() == 10) {
	saveAs("Selection", tmp + "points.roi");
	rois = tmp + "points.roi";
} else {
	gdCleanup(tmp);
	exit("Gold Digger: no particles: run Detect Gold first, or mark particles with point ROIs "
		+ "in the ROI Manager");
}
choice = gdValue(opts, "region", "selection");
roiFile = "";
if (choice != "hull") roiFile = gdSaveRegion(choice, tmp);
selectImage(id);
setSlice(cur);
if (hadSel) gdRestoreSelection(tmp);
else run("Select None");
map = gdSaveImage(tmp, false);
setBatchMode(wasBatch);
showStatus("Gold Digger: analysing " + title + "...");
out = gdCall("analyze", tmp + "image.tif", roiFile, rois, tmp, opts, map, nSlices, cur - 1,
	unit, title, 0);
status = gdCheck(gdStatus(out), tmp);
tables = newArray("summary", "nnd_stats", "randomness", "clusters");
titles = newArray("Gold Digger Analysis", "Gold Digger NND", "Gold Digger Randomness",
	"Gold Digger Clusters");
append = gdFlag(opts, "append");
for (i = 0; i < tables.length; i++)
	gdLoadTable(tmp + "ij-" + tables[i] + ".csv", titles[i], append);
if (File.exists(tmp + "ij-log.txt")) print(File.openAsString(tmp + "ij-log.txt"));
plots = gdField(status, "plots");
if (gdFlag(opts, "plots") && plots != "none" && plots != "") {
	files = split(plots, ",");
	for (i = 0; i < files.length; i++) open(tmp + files[i]);
}
gdCleanup(tmp);
selectImage(id);
showStatus("Gold Digger: " + gdField(status, "particles") + " particles analysed in "
	+ gdField(status, "area_um2") + " um2 (output folder: see the Log)");
