// Gold Digger example: every slice of a stack, inside one membrane outline.
//
// Opens the stack, puts the membrane outline (an area selection saved with
// File > Save As > Selection... as <name>_region.roi beside the stack) on it, runs
// Detect Gold on every slice, and saves the particles (each ROI carries its slice) as
// <name>_RoiSet.zip, the table "Gold Digger Results" as <name>_results.csv and the per-slice summary
// (counts, area and density per class) as <name>_summary.csv beside the stack.
//
// Run it from Plugins > Macros > Run..., or without windows:
//   xvfb-run -a java -jar ij.jar -ijpath ~/.imagej -batch batch_stack.ijm /path/to/stack.tif
options = "whole_stack region=selection";

// Stop at once, with a message on the terminal, when ImageJ does not have the Gold Digger
// commands (otherwise run() would wait on an "Unrecognized command" dialog that nobody sees
// in a batch run). "java -jar ij.jar" only finds them with -ijpath ~/.imagej.
List.setCommands;
if (List.get("Detect Gold") == "")
	exit("Gold Digger: ImageJ has no Plugins > Gold Digger > Detect Gold. Install the commands "
		+ "(golddigger install-fiji ~/.imagej) and start ImageJ with that folder: "
		+ "java -jar ij.jar -ijpath ~/.imagej -batch ..., /usr/bin/imagej -b ..., or "
		+ "golddigger imagej --batch --macro ...");
List.clear();

path = getArgument();
if (path == "") path = File.openDialog("Choose a stack");

setBatchMode(false);  // see batch_folder.ijm: the ROI Manager window first
if (!isOpen("ROI Manager")) run("ROI Manager...");
setBatchMode(true);
if (isOpen("Gold Digger Summary")) {
	selectWindow("Gold Digger Summary");
	run("Close");
}
if (isOpen("Gold Digger Results")) {
	selectWindow("Gold Digger Results");
	run("Close");
}
roiManager("reset");

open(path);
dir = File.directory;
stem = File.nameWithoutExtension;
if (File.exists(dir + stem + "_region.roi"))
	open(dir + stem + "_region.roi");
run("Detect Gold", options);
print("Gold Digger: " + roiManager("count") + " particles in " + nSlices + " slices");
if (roiManager("count") > 0) {
	roiManager("Deselect");
	roiManager("Save", dir + stem + "_RoiSet.zip");
}
Table.save(dir + stem + "_results.csv", "Gold Digger Results");
Table.save(dir + stem + "_summary.csv", "Gold Digger Summary");
close("*");
roiManager("reset");
