// Gold Digger example: every image of a folder, each inside its own membrane outline.
//
// For each image <name>.tif/.png/.jpg of the folder this opens the image, puts its membrane
// outline on it when <name>_region.roi is beside it (an area selection saved with
// File > Save As > Selection...; without one the whole image is searched), runs
// Detect Gold, and saves the particles as <name>_RoiSet.zip (open it in the ROI Manager)
// and <name>_results.csv (one row per particle) in a folder "gold" inside the image folder.
// The table "Gold Digger Summary" (counts, area and density per class, one row per image)
// is saved as gold/summary.csv.
//
// Run it from Plugins > Macros > Run..., or without windows:
//   xvfb-run -a java -jar ij.jar -ijpath ~/.imagej -batch batch_folder.ijm /path/to/images/
// (or, with Python serving the commands: golddigger imagej --batch --macro batch_folder.ijm
//  --macro-arg /path/to/images/). Change the options below to taste, e.g.
//  "threshold=0.4 classes=6,12 shape=points".
options = "region=selection";

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

input = getArgument();
if (input == "") input = getDirectory("Choose a folder of images");
if (!endsWith(input, File.separator)) input = input + File.separator;
output = input + "gold" + File.separator;
File.makeDirectory(output);

// Open the ROI Manager window before batch mode: in batch mode a macro without that window
// gets a hidden ROI Manager of its own and would not see the particles Detect Gold adds.
setBatchMode(false);
if (!isOpen("ROI Manager")) run("ROI Manager...");
setBatchMode(true);
if (isOpen("Gold Digger Summary")) {
	selectWindow("Gold Digger Summary");
	run("Close");
}

list = getFileList(input);
for (i = 0; i < list.length; i++) {
	low = toLowerCase(list[i]);
	if (!(endsWith(low, ".tif") || endsWith(low, ".tiff") || endsWith(low, ".png")
		|| endsWith(low, ".jpg") || endsWith(low, ".jpeg")))
		continue;
	showProgress(i, list.length);
	open(input + list[i]);
	stem = File.nameWithoutExtension;
	roiManager("reset");
	if (isOpen("Gold Digger Results")) Table.reset("Gold Digger Results");  // this image's rows only
	if (File.exists(input + stem + "_region.roi"))
		open(input + stem + "_region.roi");
	run("Detect Gold", options);
	if (roiManager("count") > 0) {
		roiManager("Deselect");  // with a ROI selected, "Save" would write only that one
		roiManager("Save", output + stem + "_RoiSet.zip");
	}
	Table.save(output + stem + "_results.csv", "Gold Digger Results");
	close("*");
}
Table.save(output + "summary.csv", "Gold Digger Summary");
roiManager("reset");
print("Gold Digger: results in " + output);
