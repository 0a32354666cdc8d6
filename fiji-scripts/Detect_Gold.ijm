// Gold Digger > Detect Gold
//
// Finds immunogold particles in the current image (the current slice, or every slice of a
// stack with whole_stack), inside the current selection if there is one, and puts them in
// the ROI Manager (one oval or point per particle, named gold-6nm-0001, ..., coloured and
// grouped by class; or the image's overlay, or both), the table "Gold Digger Results" (one
// row per particle) and the table "Gold Digger Summary" (counts, area and density per
// class). A rerun on the same image replaces its earlier particles and rows (rerun=add
// keeps them).
//
// In a macro:
//   run("Detect Gold", "");                                    // the defaults
//   run("Detect Gold", "threshold=0.4 classes=6,12 shape=points whole_stack");
// Options: model, threshold (0 = the model's), classes (all or e.g. 6,12), shape
// (ovals|points), region (selection|roi_manager|image), pixel_size (nm/px; 0 = the
// image's calibration), whole_stack, rerun (replace|add), add_to
// (roi_manager|overlay|both), results (also copy the rows to ImageJ's Results table).
//
// From the menu, the dialog has a Preview box: ticked, OK shows the particles of the
// dialog's settings on the image (current slice) and the dialog again; unticked, OK runs
// the command (see gdAskWithPreview).
//
// When ImageJ was started with `golddigger imagej`, Python runs this command itself and
// this file is not used. Otherwise it saves temporary copies of the image and the region
// and runs the golddigger program recorded below.
//@GENERATED@

// the dialog runs in a second run of this file (gdAskWithPreview): Cancel there ends only
// that run, so that this one can take its preview off the image
if (startsWith(getArgument(), GD_DIALOG_RUN)) {
	answer = gdDialogRun(getArgument());
	return "" + answer;  // (a string: runMacro's value)
}
requires("1.52t");
if (nImages == 0) exit("Gold Digger: open a micrograph first");
opts = gdAsk();
title = getTitle();
cur = getSliceNumber();
n = nSlices;
whole = gdFlag(opts, "whole_stack") && n > 1;
region = gdValue(opts, "region", "selection");
rerun = gdValue(opts, "rerun", "replace");
addTo = gdValue(opts, "add_to", "roi_manager");
unit = gdUnit();
if (region == "selection" && selectionType() >= 0 && !gdIsArea(selectionType()))
	exit("Gold Digger: " + title + " has a line or point selection, but Detect Gold counts "
		+ "inside an area selection (rectangle, oval, polygon or freehand). Draw the membrane "
		+ "outline with an area tool, or remove the selection (Edit > Selection > Select None) "
		+ "or choose Region: image to search the whole image.");
tmp = gdTempDir();
wasBatch = is("Batch Mode");
before = gdOpenWindows();  // the result windows this command opens are placed (gdPlaceWindows)
if (!wasBatch) GD_LAYOUT = gdLayoutArg();
// the ROI Manager window first: in batch mode without it the particles would go to a hidden
// ROI Manager of this macro's own
if (!wasBatch && addTo != "overlay" && !isOpen("ROI Manager")) run("ROI Manager...");
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
showStatus("Gold Digger: detecting gold in " + title + "... (Esc cancels)");
out = gdRun("detect", tmp + "image.tif", roiFile, "", tmp, opts, map, n, -1, unit, title,
	gdGroups());
status = gdCheck(gdStatus(out), tmp);
found = parseInt(gdField(status, "particles"));
setBatchMode(true);
// In batch mode every macro has its own hidden ROI Manager unless the ROI Manager window is
// open: then the particles go to the image's overlay, where the calling macro finds them
// (run("To ROI Manager")). Open the ROI Manager before setBatchMode(true) to get them in it.
shared = isOpen("ROI Manager") || !wasBatch;
toManager = false;
if (addTo != "overlay" && shared) toManager = true;
toOverlay = true;
if (addTo == "roi_manager" && shared) toOverlay = false;
if (hadSel) gdKeepSelection(tmp);  // replacing and opening ROIs drop the image's selection
if (rerun == "replace") {
	gdRemoveEarlier(title, map);
	gdDeleteRows("Gold Digger Results", title, map);
	gdDeleteRows("Gold Digger Summary", title, map);
}
if (found > 0) {
	n0 = roiManager("count");
	gdOpenRois(tmp + "rois.zip");
	n1 = roiManager("count");
	if (gdGroups()) gdRecolour();
	if (toOverlay) {
		if (n0 == 0) {
			run("From ROI Manager");
		} else {
			for (i = n0; i < n1; i++) {
				roiManager("select", i);
				Overlay.addSelection;
			}
		}
	}
	if (!toManager) {
		if (n0 == 0) roiManager("reset");
		else for (i = n1 - 1; i >= n0; i--) {
			roiManager("select", i);
			roiManager("delete");
		}
	}
	if (!shared)
		print("Gold Digger: batch mode and no ROI Manager window: the " + found + " particles "
			+ "are in the overlay of " + title + " (run(\"To ROI Manager\") moves them there)");
	roiManager("Deselect");
}
selectImage(id);
setSlice(cur);
// Show All only for a displayed image: for an image without a window (batch mode) ImageJ
// writes the manager's ROIs into the image's overlay instead (RoiManager.setOverlay), so a
// later add_to=overlay/both would find them there twice
if (toManager && roiManager("count") > 0 && !wasBatch) roiManager("Show All without labels");
run("Select None");
if (hadSel) gdRestoreSelection(tmp);
setBatchMode(wasBatch);
gdAppendSummary(tmp + "summary.csv");
if (gdFlag(opts, "results")) gdLoadResults(tmp + "results.csv");
// Gold Digger Results last: saveAs("Results", ...) saves the front table
gdLoadTable(tmp + "results.csv", "Gold Digger Results", true);
if (!wasBatch) {
	gdPlaceWindows(tmp + "layout.txt", before);
	selectWindow("Gold Digger Results");
}
gdCleanup(tmp);
selectImage(id);
showStatus("Gold Digger: " + found + " particles in " + title + " ("
	+ gdField(status, "seconds") + " s)");
