// Gold Digger > Add to Training Set
//
// Saves the current image (the current slice; every slice with whole_stack) and the
// particles marked in the ROI Manager as a training pair for `golddigger train`:
// <name>.tif (calibrated) and <name>.csv (x,y,diameter_nm,score,slice in pixels) in the
// chosen folder. Particles are the point and oval ROIs of the ROI Manager (or the current
// multi-point selection when the ROI Manager is empty): corrected Gold Digger detections
// keep their class; a point that states no class (by its name such as "12nm", its Gold
// Digger group or a diameter_nm property) gets default_class. An area selection on the
// image is saved too, as <name>_region.roi.
//
// In a macro:
//   run("Add to Training Set", "folder=[/data/training] default_class=6 overwrite");
// Options: folder, name (default: the image's title), default_class (nm), pixel_size
// (nm/px; 0 = the image's calibration), whole_stack, overwrite.
//@GENERATED@

requires("1.52t");
if (nImages == 0) exit("Gold Digger: open the image first");
opts = gdAsk();
folder = gdValue(opts, "folder", "");
if (folder == "") {
	if (gdFromMacro()) exit("Gold Digger: Add to Training Set needs folder=[training folder]");
	folder = getDirectory("Choose the training folder");
	opts = gdSet(opts, "folder", folder);
}
title = getTitle();
cur = getSliceNumber();
whole = gdFlag(opts, "whole_stack") && nSlices > 1;
tmp = gdTempDir();
wasBatch = is("Batch Mode");
setBatchMode(true);
id = getImageID();
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
	exit("Gold Digger: no particles: mark them with the point tool and add them to the ROI "
		+ "Manager (press t)");
}
selectImage(id);
region = "";
if (gdIsArea(selectionType())) {
	saveAs("Selection", tmp + "region.roi");
	region = tmp + "region.roi";
}
map = gdSaveImage(tmp, whole);
setBatchMode(wasBatch);
current = cur - 1;
if (whole) current = -1;
out = gdCall("training", tmp + "image.tif", region, rois, tmp, opts, map, nSlices, current,
	"", title, 0);
status = gdCheck(gdStatus(out), tmp);
gdCleanup(tmp);
msg = "Gold Digger: saved " + gdField(status, "image") + " and " + gdField(status, "csv")
	+ " (" + gdField(status, "particles") + " particles: " + gdField(status, "classes")
	+ ") in " + gdValue(opts, "folder", "");
showStatus(msg);
print(msg);
