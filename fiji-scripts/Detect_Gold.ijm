// Gold Digger > Detect Gold
//
// Finds immunogold particles in the current image (the current slice, or every slice of a
// stack with whole_stack), inside the current selection if there is one, and puts them in
// the ROI Manager (one oval or point per particle, named gold-6nm-0001, ..., coloured and
// grouped by class), the Results table (one row per particle) and the table
// "Gold Digger Summary" (counts, area and density per class).
//
// In a macro:
//   run("Detect Gold", "");                                    // the defaults
//   run("Detect Gold", "threshold=0.4 classes=6,12 shape=points whole_stack");
// Options: model, threshold (0 = the model's), classes (all or e.g. 6,12), shape
// (ovals|points), region (selection|roi_manager|image), pixel_size (nm/px; 0 = the
// image's calibration), whole_stack.
//
// When ImageJ was started with `golddigger imagej`, Python runs this command itself and
// this file is not used. Otherwise it saves temporary copies of the image and the region
// and runs the golddigger program recorded below.
//@GENERATED@

requires("1.52t");
if (nImages == 0) exit("Gold Digger: open a micrograph first");
opts = gdAsk();
title = getTitle();
cur = getSliceNumber();
n = nSlices;
whole = gdFlag(opts, "whole_stack") && n > 1;
region = gdValue(opts, "region", "selection");
unit = gdUnit();
tmp = gdTempDir();
wasBatch = is("Batch Mode");
setBatchMode(true);
id = getImageID();
hadSel = selectionType() >= 0;
if (hadSel) gdKeepSelection(tmp);
roiFile = gdSaveRegion(region, tmp);
selectImage(id);
setSlice(cur);
if (hadSel) gdRestoreSelection(tmp);
else run("Select None");
map = gdSaveImage(tmp, whole);
setBatchMode(wasBatch);
showStatus("Gold Digger: detecting gold in " + title + "...");
out = gdCall("detect", tmp + "image.tif", roiFile, "", tmp, opts, map, n, -1, unit, title,
	gdGroups());
status = gdCheck(gdStatus(out), tmp);
found = parseInt(gdField(status, "particles"));
if (found > 0) {
	// In batch mode every macro has its own hidden ROI Manager unless the ROI Manager window
	// is open: then the particles go to the image's overlay, where the calling macro finds
	// them (run("To ROI Manager")). Open the ROI Manager before setBatchMode(true) to get
	// them in it directly.
	shared = isOpen("ROI Manager") || !is("Batch Mode");
	if (hadSel) gdKeepSelection(tmp);  // opening ROIs drops the image's selection
	roiManager("Open", tmp + "rois.zip");
	if (gdGroups()) gdRecolour();
	if (shared) {
		roiManager("Show All without labels");
	} else {
		run("From ROI Manager");
		roiManager("reset");
		print("Gold Digger: batch mode and no ROI Manager window: the " + found + " particles "
			+ "are in the overlay of " + title + " (run(\"To ROI Manager\") moves them there)");
	}
	selectImage(id);
	if (hadSel) gdRestoreSelection(tmp);
}
gdAppendSummary(tmp + "summary.csv");
gdLoadResults(tmp + "results.csv");  // last: saveAs("Results", ...) saves the front table
gdCleanup(tmp);
selectImage(id);
showStatus("Gold Digger: " + found + " particles in " + title + " ("
	+ gdField(status, "seconds") + " s)");
